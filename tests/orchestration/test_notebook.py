"""The orchestrator in a real notebook kernel (nbclient): `forward` in a cell after `%load_ext miniagents_nb`,
`await aforward` on the kernel's loop, and the orchestrator's deterministic text and HTML forms as cell output."""

from __future__ import annotations

from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.timeout(120)

STRATEGY_CELL = """\
from miniagents_nb.ext.llms import FakeLLMAgent
from miniagents_nb.orchestration import Agent, Orchestrator, PromptEngineer, State, UserMessage, signal_error


class CoinflipPE(PromptEngineer):
    def render_prompt(self, obs, hist, state):
        hist.append(UserMessage('Flip a coin. Answer only with "heads" or "tails".'))

    def process_response(self, obs, res, hist, state):
        if ("heads" in res) == ("tails" in res):
            signal_error(state, "Invalid flip.", "Answer either heads or tails.")
            return ""
        state.set("coinflip", {"flip": "heads" if "heads" in res else "tails"})


class PoetPE(PromptEngineer):
    def render_prompt(self, obs, hist, state):
        hist.append(UserMessage(f"A poem about {state.get('coinflip')['flip']}, please."))

    def process_response(self, obs, res, hist, state):
        return res


def transition(obs, state):
    name = state.get_agent_name()
    if name in ("init", "poet_agent"):
        state.set_agent_name("coinflip_agent")
    else:
        state.set_agent_name("poet_agent")
        state.set_is_envstep(True)


llm = FakeLLMAgent.fork(replies=["heads", "echo 'Heads, hooray'", "heads and tails", "tails", "echo 'Tails, hooray'"])
state = State(max_steps=10)
orchestrator = Orchestrator([Agent("coinflip_agent", CoinflipPE(), llm), Agent("poet_agent", PoetPE(), llm)], transition, state)
"""

CELLS = [
    "%load_ext miniagents_nb",
    STRATEGY_CELL,
    'print(orchestrator.forward("start"))',
    'print(await orchestrator.aforward("obs-2"))',
    "orchestrator",
]


def _plain(output: dict[str, Any]) -> str:
    if output["output_type"] == "stream":
        return str(output["text"])
    return str(output.get("data", {}).get("text/plain", ""))


def test_forward_and_aforward_in_notebook_cells() -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(notebook, kernel_name="python3", timeout=60, allow_errors=False, startup_timeout=60).execute()

    outputs = ["".join(_plain(output) for output in cell.outputs) for cell in notebook.cells]
    assert outputs[2] == "echo 'Heads, hooray'\n"
    assert outputs[3] == "echo 'Tails, hooray'\n"
    assert outputs[4].splitlines()[0] == (
        "<Orchestrator 'orchestrator' (agents: coinflip_agent, poet_agent; transition: transition; actions: 2; "
        "current agent: 'poet_agent')>"
    )
    assert "  coinflip_agent #1 [rejected]: reply='heads and tails' output=''" in outputs[4]
    (html,) = [
        output["data"]["text/html"] for output in notebook.cells[4].outputs if "text/html" in output.get("data", {})
    ]
    assert "coinflip_agent #2" in html
    assert "0x" not in html
