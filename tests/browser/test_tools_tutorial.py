"""Tool calls in JupyterLab (headless Chromium): tutorial 09 runs to the end and its trace shows the tool calls as
tool nodes (a "tool" badge, the tool's name and its arguments) under the LLM call; and a live view draws a tool call
while the model writes it (the arguments filling in, with a caret), then its call running, then done. Screenshots
in the light and the dark theme."""

from __future__ import annotations

import base64
import json
import shutil

from .harness import REPO_ROOT, LabPage

TUTORIAL = REPO_ROOT / "notebooks" / "09_tools.ipynb"
TREE_CELL_SOURCE = "miniagents_nb.show(reply, tree=True, timeline=True, messages=False)"


def _cell_index(source_start: str) -> int:
    cells = json.loads(TUTORIAL.read_text())["cells"]
    matches = [index for index, cell in enumerate(cells) if "".join(cell["source"]).startswith(source_start)]
    assert len(matches) == 1, matches
    return matches[0]


def _wait_for_image(lab: LabPage, selector: str) -> None:
    """Wait until the image is decoded and drawn (a broken or refused image has no natural width)."""
    lab.wait_for_js(
        "(sel) => { const img = document.querySelector(sel); return !!img && img.complete && img.naturalWidth > 0; }",
        selector,
        timeout=30,
        what=f"the image {selector!r} to be drawn (images: {{texts}})",
        texts=lambda: lab.page.evaluate(
            "() => [...document.querySelectorAll('img.mna-message-image')].map(i => [i.naturalWidth, i.src.slice(0, 40)])"
        ),
    )


def test_the_tools_tutorial_runs_and_its_trace_shows_tool_nodes(lab: LabPage) -> None:
    shutil.copytree(REPO_ROOT / "notebooks" / "images", lab.server.root_dir / "images", dirs_exist_ok=True)
    lab.open_notebook(TUTORIAL)
    lab.run_all(timeout=120)
    cell = _cell_index(TREE_CELL_SOURCE)
    view = f".jp-Cell:nth-child({cell + 1}) .mna-view"
    lab.wait_for_selector(f"{view} .mna-node-tool", timeout=30, what="the tool nodes of the tutorial's trace")
    lines = [
        " ".join(text.split()) for text in lab.texts(f"{view} .mna-node-tool > .mna-node-box > summary.mna-node-line")
    ]
    assert [line.split(" done")[0] for line in lines] == [
        'tool lookup_height (landmark="Eiffel Tower")',
        'tool lookup_height (landmark="Statue of Liberty")',
        'tool historian (request="Which of the two was finished first?", detail="one line")',
        'tool convert (value=237.0, to_unit="ft")',
    ]
    # the agents a tool calls are plain nodes, under the tool's node
    plain = lab.texts(f"{view} .mna-node-tool[data-alias='historian'] .mna-node:not(.mna-node-tool) .mna-node-alias")
    assert plain == ["HISTORIAN", "HISTORIAN_LLM"]
    assert (
        lab.texts(f"{view} .mna-node[data-alias='RESEARCH_ASSISTANT'] > .mna-node-box .mna-node-kind") == ["tool"] * 4
    )  # (the badges are the tool calls'; the LLM call has none)
    lab.screenshot("tools-tutorial-trace-light", cell=cell, output_only=True)
    # the image question's chart, shown by its message's view (the static form: a checked data: URL)
    chart_cell = _cell_index("chart = ImageMessage.from_file(")
    chart = f".jp-Cell:nth-child({chart_cell + 1}) .mna-view img.mna-message-image"
    _wait_for_image(lab, chart)
    lab.screenshot("tools-tutorial-chart-light", cell=chart_cell, output_only=True)
    lab.use_theme("dark")
    lab.screenshot("tools-tutorial-trace-dark", cell=cell, output_only=True)
    lab.screenshot("tools-tutorial-chart-dark", cell=chart_cell, output_only=True)
    lab.use_theme("light")
    assert "model not found" not in lab.page.inner_text("body")


STEPPED_CELL = """\
import asyncio
from typing import Any

from miniagents_nb.ext.llms import tool
from miniagents_nb.ext.llms.fake import FakeLLM
from miniagents_nb.ext.llms.llm_miniagent import llm_miniagent
from miniagents_nb.jupyter import show


class SteppedLLM(FakeLLM):
    steps: Any = None

    async def aproduce_tokens(self, message_dicts, token_appender):
        turn = self.tool_turn
        if turn is None or any(message["role"] == "tool" for message in message_dicts):
            token_appender.append("It will be sunny in Oslo for the next three days.")
            return
        token_appender.append("Let me check the forecast.")
        turn.start_tool_call(0, "call_1", "forecast")
        while (piece := await self.steps.get()) is not None:
            turn.add_arguments(0, piece)


release = asyncio.Event()


@tool
async def forecast(city: str, days: int, units: str) -> str:
    \"\"\"The weather forecast.\"\"\"
    await release.wait()
    return f"sunny in {city} for {days} days"


steps = asyncio.Queue()
STEPPED = llm_miniagent(SteppedLLM, alias="WEATHER_ASSISTANT")
"""

LIVE_CELLS = [
    "%load_ext miniagents_nb",
    STEPPED_CELL,
    'reply = STEPPED.trigger("Weather in Oslo?", tools=[forecast], steps=steps)\nshow(reply, tree=True)',
]
LIVE_VIEW = ".jp-Cell:nth-child(3) .mna-view:not(.mna-static)"
TOOL_NODE = f"{LIVE_VIEW} .mna-node-tool[data-alias='forecast']"


