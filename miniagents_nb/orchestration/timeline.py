"""The orchestrator's timeline: typed records of everything a strategy did, and their text and HTML forms.

The records hold the facts (which agent ran, with which prompt, what it answered, what it changed on the state,
what was rejected and why, what reached the environment); the renderings are deterministic (no ids, addresses
or timings), so a notebook that shows an orchestrator compares equal when re-run.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

__all__ = [
    "ActionRecord",
    "ErrorRecord",
    "FailureRecord",
    "ResetRecord",
    "StepRecord",
    "TimelineRecord",
    "TransitionRecord",
    "TurnRecord",
    "render_timeline_html",
    "render_timeline_text",
]

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


@dataclass(frozen=True)
class StepRecord:
    """An environment step began: the orchestrator was called with `observation`."""

    step: int
    observation: str | None
    reward: float | None


@dataclass(frozen=True)
class TransitionRecord:
    """The transition function ran: control went from `from_agent` to `to_agent` (and the state changed so)."""

    step: int
    from_agent: str
    to_agent: str
    env_step: bool
    state_changes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TurnRecord:
    """One agent turn: the prompt the model saw, its reply, the agent's output and what changed on the state."""

    step: int
    agent: str
    attempt: int
    prompt: tuple[tuple[str, str], ...]
    reply: str | None
    output: str | None
    env_step: bool
    accepted: bool
    state_changes: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ErrorRecord:
    """An error was signalled (`source` is "reply" or "transition"); `consecutive` counts them in a row."""

    step: int
    agent: str
    source: str
    log_message: str
    improve_message: str
    consecutive: int


@dataclass(frozen=True)
class ActionRecord:
    """The step ended: `action` went back to the environment."""

    step: int
    agent: str
    action: str


@dataclass(frozen=True)
class FailureRecord:
    """The step ended with an exception (a limit, an unknown agent, an LLM failure)."""

    step: int
    error_type: str
    message: str


@dataclass(frozen=True)
class ResetRecord:
    """`Orchestrator.reset()` started a new episode."""


TimelineRecord = Union[  # noqa: UP007 - a runtime alias, Python 3.10 compatible
    StepRecord, TransitionRecord, TurnRecord, ErrorRecord, ActionRecord, FailureRecord, ResetRecord
]


def _clean(text: str) -> str:
    return _ADDRESS.sub("", text)


