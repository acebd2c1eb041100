"""Runs recorded to an embedded SQLite store: every call, message, token arrival and LLM request of a run, kept
after the process (or kernel) is gone, read back as a `RecordedRun`, exported as a Chrome trace.

    store = RunStore("runs.sqlite")
    async with MiniAgents(record_to=store):      # or record_to="runs.sqlite"
        with store.run_label("experiment 1"):    # optional: name a run
            await agent.trigger("hello")
    store.runs()                                  # summaries, newest first
    run = store.load(store.runs()[0].run_id)      # the call tree, messages, timings
    run.to_chrome_trace("trace.json")
    async with MiniAgents(replay_from=store):     # LLM agents answer from the store (ReplaySource for options)
        ...

Standard library only (`sqlite3`): importable without Jupyter. See docs/runs.md.
"""

from __future__ import annotations

from miniagents_nb.runs.recorded import LLMRequest, RecordedCall, RecordedMessage, RecordedRun, RunSummary
from miniagents_nb.runs.recorder import StoreRecording
from miniagents_nb.runs.replay import ReplaySource
from miniagents_nb.runs.run_requests import RunHandle
from miniagents_nb.runs.schema import SCHEMA_VERSION
from miniagents_nb.runs.store import DEFAULT_KEEP_RUNS, RunLabel, RunStore
from miniagents_nb.runs.trace import chrome_trace, write_chrome_trace

__all__ = [
    "DEFAULT_KEEP_RUNS",
    "LLMRequest",
    "RecordedCall",
    "RecordedMessage",
    "RecordedRun",
    "ReplaySource",
    "RunHandle",
    "RunLabel",
    "RunStore",
    "RunSummary",
    "SCHEMA_VERSION",
    "StoreRecording",
    "chrome_trace",
    "write_chrome_trace",
]
