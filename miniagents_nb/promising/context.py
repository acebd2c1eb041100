"""`PromisingContext`: the owner of every background task that promises and agents start.

Leaving the context waits for all of them, so nothing is left running or unobserved ("no orphans"); when the task
that owns it is cancelled, leaving cancels them instead, and waits until they ended. The current context lives in a
ContextVar, so tasks created under it inherit it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, TypeVar

from miniagents_nb.errors import (
    ContextReentryError,
    HandlerDefinitionError,
    NoActiveContextError,
    RunningEventLoopError,
    SyncContextManagerError,
    WrongActiveContextError,
)
from miniagents_nb.promising.environment import in_ipython, in_ipython_kernel
from miniagents_nb.promising.gc_tuning import hold_gc_tuning, release_gc_tuning, tune_gc_by_default
from miniagents_nb.promising.loops import loop_blocked
from miniagents_nb.promising.sentinels import NO_VALUE, Sentinel
from miniagents_nb.promising.worker_thread import run_in_worker_thread

__all__ = [
    "BlockingRunner",
    "PromiseResolvedEventHandler",
    "PromisingContext",
    "current_blocking_runner",
    "current_context_or_none",
    "install_blocking_runner",
    "is_async_callable",
]

PromiseResolvedEventHandler = Callable[[Any, Any], Awaitable[None]]

_T = TypeVar("_T")
_ContextT = TypeVar("_ContextT", bound="PromisingContext")

_current_context: ContextVar[PromisingContext | None] = ContextVar("miniagents_nb_current_context", default=None)

_ALREADY_LOGGED_ATTR = "_miniagents_nb__already_logged"

BlockingRunner = Callable[[Coroutine[Any, Any, Any]], Any]
"""`runner(coroutine) -> result`: runs a coroutine to completion although this thread's event loop is running."""

_blocking_runners: list[BlockingRunner] = []


def install_blocking_runner(runner: BlockingRunner) -> Callable[[], None]:
    """Let `run()` block inside a running event loop by handing the coroutine to `runner`; returns the uninstaller.

    An environment that owns the running loop and knows a safe way to block (the notebook layer runs the coroutine
    on a worker thread's loop) installs one. The most recent installation wins; uninstalling restores the one before.
    """
    _blocking_runners.append(runner)

    def uninstall() -> None:
        if runner in _blocking_runners:
            _blocking_runners.remove(runner)

    return uninstall


def current_blocking_runner() -> BlockingRunner | None:
    """The runner `run()` uses under a running event loop: the one installed last; else, in a Jupyter kernel (a
    notebook cell without `%load_ext miniagents_nb`, where the seeds' `MiniAgents().run(main())` is pasted), a worker
    thread with a loop of its own; else None (plain Python under a running loop: `run()` refuses)."""
    if _blocking_runners:
        return _blocking_runners[-1]
    if in_ipython_kernel():
        return run_in_worker_thread
    return None


def current_context_or_none() -> PromisingContext | None:
    """The context active in the current task, if any (never raises)."""
    return _current_context.get()


def is_async_callable(candidate: Any) -> bool:
    """Whether calling `candidate` gives an awaitable, as far as `inspect` can tell without calling it.

    Covers `async def` functions and methods, `functools.partial`s of them, and objects with an `async def
    __call__`.
    """
    while isinstance(candidate, functools.partial):
        candidate = candidate.func
    if inspect.iscoroutinefunction(candidate):
        return True
    call = getattr(type(candidate), "__call__", None)  # noqa: B004 - callable objects with an async __call__
    return not inspect.isclass(candidate) and call is not None and inspect.iscoroutinefunction(call)


def _loop_is_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _as_handler_list(handlers: Any) -> list[Any]:
    if handlers is None:
        return []
    if callable(handlers):
        return [handlers]
    return list(handlers)


