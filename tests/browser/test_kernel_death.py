"""A view still streaming when its kernel dies keeps what it had: run a slow streaming reply in JupyterLab, save the
notebook while it streams, SIGKILL the kernel process, reload the page and reopen the notebook. The view's saved
output shows the messages it had so far, marked incomplete, with no "Error displaying widget: model not found", in
the light and the dark theme. Screenshots go to tests/artifacts/browser/."""

from __future__ import annotations

import json
import os
import re
import signal

from .harness import VISIBLE_PANEL, LabPage

WORDS = [f"word{number}" for number in range(400)]

AGENT_CELL = f"""\
import os

from miniagents_nb.ext.llms import FakeLLMAgent

slow = FakeLLMAgent.fork(alias="SLOW_WRITER", replies=[{" ".join(WORDS)!r}], token_delay=0.1)
print("kernel pid", os.getpid())
"""

CELLS = ["%load_ext miniagents_nb", AGENT_CELL, "reply = slow.trigger('Write at length.')\nreply"]
VIEW = ".mna-view[data-kind='sequence']"
TEXT = f"{VIEW} .mna-message-text"
WIDGET = "application/vnd.jupyter.widget-view+json"


def _words_shown(lab: LabPage) -> int:
    texts = lab.texts(TEXT)
    return len(texts[0].split()) if texts else 0


def test_a_view_streaming_when_the_kernel_dies_keeps_what_it_had_marked_incomplete(lab: LabPage) -> None:
    name = lab.open_notebook(CELLS, "kernel_death.ipynb")
    lab.run_all(timeout=60)
    found = re.search(r"kernel pid (\d+)", lab.cell_output_text(1))
    assert found is not None, lab.cell_output_text(1)
    pid = int(found.group(1))
    lab.wait_for_text(TEXT, re.compile(r"^word0 word1 word2 .*word10 "), timeout=30)
    lab.screenshot("kernel-death-streaming", cell=2)

    # the view refreshes its saved form every 2 s: by word 60 (6 s of tokens) it holds word 20 for sure
    lab.wait_for_text(TEXT, re.compile(r" word60 "), timeout=30)
    lab.save_notebook()
    # saved: in the widget's place, its static forms so far, marked incomplete; the page still shows the widget
    saved = json.loads((lab.server.root_dir / name).read_text())
    (output,) = saved["cells"][2]["outputs"]
    assert WIDGET not in output["data"]
    html, text = ("".join(output["data"][mime]) for mime in ("text/html", "text/plain"))  # nbformat: lists of lines
    assert "word20 " in html
    assert "mna-badge-incomplete" in html
    assert text.startswith("SLOW_WRITER · 1 message · incomplete"), text
    assert "word20 " in text
    assert lab.page.locator(f"{VISIBLE_PANEL} {VIEW}:not(.mna-static)").count() == 1  # the live widget is back
    lab.screenshot("kernel-death-after-save", cell=2)
    shown = _words_shown(lab)
    assert shown < len(WORDS)  # it was still streaming

    os.kill(pid, signal.SIGKILL)  # the kernel dies mid-stream: nothing of it runs any more
    lab.page.reload(wait_until="domcontentloaded")
    lab.wait_for_kernel_idle(expected_cells=len(CELLS), timeout=60)  # the server restarted the kernel
    lab.wait_for_selector(f"{VISIBLE_PANEL} {VIEW}.mna-static", timeout=30, what="the saved static form of the view")

    def check() -> None:
        page_text = lab.page.inner_text("body")
        assert "model not found" not in page_text
        assert "Error displaying widget" not in page_text
        (text,) = lab.texts(TEXT)
        assert text.startswith("word0 word1 word2 "), text
        assert "word20 " in text, text
        (status,) = lab.texts(f"{VIEW} .mna-view-status")
        assert status == "incomplete (the kernel stopped before it ended)", status
        assert "the kernel stopped before it ended" in lab.cell_output_text(2)

    check()
    lab.screenshot("kernel-death-reopened-light", cell=2)
    lab.use_theme("dark")
    check()
    lab.screenshot("kernel-death-reopened-dark", cell=2)
    lab.use_theme("light")


def test_a_view_whose_kernel_dies_while_the_page_is_open_keeps_what_it_had(lab: LabPage) -> None:
    name = lab.open_notebook(CELLS, "kernel_death_open.ipynb")
    lab.run_all(timeout=60)
    found = re.search(r"kernel pid (\d+)", lab.cell_output_text(1))
    assert found is not None, lab.cell_output_text(1)
    lab.wait_for_text(TEXT, re.compile(r" word60 "), timeout=30)  # a saved form holding word 20 exists by now

    os.kill(int(found.group(1)), signal.SIGKILL)  # no save before: the page holds the only copy of the view
    lab.wait_for_selector(f"{VISIBLE_PANEL} {VIEW}.mna-static", timeout=30, what="the view's static form")
    (text,) = lab.texts(TEXT)
    assert "word20 " in text, text
    (status,) = lab.texts(f"{VIEW} .mna-view-status")
    assert status == "incomplete (the kernel stopped before it ended)", status
    lab.click(lab.page.locator(".jp-Dialog .jp-mod-accept"), what="the Ok of JupyterLab's 'Kernel Restarting'")
    lab.screenshot("kernel-death-page-open", cell=2)

    lab.wait_for_kernel_idle(expected_cells=len(CELLS), timeout=60)  # the server restarted the kernel
    lab.save_notebook()
    (output,) = json.loads((lab.server.root_dir / name).read_text())["cells"][2]["outputs"]
    assert WIDGET not in output["data"]
    assert "word20 " in "".join(output["data"]["text/html"])
