"""The promise engine: sentinels, Promise, StreamedPromise, StreamAppender, PromisingContext.

Ordering is checked with explicit events (`asyncio.Event`, `support.Recorded`), never with timed sleeps; counting
task switches (`support.switches`) only shows that something has not happened, or that a start is deferred to the
next task switch.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from support import Recorded, fresh, switches

import miniagents_nb
import miniagents_nb.errors as errors_module
import miniagents_nb.promising as promising_module
import miniagents_nb.promising.errors as promising_errors_module
from miniagents_nb.errors import (
    AppenderClosedError,
    AppenderNotOpenError,
    ContextReentryError,
    FunctionNotProvidedError,
    InvalidArgumentsError,
    MiniAgentsError,
    NoActiveContextError,
    PromisingContextError,
    PromisingError,
    SyncContextManagerError,
)
from miniagents_nb.promising import Promise, PromisingContext, StreamAppender, StreamedPromise
from miniagents_nb.promising.sentinels import (
    AWAIT,
    CLEAR,
    END_OF_QUEUE,
    END_OF_UNORDERED_QUEUE,
    FAILED,
    NO_VALUE,
    Sentinel,
)

# ----------------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------------

_MAX_PIECES = 1000


async def collect(async_iterable: Any) -> list[Any]:
    """Iterate to the end; exceptions raised at a position are recorded as pieces and iteration continues."""
    out: list[Any] = []
    iterator = async_iterable.__aiter__()
    for _ in range(_MAX_PIECES):
        try:
            out.append(await iterator.__anext__())
        except StopAsyncIteration:
            return out
        except BaseException as exc:  # a piece may be any exception, KeyboardInterrupt included
            out.append(exc)
    raise AssertionError(f"the stream never ended: {out[:20]!r}...")


class ScriptedAsyncIterator:
    """An async iterator that raises the exceptions in its script at their positions and then goes on."""

    def __init__(self, script: list[Any]) -> None:
        self._script = list(script)
        self.anext_calls = 0

    def __aiter__(self) -> ScriptedAsyncIterator:
        return self

    async def __anext__(self) -> Any:
        self.anext_calls += 1
        if not self._script:
            raise StopAsyncIteration
        item = self._script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


# ----------------------------------------------------------------------------------------------------------------------
# sentinels and error tree
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sentinel", [NO_VALUE, FAILED, END_OF_QUEUE, END_OF_UNORDERED_QUEUE])
def test_sentinel_in_boolean_context_raises(sentinel: Sentinel) -> None:
    assert isinstance(sentinel, Sentinel)
    with pytest.raises(RuntimeError, match="boolean expression"):
        bool(sentinel)
    with pytest.raises(RuntimeError, match="boolean expression"):
        _ = "truthy" if sentinel else "falsy"


def test_sentinels_are_distinct_singletons_shared_by_every_import_path() -> None:
    sentinels = [NO_VALUE, FAILED, END_OF_QUEUE, END_OF_UNORDERED_QUEUE]
    assert len({id(s) for s in sentinels}) == 4
    assert miniagents_nb.NO_VALUE is NO_VALUE
    assert promising_module.sentinels.NO_VALUE is NO_VALUE
    assert NO_VALUE is not None
    assert NO_VALUE != FAILED


def test_await_and_clear_are_plain_strings() -> None:
    assert AWAIT == "AWAIT"
    assert CLEAR == "CLEAR"
    assert type(AWAIT) is str
    assert type(CLEAR) is str


def test_error_tree_shape_and_both_import_paths() -> None:
    assert issubclass(PromisingError, MiniAgentsError)
    assert issubclass(FunctionNotProvidedError, PromisingError)
    assert issubclass(AppenderNotOpenError, PromisingError)
    assert issubclass(AppenderClosedError, PromisingError)
    assert issubclass(PromisingContextError, PromisingError)
    assert issubclass(PromisingContextError, RuntimeError)
    for cls in (NoActiveContextError, ContextReentryError, SyncContextManagerError):
        assert issubclass(cls, PromisingContextError)
        assert issubclass(cls, RuntimeError)
    assert issubclass(InvalidArgumentsError, MiniAgentsError)
    assert issubclass(InvalidArgumentsError, ValueError)
    assert issubclass(MiniAgentsError, Exception)
    for name in ("PromisingError", "NoActiveContextError", "AppenderClosedError", "InvalidArgumentsError"):
        assert getattr(promising_errors_module, name) is getattr(errors_module, name)
    assert miniagents_nb.MiniAgentsError is MiniAgentsError


def test_promising_errors_module_holds_the_whole_tree_including_the_root() -> None:
    # docs/design-decisions.md: `miniagents_nb.promising.errors` and `miniagents_nb.errors`: the error tree
    assert promising_errors_module.MiniAgentsError is MiniAgentsError


def test_public_promise_names_are_the_same_objects_everywhere() -> None:
    assert miniagents_nb.PromisingContext is PromisingContext
    assert miniagents_nb.Promise is Promise
    assert miniagents_nb.StreamedPromise is StreamedPromise
    assert miniagents_nb.StreamAppender is StreamAppender


# ----------------------------------------------------------------------------------------------------------------------
# Promise
# ----------------------------------------------------------------------------------------------------------------------


async def test_resolver_receives_the_promise_itself() -> None:
    received: list[Any] = []

    async def resolver(promise: Promise[Any]) -> str:
        received.append(promise)
        return "result"

    async with PromisingContext():
        promise: Promise[Any] = Promise(resolver=resolver, start_soon=False)
        assert await promise == "result"
    assert len(received) == 1
    assert received[0] is promise


async def test_resolves_once_and_every_await_gets_the_same_object() -> None:
    calls = 0
    release = asyncio.Event()

    async def resolver(_promise: Promise[Any]) -> list[str]:
        nonlocal calls
        calls += 1
        await release.wait()
        return ["the", "result"]

    async def consumer(promise: Promise[Any]) -> Any:
        return await promise

    async with PromisingContext():
        promise: Promise[Any] = Promise(resolver=resolver, start_soon=False)
        tasks = [asyncio.create_task(consumer(promise)) for _ in range(5)]
        await switches(5)
        assert calls == 1
        assert not any(t.done() for t in tasks)
        release.set()
        results = await asyncio.gather(*tasks)
        later = await promise
        again = await promise.aresolve()
    assert calls == 1
    assert results[0] == ["the", "result"]
    assert all(r is results[0] for r in results)
    assert later is results[0]
    assert again is results[0]


async def test_failure_is_cached_and_the_same_exception_instance_is_reraised() -> None:
    calls = 0

    async def resolver(_promise: Promise[Any]) -> Any:
        nonlocal calls
        calls += 1
        raise ValueError("resolver failed")

    async with PromisingContext():
        promise: Promise[Any] = Promise(resolver=resolver, start_soon=False)
        with pytest.raises(ValueError, match="resolver failed") as first:
            await promise
        with pytest.raises(ValueError, match="resolver failed") as second:
            await promise
    assert first.value is second.value
    assert calls == 1


async def test_failure_in_a_start_soon_promise_is_cached_too() -> None:
    calls: Recorded[str] = Recorded()

    async def resolver(_promise: Promise[Any]) -> Any:
        calls.append("resolver")
        raise KeyError("background failure")

    async with PromisingContext():
        promise: Promise[Any] = Promise(resolver=resolver, start_soon=True)
        await calls.until(lambda calls: calls == ["resolver"])
        with pytest.raises(KeyError) as first:
            await promise
        with pytest.raises(KeyError) as second:
            await promise
    assert first.value is second.value
    assert calls == ["resolver"]


async def test_prefill_result_is_returned_as_is() -> None:
    value = {"some": ["mutable", "value"]}
    async with PromisingContext():
        promise: Promise[Any] = Promise(prefill_result=value)
        assert await promise is value
        assert await promise is value


async def test_prefill_result_none_is_a_valid_result() -> None:
    async with PromisingContext():
        promise: Promise[object] = Promise(prefill_result=None)
        assert await promise is None


async def test_resolver_and_prefill_result_together_are_rejected() -> None:
    async def resolver(_promise: Promise[Any]) -> int:
        return 1  # pragma: no cover

    async with PromisingContext():
        with pytest.raises(InvalidArgumentsError, match="prefill_result") as exc_info:
            Promise(resolver=resolver, prefill_result=2)
    assert isinstance(exc_info.value, ValueError)
    assert isinstance(exc_info.value, MiniAgentsError)
    assert "resolver" in str(exc_info.value)


async def test_promise_without_resolver_raises_function_not_provided_on_await() -> None:
    async with PromisingContext():
        promise: Promise[Any] = Promise(start_soon=False)
        with pytest.raises(FunctionNotProvidedError):
            await promise


async def test_resolver_can_be_provided_by_overriding_aresolver() -> None:
    class FortyTwo(Promise[int]):
        async def _aresolver(self) -> int:
            return 42

    async with PromisingContext():
        assert await FortyTwo(start_soon=False) == 42


async def test_promise_outside_any_context_raises_a_helpful_error() -> None:
    async def resolver(_promise: Promise[Any]) -> int:
        return 1  # pragma: no cover

    with pytest.raises(NoActiveContextError, match="currently active") as exc_info:
        Promise(resolver=resolver)
    assert "async with" in str(exc_info.value)
    assert isinstance(exc_info.value, RuntimeError)
    assert isinstance(exc_info.value, MiniAgentsError)


async def test_get_current_outside_any_context_raises() -> None:
    with pytest.raises(NoActiveContextError, match="currently active"):
        PromisingContext.get_current()


# ----------------------------------------------------------------------------------------------------------------------
# start_soon
# ----------------------------------------------------------------------------------------------------------------------


def test_context_starts_everything_soon_by_default() -> None:
    assert PromisingContext().start_everything_soon_by_default is True
    assert PromisingContext(start_everything_soon_by_default=False).start_everything_soon_by_default is False


async def test_start_soon_true_starts_the_resolver_at_the_next_task_switch() -> None:
    events: list[str] = []

    async def resolver(_promise: Promise[Any]) -> str:
        events.append("resolver")
        return "done"

    async with PromisingContext():
        promise: Promise[Any] = Promise(resolver=resolver)  # the context default (True)
        events.append("created")
        assert events == ["created"]  # nothing ran synchronously
        await asyncio.sleep(0)
        events.append("after first switch")
        assert events == ["created", "resolver", "after first switch"]
        assert await promise == "done"
    assert events == ["created", "resolver", "after first switch"]


async def test_start_soon_false_starts_only_when_awaited() -> None:
    events: list[str] = []

    async def resolver(_promise: Promise[Any]) -> str:
        events.append("resolver")
        return "done"

    async with PromisingContext():
        promise: Promise[Any] = Promise(resolver=resolver, start_soon=False)
        await switches(10)
        assert events == []
        events.append("awaiting")
        assert await promise == "done"
    assert events == ["awaiting", "resolver"]


async def test_context_default_false_and_per_promise_override() -> None:
    events: list[str] = []

    def make_resolver(name: str) -> Any:
        async def resolver(_promise: Promise[Any]) -> str:
            events.append(name)
            return name

        return resolver

    async with PromisingContext(start_everything_soon_by_default=False):
        lazy: Promise[Any] = Promise(resolver=make_resolver("lazy"))
        eager: Promise[Any] = Promise(resolver=make_resolver("eager"), start_soon=True)
        await asyncio.sleep(0)
        assert events == ["eager"]
        await switches(10)
        assert events == ["eager"]
        assert await lazy == "lazy"
        assert await eager == "eager"
    assert events == ["eager", "lazy"]


async def test_lazy_promise_that_nobody_awaits_never_runs() -> None:
    events: list[str] = []

    async def resolver(_promise: Promise[Any]) -> str:
        events.append("resolver")  # pragma: no cover
        return "never"  # pragma: no cover

    async with PromisingContext():
        Promise(resolver=resolver, start_soon=False)
    assert events == []


async def test_streamed_promise_start_soon_true_starts_the_streamer_at_the_next_switch() -> None:
    events: Recorded[str] = Recorded()

    async def streamer(_promise: StreamedPromise[Any, Any]) -> AsyncIterator[str]:
        events.append("streamer started")
        yield "piece"

    async with PromisingContext(start_everything_soon_by_default=False):
        eager: StreamedPromise[Any, Any] = StreamedPromise(streamer=streamer, start_soon=True)
        events.append("created")
        await events.until(lambda events: "streamer started" in events)
        assert events == ["created", "streamer started"]
        assert await collect(eager) == ["piece"]


async def test_streamed_promise_start_soon_false_starts_on_first_iteration() -> None:
    events: list[str] = []

    async def streamer(_promise: StreamedPromise[Any, Any]) -> AsyncIterator[str]:
        events.append("streamer started")
        yield "piece"

    async with PromisingContext():
        lazy: StreamedPromise[Any, Any] = StreamedPromise(streamer=streamer, start_soon=False)
        await switches(10)
        assert events == []
        events.append("iterating")
        assert await collect(lazy) == ["piece"]
    assert events == ["iterating", "streamer started"]


# ----------------------------------------------------------------------------------------------------------------------
# StreamedPromise
# ----------------------------------------------------------------------------------------------------------------------


async def test_streamer_receives_the_streamed_promise_itself() -> None:
    received: list[Any] = []

    async def streamer(promise: StreamedPromise[Any, Any]) -> AsyncIterator[int]:
        received.append(promise)
        yield 1

    async with PromisingContext():
        streamed: StreamedPromise[Any, Any] = StreamedPromise(streamer=streamer, start_soon=False)
        assert await collect(streamed) == [1]
    assert len(received) == 1
    assert received[0] is streamed


@pytest.mark.parametrize("start_soon", [False, True])
async def test_replay_many_consumers_same_piece_objects_producer_runs_once(start_soon: bool) -> None:
    pieces = [fresh("alpha"), ["a", "mutable", "piece"], fresh("omega")]
    streamer_calls = 0
    produced: list[int] = []

    async def streamer(_promise: StreamedPromise[Any, Any]) -> AsyncIterator[Any]:
        nonlocal streamer_calls
        streamer_calls += 1
        for i, piece in enumerate(pieces):
            produced.append(i)
            yield piece

    async with PromisingContext():
        streamed: StreamedPromise[Any, Any] = StreamedPromise(streamer=streamer, start_soon=start_soon)
        first = await collect(streamed)
        second = await collect(streamed)
        concurrent = await asyncio.gather(*(collect(streamed) for _ in range(3)))
        whole = await streamed
        whole_again = await streamed
    assert streamer_calls == 1
    assert produced == [0, 1, 2]
    for run in (first, second, *concurrent):
        assert len(run) == 3
        assert all(got is expected for got, expected in zip(run, pieces, strict=True))
    assert isinstance(whole, tuple)
    assert len(whole) == 3
    assert all(got is expected for got, expected in zip(whole, pieces, strict=True))
    assert whole_again is whole


async def test_concurrent_consumers_interleave_with_the_producer() -> None:
    gates = [asyncio.Event() for _ in range(3)]
    pieces = [fresh(f"piece-{i}") for i in range(3)]
    produced: list[int] = []

    async def streamer(_promise: StreamedPromise[Any, Any]) -> AsyncIterator[str]:
        for i, piece in enumerate(pieces):
            await gates[i].wait()
            produced.append(i)
            yield piece

    got_a: Recorded[str] = Recorded()
    got_b: Recorded[str] = Recorded()

    async def consume(streamed: StreamedPromise[Any, Any], sink: list[str]) -> None:
        async for piece in streamed:
            sink.append(piece)

    async with PromisingContext():
        streamed: StreamedPromise[Any, Any] = StreamedPromise(streamer=streamer, start_soon=False)
        task_a = asyncio.create_task(consume(streamed, got_a))
        task_b = asyncio.create_task(consume(streamed, got_b))
        await switches(10)
        assert got_a == []
        assert got_b == []
        for i in range(3):
            gates[i].set()
            await got_a.until(lambda got: len(got) == i + 1)  # noqa: B023 - awaited at once
            await got_b.until(lambda got: len(got) == i + 1)  # noqa: B023
            assert produced == list(range(i + 1))
            # the next piece is not there yet: both consumers are parked
            await switches(5)
            assert len(got_a) == i + 1
            assert len(got_b) == i + 1
        await asyncio.gather(task_a, task_b)
        late = await collect(streamed)
    assert produced == [0, 1, 2]
    for run in (got_a, got_b, late):
        assert all(got is expected for got, expected in zip(run, pieces, strict=True))
        assert len(run) == 3


async def test_a_late_consumer_replays_from_the_start_and_then_follows_live() -> None:
    gate = asyncio.Event()

    async def streamer(_promise: StreamedPromise[Any, Any]) -> AsyncIterator[str]:
        yield "early"
        await gate.wait()
        yield "late"

    early_consumer: Recorded[str] = Recorded()
    late_consumer: Recorded[str] = Recorded()

    async def consume(streamed: StreamedPromise[Any, Any], sink: list[str]) -> None:
        async for piece in streamed:
            sink.append(piece)

    async with PromisingContext():
        streamed: StreamedPromise[Any, Any] = StreamedPromise(streamer=streamer, start_soon=False)
        first = asyncio.create_task(consume(streamed, early_consumer))
        await early_consumer.until(lambda got: got == ["early"])
        second = asyncio.create_task(consume(streamed, late_consumer))
        await late_consumer.until(lambda got: got == ["early"])
        gate.set()
        await asyncio.gather(first, second)
    assert early_consumer == ["early", "late"]
    assert late_consumer == ["early", "late"]


@pytest.mark.parametrize("start_soon", [False, True])
async def test_streamer_exceptions_are_pieces_and_iteration_continues_past_them(start_soon: bool) -> None:
    error = ValueError("boom")
    scripted = ScriptedAsyncIterator(["p1", "f1", error, "p2"])

    async with PromisingContext():
        streamed: StreamedPromise[Any, Any] = StreamedPromise(streamer=lambda _promise: scripted, start_soon=start_soon)
        first = await collect(streamed)
        second = await collect(streamed)
    assert first == ["p1", "f1", error, "p2"]
    assert first[2] is error
    assert second[2] is error
    assert second == first
    # the underlying iterator was driven exactly once per piece, plus the final StopAsyncIteration
    assert scripted.anext_calls == 5


async def test_exception_pieces_from_an_appender_are_raised_in_place_and_iteration_continues() -> None:
    error = ValueError("in the middle")
    async with PromisingContext():
        appender: StreamAppender[Any] = StreamAppender()
        with appender:
            appender.append("p1")
            appender.append(error)
            appender.append("p2")
        streamed: StreamedPromise[Any, Any] = StreamedPromise(streamer=appender, start_soon=False)
        pieces = await collect(streamed)
        replay = await collect(streamed)
        with pytest.raises(ValueError, match="in the middle") as exc_info:
            await streamed
    assert pieces == ["p1", error, "p2"]
    assert pieces[1] is error
    assert replay[1] is error
    assert exc_info.value is error


async def test_an_async_generator_that_raises_ends_the_stream_after_the_exception() -> None:
    error = RuntimeError("generator failed")

    async def streamer(_promise: StreamedPromise[Any, Any]) -> AsyncIterator[str]:
        yield "before"
        raise error

    async with PromisingContext():
        streamed: StreamedPromise[Any, Any] = StreamedPromise(streamer=streamer, start_soon=False)
        pieces = await collect(streamed)
        with pytest.raises(RuntimeError) as exc_info:
            await streamed  # the default resolver collects the pieces, so it fails on the exception
    assert pieces == ["before", error]
    assert pieces[1] is error
    assert exc_info.value is error


async def test_stop_async_iteration_forever_after_the_end() -> None:
    async def streamer(_promise: StreamedPromise[Any, Any]) -> AsyncIterator[str]:
        yield "only"

    async with PromisingContext():
        streamed: StreamedPromise[Any, Any] = StreamedPromise(streamer=streamer, start_soon=False)
        iterator = streamed.__aiter__()
        assert await iterator.__anext__() == "only"
        for _ in range(3):
            with pytest.raises(StopAsyncIteration):
                await iterator.__anext__()
        other = streamed.__aiter__()
        assert await other.__anext__() == "only"
        for _ in range(3):
            with pytest.raises(StopAsyncIteration):
                await other.__anext__()


@pytest.mark.parametrize("start_soon", [False, True])
async def test_streamer_returning_a_non_async_iterator_raises_once_then_stops(start_soon: bool) -> None:
    async with PromisingContext():

        def not_async(_promise: Any) -> Any:
            return [1, 2, 3]  # deliberately a plain list, not an async iterator

        streamed: StreamedPromise[Any, Any] = StreamedPromise(streamer=not_async, start_soon=start_soon)
        iterator = streamed.__aiter__()
        with pytest.raises((TypeError, AttributeError)):
            await iterator.__anext__()
        for _ in range(3):
            with pytest.raises(StopAsyncIteration):
                await iterator.__anext__()
        replay = await collect(streamed)
    assert len(replay) == 1
    assert isinstance(replay[0], (TypeError, AttributeError))


async def test_await_uses_the_default_resolver_tuple_of_pieces() -> None:
    async def streamer(_promise: StreamedPromise[Any, Any]) -> AsyncIterator[str]:
        yield "a"
        yield "b"

    async with PromisingContext():
        streamed: StreamedPromise[Any, Any] = StreamedPromise(streamer=streamer, start_soon=False)
        whole = await streamed
        assert await streamed is whole
    assert whole == ("a", "b")
    assert type(whole) is tuple


async def test_await_uses_a_custom_resolver_which_receives_the_promise() -> None:
    received: list[Any] = []

    async def streamer(_promise: StreamedPromise[Any, Any]) -> AsyncIterator[str]:
        yield "Hel"
        yield "lo"

    async def resolver(promise: StreamedPromise[Any, Any]) -> str:
        received.append(promise)
        return "".join([piece async for piece in promise])

    async with PromisingContext():
        streamed: StreamedPromise[Any, Any] = StreamedPromise(streamer=streamer, resolver=resolver, start_soon=False)
        assert await streamed == "Hello"
        assert await collect(streamed) == ["Hel", "lo"]
    assert received == [streamed]


async def test_a_broken_resolver_only_breaks_await_not_iteration() -> None:
    async def streamer(_promise: StreamedPromise[Any, Any]) -> AsyncIterator[str]:
        yield "x"

    async def resolver(_promise: StreamedPromise[Any, Any]) -> str:
        raise LookupError("bad resolver")

    async with PromisingContext():
        streamed: StreamedPromise[Any, Any] = StreamedPromise(streamer=streamer, resolver=resolver, start_soon=False)
        assert await collect(streamed) == ["x"]
        with pytest.raises(LookupError, match="bad resolver"):
            await streamed


async def test_prefill_pieces() -> None:
    first, second = fresh("first"), fresh("second")
    async with PromisingContext():
        streamed: StreamedPromise[Any, Any] = StreamedPromise(prefill_pieces=[first, second])
        pieces = await collect(streamed)
        again = await collect(streamed)
        whole = await streamed
    assert pieces == ["first", "second"]
    assert pieces[0] is first
    assert again[1] is second
    assert whole == ("first", "second")


async def test_streamer_and_prefill_pieces_together_are_rejected() -> None:
    async def streamer(_promise: StreamedPromise[Any, Any]) -> AsyncIterator[str]:
        yield "x"  # pragma: no cover

    async with PromisingContext():
        with pytest.raises(InvalidArgumentsError, match="prefill_pieces") as exc_info:
            StreamedPromise(streamer=streamer, prefill_pieces=["y"])
    assert isinstance(exc_info.value, ValueError)


async def test_a_streamed_promise_can_be_the_streamer_of_another() -> None:
    pieces = [fresh("one"), fresh("two")]
    calls = 0

    async def streamer(_promise: StreamedPromise[Any, Any]) -> AsyncIterator[str]:
        nonlocal calls
        calls += 1
        for piece in pieces:
            yield piece

    async with PromisingContext():
        source: StreamedPromise[Any, Any] = StreamedPromise(streamer=streamer, start_soon=False)
        iterator = source("ignored", keyword="ignored")  # __call__ == __aiter__
        assert hasattr(iterator, "__anext__")
        derived: StreamedPromise[Any, Any] = StreamedPromise(streamer=source, start_soon=False)
        derived_pieces = await collect(derived)
        source_pieces = await collect(source)
        called_pieces = await collect(iterator)
    assert calls == 1
    for run in (derived_pieces, source_pieces, called_pieces):
        assert len(run) == 2
        assert all(got is expected for got, expected in zip(run, pieces, strict=True))


# ----------------------------------------------------------------------------------------------------------------------
# StreamAppender
# ----------------------------------------------------------------------------------------------------------------------


async def test_appender_lifecycle_and_errors() -> None:
    async with PromisingContext():
        appender: StreamAppender[int] = StreamAppender()
        assert not appender.was_open
        assert not appender.is_open
        with pytest.raises(AppenderNotOpenError):
            appender.append(0)
        with appender as entered:
            assert entered is appender
            assert appender.is_open
            assert appender.was_open
            assert appender.append(1) is appender
            appender.append(2)
        assert appender.was_open
        assert not appender.is_open
        with pytest.raises(AppenderClosedError):
            appender.append(3)
        with pytest.raises(AppenderClosedError):
            appender.open()
        assert await collect(appender) == [1, 2]


async def test_appender_open_and_close_explicitly() -> None:
    async with PromisingContext():
        appender: StreamAppender[str] = StreamAppender()
        assert appender.open() is appender
        appender.append("x")
        appender.close()
        assert not appender.is_open
        assert await collect(appender) == ["x"]


async def test_appender_without_capture_errors_propagates_the_exception() -> None:
    async with PromisingContext():
        appender: StreamAppender[str] = StreamAppender()

        def produce() -> None:
            with appender:
                appender.append("before")
                raise ValueError("not captured")

        with pytest.raises(ValueError, match="not captured"):
            produce()
        assert not appender.is_open
        assert await collect(appender) == ["before"]


@pytest.mark.parametrize(
    "make_error",
    [lambda: ValueError("captured"), KeyboardInterrupt, asyncio.CancelledError],
    ids=["ValueError", "KeyboardInterrupt", "CancelledError"],
)
async def test_capture_errors_appends_the_exception_as_a_piece_and_suppresses_it(
    make_error: Callable[[], BaseException],
) -> None:
    error = make_error()

    async with PromisingContext():
        appender: StreamAppender[str] = StreamAppender(capture_errors=True)

        def produce() -> str:
            with appender:
                appender.append("before")
                raise error
            return "suppressed"  # reached only because the appender suppressed the exception

        assert produce() == "suppressed"
        assert not appender.is_open
        streamed: StreamedPromise[Any, Any] = StreamedPromise(streamer=appender, start_soon=False)
        pieces = await collect(streamed)
        replay = await collect(streamed)
    assert pieces == ["before", error]
    assert pieces[1] is error
    assert replay[1] is error


async def test_capture_errors_default_comes_from_the_context() -> None:
    error = ValueError("from the context default")
    async with PromisingContext(appenders_capture_errors_by_default=True):
        appender: StreamAppender[str] = StreamAppender()
        with appender:
            raise error
        assert await collect(StreamedPromise(streamer=appender, start_soon=False)) == [error]


async def test_appender_closed_error_is_never_suppressed() -> None:
    async with PromisingContext():
        closed: StreamAppender[int] = StreamAppender()
        with closed:
            pass
        capturing: StreamAppender[int] = StreamAppender(capture_errors=True)

        def produce() -> None:
            with capturing:
                capturing.append(1)
                closed.append(2)

        with pytest.raises(AppenderClosedError):
            produce()
        assert not capturing.is_open


async def test_async_with_on_a_stream_appender_is_an_error() -> None:
    async with PromisingContext():
        appender: StreamAppender[int] = StreamAppender()
        with pytest.raises(SyncContextManagerError, match="async with") as exc_info:
            async with appender:
                pass  # pragma: no cover
    assert isinstance(exc_info.value, RuntimeError)
    assert isinstance(exc_info.value, MiniAgentsError)


async def test_streamed_promise_fed_by_an_appender_replays_and_follows_live() -> None:
    first, second = fresh("first"), fresh("second")
    live: Recorded[str] = Recorded()

    async def consume(streamed: StreamedPromise[Any, Any]) -> None:
        async for piece in streamed:
            live.append(piece)

    async with PromisingContext():
        appender: StreamAppender[str] = StreamAppender()
        appender.open()
        streamed: StreamedPromise[Any, Any] = StreamedPromise(streamer=appender, start_soon=False)
        consumer = asyncio.create_task(consume(streamed))
        await switches(5)
        assert live == []
        appender.append(first)
        await live.until(lambda live: len(live) == 1)
        assert live[0] is first
        appender.append(second)
        appender.close()
        await consumer
        replay = await collect(streamed)
        whole = await streamed
    assert live == ["first", "second"]
    assert replay[0] is first
    assert replay[1] is second
    assert whole == ("first", "second")


# ----------------------------------------------------------------------------------------------------------------------
# cancellation of a consumer never poisons a promise (fix 6)
# ----------------------------------------------------------------------------------------------------------------------


async def test_cancelled_awaiting_consumer_does_not_poison_a_promise() -> None:
    calls = 0
    started = asyncio.Event()
    release = asyncio.Event()
    result = ["real", "result"]

    async def resolver(_promise: Promise[Any]) -> list[str]:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        return result

    async def consumer(promise: Promise[Any]) -> Any:
        return await promise

    async with PromisingContext():
        promise: Promise[Any] = Promise(resolver=resolver, start_soon=False)
        first = asyncio.create_task(consumer(promise))
        await started.wait()  # the resolver runs because the first consumer drives it
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        second = asyncio.create_task(consumer(promise))
        await switches(5)
        assert not second.done()
        release.set()
        assert await second is result
        assert await promise is result
    assert calls == 1


async def test_cancelled_aresolve_task_then_a_later_await_gets_the_real_result() -> None:
    calls = 0
    started = asyncio.Event()
    release = asyncio.Event()

    async def resolver(_promise: Promise[Any]) -> str:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        return "late result"

    async with PromisingContext():
        promise: Promise[Any] = Promise(resolver=resolver, start_soon=False)
        consumer = asyncio.ensure_future(promise.aresolve())
        await started.wait()
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert consumer.cancelled()
        release.set()
        assert await promise == "late result"
        assert await promise.aresolve() == "late result"
    assert calls == 1


async def test_cancelled_iterating_consumer_does_not_poison_a_streamed_promise() -> None:
    starts: Recorded[str] = Recorded()
    gate = asyncio.Event()

    async def streamer(_promise: StreamedPromise[Any, Any]) -> AsyncIterator[str]:
        starts.append("start")
        yield "first"
        starts.append("parked at the gate")
        await gate.wait()
        yield "second"

    got: list[str] = []

    async def consume(streamed: StreamedPromise[Any, Any]) -> None:
        async for piece in streamed:
            got.append(piece)

    async with PromisingContext():
        streamed: StreamedPromise[Any, Any] = StreamedPromise(streamer=streamer, start_soon=False)
        first = asyncio.create_task(consume(streamed))
        await starts.until(lambda starts: "parked at the gate" in starts)  # the consumer drives the streamer there
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        second = asyncio.create_task(collect(streamed))
        await switches(5)
        assert not second.done()
        gate.set()
        pieces = await second
        whole = await streamed
    assert pieces == ["first", "second"]
    assert whole == ("first", "second")
    assert starts == ["start", "parked at the gate"]  # started once, not again for the second consumer


async def test_cancelled_awaiting_consumer_does_not_poison_a_streamed_promise() -> None:
    starts: list[str] = []
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def streamer(_promise: StreamedPromise[Any, Any]) -> AsyncIterator[str]:
        starts.append("start")
        yield "a"
        entered.set()
        await gate.wait()
        yield "b"

    async def consumer(streamed: StreamedPromise[Any, Any]) -> Any:
        return await streamed

    async with PromisingContext():
        streamed: StreamedPromise[Any, Any] = StreamedPromise(streamer=streamer, start_soon=False)
        first = asyncio.create_task(consumer(streamed))
        await entered.wait()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        gate.set()
        assert await streamed == ("a", "b")
        assert await collect(streamed) == ["a", "b"]
    assert starts == ["start"]


# ----------------------------------------------------------------------------------------------------------------------
# PromisingContext
# ----------------------------------------------------------------------------------------------------------------------


async def test_on_promise_resolved_handler_gets_promise_and_result() -> None:
    calls: list[tuple[Any, Any]] = []
    ctx = PromisingContext()

    async def handler(promise: Any, result: Any) -> None:
        calls.append((promise, result))

    returned = ctx.on_promise_resolved(handler)
    assert returned is handler

    async def resolver(_promise: Promise[Any]) -> str:
        return "resolved"

    async with ctx:
        resolved: Promise[Any] = Promise(resolver=resolver, start_soon=False)
        assert await resolved == "resolved"
        prefilled_1: Promise[Any] = Promise(prefill_result="prefilled 1")
        prefilled_2: Promise[Any] = Promise(prefill_result="prefilled 2")
    assert len(calls) == 3
    by_promise = {id(p): r for p, r in calls}
    assert by_promise[id(resolved)] == "resolved"
    assert by_promise[id(prefilled_1)] == "prefilled 1"
    assert by_promise[id(prefilled_2)] == "prefilled 2"


async def test_handlers_given_to_the_constructor_fire() -> None:
    calls: list[Any] = []

    async def handler(_promise: Any, result: Any) -> None:
        calls.append(result)

    async with PromisingContext(on_promise_resolved=handler):
        Promise(prefill_result=1)
    async with PromisingContext(on_promise_resolved=[handler, handler]):
        Promise(prefill_result=2)
    assert sorted(calls) == [1, 2, 2]


def test_non_async_handler_registration_is_rejected() -> None:
    ctx = PromisingContext()

    def sync_handler(_promise: Any, _result: Any) -> None:
        pass  # pragma: no cover

    with pytest.raises(ValueError, match="must be async") as exc_info:
        ctx.on_promise_resolved(sync_handler)  # type: ignore[arg-type]
    assert isinstance(exc_info.value, MiniAgentsError)


async def test_failed_promise_fires_handlers_with_the_exception() -> None:
    calls: list[tuple[Any, Any]] = []

    async def handler(promise: Any, result: Any) -> None:
        calls.append((promise, result))

    async def resolver(_promise: Promise[Any]) -> Any:
        raise ValueError("handler should see me")

    async with PromisingContext(on_promise_resolved=handler):
        promise: Promise[Any] = Promise(resolver=resolver, start_soon=False)
        with pytest.raises(ValueError, match="handler should see me") as exc_info:
            await promise
    assert len(calls) == 1
    assert calls[0][0] is promise
    assert calls[0][1] is exc_info.value


async def test_handlers_of_parent_contexts_fire_for_promises_of_nested_contexts() -> None:
    outer_calls: list[Any] = []
    inner_calls: list[Any] = []

    async def outer_handler(_promise: Any, result: Any) -> None:
        outer_calls.append(result)

    async def inner_handler(_promise: Any, result: Any) -> None:
        inner_calls.append(result)

    outer = PromisingContext(on_promise_resolved=outer_handler)
    async with outer:
        inner = PromisingContext()
        inner.on_promise_resolved(inner_handler)
        async with inner:
            Promise(prefill_result="inner promise")
        Promise(prefill_result="outer promise")
    assert sorted(outer_calls) == ["inner promise", "outer promise"]
    assert inner_calls == ["inner promise"]


async def test_afinalize_waits_for_background_tasks_including_those_spawned_while_flushing() -> None:
    done: list[str] = []

    async with PromisingContext() as ctx:

        async def grandchild() -> None:
            await switches(3)
            done.append("grandchild")

        async def child() -> None:
            await switches(3)
            ctx.start_soon(grandchild())
            done.append("child")

        task = ctx.start_soon(child())
        assert isinstance(task, asyncio.Task)
        assert done == []
    assert done == ["child", "grandchild"]


async def test_afinalize_waits_for_start_soon_promises() -> None:
    done: list[str] = []

    async def resolver(_promise: Promise[Any]) -> None:
        await switches(5)
        done.append("resolved")

    async with PromisingContext():
        Promise(resolver=resolver, start_soon=True)
    assert done == ["resolved"]


async def test_background_errors_do_not_escape_start_soon_by_default() -> None:
    async def failing() -> None:
        raise ValueError("logged, not raised")

    async with PromisingContext() as ctx:
        task = ctx.start_soon(failing())
    assert task.done()


async def test_start_soon_of_a_non_awaitable_is_a_type_error() -> None:
    async with PromisingContext() as ctx:
        with pytest.raises(TypeError, match="awaitable"):
            ctx.start_soon(5)  # type: ignore[arg-type]


async def test_nested_contexts_restore_the_outer_one() -> None:
    outer = PromisingContext()
    async with outer as entered:
        assert entered is outer
        assert PromisingContext.get_current() is outer
        inner = PromisingContext()
        assert inner.parent_ctx is outer
        async with inner:
            assert PromisingContext.get_current() is inner
        assert PromisingContext.get_current() is outer
    with pytest.raises(NoActiveContextError):
        PromisingContext.get_current()


async def test_reentry_is_an_error_and_reactivation_after_afinalize_works() -> None:
    ctx = PromisingContext()
    async with ctx:
        with pytest.raises(ContextReentryError, match="is not reentrant") as exc_info:
            ctx.activate()
        assert isinstance(exc_info.value, RuntimeError)
        with pytest.raises(ContextReentryError, match="is not reentrant"):
            async with ctx:
                pass  # pragma: no cover
        assert PromisingContext.get_current() is ctx
    with pytest.raises(NoActiveContextError):
        PromisingContext.get_current()
    async with ctx:
        assert PromisingContext.get_current() is ctx
        assert await Promise(prefill_result="again") == "again"
    activated = ctx.activate()
    assert activated is ctx
    assert PromisingContext.get_current() is ctx
    await ctx.afinalize()
    with pytest.raises(NoActiveContextError):
        PromisingContext.get_current()


async def test_sync_with_on_a_promising_context_is_an_error() -> None:
    with pytest.raises(SyncContextManagerError, match="async with") as exc_info:
        with PromisingContext():
            pass  # pragma: no cover
    assert isinstance(exc_info.value, RuntimeError)
    with pytest.raises(NoActiveContextError):
        PromisingContext.get_current()


async def test_arun_runs_the_awaitable_inside_the_context() -> None:
    seen: list[Any] = []

    async def main() -> str:
        seen.append(PromisingContext.get_current())
        return "main result"

    ctx = PromisingContext()
    assert await ctx.arun(main()) == "main result"
    assert seen == [ctx]


def test_on_promise_resolved_works_as_a_decorator() -> None:
    ctx = PromisingContext()

    @ctx.on_promise_resolved
    async def handler(_promise: Any, _result: Any) -> None:
        pass  # pragma: no cover

    assert inspect.iscoroutinefunction(handler)
    assert handler.__name__ == "handler"
