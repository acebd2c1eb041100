"""An image is stored once in the run store, however often it is sent, returned by tools or carried in the final
message's `tool_calls` / `tool_turns` (messages are content-addressed: nested ones are stored by hash key), and a
reopened run gives the image back with its bytes."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

from miniagents_nb import MiniAgents
from miniagents_nb.ext.llms import FakeLLMAgent, ToolCall, tool
from miniagents_nb.messages import ImageMessage
from miniagents_nb.runs import RunStore

PNG = b"\x89PNG\r\n\x1a\n" + b"a chart, stored once " * 40
PNG_B64 = base64.b64encode(PNG).decode()


@tool
def plot(title: str) -> ImageMessage:
    """Plot something."""
    return ImageMessage.from_bytes(PNG, "image/png")


def stored_copies(path: Path) -> int:
    """How many times the image's base64 occurs in any column of any table of the store."""
    copies = 0
    with sqlite3.connect(path) as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in connection.execute(f"SELECT * FROM {table}"):  # (names from sqlite_master)
                for value in row:
                    if isinstance(value, bytes):
                        value = value.decode("latin-1")
                    if isinstance(value, str):
                        copies += value.count(PNG_B64)
    return copies


async def test_an_image_sent_twice_and_returned_by_two_tool_calls_is_stored_once(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    image = ImageMessage.from_bytes(PNG, "image/png")
    llm = FakeLLMAgent.fork(replies=[[ToolCall("plot", {"title": "a"}), ToolCall("plot", {"title": "b"})], "Two."])
    async with MiniAgents(record_to=store):
        answer = (await llm.trigger(["Plot this:", image], tools=[plot]))[0]
        await FakeLLMAgent.trigger(["And again:", image])
    assert [call.images[0].hash_key for call in answer.tool_calls] == [image.hash_key] * 2
    (summary,) = store.runs()  # (one run: the context's activation)
    reopened = store.load(summary.run_id)
    store.flush()
    assert stored_copies(path) == 1
    inputs = [message for call in reopened.roots for message in call.inputs]
    images = [message for message in inputs if isinstance(message, ImageMessage)]
    assert [(type(message), message.data, message.hash_key) for message in images] == [
        (ImageMessage, PNG, image.hash_key)
    ] * 2  # the input of both calls
    store.close()
