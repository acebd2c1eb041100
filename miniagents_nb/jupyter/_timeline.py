"""The static forms of a view's timeline: one lane per agent call, queued → started → ended, with message marks and
token ticks, drawn as plain HTML boxes placed in percent of the run's span (static/timeline.js builds the same DOM
live), so that a saved notebook, nbconvert and GitHub show it without a kernel or a script.

The lanes come from the tree's nodes (the view model puts the times in them, in seconds since the first call was
queued); text/plain names the lanes without times, so that it stays deterministic for nbval.
"""

from __future__ import annotations

import html
import math
from typing import Any

__all__ = [
    "axis_ticks",
    "format_seconds",
    "lane_summary",
    "timeline_html",
    "timeline_lanes",
    "timeline_text_lines",
]

_LANE_INDENT_PX = 12
_AXIS_STEPS = 4
"""About this many time labels on the axis (the title says the whole span)."""
_NICE_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)
_MINUTE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 720, 1440)
_AXIS_END_GAP = 0.92
"""No label past this share of the span: its text would run over the end of the axis."""


def axis_ticks(span: float) -> list[tuple[float, str]]:
    """The axis labels: round times from 0 (a step of 1, 2, 2.5 or 5 times a power of ten, or a round number of
    minutes, about a quarter of the span), each with its text; none too close to the end, where the title says the
    span. `axisTicks` in static/timeline.js computes the same."""
    if not span > 0:
        return [(0.0, "0 s")]
    raw = span / _AXIS_STEPS
    step: float
    if raw >= 60:
        unit, scale = "min", 60.0
        step = next((minutes for minutes in _MINUTE_STEPS if minutes >= raw / scale), math.ceil(raw / 86_400) * 1440)
    else:
        unit, scale = ("ms", 0.001) if raw < 0.001 else ("s", 1.0)
        power = 10.0 ** math.floor(math.log10(raw / scale))
        step = next(factor * power for factor in _NICE_STEPS if factor * power >= raw / scale * (1 - 1e-9))
    decimals = next(digits for digits in range(12) if abs(round(step, digits) - step) < step * 1e-6)
    ticks = [(0.0, f"{0:.{decimals}f} {unit}")]
    index = 1
    while index * step * scale < span * _AXIS_END_GAP:
        ticks.append((index * step * scale, f"{index * step:.{decimals}f} {unit}"))
        index += 1
    return ticks


