"""`%miniagents runs`: the store's recent runs as a table, each row with the command that opens it.

These are the table's static forms (text/plain and text/html): a snapshot of the file, what a saved notebook shows
as it was. A static form runs no script (a saved or untrusted notebook runs none), so each row names its
`%miniagents run ID` command to copy; in a live notebook the table is a widget whose ids are buttons
(`_runs_widget.py`) with these forms as its saved form. Ids, start times and durations differ from run to run: the tutorials'
nbval rules (notebooks/nbval_sanitize.cfg) replace them, each in a column of its own class.
"""

from __future__ import annotations

import html
import time
from typing import Any

from miniagents_nb.jupyter._timeline import format_seconds
from miniagents_nb.runs import RunSummary
from miniagents_nb.runs.recorded import plain_text

__all__ = ["RunsTable", "started_text", "table_rows"]

_COLUMNS = ("id", "label", "started", "duration", "status", "calls", "messages", "tokens", "failures", "open with")
_FIXED_WIDTHS = {0: 7, 2: 19, 3: 10}
"""The columns that differ from run to run (id, start, duration) have fixed widths, so that once the nbval rules
replaced them the rest of the table lines up the same on every run."""


def started_text(epoch: float) -> str:
    """Local time, to the second (`2026-12-07 06:20:01`)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _row(summary: RunSummary) -> list[str]:
    return [
        f"#{summary.run_id}",
        plain_text(summary.label) if summary.label else "(no label)",
        started_text(summary.started),
        "-" if summary.duration is None else format_seconds(summary.duration),
        summary.status,
        str(summary.calls),
        str(summary.messages),
        str(summary.tokens),
        str(summary.failures),
        f"%miniagents run {summary.run_id}",
    ]


def table_rows(summaries: list[RunSummary]) -> tuple[list[str], list[dict[str, Any]]]:
    """The column names and one `{"run_id", "status", "cells"}` per run (what the widget draws)."""
    rows = [{"run_id": summary.run_id, "status": summary.status, "cells": _row(summary)} for summary in summaries]
    return list(_COLUMNS), rows


class RunsTable:
    """Run summaries, newest first."""

    def __init__(self, summaries: list[RunSummary], where: str) -> None:
        self.summaries = summaries
        self.where = where

    def title(self) -> str:
        count = len(self.summaries)
        return f"{count} recent run{'' if count == 1 else 's'} in {self.where}"

    def text(self) -> str:
        if not self.summaries:
            return f"No runs recorded in {self.where} yet."
        rows = [list(_COLUMNS), *(_row(summary) for summary in self.summaries)]
        widths = [
            max(_FIXED_WIDTHS.get(column, 0), *(len(row[column]) for row in rows)) for column in range(len(_COLUMNS))
        ]
        lines = [self.title()]
        for row in rows:
            lines.append(" · ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        return "\n".join(lines)

    def html(self) -> str:
        if not self.summaries:
            return f'<div class="mna-runs mna-runs-empty">No runs recorded in {html.escape(self.where)} yet.</div>'
        classes = [f"mna-run-{name.replace(' ', '-')}" for name in _COLUMNS]
        head = "".join(f"<th>{html.escape(name)}</th>" for name in _COLUMNS)
        body = []
        for summary in self.summaries:
            cells = _row(summary)
            cells_html = "".join(
                f'<td class="{css}">'
                + (f"<code>{html.escape(cell)}</code>" if css == "mna-run-open-with" else html.escape(cell))
                + "</td>"
                for css, cell in zip(classes, cells, strict=True)
            )
            body.append(
                f'<tr class="mna-run mna-status-{html.escape(summary.status)}" title="{html.escape(cells[-1])}">'
                f"{cells_html}</tr>"
            )
        return (
            f'<div class="mna-runs"><div class="mna-runs-title">{html.escape(self.title())}</div>'
            f'<table class="mna-runs-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text(), "text/html": self.html()}

    def __repr__(self) -> str:
        return self.text()
