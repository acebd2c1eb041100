"""One test (or a small group) per SPEC §3 "where upstream MiniAgents is buggy, we are correct" fix of the core.

Fixes 4 (streaming token usage) and 11 (OpenAI `system=` first) belong to the LLM layer and are tested there.
Upstream behaviour for each bug: reference/miniagents_semantics.md §5.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import inspect
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support import Recorded, batch_recorder, switches

from miniagents_nb import (
    InteractionContext,
    Message,
    MiniAgents,
    Promise,
    TextMessage,
    miniagent,
)
from miniagents_nb.errors import MessageTypeError, NotFreezableError, RunningEventLoopError
from miniagents_nb.utils import as_single_text_promise

REPO_ROOT = Path(__file__).resolve().parents[1]


@miniagent
async def echo(ctx: InteractionContext) -> None:
    ctx.reply(ctx.message_promises)


# --- fix 1 ------------------------------------------------------------------------------------------------------------


async def test_fix1_fork_of_a_fork_overrides_a_frozen_kwarg() -> None:
    seen: list[dict[str, Any]] = []

    @miniagent
    async def kwargs_agent(ctx: InteractionContext, **kwargs: Any) -> None:
        seen.append(kwargs)

    twice_forked = kwargs_agent.fork(k=1, other="kept").fork(k=2)
    async with MiniAgents():
        await twice_forked.trigger()
        await twice_forked.trigger(k=3)
        await kwargs_agent.fork(k=1).trigger()

    assert seen == [{"k": 2, "other": "kept"}, {"k": 3, "other": "kept"}, {"k": 1}]


# --- fix 2 ------------------------------------------------------------------------------------------------------------


async def test_fix2_strip_leading_newlines_strips_a_message_whose_str_was_cached() -> None:
    message = TextMessage("\n\nHello")
    assert str(message) == "\n\nHello"  # populate the cached string first: upstream copied it into the stripped copy
    assert message.hash_key

    async with MiniAgents():
        stripped = await as_single_text_promise([message], strip_leading_newlines=True)
        kept = await as_single_text_promise([message])

    assert str(stripped) == "Hello"
    assert str(kept) == "\n\nHello"


async def test_fix2_strip_leading_newlines_strips_a_streamed_message() -> None:
    async def streamer(auxiliary_field_collector: dict[str, Any]) -> AsyncIterator[str]:
        yield "\n\nHel"
        yield "lo"

    async with MiniAgents():
        streamed = TextMessage.promise(message_token_streamer=streamer)
        stripped = await as_single_text_promise(streamed, strip_leading_newlines=True)

    assert str(stripped) == "Hello"


def test_fix2_cached_values_never_survive_model_copy() -> None:
    original = TextMessage("before", role="user")
    assert str(original) == "before"
    original_hash = original.hash_key
    assert '"before"' in original.serialized
    assert "before" in original.full_json

    copy = original.model_copy(update={"content": "after"})

    assert str(copy) == "after"
    assert copy.hash_key == TextMessage("after", role="user").hash_key
    assert copy.hash_key != original_hash
    assert '"after"' in copy.serialized
    assert "after" in copy.full_json
    assert "before" not in copy.full_json
    assert str(original) == "before"
    assert original.hash_key == original_hash


def test_fix2_model_copy_revalidates() -> None:
    original = Message(content="x")
    copy = original.model_copy(update={"items": [1, [2]], "mapping": {"a": 1}})
    assert copy["items"] == (1, (2,))
    assert copy["mapping"]["a"] == 1
    with pytest.raises(NotFreezableError):
        original.model_copy(update={"bad": {1, 2}})


# --- fix 3 ------------------------------------------------------------------------------------------------------------


async def test_fix3_tuples_mixing_messages_and_plain_values_serialize_and_persist() -> None:
    first, second, deep = TextMessage("first"), TextMessage("second"), TextMessage("deep")
    holder = Message(
        mixed=(first, 1, second),
        message_not_first=("plain", second),
        nested=({"inner": deep}, 2),
    )
    expected = {
        "class_": "Message",
        "mixed": [{"__hash_key": first.hash_key}, 1, {"__hash_key": second.hash_key}],
        "message_not_first": ["plain", {"__hash_key": second.hash_key}],
        "nested": [{"class_": "Frozen", "inner__hash_key": deep.hash_key}, 2],
    }

    assert holder.serialize() == expected
    expected_json = json.dumps(expected, ensure_ascii=False, sort_keys=True)
    assert holder.hash_key == hashlib.sha256(expected_json.encode("utf-8")).hexdigest()[:40]
    assert {m.hash_key for m in holder.sub_messages()} == {first.hash_key, second.hash_key, deep.hash_key}

    mini_agents = MiniAgents()
    batches = batch_recorder(mini_agents)
    async with mini_agents:
        persisted = await mini_agents.apersist_messages(holder)

    assert persisted[-1] is holder
    assert {m.hash_key for m in persisted[:-1]} == {first.hash_key, second.hash_key, deep.hash_key}
    assert len(persisted) == 4
    assert batches == [persisted]


async def test_fix3_every_nested_message_of_a_reply_is_persisted() -> None:
    inner = TextMessage("inner")
    holder = Message(content="holder", values=(0, inner))
    mini_agents = MiniAgents()
    batches = batch_recorder(mini_agents)

    @miniagent
    async def replying_agent(ctx: InteractionContext) -> None:
        ctx.reply(holder)

    async with mini_agents:
        await replying_agent.trigger()

    persisted_hashes = [m.hash_key for batch in batches for m in batch]
    assert inner.hash_key in persisted_hashes
    assert holder.hash_key in persisted_hashes
    assert persisted_hashes.index(inner.hash_key) < persisted_hashes.index(holder.hash_key)


# --- fix 5 ------------------------------------------------------------------------------------------------------------


async def test_fix5_trigger_with_an_unsupported_type_never_schedules_the_agent() -> None:
    ran: list[str] = []

    @miniagent
    async def never_agent(ctx: InteractionContext) -> None:
        ran.append("ran")

    mini_agents = MiniAgents()
    async with mini_agents:
        with pytest.raises(MessageTypeError, match="<class 'int'>"):
            never_agent.trigger(5)  # type: ignore[arg-type]  # deliberately not a message
        with pytest.raises(MessageTypeError, match="<class 'object'>"):
            never_agent.trigger(["fine", object()])
        with pytest.raises(MessageTypeError, match="<class 'NoneType'>"):
            never_agent.inquire([None])
        with pytest.raises(NotFreezableError):
            never_agent.trigger("fine", bad_kwarg=object())
        await switches()
        assert ran == []
    assert ran == []  # not even at afinalize


# --- fix 6 ------------------------------------------------------------------------------------------------------------


async def _cancel_while_waiting(awaitable_factory: Any) -> None:
    consumer = asyncio.create_task(awaitable_factory())
    await switches()
    assert not consumer.done()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer


async def test_fix6_cancelled_consumer_does_not_poison_a_lazy_promise() -> None:
    gate = asyncio.Event()
    calls: Recorded[str] = Recorded()

    async def resolver(promise: Any) -> str:
        calls.append("resolver")
        await gate.wait()
        return "real result"

    async with MiniAgents():
        promise: Promise[Any] = Promise(resolver=resolver, start_soon=False)

        async def consume(name: str) -> Any:
            calls.append(name)  # nothing yields between this append and the wait inside the promise
            return await promise

        cancelled_consumer = asyncio.create_task(consume("first consumer"))
        await calls.until(lambda calls: "resolver" in calls)  # the first consumer is the one that drives it
        other_consumer = asyncio.create_task(consume("other consumer"))
        await calls.until(lambda calls: "other consumer" in calls)
        cancelled_consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled_consumer
        await switches()
        assert not other_consumer.done()
        gate.set()
        assert await other_consumer == "real result"
        assert await promise == "real result"
    assert calls == ["first consumer", "resolver", "other consumer"]  # resolved once


async def test_fix6_cancelled_consumer_does_not_poison_a_lazy_reply_sequence() -> None:
    gate = asyncio.Event()
    runs: list[str] = []

    @miniagent
    async def slow_agent(ctx: InteractionContext) -> None:
        runs.append("run")
        await gate.wait()
        ctx.reply("done")

    async with MiniAgents():
        replies = slow_agent.trigger(start_soon=False)

        async def consume() -> Any:
            return await replies

        await _cancel_while_waiting(consume)
        gate.set()
        assert [str(m) for m in await replies] == ["done"]
        assert [str(await p) async for p in replies] == ["done"]
    assert runs == ["run"]


async def test_fix6_cancelled_consumer_does_not_poison_an_eager_reply_sequence() -> None:
    gate = asyncio.Event()

    @miniagent
    async def slow_agent(ctx: InteractionContext) -> None:
        ctx.reply("first")
        await gate.wait()
        ctx.reply("second")

    async with MiniAgents():
        replies = slow_agent.trigger()

        async def consume() -> Any:
            return [str(await p) async for p in replies]

        await _cancel_while_waiting(consume)
        gate.set()
        assert [str(m) for m in await replies] == ["first", "second"]


async def test_fix6_cancelled_token_consumer_does_not_poison_a_message_promise() -> None:
    gate = asyncio.Event()
    streamer_calls: list[str] = []

    async def streamer(auxiliary_field_collector: dict[str, Any]) -> AsyncIterator[str]:
        streamer_calls.append("streamer")
        yield "a"
        await gate.wait()
        yield "b"

    async with MiniAgents():
        message_promise = TextMessage.promise(start_soon=False, message_token_streamer=streamer)

        async def consume() -> Any:
            return [str(token) async for token in message_promise]

        await _cancel_while_waiting(consume)
        gate.set()
        assert [str(token) async for token in message_promise] == ["a", "b"]
        assert str(await message_promise) == "ab"
    assert streamer_calls == ["streamer"]  # the producer ran once


# --- fix 7 ------------------------------------------------------------------------------------------------------------


async def test_fix7_equal_messages_are_persisted_once_and_no_empty_batch() -> None:
    mini_agents = MiniAgents()
    batches = batch_recorder(mini_agents)
    same_instance = TextMessage("prefilled twice")

    async with mini_agents:
        await echo.trigger(["hello", "hello"])
        await mini_agents.apersist_messages(TextMessage("hello"))
        Promise(prefill_result=same_instance)
        Promise(prefill_result=same_instance)

    all_hashes = [m.hash_key for batch in batches for m in batch]
    assert all_hashes.count(TextMessage("hello").hash_key) == 1
    assert all_hashes.count(same_instance.hash_key) == 1
    assert len(all_hashes) == len(set(all_hashes))
    assert all(len(batch) > 0 for batch in batches), [len(batch) for batch in batches]


# --- fix 8 ------------------------------------------------------------------------------------------------------------


def test_fix8_importing_has_no_side_effects() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import miniagents_nb, miniagents_nb.ext, miniagents_nb.utils"],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


# --- fix 9 ------------------------------------------------------------------------------------------------------------


async def test_fix9_two_contexts_do_not_share_persistence_state() -> None:
    first_context, second_context = MiniAgents(), MiniAgents()
    first_batches, second_batches = batch_recorder(first_context), batch_recorder(second_context)

    async with first_context:
        await first_context.apersist_messages(TextMessage("hello"))
    async with second_context:
        await second_context.apersist_messages(TextMessage("hello"))  # new context: not a duplicate here
        await echo.trigger("only in the second context")

    assert [[m.content for m in batch] for batch in first_batches] == [["hello"]]
    assert [[getattr(m, "content", None) for m in batch] for batch in second_batches][0] == ["hello"]
    second_contents = {getattr(m, "content", None) for batch in second_batches for m in batch}
    assert "only in the second context" in second_contents


# Module-level containers that are caches of immutable values, not state: whatever fills them, no behaviour of one
# context can depend on another through them.
INTERN_CACHES = {
    # field-name frozensets shared by frozen models (miniagents_nb/promising/ext/frozen.py, `Frozen.__init__`)
    "miniagents_nb.promising.ext.frozen._SHARED_FIELD_NAME_SETS",
}


def _module_level_containers() -> dict[str, Any]:
    mutable_types = (list, dict, set, bytearray, collections.deque)
    snapshot: dict[str, Any] = {}
    for module_name, module in list(sys.modules.items()):
        if module_name != "miniagents_nb" and not module_name.startswith("miniagents_nb."):
            continue
        for name, value in vars(module).items():
            if name.startswith("__") or inspect.ismodule(value) or not isinstance(value, mutable_types):
                continue
            if f"{module_name}.{name}" in INTERN_CACHES:
                assert isinstance(value, dict)
                assert all(key is cached and isinstance(key, frozenset) for key, cached in value.items())
                continue
            snapshot[f"{module_name}.{name}"] = repr(value)
    return snapshot


async def test_fix9_no_module_level_container_is_used_as_shared_state() -> None:
    before = _module_level_containers()

    @miniagent
    async def failing_agent(ctx: InteractionContext) -> None:
        ctx.reply("x")
        raise ValueError("expected")

    for _ in range(2):
        mini_agents = MiniAgents(errors_as_messages=True)
        batch_recorder(mini_agents)
        async with mini_agents:
            await echo.trigger(["a", {"content": "b"}])
            await failing_agent.trigger()
            await mini_agents.apersist_messages(Message(content="c", child=TextMessage("d")))

    after = _module_level_containers()
    changed = {name: (before.get(name), value) for name, value in after.items() if before.get(name) != value}
    assert changed == {}


# --- fix 10 -----------------------------------------------------------------------------------------------------------


async def test_fix10_run_under_a_running_loop_outside_a_notebook_says_what_to_do() -> None:
    async def main() -> str:
        return "never"

    coroutine = main()
    with pytest.raises(RunningEventLoopError) as error_info:
        MiniAgents().run(coroutine)
    assert isinstance(error_info.value, RuntimeError)
    assert "await MiniAgents().arun(" in str(error_info.value)
    assert "async with MiniAgents():" in str(error_info.value)
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED  # so no "never awaited" warning
