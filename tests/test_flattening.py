"""Flattening, ordering, exceptions in sequences, errors_as_messages and start_soon.

Pins reference/miniagents_semantics.md §3.1-3.6 with docs/design-decisions.md (decisions 4, 5, 12, 13). Every
interleaving is forced with asyncio events or explicit `asyncio.sleep(0)` task switches, never with timed sleeps.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel
from support import next_or_end, switches, texts

from miniagents_nb import (
    ErrorMessage,
    InteractionContext,
    Message,
    MessagePromise,
    MiniAgents,
    TextMessage,
    miniagent,
)
from miniagents_nb.errors import MessageTypeError


@miniagent
async def echo(ctx: InteractionContext) -> None:
    ctx.reply(ctx.message_promises)


class PM(BaseModel):
    a: int = 1
    b: str = "two"


# --- what can be sent / replied ----------------------------------------------------------------------------------


async def test_fifteen_message_flattening_example_without_user_warning() -> None:
    async def agen() -> AsyncIterator[Any]:
        yield "ag1"
        yield TextMessage("ag2")
        yield {"content": "ag3"}

    t1 = TextMessage("t1")
    m1 = Message(content="m1")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with MiniAgents():
            p1 = TextMessage.promise("p1")
            replies = echo.trigger(
                [
                    "s1",
                    {"content": "d1", "k": 1},
                    PM(),
                    t1,
                    m1,
                    p1,
                    [("n1", ["n2"]), (x for x in ["gen1", "gen2"])],
                    echo.trigger(["inner1", "inner2"]),
                    agen(),
                ]
            )
            promises = [promise async for promise in replies]
            messages = [await promise for promise in promises]

    assert not [warning for warning in caught if issubclass(warning.category, UserWarning)], caught
    expected: list[tuple[type[Message], dict[str, Any]]] = [
        (TextMessage, {"content": "s1"}),
        (Message, {"content": "d1", "k": 1}),
        (Message, {"a": 1, "b": "two"}),
        (TextMessage, {"content": "t1"}),
        (Message, {"content": "m1"}),
        (TextMessage, {"content": "p1"}),
        (TextMessage, {"content": "n1"}),
        (TextMessage, {"content": "n2"}),
        (TextMessage, {"content": "gen1"}),
        (TextMessage, {"content": "gen2"}),
        (TextMessage, {"content": "inner1"}),
        (TextMessage, {"content": "inner2"}),
        (TextMessage, {"content": "ag1"}),
        (TextMessage, {"content": "ag2"}),
        (Message, {"content": "ag3"}),
    ]
    assert len(messages) == 15
    for message, (message_class, fields) in zip(messages, expected, strict=True):
        assert type(message) is message_class, (message, message_class)
        for key, value in fields.items():
            assert message[key] == value
    assert all(isinstance(promise, MessagePromise) for promise in promises)
    assert messages[3] is t1
    assert messages[4] is m1
    assert promises[5] is p1


async def test_trigger_none_means_no_input() -> None:
    seen: list[Any] = []

    @miniagent
    async def input_recorder(ctx: InteractionContext) -> None:
        seen.append(await ctx.message_promises)
        ctx.reply("done")

    async with MiniAgents():
        assert await texts(input_recorder.trigger(None)) == ["done"]
        assert await texts(input_recorder.trigger()) == ["done"]

    assert seen == [(), ()]


@pytest.mark.parametrize(
    ("bad_input", "type_name"),
    [
        ([None], "NoneType"),
        (5, "int"),
        (3.5, "float"),
        (object(), "object"),
        (["fine", 7], "int"),
        ((x for x in ["fine", None]), "NoneType"),
    ],
)
async def test_unsupported_message_types_raise_synchronously_at_trigger(bad_input: Any, type_name: str) -> None:
    async with MiniAgents():
        with pytest.raises(MessageTypeError, match=f"Unexpected message type: <class '{type_name}'>") as error_info:
            echo.trigger(bad_input)
    assert isinstance(error_info.value, TypeError)


async def test_unsupported_message_types_raise_synchronously_at_reply_and_send_message() -> None:
    outcomes: list[str] = []

    @miniagent
    async def replying_agent(ctx: InteractionContext) -> None:
        bad: Any
        for bad in (None, 5, object()):  # deliberately not messages
            try:
                ctx.reply(bad)
            except TypeError as error:  # a MessageTypeError is a TypeError
                outcomes.append(f"{type(error).__name__}: {error}")
        try:
            ctx.reply_out_of_order([None])
        except TypeError as error:
            outcomes.append(f"{type(error).__name__}: {error}")
        ctx.reply("still fine")

    async with MiniAgents():
        assert await texts(replying_agent.trigger()) == ["still fine"]
        agent_call = echo.initiate_call()
        with pytest.raises(MessageTypeError, match="Unexpected message type: <class 'int'>"):
            agent_call.send_message(5)  # type: ignore[arg-type]  # deliberately wrong
        with pytest.raises(MessageTypeError, match="Unexpected message type: <class 'NoneType'>"):
            agent_call.send_out_of_order([None])
        agent_call.send_message("ok")
        assert await texts(agent_call.reply_sequence()) == ["ok"]

    assert len(outcomes) == 4
    assert all(outcome.startswith("MessageTypeError: ") for outcome in outcomes)
    assert "Unexpected message type: <class 'NoneType'>" in outcomes[0]
    assert "Unexpected message type: <class 'int'>" in outcomes[1]
    assert "Unexpected message type: <class 'object'>" in outcomes[2]
    assert "Unexpected message type: <class 'NoneType'>" in outcomes[3]


async def test_bad_item_from_an_async_iterable_is_raised_at_its_position() -> None:
    async def agen() -> AsyncIterator[Any]:
        yield "good"
        yield 5

    async with MiniAgents():
        iterator = aiter(echo.trigger(agen()))  # async iterables are consumed lazily, so no error at the call
        assert str(await (await anext(iterator))) == "good"
        with pytest.raises(MessageTypeError, match="<class 'int'>"):
            await anext(iterator)


async def test_dict_becomes_a_plain_message_and_basemodel_a_message() -> None:
    async with MiniAgents():
        messages = await echo.trigger([{"content": "from dict", "k": 1}, PM(a=5)])

    assert type(messages[0]) is Message
    assert not isinstance(messages[0], TextMessage)
    assert messages[0]["content"] == "from dict"
    assert messages[0]["k"] == 1
    assert type(messages[1]) is Message
    assert messages[1]["a"] == 5
    assert messages[1]["b"] == "two"


async def test_same_objects_arrive_at_every_hop_of_a_chain() -> None:
    message = TextMessage("a message")
    hops: list[tuple[int, list[MessagePromise], list[Message]]] = []

    @miniagent
    async def relay(ctx: InteractionContext, level: int) -> None:
        promises = [p async for p in ctx.message_promises]
        hops.append((level, promises, [await p for p in promises]))
        if level < 3:
            ctx.reply(relay.trigger(ctx.message_promises, level=level + 1))
        else:
            ctx.reply(ctx.message_promises)

    async with MiniAgents():
        promise = TextMessage.promise("a promise")
        final_promises = [p async for p in relay.trigger([message, promise], level=1)]
        final_messages = [await p for p in final_promises]

    assert [level for level, _, _ in hops] == [1, 2, 3]
    first_hop_promises = hops[0][1]
    for _, promises, messages in hops:
        assert messages[0] is message
        assert promises[1] is promise
        assert promises[0] is first_hop_promises[0]
        assert messages[1] is final_messages[1]
    assert final_messages[0] is message
    assert final_promises[1] is promise
    assert final_promises[0] is first_hop_promises[0]


# --- ordering -------------------------------------------------------------------------------------------------------


async def test_ordered_replies_keep_append_order_even_when_a_later_item_is_ready_first() -> None:
    slow_gate, fast_gate, fast_replied = asyncio.Event(), asyncio.Event(), asyncio.Event()

    @miniagent
    async def slow(ctx: InteractionContext) -> None:
        await slow_gate.wait()
        ctx.reply("slow")

    @miniagent
    async def fast(ctx: InteractionContext) -> None:
        await fast_gate.wait()
        ctx.reply("fast")
        fast_replied.set()

    @miniagent
    async def parent(ctx: InteractionContext) -> None:
        ctx.reply("p1")
        ctx.reply(slow.trigger())
        ctx.reply(fast.trigger())
        ctx.reply("p2")

    async with MiniAgents():
        iterator = aiter(parent.trigger())
        seen = [str(await (await anext(iterator)))]
        fast_gate.set()
        await fast_replied.wait()
        pending = asyncio.create_task(next_or_end(iterator))
        await switches()
        assert not pending.done()  # "fast" is ready, but it is ordered behind "slow"
        slow_gate.set()
        seen.append(str(await (await pending)))
        seen.extend([str(await promise) async for promise in iterator])

    assert seen == ["p1", "slow", "fast", "p2"]


async def test_out_of_order_replies_are_emitted_as_soon_as_they_are_ready() -> None:
    slow_gate, fast_gate = asyncio.Event(), asyncio.Event()

    @miniagent
    async def slow(ctx: InteractionContext) -> None:
        await slow_gate.wait()
        ctx.reply("slow")

    @miniagent
    async def fast(ctx: InteractionContext) -> None:
        await fast_gate.wait()
        ctx.reply("fast")

    @miniagent
    async def parent(ctx: InteractionContext) -> None:
        ctx.reply("p1")
        ctx.reply(slow.trigger())
        ctx.reply_out_of_order(fast.trigger())
        ctx.reply_out_of_order("ooo-immediate")
        ctx.reply("p2")

    async with MiniAgents():
        iterator = aiter(parent.trigger())
        seen = [str(await (await anext(iterator))), str(await (await anext(iterator)))]
        pending = asyncio.create_task(next_or_end(iterator))
        await switches()
        assert not pending.done()  # nothing else can be ready: both agents are gated
        fast_gate.set()
        seen.append(str(await (await pending)))
        pending = asyncio.create_task(next_or_end(iterator))
        await switches()
        assert not pending.done()  # "p2" waits for "slow"
        slow_gate.set()
        seen.append(str(await (await pending)))
        seen.extend([str(await promise) async for promise in iterator])

    assert seen == ["p1", "ooo-immediate", "fast", "slow", "p2"]


async def test_four_level_nesting_out_of_order_only_within_its_own_sequence() -> None:
    """Upstream's timing-based example, with each sleep replaced by a gate that the consumer opens."""
    gates = {name: asyncio.Event() for name in ("after 2-2", "after 3-2", "after 2-4", "after 3-4")}

    @miniagent
    async def agent4(ctx: InteractionContext) -> None:
        await gates["after 3-4"].wait()
        ctx.reply_out_of_order("4-1")
        ctx.reply_out_of_order("4-2")

    @miniagent
    async def agent3(ctx: InteractionContext) -> None:
        ctx.reply_out_of_order("3-1")
        ctx.reply_out_of_order("3-2")
        ctx.reply_out_of_order(agent4.trigger())
        await gates["after 2-4"].wait()
        ctx.reply_out_of_order("3-3")
        ctx.reply_out_of_order("3-4")

    @miniagent
    async def agent2(ctx: InteractionContext) -> None:
        ctx.reply_out_of_order("2-1")
        ctx.reply_out_of_order("2-2")
        await gates["after 2-2"].wait()
        ctx.reply(agent3.trigger())
        await gates["after 3-2"].wait()
        ctx.reply_out_of_order("2-3")
        ctx.reply_out_of_order("2-4")

    @miniagent
    async def agent1(ctx: InteractionContext) -> None:
        ctx.reply("1-1")
        ctx.reply("1-2")
        ctx.reply(agent2.trigger())
        ctx.reply("1-3")
        ctx.reply("1-4")

    seen: list[str] = []
    async with MiniAgents():
        async for promise in agent1.trigger():
            text = str(await promise)
            seen.append(text)
            gate = gates.get(f"after {text}")
            if gate is not None:
                gate.set()

    assert seen == [
        "1-1", "1-2", "2-1", "2-2", "3-1", "3-2", "2-3", "2-4", "3-3", "3-4", "4-1", "4-2", "1-3", "1-4",
    ]  # fmt: skip


