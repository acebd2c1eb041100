"""Live views under hostile text (issue 17): message text and agent aliases with markup (`<script>`, `<img onerror>`,
`</pre>`, `</details>`, quotes), one very long line and a 10 MB message, through the real path (agents, the call
tracker, the views' widget state and their static forms, with the calls' details). Markup stays text everywhere; the
widget is sent text, never markup (its front end builds the DOM with `textContent`); what a view sends and keeps is
bounded however long a message is.

Escaping already held on main (the static forms escape every part, the front end never parses HTML); these tests
document it end to end. The bound on what a live view sends is new.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from miniagents_nb import InteractionContext, MiniAgents, TextMessage, miniagent
from miniagents_nb.jupyter import SequenceView, TokenStreamView
from miniagents_nb.jupyter._render import FALLBACK_MESSAGE_CHARS
from miniagents_nb.jupyter._streams import LIVE_MESSAGE_CHARS
from miniagents_nb.jupyter._tracker import CallTracker

from .helpers import RecordingComm, comm_of, replay

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)></pre></details></div><!--\"'&amp;"
LONG_LINE = "y" * (LIVE_MESSAGE_CHARS + 50_000)
TEN_MB = ("z" * 999 + "\n") * 10_000
STATIC = Path(__file__).resolve().parents[2] / "miniagents_nb" / "jupyter" / "static"


class Parsed(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@miniagent(alias=HOSTILE)
async def hostile_agent(ctx: InteractionContext) -> None:
    ctx.reply(HOSTILE)
    ctx.reply(LONG_LINE)
    ctx.reply(TEN_MB)


def _more_than(recording: RecordingComm, count: int) -> bool:
    return len(recording.published) > count


def published_bytes(comms: list[RecordingComm]) -> int:
    return sum(len(json.dumps(data)) for recording in comms for _, data in recording.published)


def assert_markup_stays_text(html: str) -> None:
    parsed = Parsed(html)
    assert not parsed.tags & {"script", "img", "iframe", "object", "embed"}
    assert not {name for name in parsed.attributes if name.startswith("on")}
    assert HOSTILE in "".join(parsed.text)


async def _finished_view(comms: list[RecordingComm]) -> tuple[SequenceView, Any]:
    async with MiniAgents() as mini_agents:
        tracker = CallTracker(mini_agents)
        mini_agents.subscribe(tracker)
        reply = hostile_agent.trigger(HOSTILE)
        view = SequenceView(reply, tree=True, tracker=tracker)
        messages = await reply
        await view.wait()
    return view, messages


async def test_hostile_text_and_aliases_stay_text_in_every_form(comms: list[RecordingComm]) -> None:
    """Held on main already: documents it end to end."""
    view, messages = await _finished_view(comms)
    bundle, _ = view._repr_mimebundle_()
    assert_markup_stays_text(bundle["text/html"])  # messages, senders, the tree and the calls' details
    assert HOSTILE in bundle["text/plain"]
    # the widget gets the text itself as data (its front end puts it in with textContent)
    assert view.state["messages"][0]["text"] == HOSTILE
    assert [message["sender"] for message in view.state["messages"]] == [HOSTILE] * 3
    assert str(messages[2]) == TEN_MB  # the message itself is whole


async def test_a_long_line_and_ten_megabytes_stay_bounded_in_every_form(comms: list[RecordingComm]) -> None:
    view, _ = await _finished_view(comms)
    bundle, _ = view._repr_mimebundle_()
    assert len(bundle["text/html"]) < 10 * FALLBACK_MESSAGE_CHARS  # the static forms were capped on main already
    shown = [message["text"] for message in view.state["messages"]]
    for text, full in zip(shown[1:], (LONG_LINE, TEN_MB), strict=True):
        assert text == f"{full[:LIVE_MESSAGE_CHARS]}… [{len(full) - LIVE_MESSAGE_CHARS} more characters]"
    # the 10 MB message is not sent (twice) to the front end: opened with both capped texts, then the final state
    assert published_bytes(comms) < 5 * LIVE_MESSAGE_CHARS


async def test_a_token_stream_view_of_a_ten_megabyte_message_stays_bounded(comms: list[RecordingComm]) -> None:
    async with MiniAgents():
        reply = hostile_agent.trigger()
        promises = [promise async for promise in reply]
        view = TokenStreamView(promises[2])
        await promises[2]
        await view.wait()
    assert view.state["messages"][0]["text"].endswith(f"… [{len(TEN_MB) - LIVE_MESSAGE_CHARS} more characters]")
    assert published_bytes(comms) < 3 * LIVE_MESSAGE_CHARS
    assert len(view._repr_mimebundle_()[0]["text/html"]) < 2 * FALLBACK_MESSAGE_CHARS


def test_the_front_end_never_parses_markup() -> None:
    """The widgets' code builds every node with createElement / textContent: no message text reaches the DOM as
    HTML. The one exception is the runs table, which shows a recorded run as the kernel's own static form (the same
    escaped HTML as a display's text/html: see test_hostile_text_and_aliases_stay_text_in_every_form)."""
    sources = {path.name: path.read_text(encoding="utf-8") for path in sorted(STATIC.glob("*.js"))}
    code = "\n".join(sources.values())
    assert "textContent" in code
    runs_table = sources.pop("runs_table.js", "")
    assert runs_table.count("innerHTML") <= 1
    assert "innerHTML = run.html" in runs_table or "innerHTML" not in runs_table
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "createContextualFragment"):
        for name, source in sources.items():
            assert sink not in source, f"{name}: {sink}"
        if sink != "innerHTML":
            assert sink not in runs_table, sink
    assert re.search(r"\beval\(|new Function\(", code) is None


