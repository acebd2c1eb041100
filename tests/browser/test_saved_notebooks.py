"""A saved notebook outlives its kernel: run views in JupyterLab, save, shut the kernel down, reload the page and
reopen; every finished view must show its transcript and agent tree (no "Error displaying widget: model not
found"), in the light and the dark theme; and `nbconvert --to html` of the saved file shows the same."""

from __future__ import annotations

import json
import re

from nbconvert import HTMLExporter

from .harness import LabPage

AGENTS_CELL = """\
from miniagents_nb import InteractionContext, MessageTokenAppender, TextMessage, miniagent


@miniagent
async def poet(ctx: InteractionContext) -> None:
    with MessageTokenAppender() as appender:
        ctx.reply(TextMessage.promise(message_token_streamer=appender))
        for word in "Roses lean on the fence, and the kettle hums.".split(" "):
            appender.append(word + " ")


@miniagent
async def editor(ctx: InteractionContext) -> None:
    ctx.reply("Draft:")
    ctx.reply(poet.trigger())
"""

POEM = "Roses lean on the fence, and the kettle hums. "
CELLS = ["%load_ext miniagents_nb", AGENTS_CELL, "reply = editor.trigger()\nreply", "await reply\nreply"]
VIEW = ".mna-view[data-kind='sequence']"
WIDGET = "application/vnd.jupyter.widget-view+json"


def _check_views(lab: LabPage) -> None:
    lab.wait_for_js(
        "(sel) => { const s = [...document.querySelectorAll(sel)].map(e => e.textContent);"
        " return s.length === 2 && s.every(t => t === 'done'); }",
        f"{VIEW} .mna-view-status",
        timeout=30,
        what="both views to be done (statuses: {texts})",
        texts=lambda: lab.texts(f"{VIEW} .mna-view-status"),
    )
    texts = lab.texts(f"{VIEW} .mna-message-text")
    assert texts == ["Draft:", POEM, "Draft:", POEM], texts
    aliases = lab.texts(f"{VIEW} .mna-node-alias")
    assert aliases == ["EDITOR", "POET", "EDITOR", "POET"], aliases
    assert lab.texts(f"{VIEW} .mna-node[data-alias='EDITOR'] .mna-node[data-alias='POET'] .mna-node-status") == [
        "done",
        "done",
    ]
    page_text = lab.page.inner_text("body")
    assert "model not found" not in page_text
    assert "Error displaying widget" not in page_text


def test_a_saved_notebook_shows_its_views_without_the_kernel_that_made_them(lab: LabPage) -> None:
    name = lab.open_notebook(CELLS, "saved_views.ipynb")
    lab.run_all(timeout=60)
    _check_views(lab)
    lab.wait_for_selector(f"{VIEW}.mna-static", timeout=15, what="the final static form of the views")
    lab.screenshot("saved-views-live", cell=2)
    path = lab.server.root_dir / name
    lab.save_notebook()
    saved = json.loads(path.read_text())
    outputs = [output for cell in saved["cells"] for output in cell.get("outputs", [])]
    assert [WIDGET in output.get("data", {}) for output in outputs if output.get("data")] == [False, False]

    lab.server.shutdown_kernels()  # the kernel that made the views is gone
    lab.page.reload(wait_until="domcontentloaded")
    lab.wait_for_kernel_idle(expected_cells=len(CELLS), timeout=60)
    _check_views(lab)
    lab.screenshot("saved-views-reopened-light", cell=2)

    lab.use_theme("dark")
    _check_views(lab)
    lab.screenshot("saved-views-reopened-dark", cell=2)
    lab.use_theme("light")

    body, _ = HTMLExporter().from_filename(str(path))
    assert "model not found" not in body
    assert body.count('<div class="mna-message-text">Roses lean on the fence, and the kettle hums. </div>') == 2
    assert len(re.findall(r'<li class="mna-node [^"]*"[^>]*data-alias="POET"', body)) == 2  # the tree's node
    assert len(re.findall(r'<div class="mna-lane [^"]*"[^>]*data-alias="POET"', body)) == 2  # its timeline lane
