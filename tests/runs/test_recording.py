"""Recording through the observation API: what a run stores (calls, arguments, lists, messages, token times, LLM
metadata) and how it reads back (`runs()`, `load()`), with labelled runs and the notebook layer's `start_run`."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from miniagents_nb import InteractionContext, Message, MiniAgents, TextMessage, miniagent
from miniagents_nb.agents import AgentCallStatus
from miniagents_nb.events import ObservedCall, wall_clock
from miniagents_nb.ext.llms import FakeLLMAgent
from miniagents_nb.runs import SCHEMA_VERSION, RecordedCall, RunStore, StoreRecording

from .helpers import aggregator, child, last_run, streamer

_CLOCK_SLACK_S = 0.05
"""How far the wall clock may have been stepped since the process read it against the monotonic clock."""


async def test_a_fan_out_is_recorded_as_its_call_tree(store: RunStore) -> None:
    async with MiniAgents(record_to=store):
        replies = await aggregator.trigger("question", count=3)
    assert [str(reply) for reply in replies] == ["c0a", "c0b", "c1a", "c1b", "c2a", "c2b"]

    [summary] = store.runs()
    assert (summary.status, summary.calls, summary.messages, summary.failures) == ("finished", 4, 6, 0)
    assert summary.duration is not None
    assert summary.duration >= 0
    run = store.load(summary.run_id)
    [root] = run.roots
    assert root.alias == "AGGREGATOR"
    assert root.description == "Asks `count` children and replies with all they say."
    assert root.kwargs == {"count": 3}
    assert [str(message) for message in root.inputs] == ["question"]
    assert [str(message) for message in root.replies] == [str(reply) for reply in replies]
    assert root.replied == ()  # the aggregator replied nothing of its own: its children did
    assert [(c.alias, dict(c.kwargs), c.status) for c in root.children] == [
        ("CHILD", {"i": i}, AgentCallStatus.FINISHED) for i in range(3)
    ]
    for i, call in enumerate(root.children):
        assert call.parent is root
        assert [str(message) for message in call.inputs] == ["question"]
        assert [message.text for message in call.replied] == [f"c{i}a", f"c{i}b"]
        assert call.started_at is not None
        assert call.ended_at is not None
        assert root.queued_at <= call.queued_at <= call.started_at <= call.ended_at
    assert all(message.hash_key in run.messages for message in replies)


async def test_recorded_calls_are_observed_calls_with_finished_sequences(store: RunStore) -> None:
    async with MiniAgents(record_to=store):
        await aggregator.trigger("question", count=1)
    run = last_run(store)
    observed: ObservedCall = run.roots[0]  # what the views are written against
    assert observed.agent.alias == "AGGREGATOR"
    assert observed.miniagents is run.miniagents
    assert observed.cancel() is False
    replies = await observed.reply_sequence_promise
    assert [str(message) for message in replies] == ["c0a", "c0b"]
    assert [str(message) for message in await observed.input_sequence_promise] == ["question"]


async def test_failures_are_recorded_with_type_text_and_traceback(store: RunStore) -> None:
    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        ctx.reply("before")
        raise ValueError("no luck")

    async with MiniAgents(record_to=store, log_level_for_errors=0):
        with pytest.raises(ValueError, match="no luck"):
            await failing.trigger()
    [summary] = store.runs()
    assert (summary.status, summary.failures) == ("failed", 1)
    [call] = store.load(summary.run_id).roots
    assert call.status is AgentCallStatus.FAILED
    assert call.error is not None
    assert str(call.error) == "ValueError: no luck"
    assert "raise ValueError" in (getattr(call.error, "traceback_text", "") or "")
    assert [str(entry) for entry in call.replies] == ["before", "ValueError: no luck"]


async def test_token_arrival_times_are_sampled_in_order_within_the_call(store: RunStore) -> None:
    async with MiniAgents(record_to=store):
        reply = await streamer.trigger(tokens=50)
    assert str(reply[0]) == ("0123456789" * 5)
    run = last_run(store)
    assert run.summary.tokens == 50
    [call] = run.roots
    [message] = call.replied
    assert message.streamed
    assert message.tokens == 50
    assert message.text == "0123456789" * 5
    arrivals = message.token_arrivals()
    assert len(arrivals) == 50
    assert arrivals == sorted(arrivals)
    assert call.started_at is not None
    assert message.ended_at is not None
    assert message.replied_at <= arrivals[0]
    assert arrivals[-1] <= message.ended_at
    assert list(message.token_counts) == sorted(set(message.token_counts))  # cumulative, one entry per sample


async def test_llm_request_metadata_is_recorded_from_the_reply(store: RunStore) -> None:
    llm = FakeLLMAgent.fork(replies=["Hello there, traveller"], temperature=0.5)
    async with MiniAgents(record_to=store):
        reply = await llm.trigger("hi")
    [call] = last_run(store).roots
    [request] = call.llm_requests
    assert (request.provider, request.model, request.stop_reason) == ("fake", "fake-llm", "stop")
    assert request.usage["total_tokens"] == reply[0].usage.total_tokens > 0
    assert request.parameters["temperature"] == 0.5
    assert request.time_to_first_token is not None
    assert request.time_to_first_token >= 0
    assert call.replied[0].streamed
    assert call.replied[0].text == "Hello there, traveller"


async def test_labelled_runs_and_children_stay_in_their_parents_run(store: RunStore) -> None:
    async with MiniAgents(record_to=store):
        with store.run_label("first"):
            first = aggregator.trigger(count=2)
        with store.run_label("second"):
            await aggregator.trigger(count=1)
        await first  # its children are made now, outside the block: they still belong to "first"
    assert [(s.label, s.calls) for s in store.runs()] == [("second", 2), ("first", 3)]
    assert [s.label for s in store.runs(label="first")] == ["first"]
    assert store.runs(limit=1)[0].label == "second"


async def test_a_label_around_the_context_names_its_run(store: RunStore) -> None:
    with store.run_label("whole context"):
        async with MiniAgents(record_to=store):
            await aggregator.trigger(count=1)
    assert [s.label for s in store.runs()] == ["whole context"]


async def test_a_path_records_into_the_shared_store_of_that_file(store_path: Path) -> None:
    async with MiniAgents(record_to=store_path):
        await aggregator.trigger(count=1)
    async with MiniAgents(record_to=str(store_path)):
        await aggregator.trigger(count=2)
    shared = RunStore.shared(store_path)
    try:
        assert [s.calls for s in shared.runs()] == [3, 2]
    finally:
        shared.close()


async def test_the_notebook_layer_can_start_a_run_per_cell(store: RunStore) -> None:
    context = MiniAgents(record_to=store)
    async with context:
        recording = context.recording
        assert isinstance(recording, StoreRecording)  # what a RunStore recording is
        start_run = recording.start_run
        first = start_run("cell 1", notebook="demo.ipynb", cell="1")
        await aggregator.trigger(count=1)
        first.end()
        second = start_run(notebook="demo.ipynb", cell="2")
        await aggregator.trigger(count=2)
        assert second.run_id is not None
        assert first.run_id is not None
    by_id = {s.run_id: s for s in store.runs()}
    assert (by_id[first.run_id].label, by_id[first.run_id].cell, by_id[first.run_id].calls) == ("cell 1", "1", 2)
    assert (by_id[second.run_id].notebook, by_id[second.run_id].cell, by_id[second.run_id].calls) == (
        "demo.ipynb",
        "2",
        3,
    )


async def test_the_text_form_is_deterministic_and_the_html_escapes(store: RunStore) -> None:
    @miniagent
    async def shouty(ctx: InteractionContext) -> None:
        ctx.reply("<script>alert(1)</script>\x1b[31mred")

    for _ in range(2):
        async with MiniAgents(record_to=store):
            await shouty.trigger()
    first, second = (store.load(summary.run_id) for summary in store.runs())
    assert first.text == second.text
    assert (
        first.text
        == "Run (no label) · finished · 1 calls · 1 messages · 0 failures\n  SHOUTY · finished\n    → <script>alert(1)</script>red"
    )
    bundle = first._repr_mimebundle_()
    assert bundle["text/plain"] == first.text
    assert "<script>" not in bundle["text/html"]
    assert "&lt;script&gt;" in bundle["text/html"]


async def test_the_file_carries_its_schema_version(store: RunStore, store_path: Path) -> None:
    async with MiniAgents(record_to=store):
        await aggregator.trigger(count=1)
    store.flush()
    with sqlite3.connect(store_path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_messages_are_stored_once_by_hash_key(store: RunStore, store_path: Path) -> None:
    async with MiniAgents(record_to=store):
        await aggregator.trigger("same question", count=3)
        await aggregator.trigger("same question", count=3)
    store.flush()
    with sqlite3.connect(store_path) as connection:
        (count,) = connection.execute("SELECT COUNT(*) FROM messages").fetchone()
    assert count == 1 + 6  # the question once, six distinct replies


async def test_parallel_top_level_calls_share_the_contexts_run(store: RunStore) -> None:
    async with MiniAgents(record_to=store) as context:
        assert context.recording is not None
        await asyncio.gather(*(aggregator.trigger(count=1) for _ in range(3)))
    run = last_run(store)
    assert len(run.roots) == 3
    assert all(isinstance(call, RecordedCall) for call in run.calls.values())


async def test_hash_keys_follow_the_contexts_longer_hash_keys(store: RunStore) -> None:
    @miniagent
    async def nested(ctx: InteractionContext) -> None:
        ctx.reply(TextMessage("outer", inner=TextMessage("inner")))

    async with MiniAgents(record_to=store, longer_hash_keys=True):
        [reply] = await nested.trigger()
        expected = reply.hash_key
    assert len(expected) == 64
    run = last_run(store)
    [loaded] = run.roots[0].replies
    assert isinstance(loaded, TextMessage)
    assert set(run.messages) == {expected, reply.inner.hash_key}


async def test_errors_as_messages_and_cancelled_calls_are_recorded_as_they_happened(store: RunStore) -> None:
    started = asyncio.Event()

    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        raise RuntimeError("broken")

    @miniagent
    async def waiting(ctx: InteractionContext) -> None:
        started.set()
        await asyncio.Event().wait()

    async with MiniAgents(record_to=store, errors_as_messages=True, log_level_for_errors=0):
        assert [str(m) for m in await failing.trigger()] == ["RuntimeError: broken"]
        call = waiting.initiate_call()
        call.reply_sequence()  # finished input; the agent starts at the next switch
        await started.wait()
        assert call.cancel()
    statuses = {call.alias: (call.status, str(call.error)) for call in last_run(store).roots}
    assert statuses == {
        "FAILING": (AgentCallStatus.FAILED, "RuntimeError: broken"),
        "WAITING": (AgentCallStatus.CANCELLED, "None"),
    }


async def test_a_lazy_stream_nobody_consumed_is_recorded_as_not_produced(store: RunStore) -> None:
    @miniagent
    async def lazy(ctx: InteractionContext) -> None:
        async def tokens(_aux: dict[str, Any]) -> AsyncIterator[str]:
            yield "never"

        ctx.reply(TextMessage.promise(message_token_streamer=tokens, start_soon=False))

    async with MiniAgents(record_to=store):
        lazy.trigger(start_soon=True)
    [call] = last_run(store).roots
    [message] = call.replied
    assert message.message is None
    assert message.text == "(not produced)"


async def test_the_recorded_tree_and_times_are_the_ones_the_live_calls_had(store: RunStore) -> None:
    live: dict[int, Any] = {}
    context = MiniAgents(record_to=store)
    async with context:
        context.subscribe(lambda event: live.setdefault(event.call_id, event.call))
        replies = await aggregator.trigger("question", count=4)
    run = last_run(store)
    assert set(run.calls) == set(live)
    for call_id, call in live.items():
        recorded = run.calls[call_id]
        parent = call.parent
        assert (recorded.alias, recorded.parent_id) == (call.agent.alias, None if parent is None else parent.call_id)
        assert (recorded.queued_at, recorded.started_at, recorded.ended_at) == (
            call.queued_at,
            call.started_at,
            call.ended_at,
        )
        assert recorded.status is call.status
    recorded_replies = run.roots[0].replies
    assert all(isinstance(message, Message) for message in recorded_replies)
    assert [getattr(message, "hash_key", None) for message in recorded_replies] == [m.hash_key for m in replies]


async def test_each_calls_wall_clock_start_is_the_live_calls(store: RunStore) -> None:
    """`wall_start` (epoch seconds) is the live call's queued moment on the wall clock, taken within the run."""
    live: dict[int, Any] = {}
    context = MiniAgents(record_to=store)
    before = time.time()
    async with context:
        context.subscribe(lambda event: live.setdefault(event.call_id, event.call))
        await aggregator.trigger("question", count=2)
        await asyncio.sleep(0.02)  # a later top-level call starts visibly later on the wall clock
        await child.trigger("again", i=9)
    after = time.time()
    run = last_run(store)
    assert set(run.calls) == set(live)
    for call_id, call in live.items():
        recorded = run.calls[call_id]
        assert recorded.wall_start == wall_clock(call.queued_at)
        assert before - _CLOCK_SLACK_S <= recorded.wall_start <= after + _CLOCK_SLACK_S
    first, *_, last = run.calls.values()
    assert last.wall_start - first.wall_start == pytest.approx(last.queued_at - first.queued_at, abs=1e-6)
    assert last.wall_start - first.wall_start >= 0.015
    assert before - _CLOCK_SLACK_S <= run.summary.started <= after + _CLOCK_SLACK_S


