"""A call's details in the trace view: built when the front end asks for them (never sent with the updates), held
by a final view's static form; arguments (secrets masked), input, replies with their provider fields, the error
with its traceback; untrusted text stays text."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from miniagents_nb import InteractionContext, TextMessage, miniagent
from miniagents_nb.jupyter import SequenceView
from miniagents_nb.jupyter._details import DETAIL_TEXT_CHARS, call_details
from miniagents_nb.jupyter._render import render_html
from miniagents_nb.jupyter._tracker import CallRecord, CallTracker

from .helpers import RecordingComm, comm_of
from .test_views import observed_run


@miniagent(alias="SUMMARIZER", model="tiny-model", temperature=0.2, api_key="sk-secret-value")
async def summarizer(ctx: InteractionContext, **kwargs: Any) -> None:
    text = await ctx.message_promises.as_single_text_promise()
    ctx.reply(TextMessage(f"<b>{text}</b> in short", model="tiny-model", usage={"total_tokens": 7}))


@miniagent(alias="LEAD")
async def lead(ctx: InteractionContext) -> None:
    ctx.reply(summarizer.trigger("a long story", style="terse"))
    ctx.reply(failing.trigger("x" * (DETAIL_TEXT_CHARS + 10)))


@miniagent(alias="FAILING")
async def failing(ctx: InteractionContext) -> None:
    raise ValueError("the source was unreadable")


async def _finished_view(tracker: CallTracker) -> SequenceView:
    reply = lead.trigger()
    view = SequenceView(reply, tree=True, tracker=tracker)
    with contextlib.suppress(ValueError):  # the failure arrives at its position in the replies
        async for _ in reply:
            pass
    await view.wait()
    return view


def _details_by_alias(view: SequenceView) -> dict[str, dict[str, Any]]:
    details = view._model.all_details()
    return {entry["alias"]: entry for entry in details.values()}


async def test_details_name_arguments_input_replies_and_the_error(comms: list[RecordingComm]) -> None:
    view = await observed_run(_finished_view)
    details = _details_by_alias(view)
    summary = details["SUMMARIZER"]
    assert summary["status"] == "done"
    assert dict(map(tuple, summary["arguments"])) == {
        "model": "tiny-model",
        "temperature": "0.2",
        "api_key": "•••",  # a secret's name: never shown, never saved
        "style": "terse",
    }
    assert [entry["text"] for entry in summary["input"]] == ["a long story"]
    (reply,) = summary["replies"]
    assert reply["text"] == "<b>a long story</b> in short"
    assert ["model", "tiny-model"] in reply["fields"]
    assert ["usage", "total_tokens=7"] in reply["fields"]
    assert [label for label, _ in summary["times"]][:3] == ["queued at", "started at", "ended at"]
    broken = details["FAILING"]
    assert broken["status"] == "failed"
    assert broken["error"] == "ValueError: the source was unreadable"
    assert broken["traceback"].startswith("Traceback (most recent call last):")
    assert broken["traceback"].rstrip().endswith("ValueError: the source was unreadable")
    (long_input,) = broken["input"]
    assert long_input["text"].endswith("… [10 more characters]")
    assert details["LEAD"]["input"] == []


async def test_a_live_view_sends_details_only_when_asked(comms: list[RecordingComm]) -> None:
    gate = asyncio.Event()

    @miniagent(alias="WAITER")
    async def waiter(ctx: InteractionContext, topic: str) -> None:
        ctx.reply(f"waiting on {topic}")
        await gate.wait()

    async def run(tracker: CallTracker) -> Any:
        reply = waiter.trigger("question", topic="tea")
        view = SequenceView(reply, tree=True, tracker=tracker)
        recording = comm_of(comms, view)
        await recording.wait_until(
            lambda: any(delta.get("nodes") for delta in recording.custom_messages()), what="the first tree update"
        )
        assert not [m for m in recording.custom_messages() if m.get("type") == "details"]  # not with the updates
        label = view.state["roots"][0] if view.state["roots"] else "1"
        recording.receive({"type": "details", "id": label})
        sent = [m for m in recording.custom_messages() if m.get("type") == "details"]
        recording.receive({"type": "details", "id": "no such call"})
        unknown = [m for m in recording.custom_messages() if m.get("type") == "details"][-1]
        gate.set()
        await reply
        await view.wait()
        return sent, unknown

    sent, unknown = await observed_run(run)
    (answer,) = sent
    assert answer["details"]["alias"] == "WAITER"
    assert answer["details"]["status"] == "running"
    assert ["topic", "tea"] in answer["details"]["arguments"]
    assert [entry["text"] for entry in answer["details"]["input"]] == ["question"]
    assert unknown["details"] is None


async def test_the_final_static_form_holds_the_details_as_text(comms: list[RecordingComm]) -> None:
    view = await observed_run(_finished_view)
    html = render_html(view.state, view._model.all_details())
    assert html.count('<details class="mna-node-details">') == 3
    assert "&lt;b&gt;a long story&lt;/b&gt; in short" in html  # untrusted text stays text
    assert "<b>a long story</b>" not in html
    assert "sk-secret-value" not in html
    assert "Traceback (most recent call last)" in html
    blocks = re.findall(r'<details class="mna-node-details">[\s\S]*?</details>', html)
    assert not [block for block in blocks if "queued at" in block]  # no times in the static details
    bundle_html = view._bundle(view.state)["text/html"]
    assert bundle_html.count('<details class="mna-node-details">') == 3
    assert not re.search(r"sk-secret", bundle_html)


def test_details_of_a_call_without_input_or_replies() -> None:
    bare = CallRecord((0, 1), "1", "IDLE", None, None)
    details = call_details(bare, {"queued": 0.0})
    assert details["arguments"] == []
    assert details["input"] == []
    assert details["replies"] == []
    assert details["times"] == [["queued at", "0.000 s"]]
