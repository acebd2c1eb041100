"""`%miniagents runs` in a live notebook: the runs table, each run's id a button that opens the run below it.

The static forms of the table (`RunsTable`: text/plain and text/html, each row naming its `%miniagents run ID`)
stay what a saved notebook, nbconvert, GitHub and nbval show: the widget's output carries them beside the widget's
mime type, and the widget keeps them in its `saved_form` trait, which static/saving.js puts in the widget's place
while JupyterLab saves and when the kernel goes away (a saved notebook has no widget model). A click sends
`{"type": "open", "run_id": N}`; the kernel loads that run and sets `opened` to the run view's static HTML (what
`%miniagents run N` shows), drawn below the table, and the saved form gains the same view, so a saved notebook
shows the table and the run that was open.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets
from IPython.display import display

from miniagents_nb.errors import MiniAgentsError
from miniagents_nb.jupyter._recorded_view import RecordedRunView
from miniagents_nb.jupyter._runs_table import RunsTable, table_rows
from miniagents_nb.jupyter._static import widget_css, widget_esm

__all__ = ["RunsTableWidget"]

_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class RunsTableWidget(anywidget.AnyWidget):
    """The runs table with a button per run (see the module docstring); `open_run(run_id)` is what a click does."""

    _esm = widget_esm("runs_table")
    _css = widget_css("runs_table")

    title = traitlets.Unicode("").tag(sync=True)
    columns: traitlets.List[str] = traitlets.List().tag(sync=True)
    rows: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    """One `{"run_id", "status", "cells"}` per run, newest first (`cells` as the static table writes them)."""
    opened = traitlets.Dict().tag(sync=True)
    """The run opened last: `{"run_id", "html"}`, or `{"run_id", "error"}` when it could not be loaded."""
    uid = traitlets.Unicode("").tag(sync=True)
    saved_form = traitlets.Dict().tag(sync=True)  # what a saved notebook keeps: see static/saving.js

    def __init__(self, table: RunsTable, load_view: Callable[[int], RecordedRunView]) -> None:
        columns, rows = table_rows(table.summaries)
        super().__init__(title=table.title(), columns=columns, rows=rows, uid=uuid.uuid4().hex)
        self.table = table
        self._load_view = load_view
        self.view: RecordedRunView | None = None
        """The view of the run opened last (None before a click, or when it could not be loaded)."""
        self.on_msg(self._on_front_end_message)

    def _on_front_end_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "open" and isinstance(content.get("run_id"), int):
            self.open_run(content["run_id"])

    def open_run(self, run_id: int) -> None:
        """Show run `run_id` below the table (what clicking its id does)."""
        try:
            view = self._load_view(run_id)
        except MiniAgentsError as error:  # a pruned run, a store gone or unreadable: said below the table
            self.view = None
            self.opened = {"run_id": run_id, "error": str(error)}
            self.saved_form = self.forms()
            return
        self.view = view
        with self.hold_sync():
            self.opened = {"run_id": run_id, "html": view.html()}
            self.saved_form = self.forms()

    def forms(self) -> dict[str, str]:
        """The static forms: the table, and below it the run opened last (or why it could not be)."""
        text, markup = self.table.text(), self.table.html()
        if self.view is not None:
            text, markup = f"{text}\n\n{self.view.text()}", markup + self.view.html()
        elif "error" in self.opened:
            error = str(self.opened["error"])
            text = f"{text}\n\n{error}"
            markup += f'<div class="mna-runs-error">{html.escape(error)}</div>'
        return {"text/plain": text, "text/html": markup}

    def _ipython_display_(self) -> None:
        bundle: dict[str, Any] = {
            **self.forms(),
            _WIDGET_MIME: {"version_major": 2, "version_minor": 1, "model_id": self.model_id},
        }
        display(bundle, raw=True)
        # set once the output exists, so that the front end finds the output showing this widget (saving.js)
        self.saved_form = self.forms()

    def __repr__(self) -> str:
        return self.table.text()
