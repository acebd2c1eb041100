"""What a reader sees of a conversation in JupyterLab (headless Debian Chromium), light and dark theme:

* a `%%chat` cell shows its exchange as a chat: the user's text, then the agent's reply streaming in below it (no
  input row: the cell is where one types); `--tree` adds the call tree under it;
* the orchestrator's timeline table reads left-aligned (prose and JSON), in the theme's colours.

Screenshots go to tests/artifacts/browser/.
"""

from __future__ import annotations

import re

from .harness import VISIBLE_PANEL, LabPage

REPLY_TAIL = "I answer one word at a time, like a model that streams."

SETUP_CELL = f"""\
from miniagents_nb.ext.llms import FakeLLMAgent


def answer(messages):
    said = [m["content"] for m in messages if m["role"] == "user"]
    return f"You said {{said[-1]!r}} ({{len(said)}} user messages so far). {REPLY_TAIL}"


llm = FakeLLMAgent.fork(alias="ASSISTANT", reply_fn=answer, token_delay=0.02)
"""

ORCHESTRATOR_CELL = """\
import json

from miniagents_nb.ext.llms import default_llm_agent
from miniagents_nb.orchestration import Agent, MiniAgentLLMAdapter, Orchestrator, State, ToyShellEnvironment
from miniagents_nb.orchestration import arun_episode
from miniagents_nb.orchestration.strategies import (
    ExecutorPromptEngineer,
    PlannerPromptEngineer,
    ReviewerPromptEngineer,
    planner_reviewer_executor,
)

script = [
    json.dumps({"plan": ["list every file, hidden ones too, with ls -a", "read the flag file and submit it"]}),
    json.dumps({"feedback": []}),
    json.dumps({"status": "progress", "next": {"explanation": "see every file", "command": "ls -a"}}),
    json.dumps({"status": "done", "summary": "there is a hidden file .flag", "interesting_knowledge": [".flag"]}),
    json.dumps({"feedback": []}),
    json.dumps({"status": "progress", "next": {"explanation": "read it", "command": "cat .flag"}}),
    json.dumps({"status": "submit", "flag": "FLAG{dot}"}),
]
llm_adapter = MiniAgentLLMAdapter(default_llm_agent(replies=script), token_usage={})
state = State()
state.set("task", "The flag is in one of the files. Find it and submit it.")
state.set("executor", {"max_steps": 10})
state.set("reviewer", {"max_rejects": 1})
prx = Orchestrator(
    agents=[
        Agent(name="planner", prompt_engineer=PlannerPromptEngineer(), llm_adapter=llm_adapter),
        Agent(name="reviewer", prompt_engineer=ReviewerPromptEngineer(), llm_adapter=llm_adapter),
        Agent(name="executor", prompt_engineer=ExecutorPromptEngineer(), llm_adapter=llm_adapter),
    ],
    transition=planner_reviewer_executor,
    state=state,
    name="prx",
)
episode = await arun_episode(prx, ToyShellEnvironment({".flag": "FLAG{dot}"}, answer="FLAG{dot}"))
prx
"""

CELLS = [
    "%load_ext miniagents_nb",
    SETUP_CELL,
    "%%chat llm\nHello! Who are you?",
    "%%chat llm --tree\nAnd what can you do?",
    ORCHESTRATOR_CELL,
]

CHAT = ".mna-chat"  # the harness's `texts` and `wait_for_*` look in the notebook on show
TABLE = f"{VISIBLE_PANEL} table.mnb-orch"

_JS_ALIGNMENT = """(selector) => [...document.querySelectorAll(selector + ' td, ' + selector + ' th')]
  .map(cell => getComputedStyle(cell).textAlign)"""
_JS_DEBUG = """(selector) => {
  const cell = document.querySelector(selector + ' td');
  const out = [];
  for (const sheet of document.styleSheets) { try { for (const rule of sheet.cssRules) {
    if (rule.selectorText && cell.matches(rule.selectorText) && rule.style.textAlign) out.push(rule.selectorText + ' => ' + rule.style.textAlign);
  } } catch (e) {} }
  return out;
}"""
_JS_COLOURS = """(selector) => {
  const cell = document.querySelector(selector + ' td');
  const style = getComputedStyle(cell);
  return [style.color, getComputedStyle(document.body).backgroundColor];
}"""


