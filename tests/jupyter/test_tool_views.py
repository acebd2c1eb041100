"""Tool calls in the trace view: while the model writes a tool call, its node shows the tool's name and the
arguments filling in (pydantic's partial JSON parsing, at the view's pace), then the tool's own call running; tool
nodes are marked as such in the live state and in both static forms, also for a recorded run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from miniagents_nb import MiniAgents
from miniagents_nb.ext.llms import ToolCall, tool
from miniagents_nb.ext.llms.fake import FakeLLM, FakeLLMAgent
from miniagents_nb.ext.llms.llm_miniagent import llm_miniagent
from miniagents_nb.jupyter._recorded_view import RecordedRunView
from miniagents_nb.jupyter._render import mark_incomplete, render_html, render_text
from miniagents_nb.jupyter._tool_calls import arguments_text
from miniagents_nb.jupyter._tracker import CallTracker
from miniagents_nb.jupyter._view_model import ViewModel
from miniagents_nb.messages import MessageTokenAppender
from miniagents_nb.runs import RunStore

from .helpers import tree_view_model

ARGUMENT_PIECES = ['{"city": "Os', 'lo", "days": 3', "}"]


class SteppedLLM(FakeLLM):
    """A model that writes one tool call piece by piece when the test says so (`steps.put(piece)`), and answers
    "Sunny." once it has the tool's result; `written` is set after each piece is reported to the tool loop."""

    steps: Any = None
    written: Any = None

    async def aproduce_tokens(self, message_dicts: list[dict[str, Any]], token_appender: MessageTokenAppender) -> None:
        turn = self.tool_turn
        if turn is None or any(message["role"] == "tool" for message in message_dicts):
            token_appender.append("Sunny.")
            return
        turn.start_tool_call(0, "call_1", "weather")
        self.written.set()
        while (piece := await self.steps.get()) is not None:
            turn.add_arguments(0, piece)
            self.written.set()


STEPPED = llm_miniagent(SteppedLLM, alias="STEPPED_LLM")


def tool_node(model: ViewModel) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = [node for node in model.snapshot()["nodes"].values() if node["alias"] == "weather"]
    assert len(nodes) == 1
    return nodes[0]


async def test_a_tool_call_node_shows_the_arguments_filling_in_then_the_tool_running() -> None:
    steps: asyncio.Queue[str | None] = asyncio.Queue()
    written = asyncio.Event()
    running, release = asyncio.Event(), asyncio.Event()

    @tool
    async def weather(city: str, days: int) -> str:
        """The forecast."""
        running.set()
        await release.wait()
        return f"sunny in {city} for {days} days"

    async def step(piece: str | None) -> None:
        written.clear()
        await steps.put(piece)
        if piece is not None:
            await written.wait()

    async with MiniAgents() as mini_agents:
        tracker = CallTracker(mini_agents)
        mini_agents.subscribe(tracker)
        reply = STEPPED.trigger("Weather in Oslo?", tools=[weather], steps=steps, written=written)
        model = tree_view_model(reply, tracker, "STEPPED_LLM")
        try:  # (a failed assertion must not leave the calls waiting: leaving the context awaits them)
            await written.wait()  # the model named the tool: its call exists, queued, with no arguments yet
            model.collect()
            assert tool_node(model)["tool"] == {"name": "weather", "arguments": "", "streaming": True}
            assert tool_node(model)["status"] == "queued"
            # the LLM replied its one message promise at once, so the sequence has ended; the view is not done
            # while that message still streams
            assert model.status == "streaming"
            assert model.needs_polling()  # the arguments stream without waking the view: it looks at its own pace

            await step(ARGUMENT_PIECES[0])
            delta = model.collect()
            assert delta is not None
            assert [node["tool"] for node in delta["nodes"] if node["alias"] == "weather"] == [
                {"name": "weather", "arguments": 'city="Os"', "streaming": True}
            ]
            assert 'tool weather(city="Os"…): queued' in render_text(model.snapshot())
            caret = 'class="mna-node-arguments mna-node-arguments-streaming"'
            assert caret in render_html(model.snapshot())  # the model is still writing
            # saved now (the kernel then goes away): the call reads incomplete, its arguments as far as they came,
            # and no caret blinks for a model that is no longer writing
            saved = mark_incomplete(model.snapshot())
            assert 'tool weather(city="Os"…): incomplete' in render_text(saved)
            assert caret not in render_html(saved)
            assert 'title="(city=&quot;Os&quot;)"' in render_html(saved)

            await step(ARGUMENT_PIECES[1])
            model.collect()
            assert tool_node(model)["tool"] == {
                "name": "weather",
                "arguments": 'city="Oslo", days=3',
                "streaming": True,
            }
            await step(ARGUMENT_PIECES[2])
            model.collect()
            assert tool_node(model)["tool"]["arguments"] == 'city="Oslo", days=3'

            await step(None)  # the model's turn ends: the tool runs with the complete arguments
            await running.wait()
            model.collect()
            node = tool_node(model)
            assert (node["status"], node["tool"]) == (
                "running",
                {"name": "weather", "arguments": 'city="Oslo", days=3', "streaming": False},
            )
            html = render_html(model.snapshot())
            assert '<span class="mna-node-kind mna-badge mna-badge-tool">tool</span>' in html
            assert 'class="mna-node-arguments" title="(city=&quot;Oslo&quot;, days=3)"' in html
            assert 'class="mna-node-arguments mna-node-arguments-streaming"' not in html  # (no caret any more)

        finally:
            release.set()
            steps.put_nowait(None)
        messages = await reply
    model.collect()  # (leaving the context awaited every call: this look sees the final state)
    assert model.finished()
    assert model.status == "done"
    assert str(messages[0]).endswith("Sunny.")
    assert render_text(model.snapshot()).splitlines()[-2:] == [
        "  STEPPED_LLM: done, 1 message",
        '    tool weather(city="Oslo", days=3): done, 1 message',
    ]
    assert not model.needs_polling()


