"""A notebook executed headlessly, saved, then checked by nbval passes: what a later cell does never rewrites the
saved output of an earlier cell's view with a form nbval does not see."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

CELLS = [
    "%load_ext miniagents_nb",
    "import asyncio\n"
    "from miniagents_nb import miniagent\n\n"
    "go_on = asyncio.Event()\n\n"
    "@miniagent\n"
    "async def two_step(ctx):\n"
    "    ctx.reply('first')\n"
    "    await go_on.wait()\n"
    "    ctx.reply('second')\n"
    "    await asyncio.sleep(0.01)  # (it goes on a moment after its last reply, as an LLM call does)",
    "replies = two_step.trigger()\nreplies",  # displayed while still streaming ...
    "go_on.set()\n[str(message) for message in await replies]",  # ... and finished during a later cell
]


SANITIZE = Path(__file__).parents[2] / "notebooks" / "nbval_sanitize.cfg"


def test_a_view_finished_during_a_later_cell_keeps_its_saved_form_for_nbval(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    resources = {"metadata": {"path": str(tmp_path)}}
    NotebookClient(notebook, kernel_name="python3", timeout=60, resources=resources).execute()
    path = tmp_path / "roundtrip.ipynb"
    nbformat.write(notebook, path)
    saved = notebook.cells[2].outputs[0]["data"]["text/plain"]
    assert "queued" in saved or "streaming" in saved  # the display-time form, not rewritten by cell 4
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            "--nbval-current-env",
            # the tutorials' rules: a tree's timeline holds the run's times (they are what it shows)
            f"--nbval-sanitize-with={SANITIZE}",
            "-p",
            "no:cacheprovider",
            "-q",
            str(path),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "4 passed" in result.stdout
