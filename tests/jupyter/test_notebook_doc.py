"""docs/notebook.md is right: its Python examples run, in order, as the cells of one notebook in a real kernel
(nbclient), none raises, and each output block the page shows after an example ("prints", "shows") is what that
example printed or displayed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

DOC = Path(__file__).resolve().parents[2] / "docs" / "notebook.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _shown(cell: Any) -> str:
    """What a cell showed: what it printed, else the text/plain of its last display."""
    streams = "".join(output["text"] for output in cell.outputs if output["output_type"] == "stream")
    if streams:
        return streams.rstrip("\n")
    displays = [output for output in cell.outputs if output["output_type"] == "display_data"]
    return str(displays[-1]["data"]["text/plain"]) if displays else ""


def test_the_examples_of_the_notebook_page_run_and_show_what_it_says() -> None:
    blocks = [(language, body.rstrip("\n")) for language, body in FENCE.findall(DOC.read_text())]
    notebook = nbformat.v4.new_notebook()
    expected: dict[int, str] = {}  # cell index -> the output block that follows it
    for language, body in blocks:
        if language == "python":
            notebook.cells.append(nbformat.v4.new_code_cell(body))
        elif language == "" and notebook.cells and len(notebook.cells) - 1 not in expected:
            expected[len(notebook.cells) - 1] = body
    assert len(notebook.cells) >= 8
    assert len(expected) >= 3
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(notebook, kernel_name="python3", timeout=60, allow_errors=False, startup_timeout=60).execute()
    for index, text in expected.items():
        assert _shown(notebook.cells[index]) == text, notebook.cells[index].source