async def test_a_calls_input_list_is_in_the_store_while_the_call_still_runs(store: RunStore) -> None:
    """Noted when the call starts (its inputs are known by then), not only when it ends: a run cut by a kill keeps
    what its calls were asked."""
    go_on = asyncio.Event()

    @miniagent
    async def waiting(ctx: InteractionContext) -> None:
        ctx.reply("first")
        await go_on.wait()
        ctx.reply("second")

    async with MiniAgents(record_to=store) as context:
        reply = waiting.trigger(["asked", "twice"])
        async for promise in reply:
            await promise
            break
        try:
            recording = context.recording
            assert isinstance(recording, StoreRecording)
            recording.flush()
            [call] = last_run(store).roots
            assert call.status is AgentCallStatus.RUNNING
            assert [str(message) for message in call.inputs] == ["asked", "twice"]
            assert [message.text for message in call.replied] == ["first"]
        finally:
            go_on.set()  # (a failed check does not leave the context waiting for the agent)
        await reply
    [call] = last_run(store).roots
    assert call.status is AgentCallStatus.FINISHED
    assert [str(message) for message in call.inputs] == ["asked", "twice"]
    assert [str(message) for message in call.replies] == ["first", "second"]


async def test_secrets_nested_in_an_agents_arguments_never_reach_the_store_file(store: RunStore) -> None:
    @miniagent
    async def fetcher(ctx: InteractionContext, url: str, headers: dict[str, str], options: dict[str, Any]) -> None:
        ctx.reply(f"fetched {url}")

    headers = {"Authorization": "Bearer sk-nested-secret-1", "X-Api-Key": "sk-nested-secret-2", "Accept": "text/html"}
    options = {"retry": {"token": "sk-nested-secret-3", "count": 2}}
    async with MiniAgents(record_to=store):
        await fetcher.trigger(url="https://example.org", headers=headers, options=options)
    store.flush()
    call = last_run(store).roots[0]
    assert call.kwargs["headers"] == {"Authorization": "•••", "X-Api-Key": "•••", "Accept": "text/html"}
    assert call.kwargs["options"] == {"retry": {"token": "•••", "count": 2}}
    raw = b"".join(path.read_bytes() for path in Path(store.path).parent.glob(Path(store.path).name + "*"))
    assert b"sk-nested-secret" not in raw


async def test_a_run_is_stored_alike_whether_the_store_is_told_plainly_or_by_events(store: RunStore) -> None:
    """Alone, the store's recording is told of calls with plain arguments; with another observer, by events."""
    async with MiniAgents(record_to=store):
        await aggregator.trigger("question", count=3)
    seen: list[object] = []
    async with MiniAgents(record_to=store) as context:
        context.subscribe(seen.append)
        await aggregator.trigger("question", count=3)
    assert seen  # the second run was watched by events
    plain, evented = sorted(store.runs(), key=lambda summary: summary.run_id)
    assert (
        (plain.calls, plain.messages, plain.status)
        == (evented.calls, evented.messages, evented.status)
        == (
            4,
            6,
            "finished",
        )
    )
    assert store.load(plain.run_id).text == store.load(evented.run_id).text
