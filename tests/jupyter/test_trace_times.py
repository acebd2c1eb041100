"""The trace view's times: a call's inclusive time (from its start until it and its callees finished replying) and
its self time (its body, less the time its callees ran), so an agent that hands its work to others no longer reads
"0.0 s"."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from miniagents_nb import InteractionContext, MiniAgents, miniagent
from miniagents_nb.jupyter import SequenceView
from miniagents_nb.jupyter._call_times import CallTimes
from miniagents_nb.jupyter._tracker import CallRecord, CallTracker

from .helpers import RecordingComm


def ended_record(label: str, started: float, ended: float, caller: CallRecord | None = None) -> CallRecord:
    record = CallRecord((0, int(label)), label, f"A{label}", caller, None, queued_at=0.0)
    record.started_at, record.ended_at, record.status = started, ended, "done"
    if caller is not None:
        caller.children.append(record)
    return record


def test_self_time_is_the_body_less_the_union_of_the_callees_times() -> None:
    root = ended_record("1", 0.0, 1.0)
    ended_record("2", 0.2, 0.5, root)
    ended_record("3", 0.4, 0.8, root)  # overlaps the first callee: counted once
    late = ended_record("4", 0.9, 2.5, root)  # runs past the body's end: only its first 0.1 s is subtracted
    times = CallTimes()
    assert times.total(root) == 2.5
    assert times.total(late) == 1.6
    assert times.own(root) == 0.3
    assert times.own(late) == 1.6


def test_times_are_none_while_a_callee_runs() -> None:
    root = ended_record("1", 0.0, 0.1)
    child = CallRecord((0, 2), "2", "CHILD", root, None)
    child.started_at = 0.05
    root.children.append(child)
    times = CallTimes()
    assert times.total(root) is None
    assert times.own(root) is None


release = asyncio.Event()


@miniagent(alias="WORKER")
async def worker(ctx: InteractionContext) -> None:
    await release.wait()
    ctx.reply("the work")


@miniagent(alias="DELEGATOR")
async def delegator(ctx: InteractionContext) -> None:
    ctx.reply(worker.trigger())  # hands the work over and returns at once


@miniagent(alias="WAITER")
async def waiter(ctx: InteractionContext) -> None:
    ctx.reply(await worker.trigger())  # waits for the worker, then replies


async def test_tree_nodes_carry_inclusive_and_self_times(comms: list[RecordingComm]) -> None:
    release.clear()
    async with MiniAgents() as mini_agents:
        tracker = CallTracker(mini_agents)
        mini_agents.subscribe(tracker)
        reply = delegator.trigger()
        other = waiter.trigger()
        view = SequenceView(reply, tree=True, tracker=tracker)
        other_view = SequenceView(other, tree=True, tracker=tracker)
        release.set()
        await reply
        await other
        await view.wait()
        await other_view.wait()
    for state in (view.state, other_view.state):
        (root_label,) = state["roots"]
        root = state["nodes"][root_label]
        (child_label,) = root["children"]
        child = state["nodes"][child_label]
        assert root["total"] is not None
        assert child["total"] is not None
        assert root["total"] >= child["total"]  # inclusive: the callee's time is in it
        assert root["self"] is not None
        assert root["self"] <= root["elapsed"]
        assert child["self"] == child["total"] or child["self"] <= child["elapsed"]
    waiting = other_view.state["nodes"][other_view.state["roots"][0]]
    worked = other_view.state["nodes"][waiting["children"][0]]
    # the waiter's body contains the worker's whole run: its self time is its body less that run
    assert abs(waiting["self"] - max(0.0, waiting["elapsed"] - worked["total"])) <= 0.002


def test_static_tree_folds_and_starts_closed_below_the_open_depth() -> None:
    from miniagents_nb.jupyter._render import TREE_OPEN_DEPTH, render_html

    depth = TREE_OPEN_DEPTH + 2
    nodes = {
        str(i): {
            "alias": f"LEVEL{i}",
            "status": "done",
            "error": None,
            "children": [str(i + 1)] if i < depth else [],
            "messages": [],
            "message_count": 0,
        }
        for i in range(1, depth + 1)
    }
    html = render_html(
        {
            "kind": "sequence",
            "title": "LEVEL1",
            "status": "done",
            "error": None,
            "superseded": False,
            "show_messages": False,
            "show_tree": True,
            "show_timeline": False,
            "clock": None,
            "messages": [],
            "nodes": nodes,
            "roots": ["1"],
        }
    )
    opened = re.findall(r'data-id="(\d+)"><details class="mna-node-box"( open)?>', html)
    assert [(label, bool(flag)) for label, flag in opened] == [
        (str(i), i <= TREE_OPEN_DEPTH) for i in range(1, depth + 1)
    ]


def test_static_tree_shows_inclusive_and_self_time_where_nbval_masks_them() -> None:
    from miniagents_nb.jupyter._render import render_html, render_text

    node: dict[str, Any] = {
        "alias": "BOSS",
        "status": "done",
        "error": None,
        "children": [],
        "messages": [],
        "message_count": 0,
        "total": 2.1,
        "self": 0.004,
    }
    state = {
        "kind": "sequence",
        "title": "BOSS",
        "status": "done",
        "error": None,
        "superseded": False,
        "show_messages": False,
        "show_tree": True,
        "show_timeline": False,
        "clock": None,
        "messages": [],
        "nodes": {"1": node},
        "roots": ["1"],
    }
    html = render_html(state)
    assert '<span class="mna-node-elapsed">2.10 s · self 0.004 s</span>' in html
    assert "2.10" not in render_text(state)  # text/plain stays deterministic
    rules = Path("notebooks/nbval_sanitize.cfg").read_text(encoding="utf-8")
    for pattern in re.findall(r"^regex: (.*)$", rules, flags=re.MULTILINE):
        html = re.sub(pattern, "", html)
    assert "2.10" not in html
    assert "0.004" not in html