def _run_in_kernel(lab: LabPage, code: str) -> None:
    lab.page.evaluate(
        "(code) => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        ".requestExecute({code, silent: true}).done",
        code,
    )


def _wait_for_arguments(lab: LabPage, text: str, *, streaming: bool) -> None:
    lab.wait_for_js(
        "([sel, text, streaming]) => { const el = document.querySelector(sel);"
        " return !!el && el.textContent === text"
        " && el.classList.contains('mna-node-arguments-streaming') === streaming; }",
        [f"{TOOL_NODE} .mna-node-arguments", text, streaming],
        timeout=30,
        what=f"the tool node's arguments to read {text!r} (now: {{texts}})",
        texts=lambda: lab.texts(f"{TOOL_NODE} .mna-node-arguments"),
    )


def test_a_live_view_draws_a_tool_call_while_the_model_writes_it(lab: LabPage) -> None:
    lab.open_notebook(LIVE_CELLS, "live-tool-call.ipynb")
    lab.run_all(timeout=60)
    lab.wait_for_selector(TOOL_NODE, timeout=30, what="the live tool node")
    assert lab.texts(f"{TOOL_NODE} .mna-node-status") == ["queued"]
    for piece, shown in [
        ('{"city": "Oslo", "da', '(city="Oslo")'),
        ('ys": 3, "units": "metr', '(city="Oslo", days=3, units="metr")'),
    ]:
        _run_in_kernel(lab, f"steps.put_nowait({json.dumps(piece)})")
        _wait_for_arguments(lab, shown, streaming=True)
    assert lab.texts(f"{TOOL_NODE} .mna-node-kind") == ["tool"]
    assert lab.texts(f"{TOOL_NODE} .mna-node-status") == ["queued"]
    assert lab.texts(f"{LIVE_VIEW} .mna-view-status") == ["streaming"]  # its one message is not complete yet
    lab.screenshot("tools-live-writing-light", cell=2, output_only=True)

    _run_in_kernel(lab, 'steps.put_nowait("ic\\"}")\nsteps.put_nowait(None)')
    _wait_for_arguments(lab, '(city="Oslo", days=3, units="metric")', streaming=False)
    lab.wait_for_text(f"{TOOL_NODE} .mna-node-status", "running")
    lab.screenshot("tools-live-running-light", cell=2, output_only=True)

    _run_in_kernel(lab, "release.set()")
    static = ".jp-Cell:nth-child(3) .mna-view.mna-static"
    lab.wait_for_selector(
        f"{static} .mna-node-tool[data-alias='forecast'][data-status='done']", timeout=30, what="the final view"
    )
    assert "It will be sunny in Oslo" in lab.cell_output_text(2)
    lab.screenshot("tools-live-final-light", cell=2, output_only=True)
    lab.use_theme("dark")
    lab.screenshot("tools-live-final-dark", cell=2, output_only=True)
    lab.use_theme("light")


PAINTER_CELL = """\
import asyncio
import base64

from miniagents_nb import InteractionContext, miniagent
from miniagents_nb.messages import ImageMessage
from miniagents_nb.jupyter import show

gate = asyncio.Event()


@miniagent
async def painter(ctx: InteractionContext) -> None:
    ctx.reply("Here is the chart:")
    ctx.reply(ImageMessage.from_bytes(base64.b64decode("PNG_BASE64"), "image/png", content="Two bars."))
    await gate.wait()
    ctx.reply("That was the chart.")


@miniagent
async def chart_bot(ctx: InteractionContext) -> None:
    ctx.reply(ImageMessage.from_bytes(base64.b64decode("PNG_BASE64"), "image/png", content="The chart."))
"""


def test_a_live_view_draws_an_image_message(lab: LabPage) -> None:
    png = base64.b64encode((REPO_ROOT / "notebooks" / "images" / "landmark_heights.png").read_bytes()).decode()
    cells = [
        "%load_ext miniagents_nb",
        PAINTER_CELL.replace("PNG_BASE64", png),
        "show(painter.trigger())",
        "%%chat chart_bot\nShow me the chart.",
    ]
    lab.open_notebook(cells, "live-image.ipynb")
    lab.run_all(timeout=60)
    live = ".jp-Cell:nth-child(3) .mna-view:not(.mna-static)"
    _wait_for_image(lab, f"{live} img.mna-message-image")  # drawn by the widget (static/views.js)
    assert lab.texts(f"{live} .mna-message-text") == ["Here is the chart:", "Two bars."]
    lab.screenshot("tools-live-image-light", cell=2, output_only=True)
    _run_in_kernel(lab, "gate.set()")
    static = ".jp-Cell:nth-child(3) .mna-view.mna-static"
    lab.wait_for_text(f"{static} .mna-message-text", "That was the chart.", timeout=30)
    _wait_for_image(lab, f"{static} img.mna-message-image")
    # a %%chat transcript draws an image message too (static/user_agent.js, and its saved form)
    chat_image = ".jp-Cell:nth-child(4) .mna-chat .mna-chat-text img.mna-message-image"
    _wait_for_image(lab, chat_image)
    assert "The chart." in lab.texts(".jp-Cell:nth-child(4) .mna-chat .mna-chat-text")[-1]
    lab.use_theme("dark")
    lab.screenshot("tools-live-image-final-dark", cell=2, output_only=True)
    lab.screenshot("tools-chat-image-dark", cell=3, output_only=True)
    lab.use_theme("light")
