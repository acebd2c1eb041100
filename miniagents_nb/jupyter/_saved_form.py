"""What a notebook saved while a view is live keeps in the view's place: its static forms so far, marked incomplete.

A live view's output is the widget, and a saved notebook has no widget model once its kernel is gone: JupyterLab
then prefers the widget's mime type to the text/html next to it and shows "Error displaying widget: model not
found". So while the view is live, the kernel keeps the widget's `saved_form` trait up to date with the static
`text/plain` / `text/html` of what the view has so far, marked `incomplete` (the view reads so if it never ends),
at most once every `SAVED_FORM_INTERVAL` seconds, and only when a delta went out (a form is rendered then, never
per token). The front end (static/saving.js) puts that form in the widget's place in the notebook while JupyterLab
saves it, and for good when the widget model goes away before the view was final (its kernel died or restarted).
The final view replaces its outputs with its exact final forms itself, and its `saved_form` is emptied then.
"""

from __future__ import annotations

from typing import Any, Protocol

from miniagents_nb.jupyter._render import mark_incomplete
from miniagents_nb.jupyter._view_model import ViewModel

__all__ = ["SAVED_FORM_INTERVAL", "RendersForms", "saved_form"]

SAVED_FORM_INTERVAL = 2.0
"""Seconds between two refreshes of a live view's saved form (each carries the whole static form so far)."""


class RendersForms(Protocol):
    """What of a live view this module reads (a protocol, so that it does not import the views)."""

    @property
    def _model(self) -> ViewModel: ...

    def _render_text(self, snapshot: dict[str, Any]) -> str: ...

    def _render_html(self, snapshot: dict[str, Any]) -> str: ...


def saved_form(view: RendersForms) -> dict[str, str]:
    """The static forms of what `view` shows now, as a saved notebook should show them if the view never ends."""
    marked = mark_incomplete(view._model.snapshot())
    parts = [*marked["messages"], *marked.get("nodes", {}).values()]
    if any(part["status"] == "incomplete" for part in parts):  # the header says so too, whatever else had ended
        marked["status"] = "incomplete"
    return {"text/plain": view._render_text(marked), "text/html": view._render_html(marked)}