async def test_plain_agent_calls_have_no_tool_mark() -> None:
    async with MiniAgents() as mini_agents:
        tracker = CallTracker(mini_agents)
        mini_agents.subscribe(tracker)
        reply = FakeLLMAgent.trigger("Hello")
        model = tree_view_model(reply, tracker, "FAKE")
        await reply
    model.collect()
    assert model.finished()
    (node,) = model.snapshot()["nodes"].values()
    assert node["tool"] is None
    assert "mna-node-kind" not in render_html(model.snapshot()).split("</style>")[1]
    assert render_text(model.snapshot()).splitlines()[-1] == "  FAKE_LLM_AGENT: done, 1 message"


def test_arguments_read_as_a_call() -> None:
    assert arguments_text({"landmark": "Eiffel Tower", "days": 3, "tags": ["a", "b"]}) == (
        'landmark="Eiffel Tower", days=3, tags=["a", "b"]'
    )
    assert arguments_text({"note": "two\nlines", "city": "Zürich"}) == 'note="two\\nlines", city="Zürich"'
    assert arguments_text([1, 2]) == "[1, 2]"
    long = arguments_text({"text": "x" * 500})
    assert len(long) == 160
    assert long.endswith("…")


@tool
def lookup(word: str) -> str:
    """Look a word up."""
    return f"{word}: a word"


async def test_a_recorded_run_shows_its_tool_calls_as_the_live_tree_did(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    llm = FakeLLMAgent.fork(replies=[[ToolCall("lookup", {"word": "moth"}), ToolCall("lookup", "{not json")], "Done."])
    async with MiniAgents(record_to=store):
        await llm.trigger("What is a moth?", tools=[lookup])
    (summary,) = store.runs()
    view = RecordedRunView(store.load(summary.run_id))
    store.close()
    assert view.text().splitlines()[-3:] == [
        "  FAKE_LLM_AGENT: done, 1 message",
        '    tool lookup(word="moth"): done, 1 message',
        "    tool lookup({not json): failed: ToolArgumentsError: The arguments for tool lookup do not fit its schema "
        "(arguments: Invalid JSON: key must be a string at line 1 column 2). Call it again with arguments that match "
        "the schema.",
    ]
    assert view.html().count('<span class="mna-node-kind mna-badge mna-badge-tool">tool</span>') == 2
