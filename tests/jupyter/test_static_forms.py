"""The static forms of views and chats: what a saved notebook keeps and shows without a kernel. They are the live
DOM with the widget's stylesheet (same classes as static/views.js and static/user_agent.js), they never carry the
widget once final, untrusted text stays text, and a view whose kernel went away mid-stream says `incomplete`."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from typing import Any

from miniagents_nb import InteractionContext, MessageTokenAppender, MiniAgents, TextMessage, miniagent
from miniagents_nb.jupyter import SequenceView
from miniagents_nb.jupyter._chat_model import render_chat_html
from miniagents_nb.jupyter._render import mark_incomplete, render_html, render_text
from miniagents_nb.jupyter._tracker import CallTracker

from .helpers import RecordingComm

WIDGET = "application/vnd.jupyter.widget-view+json"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class Elements(HTMLParser):
    """Every start tag with its classes, and the text outside <style>."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, set[str]]] = []
        self.text: list[str] = []
        self._in_style = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, set((dict(attrs).get("class") or "").split())))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if not self._in_style:
            self.text.append(data)

    def classes(self) -> set[str]:
        return {name for _, names in self.tags for name in names}


def state(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "sequence",
        "title": "EDITOR",
        "status": "done",
        "error": None,
        "show_messages": True,
        "show_tree": True,
        "messages": [
            {"sender": "EDITOR", "text": "draft", "status": "done", "error": None},
            {"sender": "POET", "text": "roses", "status": "done", "error": None},
        ],
        "nodes": {
            "1": {
                "alias": "EDITOR",
                "status": "done",
                "error": None,
                "message_count": 1,
                "messages": ["draft"],
                "children": ["2"],
                "elapsed": 1.0,
            },
            "2": {
                "alias": "POET",
                "status": "done",
                "error": None,
                "message_count": 1,
                "messages": ["roses"],
                "children": [],
                "elapsed": 0.5,
            },
        },
        "roots": ["1"],
    }
    base.update(overrides)
    return base


def test_the_static_html_is_the_live_dom_with_its_stylesheet() -> None:
    html = render_html(state())
    assert html.startswith("<style>")
    assert ".mna-badge" in html
    assert ".mna-message-text" in html
    found = Elements(html)
    # the classes static/views.js gives the same parts (the browser tests read both through these selectors)
    assert {
        "mna-view",
        "mna-header",
        "mna-title",
        "mna-view-status",
        "mna-badge",
        "mna-badge-done",
        "mna-messages",
        "mna-message",
        "mna-status-done",
        "mna-sender",
        "mna-message-text",
        "mna-tree",
        "mna-tree-title",
        "mna-tree-list",
        "mna-node",
        "mna-node-line",
        "mna-node-box",
        "mna-node-alias",
        "mna-node-status",
        "mna-node-count",
        "mna-node-messages",
        "mna-node-message",
    } <= found.classes()
    assert ("pre", set()) not in [(tag, set()) for tag, _ in found.tags]  # no <pre>: JupyterLab's rules break words
    assert re.search(r'<li class="mna-node mna-status-done" data-status="done" data-alias="EDITOR" data-id="1">', html)
    assert re.search(r'data-alias="EDITOR"[^>]*>.*<ul class="mna-tree-list"><li [^>]*data-alias="POET"', html)
    # every call folds, with no script: a <details> whose <summary> is the node's line, open at this depth
    assert re.search(r'data-id="1"><details class="mna-node-box" open><summary class="mna-node-line">', html)
    assert "".join(found.text).startswith("EDITOR · 2 messages done")


def test_untrusted_text_stays_text_in_every_part() -> None:
    hostile = state(
        title=HOSTILE,
        messages=[{"sender": HOSTILE, "text": HOSTILE, "status": "failed", "error": HOSTILE}],
        nodes={
            "1": {
                "alias": HOSTILE,
                "status": "failed",
                "error": HOSTILE,
                "message_count": 1,
                "messages": [HOSTILE],
                "children": [],
                "elapsed": None,
            }
        },
    )
    chat = {
        "title": HOSTILE,
        "status": "ended",
        "error": None,
        "greeting": HOSTILE,
        "messages": [{"role": "user", "sender": HOSTILE, "text": HOSTILE, "status": "done", "error": None}],
        "chat": {"notice": HOSTILE},
    }
    for html in (render_html(hostile), render_chat_html(chat)):
        found = Elements(html)
        assert not {tag for tag, _ in found.tags} & {"script", "img"}
        assert "".join(found.text).count(HOSTILE) >= 4


def test_what_had_not_ended_reads_incomplete() -> None:
    running = state(
        status="streaming",
        messages=[
            {"sender": "EDITOR", "text": "draft", "status": "done", "error": None},
            {"sender": "POET", "text": "ros", "status": "streaming", "error": None},
        ],
    )
    running["nodes"]["2"]["status"] = "running"
    marked = mark_incomplete(running)
    assert running["status"] == "streaming"  # a copy
    assert [m["status"] for m in marked["messages"]] == ["done", "incomplete"]
    assert [n["status"] for n in marked["nodes"].values()] == ["done", "incomplete"]
    assert render_text(marked).splitlines()[0] == (
        "EDITOR · 2 messages · incomplete (the kernel stopped before it ended)"
    )
    assert "    (incomplete)" in render_text(marked)
    html = render_html(marked)
    assert 'class="mna-view-status mna-badge mna-badge-incomplete"' in html
    assert '<div class="mna-message-error">incomplete</div>' in html


async def test_a_final_view_gives_up_the_widget_and_a_forced_end_marks_it_incomplete(
    comms: list[RecordingComm],
) -> None:
    streaming_now = asyncio.Event()

    @miniagent(alias="ENDLESS")
    async def endless(ctx: InteractionContext) -> None:
        with MessageTokenAppender() as appender:
            ctx.reply(TextMessage.promise(message_token_streamer=appender))
            appender.append("the beginning")
            streaming_now.set()
            await asyncio.Event().wait()  # until cancelled

    @miniagent(alias="QUICK")
    async def quick(ctx: InteractionContext) -> None:
        ctx.reply("all there is")

    async with MiniAgents() as mini_agents:
        tracker = CallTracker(mini_agents)
        mini_agents.subscribe(tracker)
        try:
            await _check_final_and_forced_views(tracker, quick, endless, streaming_now)
        finally:
            tracker.cancel(tracker.active_records())


async def _check_final_and_forced_views(
    tracker: CallTracker, quick: Any, endless: Any, streaming_now: asyncio.Event
) -> None:
    done_view = SequenceView(quick.trigger(), tracker=tracker)
    await done_view.wait()
    bundle, _ = done_view._repr_mimebundle_()
    assert WIDGET not in bundle  # final: the static form alone
    assert '<div class="mna-message-text">all there is</div>' in bundle["text/html"]

    live_view = SequenceView(endless.trigger(), tracker=tracker)
    bundle, _ = live_view._repr_mimebundle_()
    assert WIDGET in bundle  # still changing: the live widget first, the static form as its fallback
    await streaming_now.wait()
    # the follower is cancelled, as when the kernel shuts down mid-stream
    follower = live_view._task
    assert follower is not None
    follower.cancel()
    await asyncio.gather(follower, return_exceptions=True)
    assert live_view.is_final
    bundle, _ = live_view._repr_mimebundle_()
    assert WIDGET not in bundle
    assert live_view.state["messages"][0]["status"] == "incomplete"
    assert "the beginning" in bundle["text/plain"]
    assert "(incomplete)" in bundle["text/plain"]