def _luminance(css_colour: str) -> float:
    red, green, blue = (int(part) / 255 for part in re.findall(r"\d+", css_colour)[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def _check_chats(lab: LabPage) -> None:
    first_reply = f"You said 'Hello! Who are you?' (1 user messages so far). {REPLY_TAIL}"
    second_reply = f"You said 'And what can you do?' (2 user messages so far). {REPLY_TAIL}"
    senders = lab.texts(f"{CHAT} .mna-chat-sender")
    texts = lab.texts(f"{CHAT} .mna-chat-text")
    assert list(zip(senders, texts, strict=True)) == [
        ("USER", "Hello! Who are you?"),
        ("ASSISTANT", first_reply),
        ("USER", "And what can you do?"),
        ("ASSISTANT", second_reply),
    ]
    assert lab.texts(f"{CHAT} .mna-chat-title") == ["Chat with ASSISTANT", "Chat with ASSISTANT"]
    assert lab.texts(f"{CHAT} .mna-chat-status") == ["done", "done"]
    assert lab.page.locator(f"{VISIBLE_PANEL} {CHAT} .mna-chat-input").count() == 0  # a transcript: no input row
    # --tree: the call tree under the second exchange
    assert lab.texts(".mna-view .mna-node-alias") == ["ASSISTANT"]


def _check_table(lab: LabPage) -> None:
    alignments = lab.page.evaluate(_JS_ALIGNMENT, TABLE)
    assert alignments, "the orchestrator's table has no cells"
    assert set(alignments) <= {"left", "start"}, (alignments, lab.page.evaluate(_JS_DEBUG, TABLE))
    text, background = lab.page.evaluate(_JS_COLOURS, TABLE)
    assert abs(_luminance(text) - _luminance(background)) > 0.5, (text, background)  # readable in this theme


def test_chat_cells_show_both_turns_and_the_orchestrator_table_reads_left_aligned(lab: LabPage) -> None:
    lab.open_notebook(CELLS, "chat_cells.ipynb")
    reply = lab.record_texts(f"{CHAT} .mna-chat-message[data-role='assistant'] .mna-chat-text")
    status = lab.record_texts(f"{CHAT} .mna-chat-status")
    lab.page.evaluate("() => { void window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    # while the first reply streams, the user's turn is on show above it
    lab.wait_for_text(f"{CHAT} .mna-chat-message[data-role='user'] .mna-chat-text", "Hello! Who are you?")
    lab.screenshot("chat-cell-streaming-light", cell=2)
    first_reply = f"You said 'Hello! Who are you?' (1 user messages so far). {REPLY_TAIL}"
    seen = reply.wait_for(first_reply, timeout=30)
    reply.stop()
    assert [text for text in seen if text and first_reply.startswith(text) and text != first_reply], seen
    statuses = status.stop()
    assert statuses[0] == "running", status.samples()  # running while the reply streams, done once it ended
    assert statuses[-1] == "done", status.samples()
    lab.wait_for_selector(TABLE, timeout=60, what="the orchestrator's timeline table")
    lab.wait_for_js(
        "(sel) => document.querySelectorAll(sel).length === 2",
        f"{VISIBLE_PANEL} {CHAT}.mna-static",
        timeout=30,
        what="both %%chat exchanges to be final ({texts})",
        texts=lambda: lab.texts(f"{CHAT} .mna-chat-status"),
    )
    assert lab.cell_errors() == []
    _check_chats(lab)
    _check_table(lab)
    lab.screenshot("chat-cell-light", cell=2)
    lab.screenshot("chat-cell-tree-light", cell=3, output_only=True)
    lab.screenshot("orchestrator-table-light", cell=4, output_only=True)
    lab.page.locator(f"{VISIBLE_PANEL} .mnb-orch-title").scroll_into_view_if_needed()
    lab.screenshot("orchestrator-table-top-light")

    lab.use_theme("dark")
    _check_chats(lab)
    _check_table(lab)
    lab.screenshot("chat-cell-dark", cell=2)
    lab.screenshot("chat-cell-tree-dark", cell=3, output_only=True)
    lab.screenshot("orchestrator-table-dark", cell=4, output_only=True)
    lab.page.locator(f"{VISIBLE_PANEL} .mnb-orch-title").scroll_into_view_if_needed()
    lab.screenshot("orchestrator-table-top-dark")
    lab.use_theme("light")
