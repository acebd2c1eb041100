"""The timeline of a view: one lane per agent call in tree order, queued <= started <= ended on the run's clock,
message marks and token ticks, the same lanes in the static forms (times only in the HTML one)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from miniagents_nb import InteractionContext, MiniAgents, TextMessage, miniagent
from miniagents_nb.errors import InvalidArgumentsError
from miniagents_nb.jupyter import SequenceView
from miniagents_nb.jupyter._render import mark_incomplete, render_html, render_text
from miniagents_nb.jupyter._timeline import axis_ticks, format_seconds, timeline_lanes
from miniagents_nb.jupyter._tracker import CallTracker
from miniagents_nb.jupyter.views import make_view

from .helpers import RecordingComm
from .test_views import CRITIC, editor, observed_run


async def _editor_timeline(tracker: CallTracker) -> SequenceView:
    reply = editor.trigger()
    view = SequenceView(reply, timeline=True, tracker=tracker, max_updates_per_second=200)
    await reply
    await view.wait()
    return view


async def test_lanes_follow_the_calls_in_tree_order_with_their_times(comms: list[RecordingComm]) -> None:
    view = await observed_run(_editor_timeline)
    state = view.state
    assert state["show_timeline"] is True
    assert state["show_tree"] is False
    lanes = timeline_lanes(state)
    assert [(depth, node["alias"]) for depth, node in lanes] == [(0, "EDITOR"), (1, "WRITER"), (1, "CRITIC")]
    for _, node in lanes:
        assert node["status"] == "done"
        assert 0 <= node["queued"] <= node["started"] <= node["ended"] <= state["clock"]
        assert len(node["marks"]) == node["message_count"] == 1
        assert node["started"] <= node["marks"][0] <= node["ended"]  # replied while its function ran
    editor_node, writer, critic = (node for _, node in lanes)
    assert editor_node["queued"] == 0.0  # the clock starts when the first call is queued
    # exact once everything ended: the last end, or the last tokens (they stream on after the functions return)
    assert state["clock"] == max(max([node["ended"], *node["ticks"]]) for _, node in lanes)
    # inclusive time: until the last callee and the last token under the editor; its own function ended at once
    assert editor_node["total"] == pytest.approx(state["clock"] - editor_node["started"], abs=0.002)
    assert editor_node["elapsed"] <= editor_node["total"]
    for streamed in (writer, critic):
        assert streamed["ticks"], "the tokens were seen arriving"
        assert streamed["ttft"] is not None
        assert streamed["ttft"] == pytest.approx(streamed["ticks"][0] - streamed["started"], abs=0.002)


async def test_static_forms_show_the_same_lanes_text_without_times(comms: list[RecordingComm]) -> None:
    view = await observed_run(_editor_timeline)
    state = view.state
    text = render_text(state)
    assert text.splitlines()[-4:] == [
        "Timeline: 3 agent calls",
        "  EDITOR (done)",
        "    WRITER (done)",
        "    CRITIC (done)",
    ]
    assert not re.search(r"\d\.\d+ s", text)  # deterministic for nbval: no times in text/plain
    html = render_html(state)
    assert re.findall(r'class="mna-lane mna-status-(\w+)" data-alias="(\w+)"', html) == [
        ("done", "EDITOR"),
        ("done", "WRITER"),
        ("done", "CRITIC"),
    ]
    assert html.count('class="mna-lane-bar mna-badge mna-badge-done"') == 3
    assert html.count('class="mna-lane-mark"') == 3
    span = format_seconds(max(state["clock"], 0.001))
    assert f'<span class="mna-timeline-span">{span}</span>' in html
    lane_titles = re.findall(r'<div class="mna-lane [^"]*" data-alias="\w+" data-status="\w+" title="([^"]*)"', html)
    assert lane_titles[0].startswith("EDITOR · done · queued at 0.000 s · started at ")
    assert all(" · ended at " in title for title in lane_titles)


async def test_a_cancelled_call_that_never_started_waits_to_the_end_and_incomplete_lanes_say_so(
    comms: list[RecordingComm],
) -> None:
    started = asyncio.Event()

    @miniagent(alias="HOLDER")
    async def holder(ctx: InteractionContext) -> None:
        ctx.reply(CRITIC.trigger(start_soon=False))
        started.set()
        await asyncio.Event().wait()  # until cancelled

    async def run(tracker: CallTracker) -> SequenceView:
        reply = holder.trigger()
        view = SequenceView(reply, timeline=True, messages=False, tracker=tracker)
        await started.wait()
        state = view._model.snapshot()  # a snapshot mid-run, as a kernel that died now would leave it
        assert [node["status"] for _, node in timeline_lanes(state)] == ["running", "queued"]
        forced = render_html(mark_incomplete(state))
        assert re.findall(r'class="mna-lane mna-status-(\w+)" data-alias="(\w+)"', forced) == [
            ("incomplete", "HOLDER"),
            ("incomplete", "CRITIC"),
        ]
        assert tracker.cancel(tracker.live_records()) == 2
        await view.wait()
        return view

    view = await observed_run(run)
    (_, holder_node), (_, critic_node) = timeline_lanes(view.state)
    assert (holder_node["status"], critic_node["status"]) == ("cancelled", "cancelled")
    assert critic_node["started"] is None
    html = render_html(view.state)
    critic_lane = html[html.index('data-alias="CRITIC"') :]
    assert 'class="mna-lane-wait"' in critic_lane.split("</div></div>")[0]
    assert "mna-lane-bar" not in critic_lane.split('data-alias="', 1)[0]


async def test_timeline_arguments_are_checked() -> None:
    async with MiniAgents():
        reply = CRITIC.trigger()
        with pytest.raises(InvalidArgumentsError, match="%load_ext miniagents_nb"):
            make_view(reply, timeline=True)
        with pytest.raises(InvalidArgumentsError, match="applies to message sequences"):
            make_view(TextMessage("x"), timeline=True)
        await reply


def test_seconds_read_naturally() -> None:
    samples: list[Any] = [0.0421, 3.214, 42.04, 125.2]
    assert [format_seconds(seconds) for seconds in samples] == ["0.042 s", "3.21 s", "42.0 s", "2 min 5 s"]


@pytest.mark.parametrize(
    ("span", "labels"),
    [
        (1.32, ["0.0 s", "0.5 s", "1.0 s"]),
        (0.774, ["0.0 s", "0.2 s", "0.4 s", "0.6 s"]),
        (1.0, ["0.00 s", "0.25 s", "0.50 s", "0.75 s"]),  # none at the very end: the title says the span
        (6.12, ["0 s", "2 s", "4 s"]),
        (0.0004, ["0.0 ms", "0.1 ms", "0.2 ms", "0.3 ms"]),
        (5400.0, ["0 min", "30 min", "60 min"]),
        (0.0, ["0 s"]),
    ],
)
def test_the_axis_is_labelled_at_round_times(span: float, labels: list[str]) -> None:
    ticks = axis_ticks(span)
    assert [text for _, text in ticks] == labels
    steps = {round(b - a, 12) for (a, _), (b, _) in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) <= 1  # evenly spaced
    assert all(at < span or at == 0 for at, _ in ticks)
