"""Fixtures for the notebook layer tests.

* ``comms``: every widget comm created during the test records what it would send to the front end (the
  messages a real kernel would publish on IOPub), so tests count and replay them.
* ``shell``: IPython's own ``InteractiveShell`` with ``%load_ext miniagents_nb``; unloaded and reset afterwards,
  so the notebook-wide context never leaks into other tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import comm
import pytest

from miniagents_nb.promising.context import current_context_or_none

from .helpers import RecordingComm


@pytest.fixture
def comms(monkeypatch: pytest.MonkeyPatch) -> list[RecordingComm]:
    created: list[RecordingComm] = []

    def create_comm(*args: Any, **kwargs: Any) -> RecordingComm:
        recording = RecordingComm(*args, **kwargs)
        created.append(recording)
        return recording

    monkeypatch.setattr(comm, "create_comm", create_comm)
    return created


@pytest.fixture
def shell(comms: list[RecordingComm]) -> Iterator[Any]:
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    result = ip.run_cell("%load_ext miniagents_nb", store_history=False)
    assert result.success, result.error_in_exec
    try:
        yield ip
    finally:
        ip.run_cell("%unload_ext miniagents_nb", store_history=False)
        ip.reset(new_session=False)
        assert current_context_or_none() is None