def _cut(text: str, limit: int) -> str:
    text = _clean(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(text: str | None, limit: int) -> str:
    return "None" if text is None else repr(_cut(text, limit))


def _record_lines(record: TimelineRecord, limit: int) -> list[str]:
    if isinstance(record, StepRecord):
        reward = "" if record.reward is None else f", reward={record.reward!r}"
        return [f"step {record.step}: observation={_short(record.observation, limit)}{reward}"]
    if isinstance(record, TransitionRecord):
        flag = " (env step)" if record.env_step else ""
        lines = [f"  {record.from_agent} -> {record.to_agent}{flag}"]
        return lines + [f"    {key} = {_cut(value, limit)}" for key, value in record.state_changes]
    if isinstance(record, TurnRecord):
        verdict = "" if record.accepted else " [rejected]"
        lines = [
            f"  {record.agent} #{record.attempt}{verdict}: reply={_short(record.reply, limit)}"
            + ("" if record.output == record.reply else f" output={_short(record.output, limit)}")
        ]
        lines += [f"    {key} = {_cut(value, limit)}" for key, value in record.state_changes]
        return lines
    if isinstance(record, ErrorRecord):
        return [
            f"  ! {record.agent} ({record.source}, {record.consecutive} in a row): {_short(record.log_message, limit)}"
        ]
    if isinstance(record, ActionRecord):
        return [f"  => action from {record.agent}: {_short(record.action, limit)}"]
    if isinstance(record, FailureRecord):
        return [f"  !! {record.error_type}: {_short(record.message, limit)}"]
    return ["-- reset --"]


def render_timeline_text(records: Sequence[TimelineRecord], limit: int = 120) -> str:
    """The timeline as indented lines, texts cut at `limit` characters."""
    return "\n".join(line for record in records for line in _record_lines(record, limit))


_SCOPE = ".mnb-orch-timeline table.mnb-orch"
_RULES = (
    (
        "",
        "font-family:var(--jp-code-font-family,monospace);font-size:var(--jp-code-font-size,12px);"
        "border-collapse:collapse;margin:4px 0;table-layout:auto;color:var(--jp-content-font-color1,inherit)",
    ),
    (
        "td, th",
        "border:1px solid var(--jp-border-color2,#ddd);padding:2px 6px;text-align:left;vertical-align:top;"
        "white-space:pre-wrap;word-break:break-word;line-height:1.4;max-width:70ch",
    ),
    ("td:nth-child(-n+2)", "white-space:nowrap;word-break:normal"),  # "step 2", "executor #1": never cut
    ("th", "background:var(--jp-layout-color2,#eee);color:var(--jp-ui-font-color1,inherit)"),
    ("tr.mnb-step td", "background:color-mix(in srgb,var(--jp-brand-color1,#1976d2) 14%,transparent);font-weight:bold"),
    ("tr.mnb-rejected td", "color:var(--jp-error-color1,#c62828)"),
    ("tr.mnb-action td", "background:color-mix(in srgb,var(--jp-success-color1,#388e3c) 14%,transparent)"),
    ("summary", "cursor:pointer;color:var(--jp-ui-font-color2,#555)"),
)


def _selector(suffix: str) -> str:
    return ",".join(f"{_SCOPE} {part.strip()}" for part in suffix.split(",")) if suffix else _SCOPE


_STYLE = (
    # JupyterLab right-aligns and centres the cells of tables in outputs (`:not(.jp-RenderedMarkdown)
    # .jp-RenderedHTMLCommon td`, two classes and a tag): these rules have two classes and two tags, so they win and
    # prose and JSON read left-aligned; the colours are the theme's, so both light and dark themes read well.
    "<style>"
    + "".join(f"{_selector(suffix)}{{{body}}}" for suffix, body in _RULES)
    + ".mnb-orch-title{font-weight:bold;color:var(--jp-content-font-color1,inherit)}"
    "</style>"
)


def _esc(text: str | None, limit: int) -> str:
    return "<i>None</i>" if text is None else html.escape(_cut(text, limit))


def _html_row(record: TimelineRecord, limit: int) -> str:
    if isinstance(record, StepRecord):
        reward = "" if record.reward is None else f" reward={html.escape(repr(record.reward))}"
        return (
            f'<tr class="mnb-step"><td>step {record.step}</td><td>environment</td>'
            f"<td colspan=2>{_esc(record.observation, limit)}{reward}</td></tr>"
        )
    if isinstance(record, TransitionRecord):
        flag = " (env step)" if record.env_step else ""
        changes = "\n".join(f"{html.escape(key)} = {_esc(value, limit)}" for key, value in record.state_changes)
        return (
            f"<tr><td></td><td>transition</td><td>{html.escape(record.from_agent)} → "
            f"{html.escape(record.to_agent)}{flag}</td><td>{changes}</td></tr>"
        )
    if isinstance(record, TurnRecord):
        prompt = "\n".join(f"[{role}] {_esc(content, limit)}" for role, content in record.prompt)
        changes = "\n".join(f"{html.escape(key)} = {_esc(value, limit)}" for key, value in record.state_changes)
        css = ' class="mnb-rejected"' if not record.accepted else ""
        verdict = " (rejected)" if not record.accepted else ""
        return (
            f"<tr{css}><td></td><td>{html.escape(record.agent)} #{record.attempt}{verdict}</td>"
            f"<td><details><summary>{len(record.prompt)} prompt message{'' if len(record.prompt) == 1 else 's'}</summary>"
            f"{prompt}</details>"
            f"{_esc(record.reply, limit)}</td><td>{changes}</td></tr>"
        )
    if isinstance(record, ErrorRecord):
        return (
            f'<tr class="mnb-rejected"><td></td><td>error ({html.escape(record.source)})</td>'
            f"<td>{_esc(record.log_message, limit)}</td><td>retry with: {_esc(record.improve_message, limit)}</td></tr>"
        )
    if isinstance(record, ActionRecord):
        return (
            f'<tr class="mnb-action"><td></td><td>action ({html.escape(record.agent)})</td>'
            f"<td colspan=2>{_esc(record.action, limit)}</td></tr>"
        )
    if isinstance(record, FailureRecord):
        return (
            f'<tr class="mnb-rejected"><td></td><td>{html.escape(record.error_type)}</td>'
            f"<td colspan=2>{_esc(record.message, limit)}</td></tr>"
        )
    return '<tr class="mnb-step"><td colspan=4>reset</td></tr>'


def render_timeline_html(title: str, records: Sequence[TimelineRecord], limit: int = 500) -> str:
    """The timeline as an HTML table (prompts folded in `<details>`), with `title` above it."""
    rows = "".join(_html_row(record, limit) for record in records)
    header = "<tr><th>step</th><th>who</th><th>what</th><th>state changes</th></tr>"
    return (
        f'{_STYLE}<div class="mnb-orch-timeline"><b class="mnb-orch-title">{html.escape(title)}</b>'
        f'<table class="mnb-orch">{header}{rows}</table></div>'
    )