async def test_out_of_order_without_concurrency_keeps_order() -> None:
    @miniagent
    async def ooo_agent(ctx: InteractionContext) -> None:
        for text in ("a", "b", "c", "d"):
            ctx.reply_out_of_order(text)

    async with MiniAgents():
        assert await texts(ooo_agent.trigger()) == ["a", "b", "c", "d"]


# --- exceptions in sequences ---------------------------------------------------------------------------------------


async def test_exception_propagates_at_its_position_through_every_level() -> None:
    @miniagent
    async def agent3(ctx: InteractionContext) -> None:
        ctx.reply("c1")
        raise ValueError("deep")

    @miniagent
    async def agent2(ctx: InteractionContext) -> None:
        ctx.reply("b1")
        ctx.reply(agent3.trigger())
        ctx.reply("b2")

    @miniagent
    async def agent1(ctx: InteractionContext) -> None:
        ctx.reply("a1")
        ctx.reply(agent2.trigger())
        ctx.reply("a2")

    seen: list[Any] = []
    async with MiniAgents():
        replies = agent1.trigger()
        iterator = aiter(replies)
        while True:
            try:
                item = await anext(iterator)
            except StopAsyncIteration:
                break
            except ValueError as error:
                seen.append(error)
                continue
            seen.append(str(await item))
        with pytest.raises(ValueError, match="deep") as awaited_info:
            await replies

    assert seen[:3] == ["a1", "b1", "c1"]
    assert isinstance(seen[3], ValueError)
    assert str(seen[3]) == "deep"
    assert seen[4:] == ["b2", "a2"]
    assert awaited_info.value is seen[3]


