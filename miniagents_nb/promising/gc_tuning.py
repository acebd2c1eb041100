"""The cyclic garbage collector's first two thresholds, raised while a context is active (opt-out).

An agent call allocates a dozen small container objects (its task, coroutine, sequences, messages). CPython's
default first-generation threshold (700 allocations) then runs the collector every ~60 calls, and each older
generation in turn, so a fan-out of 10,000 calls spent a quarter of its time walking live objects that were not
garbage. While a context is active the thresholds are raised to `GEN0_THRESHOLD` and `GEN1_THRESHOLD` (never
lowered), which cuts those passes about thirtyfold; reference counting still frees nearly everything the engine
makes at once (it makes no reference cycles per call), and cyclic garbage waits longer: young cycles at most 20,000
allocations, cycles that outlived one pass at most 2,000,000. When the last tuning
context is deactivated the thresholds are restored, unless someone changed them meanwhile (theirs are kept).

Opt out with `PromisingContext(tune_gc=False)` / `MiniAgents(tune_gc=False)`, or `MINIAGENTS_NB_TUNE_GC=0`.
"""

from __future__ import annotations

import gc
import os
import sys
import threading

__all__ = [
    "GEN0_THRESHOLD",
    "GEN1_THRESHOLD",
    "TUNE_GC_ENV",
    "hold_gc_tuning",
    "release_gc_tuning",
    "tune_gc_by_default",
]

GEN0_THRESHOLD = 20_000
"""The first-generation threshold while a tuning context is active."""

GEN1_THRESHOLD = 100 if sys.version_info < (3, 14) else None
"""The second one (on the classic generational collector: Python 3.14's incremental one reads it differently, and
is left as it is). A burst of calls whose objects all live on (a fan-out of 100,000 calls) otherwise walks them
all again in every second-generation pass, and once more in a full collection: a third of its time."""

TUNE_GC_ENV = "MINIAGENTS_NB_TUNE_GC"

_lock = threading.Lock()  # contexts are activated on any thread (a worker thread's loop, a script's)
_holders = 0
_saved: tuple[int, int, int] | None = None
_applied: tuple[int, int, int] | None = None


def tune_gc_by_default() -> bool:
    """Whether contexts tune the collector when not told: yes, unless `MINIAGENTS_NB_TUNE_GC` is 0 / false / off."""
    return os.environ.get(TUNE_GC_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def hold_gc_tuning() -> None:
    """One more context wants the raised threshold (the first one raises it)."""
    global _holders, _saved, _applied
    with _lock:
        if _holders == 0:
            current = gc.get_threshold()
            if current[0]:  # 0 means collection is off: leave that alone
                wanted = (
                    max(current[0], GEN0_THRESHOLD),
                    current[1] if GEN1_THRESHOLD is None else max(current[1], GEN1_THRESHOLD),
                    *current[2:],
                )
                if wanted != current:
                    gc.set_threshold(*wanted)
                    _saved, _applied = current, gc.get_threshold()
        _holders += 1


def release_gc_tuning() -> None:
    """A context that held the tuning is deactivated (the last one restores the thresholds it found)."""
    global _holders, _saved, _applied
    with _lock:
        if _holders == 0:
            return
        _holders -= 1
        if _holders == 0 and _saved is not None:
            if gc.get_threshold() == _applied:  # nobody else changed them while the tuning held
                gc.set_threshold(*_saved)
            _saved = _applied = None
