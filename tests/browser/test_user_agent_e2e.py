"""The notebook user agent end to end in JupyterLab (headless Debian Chromium): a cell awaits `dialog_loop` with
`notebook_user_agent`; the test types into the chat's text box (Shift+Enter adds a line, the keys never reach the
notebook's shortcuts), presses Send, watches the assistant's reply stream in (partial texts, then the exact final
text), types "exit" and presses Enter, and the cell finishes. Screenshots go to tests/artifacts/browser/."""

from __future__ import annotations

import re

from .harness import VISIBLE_PANEL, LabPage

TAIL = "I am a slow fake model, so every word of this answer arrives on its own."

SETUP_CELL = f"""\
from miniagents_nb.ext import dialog_loop
from miniagents_nb.ext.llms import FakeLLMAgent, SystemMessage
from miniagents_nb.jupyter import notebook_user_agent


def answer(messages):
    said = [m["content"] for m in messages if m["role"] == "user"][-1]
    return f"You said: {{said}}. {TAIL}"


llm = FakeLLMAgent.fork(reply_fn=answer, token_delay=0.05)
"""

CELLS = [
    "%load_ext miniagents_nb",
    SETUP_CELL,
    "await dialog_loop.trigger(SystemMessage('Be brief.'), user_agent=notebook_user_agent, assistant_agent=llm)\n"
    "print('the dialog is over')",
    "print('after the dialog')",
]

CHAT = ".mna-chat"
INPUT = f"{CHAT} .mna-chat-input"
STATUS = f"{CHAT} .mna-chat-status"
FIRST_REPLY = f"{CHAT} .mna-chat-message[data-role='assistant'] .mna-chat-text"

# Run All without waiting for it: the dialog cell stays busy until the test ends the chat.
_JS_START_RUN_ALL = "() => { void window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
_JS_ALL_RAN = """(panel) => {
  const prompts = [...document.querySelectorAll(panel + ' .jp-CodeCell .jp-InputArea-prompt')]
    .map(p => p.textContent.trim());
  const indicator = document.querySelector(panel + ' .jp-Notebook-ExecutionIndicator');
  return prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p))
    && (!indicator || indicator.getAttribute('data-status') === 'idle');
}"""


def test_type_send_watch_the_reply_stream_then_exit(lab: LabPage) -> None:
    lab.open_notebook(CELLS, "user_agent.ipynb")
    lab.page.evaluate(_JS_START_RUN_ALL)
    lab.wait_for_text(STATUS, "your turn", timeout=30)
    assert lab.prompts()[2] == "[*]:"  # the cell awaits the dialog while the chat takes input (ipykernel 7.4)
    reply = lab.record_texts(FIRST_REPLY)

    box = lab.page.locator(f"{VISIBLE_PANEL} {INPUT}")
    box.click()
    box.press_sequentially("hello")  # "h", "l", "o" are notebook shortcuts in command mode: they must stay here
    box.press("Shift+Enter")  # a new line, not "run the cell"
    box.press_sequentially("world")
    assert box.input_value() == "hello\nworld"
    lab.screenshot("user-agent-e2e-typing", cell=2)
    lab.click(lab.page.locator(f"{VISIBLE_PANEL} {CHAT} .mna-chat-send"), what="the chat's Send button")

    final = f"You said: hello\nworld. {TAIL}"
    seen = reply.wait_for(final, timeout=30)
    reply.stop()
    partial = [text for text in seen if text and text != final]
    assert partial, f"no partial reply was shown before the final text: {reply.samples()}"
    assert all(final.startswith(text) for text in partial), reply.samples()
    assert len(seen) >= 3, reply.samples()
    assert box.input_value() == ""

    lab.wait_for_text(STATUS, "your turn", timeout=30)
    lab.screenshot("user-agent-e2e-reply", cell=2)
    box.press_sequentially("exit")
    box.press("Enter")

    lab.wait_for_js(
        _JS_ALL_RAN, VISIBLE_PANEL, timeout=30, what="the dialog cell to finish ({texts})", texts=lab.prompts
    )
    lab.wait_for_text(STATUS, re.compile(r"^ended$"))
    assert lab.prompts() == ["[1]:", "[2]:", "[3]:", "[4]:"]  # every cell ran once; no key ran a cell
    assert lab.cell_count() == len(CELLS)  # and no key inserted one
    assert lab.cell_errors() == []
    senders = lab.texts(f"{CHAT} .mna-chat-sender")
    texts = lab.texts(f"{CHAT} .mna-chat-text")
    assert list(zip(senders, texts, strict=True)) == [
        ("USER", "hello\nworld"),
        ("FAKE_LLM_AGENT", final),
    ]  # "exit" is the command that ended the chat, not a message: the notice says so
    assert lab.texts(f"{CHAT} .mna-chat-notice") == ['You typed "exit": the chat ends.']
    # ended: the output is the static transcript (what a saved notebook shows without a kernel), with no input row
    assert lab.page.locator(f"{VISIBLE_PANEL} {CHAT}.mna-static").count() == 1
    assert lab.page.locator(f"{VISIBLE_PANEL} {INPUT}").count() == 0
    assert "the dialog is over" in lab.cell_output_text(2)
    assert "after the dialog" in lab.cell_output_text(3)
    lab.screenshot("user-agent-e2e-ended", cell=2)
    assert not [line for line in lab.console if "mna" in line.lower() or "anywidget" in line.lower()], lab.console