def _describe(message: Message) -> str:
    return f"ErrorMessage:{message}" if isinstance(message, ErrorMessage) else str(message)


@miniagent
async def failing_child(ctx: InteractionContext) -> None:
    ctx.reply("f1")
    raise ValueError("boom")


@miniagent
async def parent_of_failing_child(ctx: InteractionContext) -> None:
    ctx.reply("p1")
    ctx.reply(failing_child.trigger())
    ctx.reply("p2")
    ctx.reply("p3-after-child-failed")


EXPECTED_SAFE_SEQUENCE = ["p1", "f1", "ErrorMessage:ValueError: boom", "p2", "p3-after-child-failed"]


async def test_errors_as_messages_per_call() -> None:
    async with MiniAgents():
        messages = await parent_of_failing_child.trigger(errors_as_messages=True)
        described = [_describe(m) for m in messages]
        with pytest.raises(ValueError, match="boom"):
            await parent_of_failing_child.trigger()  # the setting is per call

    assert described == EXPECTED_SAFE_SEQUENCE
    assert type(messages[2]) is ErrorMessage
    assert messages[2].content == "ValueError: boom"


async def test_errors_as_messages_globally() -> None:
    async with MiniAgents(errors_as_messages=True):
        promises = [promise async for promise in parent_of_failing_child.trigger()]
        messages = [await promise for promise in promises]
        direct = await failing_child.trigger()

    assert [_describe(m) for m in messages] == EXPECTED_SAFE_SEQUENCE
    assert promises[2].message_class is ErrorMessage
    assert [_describe(m) for m in direct] == ["f1", "ErrorMessage:ValueError: boom"]


