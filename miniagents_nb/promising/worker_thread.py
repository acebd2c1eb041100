"""The sync facade under a running loop: `MiniAgents().run(main())` in a notebook cell, whose kernel loop runs.

The coroutine runs to completion on a fresh event loop in a worker thread while the caller waits, with a copy of
the caller's context variables (so output goes to the cell and, with `%load_ext miniagents_nb`, the notebook-wide
context is the parent of the one being run). Nothing patches the caller's loop: `nest_asyncio` 1.6 drops the cells
queued behind such a cell on ipykernel 7.3+ ("Run All" stops), and even `nest-asyncio2` changes the loop for the
rest of the session. `run()` uses it in any IPython shell (detected without importing IPython), with or without
the notebook layer; the notebook layer installs it too (`install_blocking_runner`).

Costs, by design: the caller's loop waits meanwhile, so what already runs on it (agents that an earlier cell left
streaming) pauses until the run returns, and loop-bound objects made on it cannot be used inside. Waiting inside
the run for a stream that only that paused loop can produce would wait for ever: it fails at once instead (`run()`
marks the loop blocked: see `promising/loops.py`). Interrupting the kernel cancels everything on the worker loop and
raises `KeyboardInterrupt` in the caller.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Coroutine
from typing import Any

__all__ = ["run_in_worker_thread"]

_SHUTDOWN_GRACE_SECONDS = 10.0


class _Run:
    """One run: its loop (once started), its outcome."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.started = threading.Event()
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()


def _drain(loop: asyncio.AbstractEventLoop) -> None:
    """What `asyncio.run` does at the end: cancel what is left, let it finish, close generators and the loop."""
    try:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            for task in pending:
                if not task.cancelled() and task.exception() is not None:
                    loop.call_exception_handler(
                        {
                            "message": "unhandled exception during the sync facade's shutdown",
                            "exception": task.exception(),
                            "task": task,
                        }
                    )
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _thread_main(run: _Run, coroutine: Coroutine[Any, Any, Any]) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    run.loop = loop
    try:
        main = loop.create_task(coroutine)  # copies this thread's context: the cell's copy
        run.started.set()
        try:
            run.result = loop.run_until_complete(main)
        except BaseException as error:  # handed to the waiting cell, which raises it
            run.error = error
        finally:
            _drain(loop)
    finally:
        run.started.set()
        run.done.set()


def _stop(run: _Run) -> None:
    """Cancel everything on the run's loop and wait (a while) for it to end; further interrupts meanwhile (a user
    pressing ■ again and again) only cancel again: the run is being stopped, and the first interrupt is raised."""
    deadline = time.monotonic() + _SHUTDOWN_GRACE_SECONDS
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            run.started.wait(remaining)
            loop = run.loop
            if loop is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(_cancel_all, loop)
                except RuntimeError:  # it closed meanwhile
                    pass
            if run.done.wait(max(0.0, deadline - time.monotonic())):
                return
        except KeyboardInterrupt:
            continue


def run_in_worker_thread(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run `coroutine` to completion on a new loop in a worker thread and return its result (or raise)."""
    run = _Run()
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run,
        args=(_thread_main, run, coroutine),
        name="miniagents_nb sync facade",
        daemon=True,
    )
    thread.start()
    try:
        run.done.wait()
    except BaseException:  # a kernel interrupt (KeyboardInterrupt) while waiting: stop the run, then re-raise
        _stop(run)
        raise
    thread.join()
    if run.error is not None:
        raise run.error
    return run.result