async def test_a_message_streamed_past_the_cap_reads_the_same_on_the_front_end(comms: list[RecordingComm]) -> None:
    chunk = "w" * (LIVE_MESSAGE_CHARS // 4) + "\n"
    gates = [asyncio.Event() for _ in range(8)]

    async def stream(_aux: dict[str, Any]) -> AsyncIterator[str]:
        for gate in gates:
            await gate.wait()
            yield chunk

    @miniagent(alias="STREAMER")
    async def streamer(ctx: InteractionContext) -> None:
        ctx.reply(TextMessage.promise(message_token_streamer=stream))

    async with MiniAgents() as mini_agents:
        tracker = CallTracker(mini_agents)
        mini_agents.subscribe(tracker)
        reply = streamer.trigger()
        view = SequenceView(reply, tracker=tracker, max_updates_per_second=1000)
        recording = comm_of(comms, view)
        for gate in gates[:4]:  # up to the cap, one chunk at a time, each sent before the next is made
            sent = len(recording.published)
            gate.set()
            await recording.wait_until(functools.partial(_more_than, recording, sent), what="the next update")
        for gate in gates[4:]:  # past the cap: nothing more is sent until the end
            gate.set()
        messages = await reply
        await view.wait()
    full = str(messages[0])
    expected = f"{full[:LIVE_MESSAGE_CHARS]}… [{len(full) - LIVE_MESSAGE_CHARS} more characters]"
    assert view.state["messages"][0]["text"] == expected
    opened = recording.published[0][1]["state"]["state"]
    assert replay(opened, recording.custom_messages())["messages"][0]["text"] == expected
    assert published_bytes(comms) < 4 * LIVE_MESSAGE_CHARS


async def test_hostile_aliases_stay_text_in_the_timeline(comms: list[RecordingComm]) -> None:
    """Held on main already: documents it (the alias also lands in a `title` attribute there)."""

    @miniagent(alias=HOSTILE)
    async def quick(ctx: InteractionContext) -> None:
        ctx.reply(HOSTILE)

    async with MiniAgents() as mini_agents:
        tracker = CallTracker(mini_agents)
        mini_agents.subscribe(tracker)
        reply = quick.trigger()
        view = SequenceView(reply, timeline=True, tracker=tracker)
        await reply
        await view.wait()
    html = view._repr_mimebundle_()[0]["text/html"]
    assert "mna-lane-label" in html  # the timeline is there
    assert_markup_stays_text(html)
    assert HOSTILE in view._repr_mimebundle_()[0]["text/plain"]