async def test_errors_as_messages_token_level() -> None:
    async def streamer(auxiliary_field_collector: dict[str, Any]) -> AsyncIterator[str]:
        yield "Hello"
        yield " world"
        raise ValueError("boom")

    @miniagent
    async def streaming_agent(ctx: InteractionContext) -> None:
        ctx.reply(TextMessage.promise(message_token_streamer=streamer))

    async with MiniAgents():
        promises = [promise async for promise in streaming_agent.trigger(errors_as_messages=True)]
        assert len(promises) == 1
        tokens = [str(token) async for token in promises[0]]
        message = await promises[0]

    assert tokens[:2] == ["Hello", " world"]
    assert tokens[-1] == "\nValueError: boom"
    assert isinstance(message, ErrorMessage)
    assert str(message) == "Hello world\nValueError: boom"


async def test_errors_as_messages_does_not_convert_base_exceptions() -> None:
    @miniagent
    async def cancelling_agent(ctx: InteractionContext) -> None:
        ctx.reply("before")
        raise asyncio.CancelledError

    async with MiniAgents(errors_as_messages=True):
        iterator = aiter(cancelling_agent.trigger())
        assert str(await (await anext(iterator))) == "before"
        with pytest.raises(asyncio.CancelledError):
            await anext(iterator)