class PromisingContext:
    """Activates the promise engine for a block of code and owns the background tasks it starts.

    Use it as `async with PromisingContext(): ...`, or `await ctx.arun(coro)`, or `ctx.run(coro)` from sync code.
    """

    _context_name = "PromisingContext"

    def __init__(
        self,
        *,
        start_everything_soon_by_default: bool = True,
        appenders_capture_errors_by_default: bool = False,
        longer_hash_keys: bool | Sentinel = NO_VALUE,
        logger: logging.Logger | None = None,
        log_level_for_errors: int = logging.ERROR,
        on_promise_resolved: PromiseResolvedEventHandler | Iterable[PromiseResolvedEventHandler] = (),
        tune_gc: bool | Sentinel = NO_VALUE,
    ) -> None:
        self.parent_ctx: PromisingContext | None = _current_context.get()
        self.tune_gc = tune_gc_by_default() if tune_gc is NO_VALUE else bool(tune_gc)
        """Whether the garbage collector's first threshold is raised while active (`miniagents_nb.promising.gc_tuning`)."""
        self._holds_gc_tuning = False
        self.start_everything_soon_by_default = start_everything_soon_by_default
        self.appenders_capture_errors_by_default = appenders_capture_errors_by_default
        self.longer_hash_keys = longer_hash_keys
        self.logger = logger or logging.getLogger("miniagents_nb")
        self.log_level_for_errors = log_level_for_errors
        self.on_promise_resolved_handlers: list[PromiseResolvedEventHandler] = []
        # Whether resolving a promise here has anything to do; read on hot paths, so it is a plain flag.
        self._own_resolution_work = False
        self.child_tasks: set[asyncio.Task[Any]] = set()
        # While `acancel_tasks` runs: a future it waits on, done when a task is started meanwhile (to cancel it too).
        self._task_started_while_cancelling: asyncio.Future[None] | None = None
        self.extension_state: dict[Hashable, Any] = {}
        """State that layers above keep for the lifetime of this context (e.g. the pre-packaged agents' default
        chat history), so that it never lives in a module global shared by every context."""
        self._activation_token: Token[PromisingContext | None] | None = None
        self._home_loop: asyncio.AbstractEventLoop | None = None
        """The loop the context was activated on: its promises are produced there (see `foreign_home_loop`)."""
        self._is_active = False
        for handler in _as_handler_list(on_promise_resolved):
            self.on_promise_resolved(handler)

    # --- lookup --------------------------------------------------------------------------------------------------

    @classmethod
    def get_current(cls: type[_ContextT]) -> _ContextT:
        """The active context of this class; raises when none (or one of another kind) is active."""
        ctx = _current_context.get()
        if ctx is None:
            message = (
                f"No {cls._context_name} is currently active. Did you forget to do `async with {cls._context_name}():`?"
            )
            if in_ipython():
                message += (
                    " In a notebook, run `%load_ext miniagents_nb` once (it activates one MiniAgents context for "
                    "every cell), then call agents in any cell."
                )
            raise NoActiveContextError(message)
        if not isinstance(ctx, cls):
            raise WrongActiveContextError(
                f"The active context is a {type(ctx).__name__}, but a {cls._context_name} is needed: "
                f"use `async with {cls._context_name}():` instead."
            )
        return ctx

    # --- handlers ------------------------------------------------------------------------------------------------

    def on_promise_resolved(self, handler: PromiseResolvedEventHandler) -> PromiseResolvedEventHandler:
        """Register `async def handler(promise, result)` for every promise resolved under this context."""
        if not is_async_callable(handler):
            raise HandlerDefinitionError(
                f"An `on_promise_resolved` handler must be async, got {handler!r}: define it with `async def`."
            )
        self.on_promise_resolved_handlers.append(handler)
        self._own_resolution_work = True
        return handler

    def has_resolution_work(self) -> bool:
        """Whether resolving a promise under this context has anything to do (handlers anywhere up the chain)."""
        ctx: PromisingContext | None = self
        while ctx is not None:
            if ctx._own_resolution_work:
                return True
            ctx = ctx.parent_ctx
        return False

    def notify_promise_resolved(self, promise: Any, result: Any) -> None:
        """Fire the handlers of this context and of every ancestor; each runs in its own tracked task."""
        ctx: PromisingContext | None = self
        while ctx is not None:
            ctx._fire_own_handlers(promise, result)
            ctx = ctx.parent_ctx

    def _fire_own_handlers(self, promise: Any, result: Any) -> None:
        for handler in self.on_promise_resolved_handlers:
            self.start_soon(handler(promise, result))

    # --- tasks ---------------------------------------------------------------------------------------------------

    def start_soon(self, awaitable: Awaitable[_T], suppress_errors: bool = True) -> asyncio.Task[_T]:
        """Run `awaitable` in a background task owned by this context (it starts at the next task switch).

        With `suppress_errors` (the default) an exception is logged once and not re-raised by anyone: the context
        must never be the place where an agent's failure surfaces, its consumers are.
        """
        if not inspect.isawaitable(awaitable):
            raise TypeError(f"Expected an awaitable, got {type(awaitable).__name__}.")
        task: asyncio.Task[_T] = asyncio.ensure_future(awaitable)
        self.child_tasks.add(task)
        task.add_done_callback(self._on_child_task_done if suppress_errors else self.child_tasks.discard)
        if self._task_started_while_cancelling is not None:
            self._note_task_started_while_cancelling()
        return task

    def start_self_tracked(self, coroutine: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
        """Like `start_soon`, for engine coroutines that never raise (but may be cancelled) and call
        `forget_current_task()` when they end: no done-callback, so one loop callback less per task."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self.child_tasks.add(task)
        if self._task_started_while_cancelling is not None:
            self._note_task_started_while_cancelling()
        return task

    def _note_task_started_while_cancelling(self) -> None:
        signal = self._task_started_while_cancelling
        if signal is not None and not signal.done():
            signal.set_result(None)

    def forget_current_task(self) -> None:
        """Stop tracking the running task (the last step of a coroutine started with `start_self_tracked`)."""
        self.child_tasks.discard(asyncio.current_task())  # type: ignore[arg-type,unused-ignore]

    def _on_child_task_done(self, task: asyncio.Task[Any]) -> None:
        self.child_tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and isinstance(error, Exception):
            self.log_error_once(error, "AN ERROR OCCURRED IN AN ASYNC BACKGROUND TASK")

    def log_error_once(self, error: BaseException, message: str, *, fake_log: bool = False) -> None:
        """Log `error` at the error level the first time only (later times at DEBUG); `fake_log` only marks it."""
        if getattr(error, _ALREADY_LOGGED_ATTR, False) or fake_log:
            level = logging.DEBUG
        else:
            level = self.log_level_for_errors
        try:
            setattr(error, _ALREADY_LOGGED_ATTR, True)
        except AttributeError:  # exceptions with __slots__
            pass
        if self.logger.isEnabledFor(level):
            self.logger.log(level, message, exc_info=error)

    async def agather(self, *awaitables: Awaitable[Any], return_exceptions: bool = True) -> list[Any]:
        """`asyncio.gather` that returns exceptions by default (nothing is lost, nothing is raised)."""
        return await asyncio.gather(*awaitables, return_exceptions=return_exceptions)

    async def aflush_tasks(self) -> None:
        """Wait until every background task, including the ones started while waiting, is done.

        When the waiting task is cancelled, the background tasks are cancelled too (`acancel_tasks`), and the
        `CancelledError` goes on once they all ended: cancelling the owner of a context stops its work promptly.
        """
        while self.child_tasks:
            tasks = list(self.child_tasks)
            try:
                await asyncio.wait(tasks)
            except asyncio.CancelledError:
                await self.acancel_tasks()
                raise
            for task in tasks:
                if not task.cancelled():
                    task.exception()  # seen here (as gathering would), so asyncio never reports it unretrieved
            # a self-tracked task cancelled before it ever ran could not remove itself
            self.child_tasks.difference_update(task for task in tasks if task.done())

    async def acancel_tasks(self) -> None:
        """Cancel every background task of this context and wait until all have ended, the tasks they start while
        ending included; a cancellation of the waiting task meanwhile does not stop it (it is cancelling already).

        Leaving the context does this when the task that owns it was cancelled (in the body or while leaving).
        """
        loop = asyncio.get_running_loop()
        cancelled: set[asyncio.Task[Any]] = set()
        try:
            while True:
                self._task_started_while_cancelling = signal = loop.create_future()
                try:
                    # Tasks made just now run their first step before being cancelled: an agent's task cancelled
                    # before its first step would skip the ending of its reply sequence along with its function.
                    await asyncio.sleep(0)
                    pending = [task for task in self.child_tasks if not task.done()]
                    if not pending:
                        break
                    for task in pending:
                        if task not in cancelled:
                            cancelled.add(task)
                            task.cancel()
                    await asyncio.wait([*pending, signal], return_when=asyncio.FIRST_COMPLETED)
                except asyncio.CancelledError:
                    continue  # the owner was cancelled again: go on until every task has ended
        finally:
            self._task_started_while_cancelling = None
        for task in cancelled:
            if not task.cancelled():
                task.exception()
        self.child_tasks.difference_update([task for task in self.child_tasks if task.done()])

    # --- activation ----------------------------------------------------------------------------------------------

    def activate(self: _ContextT) -> _ContextT:
        """Make this the current context of the running code (for servers and notebooks: activate once)."""
        if self._is_active:
            raise ContextReentryError(
                f"This {type(self).__name__} is already active and is not reentrant: "
                f"create a new {type(self).__name__}() for a nested block."
            )
        self._activation_token = _current_context.set(self)
        self._is_active = True
        if self.tune_gc and not self._holds_gc_tuning:
            hold_gc_tuning()
            self._holds_gc_tuning = True
        try:
            self._home_loop = asyncio.get_running_loop()
        except RuntimeError:  # activated by hand outside any loop: wherever it is used, it is at home
            self._home_loop = None
        return self

    def foreign_home_loop(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop | None:
        """The loop this context's work runs on, when that is another running loop than `loop` (else None).

        A stream waited for from another thread's loop registers its waiter on its home loop, thread-safely, and
        the wake-up is handed back the same way (a thread switch per wake-up, for that waiter only).
        """
        home = self._home_loop
        if home is None or home is loop or not home.is_running():
            return None
        return home

    async def afinalize(self) -> None:
        """Wait for every background task, then deactivate the context (it can be activated again later)."""
        try:
            await self.aflush_tasks()
        finally:
            self.deactivate()

    @property
    def is_active(self) -> bool:
        """Whether the context was activated and not deactivated since."""
        return self._is_active

    def deactivate(self) -> None:
        """Stop being the current context without waiting for the background tasks (`afinalize` waits first).

        Safe from any task or context copy: where the activation's token cannot be reset, the parent context is
        made current instead. For an environment that owns a context for a long time (a notebook session).
        """
        token, self._activation_token = self._activation_token, None
        self._is_active = False
        if self._holds_gc_tuning:
            self._holds_gc_tuning = False
            release_gc_tuning()
        if token is None:
            return
        try:
            _current_context.reset(token)
        except ValueError:  # finalized from another task or context copy: restore the parent there
            _current_context.set(self.parent_ctx)

    def make_current_here(self) -> None:
        """Make this active context the current one in the running context copy, which lost it.

        For an environment whose activation outlives the context copy it happened in (a notebook cell that awaited
        loses the context variables it set). It does not count as a new activation.
        """
        if not self._is_active:
            raise NoActiveContextError(
                f"This {type(self).__name__} is not active: activate it (`async with` or `.activate()`) first."
            )
        _current_context.set(self)

    async def __aenter__(self: _ContextT) -> _ContextT:
        return self.activate()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        exc_traceback: TracebackType | None,
    ) -> None:
        if isinstance(exc_value, asyncio.CancelledError):  # the owner was cancelled: its work is cancelled too
            try:
                await self.acancel_tasks()
            except BaseException:
                self.deactivate()
                raise
        await self.afinalize()

    def __enter__(self) -> None:
        name = type(self).__name__
        raise SyncContextManagerError(f"Use `async with {name}()` instead of `with {name}()`.")

    def __exit__(self, *exc_info: object) -> None:  # pragma: no cover - __enter__ always raises
        return None

    async def arun(self, awaitable: Awaitable[_T]) -> _T:
        """Activate the context, await `awaitable`, wait for all background tasks, deactivate."""
        async with self:
            return await awaitable

    def run(self, awaitable: Awaitable[_T]) -> _T:
        """Blocking facade for scripts: run `awaitable` in a fresh event loop inside this context."""
        if not _loop_is_running():
            return asyncio.run(self.arun(awaitable))
        runner = current_blocking_runner()
        if runner is not None:
            with loop_blocked(asyncio.get_running_loop()):  # a wait for a stream of this loop fails at once
                return runner(self.arun(awaitable))  # type: ignore[no-any-return]
        if inspect.iscoroutine(awaitable):
            awaitable.close()  # it will never run: close it so Python does not warn that it was never awaited
        name = type(self).__name__
        raise RunningEventLoopError(
            f"`{name}().run(...)` cannot block inside a running event loop: "
            f"use `await {name}().arun(...)` or `async with {name}():` instead."
        )