def format_seconds(seconds: float) -> str:
    """`0.042 s`, `3.21 s`, `42.0 s`, `2 min 5 s` (mirrors `formatSeconds` in static/timeline.js)."""
    if seconds < 10:
        return f"{seconds:.3f} s" if seconds < 1 else f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def timeline_lanes(state: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(depth, node) for every call of the view, in tree order (a caller right above what it called)."""
    nodes = state["nodes"]
    lanes: list[tuple[int, dict[str, Any]]] = []

    def walk(label: str, depth: int) -> None:
        node = nodes[label]
        lanes.append((depth, node))
        for child in node["children"]:
            if child in nodes:
                walk(child, depth + 1)

    for root in state["roots"]:
        if root in nodes:
            walk(root, 0)
    return lanes


def _span(state: dict[str, Any], lanes: list[tuple[int, dict[str, Any]]]) -> float:
    times = [state.get("clock") or 0.0]
    for _, node in lanes:
        times.extend(t for t in (node.get("queued"), node.get("started"), node.get("ended")) if t is not None)
        times.extend(node.get("marks", ()))
        times.extend(node.get("ticks", ()))
    return max(max(times), 0.001)


def lane_summary(node: dict[str, Any]) -> str:
    """The lane's hover text: exact times (mirrors `laneSummary` in static/timeline.js)."""
    parts = [node["alias"], node["status"], f"queued at {format_seconds(node.get('queued') or 0.0)}"]
    if node.get("started") is not None:
        parts.append(f"started at {format_seconds(node['started'])}")
    if node.get("ended") is not None:
        parts.append(f"ended at {format_seconds(node['ended'])}")
    if node.get("elapsed") is not None:
        parts.append(f"ran {format_seconds(node['elapsed'])}")
    if node.get("ttft") is not None:
        parts.append(f"first token after {format_seconds(node['ttft'])}")
    if node.get("message_count"):
        count = node["message_count"]
        parts.append(f"{count} message{'' if count == 1 else 's'}")
    return " · ".join(parts)


def _pct(seconds: float, span: float) -> str:
    return f"{100.0 * min(max(seconds, 0.0), span) / span:.2f}%"


def _box(css_class: str, start: float, end: float, span: float) -> str:
    width = max(end - start, 0.0)
    return f'<div class="{css_class}" style="left:{_pct(start, span)};width:{_pct(width, span)}"></div>'


def _track(node: dict[str, Any], span: float) -> str:
    queued = node.get("queued") or 0.0
    started = node.get("started")
    ended = node.get("ended")
    status = html.escape(node["status"], quote=True)
    parts = []
    total = node.get("total")
    if started is not None and total is not None and total > (node.get("elapsed") or 0.0):
        parts.append(_box("mna-lane-span", started, started + total, span))  # waiting for its callees' replies
    if started is None:  # never started (cancelled while queued, or a view forced to end): waited till the end
        parts.append(_box("mna-lane-wait", queued, ended if ended is not None else span, span))
    else:
        parts.append(_box("mna-lane-wait", queued, started, span))
        parts.append(
            _box(f"mna-lane-bar mna-badge mna-badge-{status}", started, ended if ended is not None else span, span)
        )
    parts.extend(f'<span class="mna-lane-tick" style="left:{_pct(t, span)}"></span>' for t in node.get("ticks", ()))
    parts.extend(f'<span class="mna-lane-mark" style="left:{_pct(t, span)}"></span>' for t in node.get("marks", ()))
    return "".join(parts)


def timeline_html(state: dict[str, Any]) -> str:
    """The timeline section of the static HTML form: a `<details>` element, open when the view was asked for its
    timeline, closed under a tree (the user opens it with no script: saved notebooks and GitHub alike)."""
    lanes = timeline_lanes(state)
    span = _span(state, lanes)
    labels = []
    tracks = []
    for depth, node in lanes:
        summary = html.escape(lane_summary(node), quote=True)
        status = html.escape(node["status"], quote=True)
        alias = html.escape(node["alias"], quote=True)
        duration = node.get("total") if node.get("total") is not None else node.get("elapsed")
        labels.append(
            f'<div class="mna-lane-label" title="{summary}" style="padding-left:{depth * _LANE_INDENT_PX}px">'
            f'<span class="mna-lane-alias"><b>{alias}</b></span>'
            + (f' <span class="mna-lane-time">{format_seconds(duration)}</span>' if duration is not None else "")
            + "</div>"
        )
        tracks.append(
            f'<div class="mna-lane mna-status-{status}" data-alias="{alias}" data-status="{status}"'
            f' title="{summary}">{_track(node, span)}</div>'
        )
    if not lanes:
        labels.append('<div class="mna-lane-label mna-lane-none">(no agent calls yet)</div>')
    axis = " ".join(  # (spaces: the labels stay apart where the stylesheet is dropped, an unsigned notebook)
        f'<span class="mna-axis-label" style="left:{_pct(at, span)}">{text}</span>' for at, text in axis_ticks(span)
    )
    tracks.insert(0, f'<div class="mna-timeline-axis">{axis}</div>')
    labels.insert(0, '<div class="mna-lane-label mna-axis-spacer"></div>')
    title = f'Timeline <span class="mna-timeline-span">{format_seconds(span)}</span>'
    return (
        f'<details class="mna-timeline"{" open" if state.get("show_timeline") else ""}>'
        f'<summary class="mna-timeline-title">{title}</summary>'
        f'<div class="mna-timeline-body"><div class="mna-timeline-labels">{"".join(labels)}</div>'
        f'<div class="mna-timeline-scroll"><div class="mna-timeline-tracks">{"".join(tracks)}</div></div></div>'
        "</details>"
    )


def timeline_text_lines(state: dict[str, Any]) -> list[str]:
    """The timeline in text/plain: its lanes in order, without times (those go in the HTML form)."""
    lanes = timeline_lanes(state)
    lines = [f"Timeline: {len(lanes)} agent call{'' if len(lanes) == 1 else 's'}"]
    lines.extend("  " * (depth + 1) + f"{node['alias']} ({node['status']})" for depth, node in lanes)
    return lines
