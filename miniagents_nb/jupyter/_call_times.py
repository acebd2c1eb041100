"""When the calls of a view happened, on the view's own clock (seconds since its first call was queued): what the
timeline draws, and the tree's inclusive ("with its callees") and self times.

Token ticks cost nothing per token: at each of the view's updates, a call whose messages gained pieces since the
previous look gets one tick, so they are as fine as the update rate (20 per second by default).
"""

from __future__ import annotations

import time
from typing import Any

from miniagents_nb.jupyter._streams import stream_finished, stream_pieces
from miniagents_nb.jupyter._tracker import CallRecord

__all__ = ["MAX_TICKS", "CallTimes"]

MAX_TICKS = 400
"""Token ticks kept per call: past this many, every other one is dropped (a bar cannot show more anyway)."""


def _since(at: float, t0: float) -> float:
    return round(max(0.0, at - t0), 3)


class CallTimes:
    """The ticks seen so far, and the times of a node."""

    def __init__(self) -> None:
        self._ticks: dict[str, list[float]] = {}
        self._piece_counts: dict[int, int] = {}

    @staticmethod
    def t0(roots: list[CallRecord]) -> float:
        """The moment the timeline starts: when the first of the calls was queued."""
        return min((root.queued_at for root in roots), default=0.0)

    def sample(self, roots: list[CallRecord]) -> None:
        """Note, now, every call whose messages gained pieces since the last look."""
        now = time.monotonic()
        for root in roots:
            for record in root.walk():
                grew = False
                for promise in record.live_messages():
                    count = len(stream_pieces(promise))
                    seen = self._piece_counts.get(id(promise))
                    if seen is None and stream_finished(promise):
                        self._piece_counts[id(promise)] = count  # a whole message: a mark, not tokens
                    elif count > (seen or 0):
                        self._piece_counts[id(promise)] = count
                        grew = True
                if grew:
                    ticks = self._ticks.setdefault(record.label, [])
                    if len(ticks) >= MAX_TICKS:  # a long run: keep every other tick, evenly thinned
                        del ticks[1::2]
                    ticks.append(now)

    def total(self, record: CallRecord) -> float | None:
        """Seconds from the call's start until everything under it ended: its callees and the tokens of every
        message they replied (None until then; the front end counts it up meanwhile)."""
        end = record.subtree_end()
        if end is None or record.started_at is None:
            return None
        subtree = record.walk()
        if any(member.streaming() for member in subtree):
            return None
        last = max([end, *(self._ticks[member.label][-1] for member in subtree if self._ticks.get(member.label))])
        return round(max(0.0, last - record.started_at), 3)

    def own(self, record: CallRecord) -> float | None:
        """Self time: seconds the agent's body ran while none of its callees did (None until the call and its
        callees all ended). An agent that hands its work to others has a small self time and a large total; one
        that awaits its callees has the time it waited subtracted."""
        if record.started_at is None or record.ended_at is None:
            return None
        busy: list[tuple[float, float]] = []
        for child in record.children:
            child_total = self.total(child)
            if child.started_at is None:
                continue
            if child_total is None:
                return None
            busy.append((child.started_at, child.started_at + child_total))
        start, end = record.started_at, record.ended_at
        covered = 0.0
        cursor = start
        for lo, hi in sorted(busy):
            lo, hi = max(lo, cursor), min(hi, end)
            if hi > lo:
                covered += hi - lo
                cursor = hi
        return round(max(0.0, (end - start) - covered), 3)

    def node_times(self, record: CallRecord, roots: list[CallRecord]) -> dict[str, Any]:
        """A tree node's time fields (seconds on the view's clock)."""
        t0 = self.t0(roots)
        ticks = [_since(at, t0) for at in self._ticks.get(record.label, ())]
        started = None if record.started_at is None else _since(record.started_at, t0)
        return {
            "total": self.total(record),
            "self": self.own(record),
            "queued": _since(record.queued_at, t0),
            "started": started,
            "ended": None if record.ended_at is None else _since(record.ended_at, t0),
            "marks": [_since(at, t0) for at in record.message_times],
            "ticks": ticks,
            "ttft": None if started is None or not ticks else round(max(0.0, ticks[0] - started), 3),
        }

    def clock(self, roots: list[CallRecord]) -> float | None:
        """Seconds since the timeline's start: now while a call runs; once all ended, the end of the last call or
        of the last tokens seen, whichever came later (None without calls)."""
        if not roots:
            return None
        t0 = self.t0(roots)
        ends = [root.subtree_end() for root in roots]
        if all(end is not None for end in ends):
            last_tick = max((ticks[-1] for ticks in self._ticks.values() if ticks), default=t0)
            return _since(max(last_tick, *(end for end in ends if end is not None)), t0)
        return _since(time.monotonic(), t0)