# --- start_soon -----------------------------------------------------------------------------------------------------


async def test_start_soon_default_timeline() -> None:
    log: list[str] = []

    @miniagent
    async def default_agent(ctx: InteractionContext) -> None:
        log.append("default start")
        log.append("default end")

    async with MiniAgents():
        replies = default_agent.trigger()
        log.append("after trigger")
        for i in range(2):
            log.append(f"switch {i}")
            await asyncio.sleep(0)
        assert log == ["after trigger", "switch 0", "default start", "default end", "switch 1"]
        assert await replies == ()


async def test_start_soon_false_runs_only_when_consumed() -> None:
    log: list[str] = []

    @miniagent
    async def lazy_agent(ctx: InteractionContext) -> None:
        log.append("lazy ran")
        ctx.reply("lazy reply")

    async with MiniAgents():
        replies = lazy_agent.trigger(start_soon=False)
        await switches()
        assert log == []
        assert await texts(replies) == ["lazy reply"]
        assert log == ["lazy ran"]


async def test_start_soon_false_never_runs_if_never_consumed() -> None:
    log: list[str] = []

    @miniagent
    async def lazy_agent(ctx: InteractionContext) -> None:
        log.append("lazy ran")

    async with MiniAgents():
        lazy_agent.trigger("input", start_soon=False)
        await switches()
    assert log == []  # not even when the context is finalized


async def test_context_default_false_with_one_call_true() -> None:
    log: list[str] = []
    eager_ran = asyncio.Event()

    @miniagent
    async def recorder(ctx: InteractionContext, name: str) -> None:
        log.append(name)
        if name == "eager":
            eager_ran.set()

    async with MiniAgents(start_everything_soon_by_default=False):
        lazy_replies = recorder.trigger(name="lazy")
        recorder.trigger(name="eager", start_soon=True)
        await eager_ran.wait()
        await switches()
        assert log == ["eager"]
        await lazy_replies
        assert log == ["eager", "lazy"]


async def test_start_soon_replies_are_resolved_in_the_background_even_if_unconsumed() -> None:
    persisted: list[Message] = []
    reply_node_persisted = asyncio.Event()
    mini_agents = MiniAgents()

    @mini_agents.on_persist_messages
    async def collect(messages: Any) -> None:
        for message in messages:
            persisted.append(message)
            if type(message).__name__ == "AgentReplyNode":
                reply_node_persisted.set()

    @miniagent
    async def replying_agent(ctx: InteractionContext) -> None:
        ctx.reply("reply")

    async with mini_agents:
        replying_agent.trigger("in")  # nobody ever consumes these replies
        await reply_node_persisted.wait()

    text_contents = {m.content for m in persisted if isinstance(m, TextMessage)}
    assert text_contents == {"in", "reply"}
    assert {type(m).__name__ for m in persisted} >= {"AgentCallNode", "AgentReplyNode"}
