"""A live view's saved form (`jupyter/_saved_form.py`): what a notebook saved mid-stream keeps in the widget's place.

While the view is live its `saved_form` trait holds the static forms of what it has so far, marked incomplete,
refreshed with the deltas at most once per `SAVED_FORM_INTERVAL`; once final it is empty (the outputs hold the
exact final forms then). The front end's half (static/saving.js) is tested in JupyterLab:
tests/browser/test_kernel_death.py.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

from miniagents_nb import InteractionContext, MiniAgents, TextMessage, miniagent
from miniagents_nb.jupyter import SequenceView
from miniagents_nb.jupyter import views as views_module
from miniagents_nb.jupyter._tracker import CallTracker

from .helpers import RecordingComm, comm_of


def gated_writer(first: asyncio.Event, release: asyncio.Event) -> Any:
    """WRITER streams "Once upon a time", waits for `release`, then ends the story."""

    async def stream(_aux: dict[str, Any]) -> AsyncIterator[str]:
        for token in ("Once ", "upon ", "a ", "time"):
            yield token
        first.set()
        await release.wait()
        yield ", the end."

    async def writer(ctx: InteractionContext) -> None:
        ctx.reply(TextMessage.promise(message_token_streamer=stream))

    return miniagent(writer, alias="WRITER")


def has_text(text: str) -> Any:
    return lambda form: text in form.get("text/plain", "")


async def test_a_live_view_keeps_its_saved_form_so_far_marked_incomplete_then_empties_it(
    comms: list[RecordingComm], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views_module, "SAVED_FORM_INTERVAL", 0.0)  # every delta refreshes it
    first, release = asyncio.Event(), asyncio.Event()
    writer = gated_writer(first, release)
    async with MiniAgents() as mini_agents:
        tracker = CallTracker(mini_agents)
        mini_agents.subscribe(tracker)
        reply = writer.trigger()
        view = SequenceView(reply, tree=True, tracker=tracker)
        recording = comm_of(comms, view)
        await first.wait()
        try:
            await recording.wait_until(
                lambda: any(map(has_text("Once upon a time"), recording.saved_forms())),
                what="a saved form with the text",
            )
        finally:
            release.set()  # whatever happens, the story ends (or the context would wait for it forever)
        live = next(filter(has_text("Once upon a time"), recording.saved_forms()))
        assert live["text/plain"] == (
            "WRITER · 1 message · incomplete (the kernel stopped before it ended)\n"
            "[WRITER] Once upon a time\n"
            "    (incomplete)\n"
            "Agent calls:\n"
            "  WRITER: done, 1 message"  # the call ended; its message had not
        )
        assert "mna-badge-incomplete" in live["text/html"]
        assert ">Once upon a time</div>" in live["text/html"]
        await reply
        await view.wait()
    assert view.is_final
    assert recording.saved_forms()[-1] == {}  # emptied with the final state, in the same trait update
    assert recording.state_updates()[-1]["saved_form"] == {}
    assert view.state["messages"][0]["text"] == "Once upon a time, the end."


async def test_the_saved_form_is_refreshed_with_the_deltas_at_most_once_per_interval(
    comms: list[RecordingComm], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views_module, "SAVED_FORM_INTERVAL", math.inf)  # one saved form, at the first delta
    first, release = asyncio.Event(), asyncio.Event()
    writer = gated_writer(first, release)
    async with MiniAgents():
        reply = writer.trigger()
        view = SequenceView(reply, max_updates_per_second=1000)
        recording = comm_of(comms, view)
        await first.wait()
        try:
            await recording.wait_until(lambda: bool(recording.saved_forms()), what="the first saved form")
        finally:
            release.set()
        await reply
        await view.wait()
    forms = recording.saved_forms()
    assert len(recording.custom_messages()) >= 2  # several deltas went out
    assert len(forms) == 2  # but one saved form while live (the interval had not passed), then the empty one
    assert "incomplete" in forms[0]["text/plain"]
    assert forms[1] == {}
