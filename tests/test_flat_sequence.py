"""`FlatSequence`, the one flattening engine, in upstream MiniAgents' constructor form and as a subclass hook set."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from miniagents_nb import FlatSequence, Message, MessageSequence, MiniAgents, PromisingContext, TextMessage
from miniagents_nb.errors import AppenderClosedError, FunctionNotProvidedError
from miniagents_nb.messages.call_sequences import closed_call_sequence, open_call_sequence


async def _repeat(_: Any, number: int) -> AsyncIterator[int]:
    for _ in range(number):
        yield number


async def test_upstream_form_flattens_each_item_with_the_flattener() -> None:
    async def numbers(_: Any) -> AsyncIterator[int]:
        for number in (0, 1, 2, 3):
            yield number

    async with PromisingContext():
        sequence: FlatSequence[int, int] = FlatSequence(numbers, flattener=_repeat)
        assert [piece async for piece in sequence.sequence_promise] == [1, 2, 2, 3, 3, 3]
        assert await sequence.sequence_promise == (1, 2, 2, 3, 3, 3)


async def test_unordered_items_overtake_the_ordered_ones() -> None:
    ordered_may_go = asyncio.Event()

    async def ordered(_: Any) -> AsyncIterator[int]:
        await ordered_may_go.wait()
        yield 1

    async def unordered(_: Any) -> AsyncIterator[int]:
        yield 2

    async def flatten(_: Any, number: int) -> AsyncIterator[int]:
        if number == 2:
            ordered_may_go.set()  # the ordered item can only arrive after this one was flattened
        yield number * 10

    async with PromisingContext():
        sequence: FlatSequence[int, int] = FlatSequence(ordered, unordered_streamer=unordered, flattener=flatten)
        assert [piece async for piece in sequence.sequence_promise] == [20, 10]


async def test_a_failing_flattener_becomes_a_piece_and_the_sequence_goes_on() -> None:
    async def numbers(_: Any) -> AsyncIterator[int]:
        yield 1
        yield 2

    async def flatten(_: Any, number: int) -> AsyncIterator[int]:
        if number == 1:
            raise ValueError("bad item")
        yield number

    async with PromisingContext():
        sequence: FlatSequence[int, int] = FlatSequence(numbers, flattener=flatten)
        pieces = []
        iterator = sequence.sequence_promise.__aiter__()
        while True:
            try:
                pieces.append(await iterator.__anext__())
            except StopAsyncIteration:
                break
            except ValueError as error:
                pieces.append(repr(error))
        assert pieces == ["ValueError('bad item')", 2]


async def test_items_appended_by_hand_and_nothing_pulled_before_start() -> None:
    pulled: list[int] = []

    async def flatten(_: Any, number: int) -> AsyncIterator[int]:
        pulled.append(number)
        yield number

    async with PromisingContext():
        sequence: FlatSequence[int, int] = FlatSequence(flattener=flatten, start_soon=False)
        sequence.append_item(1)
        sequence.append_item(2, out_of_order=True)
        sequence.close_input()
        await asyncio.sleep(0)
        assert pulled == []
        assert not sequence.is_started
        assert sorted(await sequence.sequence_promise) == [1, 2]
        assert sequence.is_started


async def test_no_flattener_is_a_clear_error_at_its_position() -> None:
    async with PromisingContext():
        sequence: FlatSequence[int, int] = FlatSequence()
        sequence.append_item(1)
        sequence.close_input()
        with pytest.raises(FunctionNotProvidedError, match="flattener="):
            await sequence.sequence_promise


async def test_message_sequence_is_the_same_engine() -> None:
    async with PromisingContext():
        sequence = MessageSequence(start_soon=False)
        assert isinstance(sequence, FlatSequence)
        with sequence.message_appender:
            sequence.message_appender.append(["a", ["b"]])
        assert [str(message) for message in await sequence.sequence_promise] == ["a", "b"]


def slot_values(obj: object) -> dict[str, Any]:
    """Every slot of `obj` over its class hierarchy ("<unset>" for an empty one)."""
    values: dict[str, Any] = {}
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if name not in ("__weakref__", "__dict__"):
                values[name] = getattr(obj, name, "<unset>")
    return values


def comparable(value: Any, own: dict[int, str]) -> Any:
    """A slot value as something `==` can compare across two independently built sequences."""
    if id(value) in own:
        return own[id(value)]  # a reference to the sequence, its promise or its stream: compared by role
    if hasattr(value, "__self__") and id(value.__self__) in own:
        return (own[id(value.__self__)], value.__func__)  # a bound method of one of them
    return value


def sequence_view(sequence: MessageSequence, *, skip: str = "", stream_slots: bool = True) -> dict[str, Any]:
    """Every slot of a sequence, its promise and (`stream_slots`) its output stream, comparable across two sequences;
    without `stream_slots`, what the stream holds (an ended one may be a list or an immutable tuple)."""
    own = {id(sequence): "sequence", id(sequence.sequence_promise): "promise", id(sequence.output_stream): "stream"}
    parts: list[tuple[str, object]] = [("sequence", sequence), ("promise", sequence.sequence_promise)]
    if stream_slots:
        parts.append(("stream", sequence.output_stream))
    view = {
        f"{role}.{name}": comparable(value, own)
        for role, obj in parts
        for name, value in slot_values(obj).items()
        if name != skip
    }
    if not stream_slots:
        stream = sequence.output_stream
        view["stream"] = (stream.finished, [type(piece).__name__ for piece in stream.pieces], stream.waiters)
    return view


@pytest.mark.parametrize("errors_as_messages", [False, True])
@pytest.mark.parametrize("start_soon", [False, True])
async def test_an_agent_calls_sequence_is_the_one_the_constructor_makes(
    errors_as_messages: bool, start_soon: bool
) -> None:
    started: list[str] = []
    async with MiniAgents(error_tracebacks_in_messages=True) as context:
        built = MessageSequence(
            appender_capture_errors=True,
            start_soon=start_soon,
            errors_as_messages=errors_as_messages,
            on_start=lambda: started.append("built"),
        ).open()
        direct = open_call_sequence(context, start_soon, errors_as_messages, lambda: started.append("direct"))
        assert type(direct) is type(built)
        assert type(direct.sequence_promise) is type(built.sequence_promise)
        # (the two `_on_start` callbacks differ on purpose)
        assert sequence_view(built, skip="_on_start") == sequence_view(direct, skip="_on_start")
        assert started == (["built", "direct"] if start_soon else [])
        outcomes = []
        for sequence in (built, direct):
            sequence.append("one").append(ValueError("two")).close()
            try:
                outcomes.append([str(message) for message in await sequence.sequence_promise])
            except ValueError as error:
                outcomes.append([f"raised {error}"])
        assert outcomes[0] == outcomes[1]
        assert outcomes[0][0] == ("one" if errors_as_messages else "raised two")


@pytest.mark.parametrize("item", ["hi", TextMessage("a message", role="user")])
async def test_a_call_given_one_message_gets_the_input_appending_and_closing_would_make(item: str | Message) -> None:
    async with MiniAgents() as context:
        appended = open_call_sequence(context, False, False)
        appended.append(item).close()
        direct = closed_call_sequence(context, item)
        assert sequence_view(appended, stream_slots=False) == sequence_view(direct, stream_slots=False)
        assert await direct.sequence_promise == await appended.sequence_promise
        with pytest.raises(AppenderClosedError):
            direct.append("more")
