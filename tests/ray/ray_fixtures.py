"""The fixtures the Ray test modules share: one local Ray for the session, and a named `Signal` actor per test.

A module of its own, imported by its bare name (`from ray_fixtures import local_ray, signal_fixture`), rather than a
`conftest.py`: `tests/ray` is not a package, because its workers import `ray_test_agents` by that bare name (the
message classes cross the wire by it), and a second top-level module named `conftest` is one mypy refuses.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from ray_test_agents import Signal, start_test_ray

__all__ = ["local_ray", "signal_fixture"]

HERE = Path(__file__).parent


@pytest.fixture(scope="session", autouse=True)
def local_ray() -> Iterator[None]:
    """One local Ray for the whole session, its workers able to import this directory's modules."""
    started = start_test_ray(os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    yield
    if started:
        ray.shutdown()


@pytest.fixture(name="signal")  # tests name it `signal`; imported as `signal_fixture` (not shadowed by them)
def signal_fixture() -> Iterator[tuple[str, Any]]:
    """A `Signal` actor with a name of its own, which the workers look up (`ray_test_agents.signal`)."""
    name = f"signal-{uuid.uuid4().hex}"
    actor = Signal.options(name=name).remote()  # type: ignore[attr-defined]
    ray.get(actor.is_set.remote("ready"))  # created and registered: the workers can look it up by name
    yield name, actor
    ray.kill(actor)
