"""The runs a recording records into: one asked for by a block (`RunStore.run_label(...)`, a notebook cell) or one
started by hand (`StoreRecording.start_run(...)`, which gives a `RunHandle`)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol

from miniagents_nb.runs.rows import RunRef
from miniagents_nb.runs.writer import StoreWriter

__all__ = ["RecordingStore", "RunHandle", "RunOwner", "RunRequest", "requested_run"]


class RecordingStore(Protocol):
    """What a recording needs of its store (`miniagents_nb.runs.RunStore`, which sits above this module)."""

    @property
    def writer(self) -> StoreWriter: ...
    @property
    def token_sample_interval_s(self) -> float: ...


class RunOwner(Protocol):
    """What a run needs of the recording it belongs to (`miniagents_nb.runs.recorder.StoreRecording`)."""

    @property
    def writer(self) -> StoreWriter: ...
    def end_run(self, run: RunRef) -> None: ...
    def end_request(self, request: RunRequest) -> None: ...


class RunRequest:
    """A run asked for with `RunStore.run_label(...)`: the top-level calls made inside the block belong to it."""

    def __init__(self, store: RecordingStore, label: str | None, notebook: str | None, cell: str | None) -> None:
        self.store = store
        self.label = label
        self.notebook = notebook
        self.cell = cell
        self.recordings: list[RunOwner] = []

    def end(self) -> None:
        for recording in self.recordings:
            recording.end_request(self)
        self.recordings.clear()


requested_run: ContextVar[RunRequest | None] = ContextVar("miniagents_nb_requested_run", default=None)


class RunHandle:
    """A run started with `StoreRecording.start_run(...)` (the notebook layer starts one per cell)."""

    def __init__(self, recording: RunOwner, run: RunRef) -> None:
        self._recording = recording
        self.run = run

    @property
    def run_id(self) -> int | None:
        """The run's id in the store (waits for the writer; None when the store could not write it)."""
        if self.run.row_id is None:
            self._recording.writer.flush(timeout=30)
        return self.run.row_id

    def end(self) -> None:
        """End the run (calls still running go on being recorded into it); later calls start the next run."""
        self._recording.end_run(self.run)
