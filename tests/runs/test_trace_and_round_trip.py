"""The Chrome trace of a recorded run validates (every begin has its end, parents enclose children, token samples
add up), and message trees come back from the file with the same hash keys (hypothesis)."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from miniagents_nb import InteractionContext, Message, MiniAgents, TextMessage, miniagent
from miniagents_nb.runs import RunStore

from .helpers import aggregator, last_run, streamer


@miniagent
async def conductor(ctx: InteractionContext) -> None:
    ctx.reply(aggregator.trigger(count=2))
    ctx.reply(streamer.trigger(tokens=30))


async def test_the_chrome_trace_validates(store: RunStore, tmp_path: Path) -> None:
    async with MiniAgents(record_to=store):
        await conductor.trigger()
    run = last_run(store)
    path = run.to_chrome_trace(tmp_path / "trace.json")
    events: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["traceEvents"]

    lanes = {event["args"]["name"] for event in events if event["ph"] == "M" and event["name"] == "thread_name"}
    assert lanes == {"CONDUCTOR", "AGGREGATOR", "CHILD", "STREAMER"}
    open_slices: dict[tuple[Any, ...], dict[str, Any]] = {}
    spans: dict[int, tuple[float, float, int | None]] = {}
    for event in events:
        key = (event.get("cat"), event.get("id"), event["name"])
        if event["ph"] == "b":
            assert key not in open_slices
            open_slices[key] = event
        elif event["ph"] == "e":
            begin = open_slices.pop(key)  # every end has its begin
            assert event["ts"] >= begin["ts"]
            if "parent" in begin.get("args", {}):
                spans[begin["id"]] = (begin["ts"], event["ts"], begin["args"]["parent"])
    assert open_slices == {}  # every begin has its end
    assert len(spans) == len(run.calls) == 5
    for start, end, parent in spans.values():
        if parent is not None:
            parent_start, parent_end, _ = spans[parent]
            assert parent_start <= start
            assert end <= parent_end
    tokens = sum(event["args"]["tokens"] for event in events if event["ph"] == "n" and event["name"] == "tokens")
    assert tokens == run.summary.tokens == 30


class Note(Message):
    """A message kind of the test's own (it is rebuilt as itself: the class is loaded when the run is read)."""

    title: str


_leaf = st.builds(TextMessage, st.text(max_size=20))
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10))


def _node(children: st.SearchStrategy[Message]) -> st.SearchStrategy[Message]:
    return st.one_of(
        st.builds(
            lambda content, child, items, meta: TextMessage(content, child=child, items=items, meta=meta),
            st.text(max_size=20),
            children,
            st.lists(children, max_size=3),
            st.dictionaries(st.sampled_from(["a", "b", "c"]), _scalars, max_size=3),
        ),
        st.builds(lambda title, inner: Note(title=title, inner=inner), st.text(max_size=10), children),
    )


message_trees = st.recursive(_leaf, _node, max_leaves=8)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message_trees)
def test_message_trees_round_trip_with_their_hash_keys(tree: Message) -> None:
    @miniagent
    async def replier(ctx: InteractionContext) -> None:
        ctx.reply(tree)

    async def record(store: RunStore) -> None:
        async with MiniAgents(record_to=store):
            await replier.trigger()

    with (
        tempfile.TemporaryDirectory() as directory,
        RunStore(Path(directory) / "runs.sqlite", flush_interval_s=0.005) as store,
    ):
        asyncio.run(record(store))
        [loaded] = last_run(store).roots[0].replies
    assert isinstance(loaded, Message)
    assert type(loaded).__name__ == type(tree).__name__
    assert loaded.hash_key == tree.hash_key
    assert loaded.serialized == tree.serialized
    assert [message.hash_key for message in loaded.sub_messages()] == [m.hash_key for m in tree.sub_messages()]
