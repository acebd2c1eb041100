"""`Promise`: a value computed once, in the background if asked, and handed to any number of awaiters."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

from miniagents_nb.errors import FunctionNotProvidedError, InvalidArgumentsError, PromiseNotReadyError
from miniagents_nb.promising.context import PromisingContext
from miniagents_nb.promising.sentinels import NO_VALUE, Sentinel

__all__ = ["Promise", "PromiseResolver"]

T_co = TypeVar("T_co", covariant=True)

PromiseResolver = Callable[[Any], Awaitable[Any]]
"""`async def resolver(promise) -> value`."""


class Promise(Generic[T_co]):
    """A value (or failure) produced once by `resolver(promise)` and cached forever.

    Resolution always runs in a task of its own, so cancelling one awaiter never cancels (or poisons) the
    resolution that other awaiters are waiting for.
    """

    __slots__ = ("__weakref__", "_ctx", "_error", "_resolve_task", "_resolver_fn", "_result")

    def __init__(
        self,
        *,
        start_soon: bool | Sentinel = NO_VALUE,
        resolver: PromiseResolver | None = None,
        prefill_result: Any = NO_VALUE,
    ) -> None:
        if resolver is not None and prefill_result is not NO_VALUE:
            raise InvalidArgumentsError(
                "Cannot provide both 'resolver' and 'prefill_result' parameters: pass one of them."
            )
        self._ctx = PromisingContext.get_current()
        self._resolver_fn = resolver
        self._result: Any = NO_VALUE
        self._error: BaseException | None = None
        self._resolve_task: asyncio.Task[None] | None = None
        if prefill_result is not NO_VALUE:
            self._set_result(prefill_result)
        elif self._ctx.start_everything_soon_by_default if start_soon is NO_VALUE else start_soon:
            self._start_soon()

    def _start_soon(self) -> None:
        """Begin producing in the background (called at construction when `start_soon` is on)."""
        self._resolve_task = self._ctx.start_soon(self._aresolve_once())

    @property
    def is_resolved(self) -> bool:
        """Whether the value (or the failure) is known already."""
        return self._result is not NO_VALUE or self._error is not None

    def result_now(self) -> T_co:
        """The value, without waiting: raises the cached failure, or `PromiseNotReadyError` if it is not known yet.

        For observers (views, recorders) that look at a promise from outside the task that produces it.
        """
        if self._error is not None:
            raise self._error
        if self._result is NO_VALUE:
            raise PromiseNotReadyError(
                f"This {type(self).__name__} is not resolved yet: await it, or check `is_resolved` first."
            )
        return self._result  # type: ignore[no-any-return]

    def error_now(self) -> BaseException | None:
        """The cached failure, or None (also while nothing is known yet: check `is_resolved`)."""
        return self._error

    def _set_result(self, result: Any) -> None:
        self._result = result
        if self._ctx.has_resolution_work():
            self._ctx.notify_promise_resolved(self, result)

    def _set_error(self, error: BaseException) -> None:
        self._error = error
        if self._ctx.has_resolution_work():
            self._ctx.notify_promise_resolved(self, error)

    async def _aresolver(self) -> Any:
        """Compute the value; subclasses override this, or pass `resolver=` to the constructor."""
        if self._resolver_fn is None:
            raise FunctionNotProvidedError(
                f"{type(self).__name__} has nothing to resolve with: pass `resolver=` or override `_aresolver`."
            )
        return await self._resolver_fn(self)

    async def _aresolve_once(self) -> None:
        try:
            result = await self._aresolver()
        except BaseException as error:  # every outcome is cached, interrupts included: consumers see it raised
            if self._result is NO_VALUE and self._error is None:
                self._set_error(error)
            if isinstance(error, asyncio.CancelledError):
                raise
        else:
            if self._result is NO_VALUE and self._error is None:
                self._set_result(result)

    async def aresolve(self) -> T_co:
        """Wait for the value and return it (the same object every time), or raise the cached failure."""
        if self._result is NO_VALUE and self._error is None:
            task = self._resolve_task
            if task is None:
                task = self._resolve_task = self._ctx.start_soon(self._aresolve_once())
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if self._result is NO_VALUE and self._error is None:
                    raise  # this awaiter was cancelled; the resolution goes on for the others
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[no-any-return]

    def __await__(self) -> Generator[Any, None, T_co]:
        result = self._result
        if result is not NO_VALUE:  # known already (most messages are): no coroutine to run
            return result  # type: ignore[no-any-return]
        return (yield from self.aresolve().__await__())
