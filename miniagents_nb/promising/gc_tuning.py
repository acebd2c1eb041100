"""The cyclic garbage collector's first threshold, raised while a context is active (opt-out).

An agent call allocates a dozen small container objects (its task, coroutine, sequences, messages). CPython's
default first-generation threshold (700 allocations) then runs the collector every ~60 calls, and each older
generation in turn, so a fan-out of 10,000 calls spent a quarter of its time walking live objects that were not
garbage. While a context is active the threshold is raised to `GEN0_THRESHOLD` (never lowered), which cuts those
passes about thirtyfold; reference counting still frees nearly everything the engine makes at once (it makes no
reference cycles per call), and cyclic garbage waits at most that many allocations longer. When the last tuning
context is deactivated the thresholds are restored, unless someone changed them meanwhile (theirs are kept).

Opt out with `PromisingContext(tune_gc=False)` / `MiniAgents(tune_gc=False)`, or `MINIAGENTS_NB_TUNE_GC=0`.
"""

from __future__ import annotations

import gc
import os
import threading

__all__ = ["GEN0_THRESHOLD", "TUNE_GC_ENV", "hold_gc_tuning", "release_gc_tuning", "tune_gc_by_default"]

GEN0_THRESHOLD = 20_000
"""The first-generation threshold while a tuning context is active (the older ones are left as they are)."""

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
            if current[0] and current[0] < GEN0_THRESHOLD:  # 0 means collection is off: leave that alone
                wanted = (GEN0_THRESHOLD, *current[1:])
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
