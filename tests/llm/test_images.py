"""Image messages: built from bytes, a file, a URL or a figure, content-addressed like other messages, and sent to
OpenAI as image parts and to Anthropic as base64 image blocks, in user turns and in tool results."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest

from miniagents_nb import MiniAgents
from miniagents_nb.errors import InvalidArgumentsError
from miniagents_nb.ext.llms import AnthropicAgent, FakeLLMAgent, OpenAIAgent, ToolCall, tool
from miniagents_nb.messages import ImageMessage

from .servers import LLMTestServer
from .tool_streams import AnthropicToolStream, OpenAIToolStream, StreamedToolCall

PNG = b"\x89PNG\r\n\x1a\n fake png bytes"
PNG_B64 = base64.b64encode(PNG).decode()


class FakeFigure:
    """What ImageMessage.from_figure reads of a matplotlib figure: `savefig(file, format=...)`."""

    def __init__(self) -> None:
        self.formats: list[str] = []

    def savefig(self, file: io.BytesIO, format: str, **options: Any) -> None:
        self.formats.append(format)
        file.write(PNG)


def test_images_from_bytes_files_urls_and_figures(tmp_path: Path) -> None:
    from_bytes = ImageMessage.from_bytes(PNG, "image/png", content="A chart")
    (tmp_path / "chart.png").write_bytes(PNG)
    from_file = ImageMessage.from_file(tmp_path / "chart.png", content="A chart")
    figure = FakeFigure()
    from_figure = ImageMessage.from_figure(figure, content="A chart")
    assert figure.formats == ["png"]
    assert (from_bytes.data, from_bytes.mime_type, from_bytes.data_base64) == (PNG, "image/png", PNG_B64)
    assert from_bytes.hash_key == from_file.hash_key == from_figure.hash_key  # content-addressed
    assert ImageMessage.from_bytes(PNG + b"!", "image/png", content="A chart").hash_key != from_bytes.hash_key
    assert from_bytes.data_url == f"data:image/png;base64,{PNG_B64}"
    assert (str(from_bytes), str(ImageMessage.from_bytes(PNG, "image/png"))) == (
        "A chart",
        "[image image/png, 24 bytes]",
    )
    url = ImageMessage.from_url("https://example.com/cat.jpg")
    assert (url.mime_type, url.data, url.data_url, str(url)) == (
        "image/jpeg",
        None,
        "https://example.com/cat.jpg",
        "[image image/jpeg, https://example.com/cat.jpg]",
    )
    with pytest.raises(InvalidArgumentsError, match="either the image's bytes"):
        ImageMessage(mime_type="image/png")
    with pytest.raises(InvalidArgumentsError, match="needs its mime_type"):
        ImageMessage(data_base64=PNG_B64)
    (tmp_path / "notes.xyz").write_bytes(PNG)
    with pytest.raises(InvalidArgumentsError, match="Cannot tell the image type of notes.xyz"):
        ImageMessage.from_file(tmp_path / "notes.xyz")


async def test_openai_gets_image_parts_in_user_turns(llm_server: LLMTestServer) -> None:
    image = ImageMessage.from_bytes(PNG, "image/png", content="A chart")
    async with MiniAgents():
        await OpenAIAgent.trigger(
            ["What is this?", image, ImageMessage.from_url("https://example.com/cat.jpg")], model="gpt-4.1-mini"
        )
    assert llm_server.last_body["messages"] == [
        {"role": "user", "content": "What is this?"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "A chart"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
            ],
        },
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]},
    ]


async def test_anthropic_gets_base64_image_blocks_merged_into_the_user_turn(llm_server: LLMTestServer) -> None:
    image = ImageMessage.from_bytes(PNG, "image/png", content="A chart")
    async with MiniAgents():
        await AnthropicAgent.trigger(
            ["What is this?", image, ImageMessage.from_url("https://example.com/cat.jpg")], model="claude-haiku-4-5"
        )
    assert llm_server.last_body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "text", "text": "A chart"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        }
    ]


@tool
def plot(title: str) -> ImageMessage:
    """Plot something."""
    return ImageMessage.from_bytes(PNG, "image/png", content=f"Plot: {title}")


async def test_images_returned_by_tools_reach_openai_after_the_tool_messages(llm_server: LLMTestServer) -> None:
    llm_server.enqueue(OpenAIToolStream([StreamedToolCall("c1", "plot", ['{"title": "sales"}'])]))
    async with MiniAgents():
        message = (await OpenAIAgent.trigger("Plot sales", model="gpt-4.1-mini", tools=[plot]))[0]
    assert llm_server.bodies[1]["messages"][2:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "Plot: sales"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "The images tool plot returned (call c1):"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
            ],
        },
    ]
    assert message.tool_calls[0].images[0].data == PNG


async def test_images_returned_by_tools_are_in_anthropic_tool_results(llm_server: LLMTestServer) -> None:
    llm_server.enqueue(AnthropicToolStream([StreamedToolCall("t1", "plot", ['{"title": "sales"}'])]))
    async with MiniAgents():
        await AnthropicAgent.trigger("Plot sales", model="claude-haiku-4-5", tools=[plot])
    assert llm_server.bodies[1]["messages"][2] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "t1",
                "content": [
                    {"type": "text", "text": "Plot: sales"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                ],
            }
        ],
    }


async def test_the_fake_llm_reads_the_caption_never_the_bytes() -> None:
    seen: list[Any] = []

    def reply_fn(messages: list[dict[str, Any]]) -> str:
        seen.append(messages[-1]["content"])
        return "A chart, I see."

    async with MiniAgents():
        echo = (await FakeLLMAgent.trigger([ImageMessage.from_bytes(PNG, "image/png", content="A chart")]))[0]
        scripted = (await FakeLLMAgent.trigger(ImageMessage.from_url("https://x/y.png"), reply_fn=reply_fn))[0]
        looped = (await FakeLLMAgent.trigger("plot", replies=[ToolCall("plot", {"title": "t"}), "ok"], tools=[plot]))[0]
    assert echo.content == "A chart"
    assert seen == [[{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]]
    assert scripted.content == "A chart, I see."
    assert looped.tool_calls[0].result == "Plot: t"


async def test_a_data_url_image_is_a_base64_block_for_anthropic_and_stays_a_url_for_openai(
    llm_server: LLMTestServer,
) -> None:
    inline = ImageMessage.from_url(f"data:image/png;base64,{PNG_B64}")
    async with MiniAgents():
        await AnthropicAgent.trigger(["What is this?", inline], model="claude-haiku-4-5")
        anthropic_body = llm_server.last_body
        await OpenAIAgent.trigger(["What is this?", inline], model="gpt-4.1-mini")
        openai_body = llm_server.last_body
    assert anthropic_body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
            ],
        }
    ]
    assert openai_body["messages"][1] == {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}}],
    }
