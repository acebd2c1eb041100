"""Image messages in the views: shown as images (live state and static HTML) when they are a raster image's own
bytes, as text otherwise; nothing a message holds reaches an `<img src>` unless it is a checked base64 `data:` URL
of a whitelisted type; a recorded run shows its images the same way; the details do not dump the bytes."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from miniagents_nb import InteractionContext, MiniAgents, miniagent
from miniagents_nb.ext.llms import FakeLLMAgent, ToolCall, tool
from miniagents_nb.jupyter._chat_model import ChatModel, render_chat_html
from miniagents_nb.jupyter._images import MAX_SHOWN_IMAGE_CHARS, image_state, is_shown_image_source
from miniagents_nb.jupyter._recorded_view import RecordedRunView
from miniagents_nb.jupyter._render import render_html, render_text
from miniagents_nb.jupyter._tracker import CallTracker
from miniagents_nb.jupyter._view_model import ViewModel
from miniagents_nb.messages import ImageMessage
from miniagents_nb.runs import RunStore

from .helpers import tree_view_model

PNG = b"\x89PNG\r\n\x1a\n a tiny chart"
PNG_B64 = base64.b64encode(PNG).decode()
PNG_SOURCE = f"data:image/png;base64,{PNG_B64}"

CHART = ImageMessage.from_bytes(PNG, "image/png", content="A chart")
HOSTILE = [
    ImageMessage(mime_type='image/png" onerror="alert(1)', data_base64=PNG_B64),  # not a whitelisted type
    ImageMessage(mime_type="image/png", data_base64='AAAA"><script>alert(1)</script>'),  # not base64
    ImageMessage(mime_type="image/svg+xml", data_base64=base64.b64encode(b"<svg onload=alert(1)>").decode()),
    ImageMessage.from_url("data:image/svg+xml;base64,PHN2Zz4="),  # SVG can carry scripts
    ImageMessage.from_url("https://tracker.example/pixel.png"),  # never fetched by a saved notebook
    ImageMessage.from_url('data:image/png;base64,AAAA"onerror="x'),
]


def sources(page: str) -> list[str]:
    return [html.unescape(part.split('"', 1)[0]) for part in page.split('<img class="mna-message-image" src="')[1:]]


def test_only_checked_data_urls_of_raster_types_are_shown() -> None:
    assert image_state(CHART) == {"src": PNG_SOURCE, "alt": "A chart"}
    assert image_state(ImageMessage.from_url(PNG_SOURCE)) == {
        "src": PNG_SOURCE,
        "alt": f"[image image/png, {PNG_SOURCE}]",
    }
    assert image_state(ImageMessage.from_bytes(PNG, "IMAGE/JPEG")) is not None  # MIME types are case-insensitive
    assert [image_state(message) for message in HOSTILE] == [None] * len(HOSTILE)
    assert image_state("not a message") is None
    too_big = ImageMessage(mime_type="image/png", data_base64="A" * (MAX_SHOWN_IMAGE_CHARS + 4))
    assert image_state(too_big) is None
    assert not is_shown_image_source("javascript:alert(1)")


@miniagent(alias="PAINTER")
async def painter(ctx: InteractionContext) -> None:
    ctx.reply("Here is the chart:")
    ctx.reply(CHART)
    ctx.reply(HOSTILE)


async def test_a_view_shows_an_image_message_as_its_image_and_the_rest_as_text() -> None:
    async with MiniAgents() as mini_agents:
        tracker = CallTracker(mini_agents)
        mini_agents.subscribe(tracker)
        reply = painter.trigger()
        model = tree_view_model(reply, tracker, "PAINTER")
        await reply
    delta: dict[str, Any] = model.collect() or {}
    assert model.finished()
    state = model.snapshot()
    shown = [message.get("image") for message in state["messages"]]
    assert shown == [None, {"src": PNG_SOURCE, "alt": "A chart"}] + [None] * len(HOSTILE)
    assert [update.get("image") for _, update in delta["end"]] == shown  # what the live widget gets, once
    page = render_html(state, model.all_details())
    assert sources(page) == [PNG_SOURCE]
    assert "<script>" not in page.split("</style>", 1)[1]
    assert page.count("<img") == 1
    assert '" onerror=' not in page  # the hostile MIME type shows as escaped text only
    assert "tracker.example/pixel.png" in page  # as text: [image image/png, https://...]
    assert f"({len(PNG_B64)} characters of base64: the image's bytes)" in html.unescape(page)  # details: no bytes
    assert page.count(PNG_B64) == 1
    text = render_text(state)
    assert "[PAINTER] A chart" in text
    assert PNG_B64 not in text


async def test_a_single_image_message_is_shown_as_its_image() -> None:
    model = ViewModel(
        kind="message",
        title="Message",
        sequence=None,
        message=CHART,
        tracker=None,
        show_messages=True,
        show_tree=False,
    )
    model.collect()
    assert sources(render_html(model.snapshot())) == [PNG_SOURCE]


async def test_a_recorded_run_shows_its_images(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    async with MiniAgents(record_to=store):
        await painter.trigger()
    (summary,) = store.runs()
    view = RecordedRunView(store.load(summary.run_id))
    store.close()
    assert sources(view.html()) == [PNG_SOURCE]
    assert "[PAINTER] A chart" in view.text()


async def test_the_details_of_a_reply_with_tool_images_name_them_without_their_bytes() -> None:
    @tool
    def plot(title: str) -> ImageMessage:
        """Plot something."""
        return CHART

    llm = FakeLLMAgent.fork(replies=[ToolCall("plot", {"title": "sales"}), "Plotted."])
    async with MiniAgents() as mini_agents:
        tracker = CallTracker(mini_agents)
        mini_agents.subscribe(tracker)
        reply = llm.trigger("Plot sales", tools=[plot])
        model = tree_view_model(reply, tracker, "FAKE")
        await reply
    model.collect()
    details = model.all_details()
    (llm_details,) = [entry for entry in details.values() if entry["alias"] == "FAKE_LLM_AGENT"]
    fields = dict(llm_details["replies"][0]["fields"])
    assert "images=(A chart)" in fields["tool_calls"]
    assert PNG_B64 not in repr(details)


async def test_a_chat_transcript_shows_an_image_message_as_its_image() -> None:
    model = ChatModel(title="Chat", greeting="", placeholder="", user_label="YOU", tracker=None, takes_input=False)
    async with MiniAgents():
        reply = painter.trigger()
        async for promise in reply:
            model.add_incoming(promise)
        await reply
    delta: dict[str, Any] = model.collect() or {}
    ended = {index: update for index, update in delta["end"]}
    assert ended[1]["image"] == {"src": PNG_SOURCE, "alt": "A chart"}  # the widget draws it (user_agent.js)
    assert all("image" not in update for index, update in ended.items() if index != 1)
    page = render_chat_html(model.snapshot())
    assert sources(page) == [PNG_SOURCE]  # the saved transcript too, and none of the hostile ones
    assert "<script>" not in page
