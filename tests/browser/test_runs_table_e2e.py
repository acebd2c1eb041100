"""`%miniagents runs` in JupyterLab (headless Debian Chromium): the table's run ids are buttons; clicking one shows
that run below the table; saving the notebook stores the static table and the opened run (no widget), which a
reload without the kernel shows."""

from __future__ import annotations

import json

from .harness import VISIBLE_PANEL, LabPage

WIDGET = "application/vnd.jupyter.widget-view+json"

CELLS = [
    "%load_ext miniagents_nb\n%miniagents record runs_table_e2e.sqlite",
    "from miniagents_nb import miniagent\n\n"
    "@miniagent\nasync def helper(ctx):\n    ctx.reply('helper: ' + str(await ctx.message_promises.as_single_text_promise()))\n\n"
    "@miniagent\nasync def boss(ctx):\n    ctx.reply(['boss here', helper.trigger(ctx.message_promises)])",
    "print([str(m) for m in await boss.trigger('hi')])",
    "%miniagents runs",
]
TABLE = ".mna-runs-live"  # the harness looks in the notebook on show


def test_clicking_a_run_id_opens_the_run_and_the_saved_notebook_keeps_it(lab: LabPage) -> None:
    name = lab.open_notebook(CELLS, "runs_table.ipynb")
    lab.run_all(timeout=60)
    lab.wait_for_selector(f"{TABLE} button.mna-run-open", timeout=15, what="the runs table's id buttons")
    buttons = lab.page.locator(f"{VISIBLE_PANEL} {TABLE} button.mna-run-open")
    assert buttons.count() == 1
    assert buttons.first.inner_text() == "#1"
    lab.click(buttons.first, what="the run id button")
    header = lab.wait_for_text(f"{TABLE} .mna-runs-opened .mna-recorded-header", "Recorded Run", timeout=15)
    assert "finished" in header
    assert "helper: hi" in lab.page.locator(f"{VISIBLE_PANEL} {TABLE} .mna-runs-opened").inner_text()
    lab.screenshot("runs-table-opened", cell=3)

    lab.execute_command("docmanager:save")
    lab.wait_for_js(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty",
        None,
        timeout=15,
        what="the notebook to be saved",
        texts=lambda: "",
    )
    saved = json.loads((lab.server.root_dir / name).read_text())
    [output] = saved["cells"][3]["outputs"]
    assert WIDGET not in output["data"]  # the static form took the widget's place in the file
    assert "%miniagents run 1" in "".join(output["data"]["text/html"])
    assert "Recorded Run" in "".join(output["data"]["text/plain"])  # with the run that was open

    lab.server.shutdown_kernels()
    lab.page.reload(wait_until="domcontentloaded")
    lab.wait_for_kernel_idle(expected_cells=len(CELLS), timeout=60)
    text = lab.cell_output_text(3)
    assert "%miniagents run 1" in text
    assert "Recorded Run" in text
    assert "model not found" not in lab.page.inner_text("body")
