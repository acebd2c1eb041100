"""Errors in notebook words, in JupyterLab (headless Debian Chromium): interrupting a cell that awaits agents ends it
with one line that counts the cancelled calls while its view says cancelled; re-running a cell whose agents still
stream marks the view of the earlier run "superseded" (and cancels it, the default) and says so in the new run's
output. Screenshots, light and dark, go to tests/artifacts/browser/."""

from __future__ import annotations

from .harness import VISIBLE_PANEL, LabPage

AGENTS_CELL = '''\
import asyncio

from miniagents_nb import InteractionContext, MessageTokenAppender, TextMessage, miniagent
from miniagents_nb.jupyter import show


@miniagent
async def writer(ctx: InteractionContext) -> None:
    """Streams a long text slowly, the way an LLM does."""
    with MessageTokenAppender(capture_errors=True) as appender:
        ctx.reply(TextMessage.promise(message_token_streamer=appender))
        for index in range(1000):
            await asyncio.sleep(0.1)
            appender.append(f"word{index} ")


@miniagent
async def editor(ctx: InteractionContext) -> None:
    ctx.reply("Drafting:")
    ctx.reply(writer.trigger())
'''

_JS_START_RUN_ALL = "() => { void window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
_JS_RUN_CELL = (
    "(index) => { const notebook = window.jupyterapp.shell.currentWidget.content;"
    " notebook.activeCellIndex = index; void window.jupyterapp.commands.execute('notebook:run-cell'); }"
)
_JS_IDLE_WITH_PROMPTS = (
    "() => { const panel = window.jupyterapp.shell.currentWidget;"
    " return panel.sessionContext.session?.kernel?.status === 'idle'"
    " && ![...panel.node.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*')); }"
)

_JS_CELL_TEXT = (
    "([panel, index, selector, source]) => [...(document.querySelectorAll(`${panel} .jp-Cell`)[index]"
    "?.querySelectorAll(selector) ?? [])].some((e) => new RegExp(source).test(e.textContent))"
)
_JS_CELL_TEXTS = (
    "([panel, index, selector]) => [...(document.querySelectorAll(`${panel} .jp-Cell`)[index]"
    "?.querySelectorAll(selector) ?? [])].map((e) => e.textContent)"
)
VIEW = ".mna-view[data-kind='sequence']"


def _cell_texts(lab: LabPage, index: int, selector: str) -> list[str]:
    texts: list[str] = lab.page.evaluate(_JS_CELL_TEXTS, [VISIBLE_PANEL, index, selector])
    return texts


def _wait_in_cell(lab: LabPage, index: int, selector: str, pattern: str, *, timeout: float = 30.0) -> None:
    """Wait until an element matching `selector` in cell `index` has a text matching the regex `pattern`."""
    lab.wait_for_js(
        _JS_CELL_TEXT,
        [VISIBLE_PANEL, index, selector, pattern],
        timeout=timeout,
        what=f"{selector!r} in cell {index} to match {pattern!r} (texts now: {{texts}})",
        texts=lambda: _cell_texts(lab, index, selector),
    )


def test_interrupting_a_cell_shows_one_line_and_the_view_says_cancelled(lab: LabPage) -> None:
    cells = ["%load_ext miniagents_nb", AGENTS_CELL, "reply = editor.trigger()\nshow(reply)\nawait reply"]
    lab.open_notebook(cells, "errors_interrupt.ipynb")
    lab.page.evaluate(_JS_START_RUN_ALL)
    _wait_in_cell(lab, 2, f"{VIEW} .mna-message-text", "word2 ")  # the cell awaits; the writer streams

    lab.interrupt_kernel()
    lab.wait_for_js(_JS_IDLE_WITH_PROMPTS, None, timeout=30, what="the interrupted cell to end")
    _wait_in_cell(lab, 2, f"{VIEW} .mna-view-status", "^cancelled$")

    outputs = lab.cell_outputs(2)
    assert len(outputs) == 2, outputs  # the view, then the interrupt: one line, no traceback
    assert outputs[1].strip() == "interrupted: 1 agent call cancelled", outputs  # the writer (the editor was done)
    text = lab.cell_output_text(2)
    assert "Traceback" not in text
    assert "miniagents_nb" not in text
    assert "CancelledError" not in text
    statuses = _cell_texts(lab, 2, f"{VIEW} .mna-node-status")
    assert statuses == ["done", "cancelled"], statuses  # EDITOR had replied and returned; WRITER was cut short
    assert lab.cell_errors() == [(2, "KeyboardInterrupt", "interrupted: 1 agent call cancelled")]

    lab.screenshot("errors-interrupted-light", cell=2, output_only=True)
    lab.use_theme("dark")
    lab.screenshot("errors-interrupted-dark", cell=2, output_only=True)
    lab.use_theme("light")
    assert not [line for line in lab.console if "mna" in line.lower() or "anywidget" in line.lower()], lab.console


def test_rerunning_a_cell_marks_its_earlier_view_superseded(lab: LabPage) -> None:
    cells = ["%load_ext miniagents_nb", AGENTS_CELL, "reply = editor.trigger()", "reply"]
    lab.open_notebook(cells, "errors_rerun.ipynb")
    lab.run_all(timeout=60)
    _wait_in_cell(lab, 3, f"{VIEW} .mna-message-text", "word2 ")  # the first run's view, in the cell below
    badge = f"{VIEW} .mna-view-superseded"
    assert lab.cell(3).locator(badge).is_hidden()

    lab.page.evaluate(_JS_RUN_CELL, 2)  # run the trigger cell again while the writer still streams
    _wait_in_cell(lab, 2, ".jp-OutputArea-output", "superseded: 1 agent call of this cell's earlier run cancelled")
    _wait_in_cell(lab, 3, badge, "^superseded: its cell ran again$")
    _wait_in_cell(lab, 3, f"{VIEW} .mna-view-status", "^cancelled$")
    assert lab.cell(3).locator(badge).is_visible()
    notice = lab.cell_output_text(2).strip()
    assert notice == (
        "superseded: 1 agent call of this cell's earlier run cancelled (`%miniagents rerun keep` keeps such runs)"
    ), notice

    lab.cell(2).scroll_into_view_if_needed()
    lab.screenshot("errors-superseded-page-light")  # the notice in the re-run cell above the superseded view
    lab.screenshot("errors-superseded-light", cell=3, output_only=True)
    lab.screenshot("errors-superseded-notice-light", cell=2, output_only=True)
    lab.use_theme("dark")
    lab.screenshot("errors-superseded-dark", cell=3, output_only=True)
    lab.screenshot("errors-superseded-notice-dark", cell=2, output_only=True)
    lab.use_theme("light")
    assert not [line for line in lab.console if "mna" in line.lower() or "anywidget" in line.lower()], lab.console
