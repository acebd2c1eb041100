"""The blocking facade shared by `Orchestrator.forward` and `LLMAdapter.generate`.

tinysmith was synchronous: environment loops call `forward(obs, reward)` from plain scripts. Here every step is
async, so the sync entry points need an event loop: a fresh one in scripts, the notebook layer's runner in a
notebook cell, and an error that names the async spelling anywhere else a loop is already running. Either way the
work runs in a fresh `MiniAgents` context, exactly like `MiniAgents().run(...)` would run it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from miniagents_nb.agents import MiniAgents
from miniagents_nb.errors import RunningEventLoopError
from miniagents_nb.promising.context import current_blocking_runner

__all__ = ["run_blocking"]

_T = TypeVar("_T")


def run_blocking(make_coroutine: Callable[[], Coroutine[Any, Any, _T]], what: str, async_spelling: str) -> _T:
    """Run the coroutine made by `make_coroutine` to completion and return its result.

    The coroutine is only created once it is certain to run, so a refused call leaves no "never awaited" warning.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return MiniAgents().run(make_coroutine())
    runner = current_blocking_runner()
    if runner is not None:  # a notebook cell: the notebook layer knows how to block there (as `MiniAgents().run`)
        return runner(MiniAgents().arun(make_coroutine()))  # type: ignore[no-any-return]
    raise RunningEventLoopError(f"`{what}` cannot block inside a running event loop: use `{async_spelling}` instead.")
