"""Persistence hooks: `on_persist_messages`, `on_persist_message`, `apersist_messages`, interaction nodes.

Pins reference/miniagents_semantics.md §2.17 and §3.8 with docs/design-decisions.md decisions 8 and 9 (dedup by
hash_key within a context, never an empty batch, both handler styles).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support import END, batch_recorder, next_or_end, switches

from miniagents_nb import (
    AgentCallNode,
    AgentReplyNode,
    InteractionContext,
    Message,
    MiniAgents,
    Promise,
    TextMessage,
    miniagent,
)


def flat(batches: list[list[Message]]) -> list[Message]:
    return [message for batch in batches for message in batch]


@miniagent
async def echo(ctx: InteractionContext) -> None:
    ctx.reply(ctx.message_promises)


# --- handlers -------------------------------------------------------------------------------------------------------


async def test_on_persist_messages_gets_batches_with_sub_messages_first() -> None:
    mini_agents = MiniAgents()
    batches = batch_recorder(mini_agents)
    inner = TextMessage("inner")
    holder = Message(content="holder", nested=inner)

    async with mini_agents:
        persisted = await mini_agents.apersist_messages(holder)

    assert persisted == [inner, holder]
    assert persisted[0] is inner
    assert persisted[1] is holder
    assert len(batches) == 1
    assert batches[0][0] is inner
    assert batches[0][1] is holder


async def test_on_persist_messages_given_to_the_constructor() -> None:
    batches: list[list[Message]] = []

    async def record(messages: Any) -> None:
        batches.append(list(messages))

    async with MiniAgents(on_persist_messages=record) as mini_agents:
        await mini_agents.apersist_messages(TextMessage("via constructor"))

    assert [[m.content for m in batch] for batch in batches] == [["via constructor"]]


async def test_on_persist_message_gets_one_message_per_call() -> None:
    mini_agents = MiniAgents()
    singles: list[Any] = []

    @mini_agents.on_persist_message
    async def record_one(message: Any) -> None:
        singles.append(message)

    async with mini_agents:
        await mini_agents.apersist_messages([TextMessage("a"), TextMessage("b")])
        assert await echo.trigger("c") is not None

    assert all(isinstance(message, Message) for message in singles)
    contents = [str(message.content) for message in singles if isinstance(message, TextMessage)]
    assert sorted(contents) == ["a", "b", "c"]
    assert len({message.hash_key for message in singles}) == len(singles)


def test_persist_handlers_must_be_async() -> None:
    mini_agents = MiniAgents()

    def sync_handler(messages: Any) -> None:
        return None

    with pytest.raises(ValueError, match="must be async"):
        mini_agents.on_persist_messages(sync_handler)  # type: ignore[arg-type]  # deliberately sync
    with pytest.raises(ValueError, match="must be async"):
        mini_agents.on_persist_message(sync_handler)  # type: ignore[arg-type]  # deliberately sync


async def test_equal_messages_are_persisted_once_and_batches_are_never_empty() -> None:
    mini_agents = MiniAgents()
    batches = batch_recorder(mini_agents)

    async with mini_agents:
        replies = await echo.trigger(["hello", "hello"])

    assert [str(message) for message in replies] == ["hello", "hello"]
    assert replies[0] is not replies[1]
    assert all(batch for batch in batches), batches
    hello_hash = TextMessage("hello").hash_key
    assert [message.hash_key for message in flat(batches)].count(hello_hash) == 1
    hash_keys = [message.hash_key for message in flat(batches)]
    assert len(hash_keys) == len(set(hash_keys))


async def test_apersist_messages_direct_call_dedups_and_skips_empty_batches() -> None:
    mini_agents = MiniAgents()
    batches = batch_recorder(mini_agents)
    first, equal_copy = TextMessage("same"), TextMessage("same")

    async with mini_agents:
        assert await mini_agents.apersist_messages(first) == [first]
        assert await mini_agents.apersist_messages(first) == []
        assert await mini_agents.apersist_messages(equal_copy) == []
        assert await mini_agents.apersist_messages([]) == []

    assert batches == [[first]]


async def test_apersist_messages_without_sub_messages() -> None:
    mini_agents = MiniAgents()
    batches = batch_recorder(mini_agents)
    inner = TextMessage("inner")
    holder = Message(content="holder", nested=inner)

    async with mini_agents:
        assert await mini_agents.apersist_messages(holder, extend_with_sub_messages=False) == [holder]
        assert await mini_agents.apersist_messages(inner) == [inner]

    assert batches == [[holder], [inner]]


async def test_apersist_messages_calls_every_handler_in_parallel_mode() -> None:
    mini_agents = MiniAgents()
    first_batches = batch_recorder(mini_agents)
    second_batches = batch_recorder(mini_agents)
    message = TextMessage("both")

    async with mini_agents:
        await mini_agents.apersist_messages(message, parallelise_handlers=True)

    assert first_batches == [[message]]
    assert second_batches == [[message]]


async def test_aset_persistence_not_needed_opts_a_message_out() -> None:
    mini_agents = MiniAgents()
    batches = batch_recorder(mini_agents)
    secret = TextMessage("secret")

    async with mini_agents:
        await secret.aset_persistence_not_needed()
        assert secret.persistence_not_needed
        assert await mini_agents.apersist_messages(secret) == []
        await echo.trigger([secret, "public"])

    contents = [m.content for m in flat(batches) if isinstance(m, TextMessage)]
    assert "secret" not in contents
    assert "public" in contents
    assert all(batch for batch in batches)


async def test_handler_error_with_and_without_raise_on_error() -> None:
    mini_agents = MiniAgents()

    @mini_agents.on_persist_messages
    async def failing_handler(messages: Any) -> None:
        raise RuntimeError("persist failed")

    async with mini_agents:
        with pytest.raises(RuntimeError, match="persist failed"):
            await mini_agents.apersist_messages(TextMessage("raises"))
        returned = await mini_agents.apersist_messages(TextMessage("swallowed"), raise_on_error=False)

    assert [message.content for message in returned] == ["swallowed"]


# --- interaction nodes ----------------------------------------------------------------------------------------------


async def test_agent_call_and_reply_nodes_are_persisted_with_their_serialization() -> None:
    mini_agents = MiniAgents()
    batches = batch_recorder(mini_agents)

    @miniagent(interaction_metadata={"tag": "T"})
    async def my_agent(ctx: InteractionContext, **kwargs: Any) -> None:
        ctx.reply("r1")

    forked = my_agent.fork(fork_kwarg="not in the node")
    async with mini_agents:
        assert [str(m) for m in await forked.trigger(["in1"], k=3)] == ["r1"]

    persisted = flat(batches)
    call_nodes = [m for m in persisted if isinstance(m, AgentCallNode)]
    reply_nodes = [m for m in persisted if isinstance(m, AgentReplyNode)]
    assert len(call_nodes) == 1
    assert len(reply_nodes) == 1
    call_node, reply_node = call_nodes[0], reply_nodes[0]

    assert call_node.serialize() == {
        "class_": "AgentCallNode",
        "agent": {"class_": "MiniAgent", "alias": "MY_AGENT"},
        "tag": "T",
        "k": 3,
        "messages__hash_keys": [TextMessage("in1").hash_key],
    }
    assert reply_node.serialize() == {
        "class_": "AgentReplyNode",
        "agent": {"class_": "MiniAgent", "alias": "MY_AGENT"},
        "tag": "T",
        "agent_call__hash_key": call_node.hash_key,
        "replies__hash_keys": [TextMessage("r1").hash_key],
    }
    assert reply_node.agent_call.hash_key == call_node.hash_key
    position = {message.hash_key: index for index, message in enumerate(persisted)}
    assert position[TextMessage("in1").hash_key] < position[call_node.hash_key]
    assert position[call_node.hash_key] < position[reply_node.hash_key]
    assert position[TextMessage("r1").hash_key] < position[reply_node.hash_key]


async def test_agent_call_node_without_input_has_empty_messages() -> None:
    mini_agents = MiniAgents()
    batches = batch_recorder(mini_agents)

    @miniagent
    async def silent_agent(ctx: InteractionContext) -> None:
        return None

    async with mini_agents:
        await silent_agent.trigger()

    call_nodes = [m for m in flat(batches) if isinstance(m, AgentCallNode)]
    reply_nodes = [m for m in flat(batches) if isinstance(m, AgentReplyNode)]
    assert call_nodes[0].serialize() == {
        "class_": "AgentCallNode",
        "agent": {"class_": "MiniAgent", "alias": "SILENT_AGENT"},
        "messages": [],
    }
    assert reply_nodes[0].serialize()["replies"] == []


# --- on_promise_resolved ----------------------------------------------------------------------------------------------


async def test_on_promise_resolved_handlers_get_promise_and_result() -> None:
    mini_agents = MiniAgents()
    calls: list[tuple[Any, Any]] = []

    @mini_agents.on_promise_resolved
    async def record(promise: Any, result: Any) -> None:
        calls.append((promise, result))

    async with mini_agents:
        first: Promise[Any] = Promise(prefill_result=1)
        second: Promise[Any] = Promise(prefill_result=2)

    assert len(calls) == 2
    assert {id(promise) for promise, _ in calls} == {id(first), id(second)}
    assert sorted(result for _, result in calls) == [1, 2]


async def test_on_promise_resolved_handler_gets_the_exception_of_a_failed_promise() -> None:
    calls: list[tuple[Any, Any]] = []

    async def record(promise: Any, result: Any) -> None:
        calls.append((promise, result))

    async def failing_resolver(promise: Any) -> Any:
        raise ValueError("resolver failed")

    async with MiniAgents(on_promise_resolved=record):
        promise: Promise[Any] = Promise(resolver=failing_resolver, start_soon=False)
        with pytest.raises(ValueError, match="resolver failed") as error_info:
            await promise

    assert len(calls) == 1
    assert calls[0][0] is promise
    assert calls[0][1] is error_info.value


def test_on_promise_resolved_handler_must_be_async() -> None:
    def sync_handler(promise: Any, result: Any) -> None:
        return None

    with pytest.raises(ValueError, match="must be async"):
        MiniAgents().on_promise_resolved(sync_handler)  # type: ignore[arg-type]  # deliberately sync
    with pytest.raises(ValueError, match="must be async"):
        MiniAgents(on_promise_resolved=sync_handler)  # type: ignore[arg-type]  # deliberately sync


# --- await_reply_persistence ------------------------------------------------------------------------------------------


def _gated_recorder(mini_agents: MiniAgents, gate: asyncio.Event) -> list[Message]:
    persisted: list[Message] = []

    @mini_agents.on_persist_messages
    async def slow_handler(messages: Any) -> None:
        messages = list(messages)
        if any(isinstance(m, TextMessage) and m.content == "r" for m in messages):
            await gate.wait()
        persisted.extend(messages)

    return persisted


async def _assert_end_waits_for_persistence(mini_agents: MiniAgents, agent: Any) -> None:
    gate = asyncio.Event()
    persisted = _gated_recorder(mini_agents, gate)
    async with mini_agents:
        iterator = aiter(agent.trigger())
        assert str(await (await anext(iterator))) == "r"
        end = asyncio.create_task(next_or_end(iterator))
        await switches()
        ended_before_persistence = end.done()
        gate.set()  # release the handler before any assertion, so a failure cannot hang the context's exit
        assert await end is END
    assert not ended_before_persistence  # the reply sequence waits until its replies are persisted
    assert "r" in [m.content for m in persisted if isinstance(m, TextMessage)]


async def test_await_reply_persistence_per_agent() -> None:
    @miniagent(await_reply_persistence=True)
    async def persisting_agent(ctx: InteractionContext) -> None:
        ctx.reply("r")

    await _assert_end_waits_for_persistence(MiniAgents(), persisting_agent)


async def test_await_reply_persistence_before_agent_finish_globally() -> None:
    @miniagent
    async def plain_agent(ctx: InteractionContext) -> None:
        ctx.reply("r")

    await _assert_end_waits_for_persistence(MiniAgents(await_reply_persistence_before_agent_finish=True), plain_agent)


async def test_replies_do_not_wait_for_persistence_by_default() -> None:
    gate = asyncio.Event()
    mini_agents = MiniAgents()
    _gated_recorder(mini_agents, gate)

    @miniagent
    async def plain_agent(ctx: InteractionContext) -> None:
        ctx.reply("r")

    async with mini_agents:
        iterator = aiter(plain_agent.trigger())
        assert str(await (await anext(iterator))) == "r"
        assert await next_or_end(iterator) is END  # ends although the handler is still blocked
        gate.set()
