"""Re-execute tutorial notebooks in place and store deterministic outputs (what nbval compares).

    MINIAGENTS_NB_LLM=fake .venv/bin/python scripts/execute_notebooks.py notebooks/*.ipynb

nbclient runs each notebook in a fresh kernel; the stored file then keeps only what is the same on every run:
consecutive stream outputs are merged, the live-widget mime type is dropped (it holds random model ids; the views'
deterministic text/html and text/plain forms stay), and timing and machine-specific metadata are removed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def merged_streams(outputs: list[Any]) -> list[Any]:
    merged: list[Any] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            output.output_type == "stream"
            and previous is not None
            and previous.output_type == "stream"
            and previous.name == output.name
        ):
            previous.text += output.text
        else:
            merged.append(output)
    return merged


def execute(path: Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    started = time.monotonic()
    NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=60,
        record_timing=False,
        store_widget_state=False,
        resources={"metadata": {"path": str(path.resolve().parent)}},
    ).execute()
    elapsed = time.monotonic() - started
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        cell.outputs = merged_streams(cell.outputs)
        for output in cell.outputs:
            if output.output_type in ("display_data", "execute_result"):
                output.data.pop(WIDGET_MIME, None)
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    nbformat.write(notebook, path)
    return elapsed


def main(paths: list[str]) -> None:
    os.environ.setdefault("MINIAGENTS_NB_LLM", "fake")
    for name in paths:
        print(f"{name}: {execute(Path(name)):.1f} s")  # noqa: T201 - a command-line tool


if __name__ == "__main__":
    main(sys.argv[1:])
