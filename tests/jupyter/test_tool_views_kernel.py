"""Tool calls in a live trace view, in a real ipykernel: while the model writes a tool call, the widget gets deltas
whose tool node shows the arguments filling in, then the tool's call running, then the final static form. The model
writes each piece of the arguments only when the test says so, so each state is awaited, never timed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from .kernel_harness import Kernel, loaded_kernel

pytestmark = pytest.mark.timeout(120)


SETUP = """\
import asyncio
from typing import Any
from miniagents_nb.ext.llms import tool
from miniagents_nb.ext.llms.fake import FakeLLM
from miniagents_nb.ext.llms.llm_miniagent import llm_miniagent
from miniagents_nb.jupyter import view


class SteppedLLM(FakeLLM):
    steps: Any = None

    async def aproduce_tokens(self, message_dicts, token_appender):
        turn = self.tool_turn
        if turn is None or any(message["role"] == "tool" for message in message_dicts):
            token_appender.append("Sunny.")
            return
        turn.start_tool_call(0, "call_1", "weather")
        while (piece := await self.steps.get()) is not None:
            turn.add_arguments(0, piece)


release = asyncio.Event()


@tool
async def weather(city: str, days: int) -> str:
    \"\"\"The forecast.\"\"\"
    await release.wait()
    return f"sunny in {city} for {days} days"


steps = asyncio.Queue()
STEPPED = llm_miniagent(SteppedLLM, alias="STEPPED_LLM")
"""


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with loaded_kernel("tool-views-kernel.log", SETUP) as running:
        yield running


def _tool_nodes(message: dict[str, Any], model_id: str) -> list[dict[str, Any]]:
    """The tool call nodes a delta of the view's widget carries."""
    content = message["content"]
    if message["msg_type"] != "comm_msg" or content.get("comm_id") != model_id:
        return []
    data = content.get("data", {})
    if data.get("method") != "custom":
        return []
    return [node for node in data["content"].get("nodes", []) if node.get("tool")]


def test_the_widget_shows_a_tool_call_filling_in_then_running_then_done(kernel: Kernel) -> None:
    run = kernel.ok(
        'reply = STEPPED.trigger("Weather in Oslo?", tools=[weather], steps=steps)\n'
        "v = view(reply, tree=True)\n"
        "display(v)"
    )
    model_id = run.widget_model_id()
    seen: list[dict[str, Any]] = []

    def shows(status: str, arguments: str, streaming: bool) -> Any:
        def check(message: dict[str, Any]) -> bool:
            for node in _tool_nodes(message, model_id):
                seen.append(node)
                if (node["status"], node["tool"]["arguments"], node["tool"]["streaming"]) == (
                    status,
                    arguments,
                    streaming,
                ):
                    return True
            return False

        return check

    for piece, expected in [('{"city": "Os', 'city="Os"'), ('lo", "days": 3', 'city="Oslo", days=3')]:
        kernel.ok(f"steps.put_nowait({json.dumps(piece)})")
        kernel.drain_until(shows("queued", expected, streaming=True))
    kernel.ok('steps.put_nowait("}")\nsteps.put_nowait(None)')
    kernel.drain_until(shows("running", 'city="Oslo", days=3', streaming=False))
    assert {node["tool"]["name"] for node in seen} == {"weather"}

    kernel.ok("release.set()")
    final = kernel.drain_until(
        lambda message: (
            message["msg_type"] == "update_display_data"
            and "tool weather(" in message["content"]["data"].get("text/plain", "")
        )
    )[-1]["content"]["data"]
    assert final["text/plain"].splitlines()[-2:] == [
        "  STEPPED_LLM: done, 1 message",
        '    tool weather(city="Oslo", days=3): done, 1 message',
    ]
    assert '<span class="mna-node-kind mna-badge mna-badge-tool">tool</span>' in final["text/html"]
    check = kernel.ok("await v.wait()\nprint(str((await reply)[0]).endswith('Sunny.'), v.is_final)")
    assert check.stdout == "True True\n"
