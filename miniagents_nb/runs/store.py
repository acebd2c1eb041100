"""`RunStore`: a SQLite file that records every run of the contexts that record to it, and reads them back.

Recording never breaks the agents: a store that cannot write (a missing or read-only directory, a locked, corrupt
or full file) logs one warning (logger `miniagents_nb.runs`), says why in `fault`, and stops recording until
`resume()`. Reading (`runs()`, `load()`, `prune()`) raises `RunStoreError` instead, saying what to do.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from miniagents_nb.agents.recording import register_path_recorder
from miniagents_nb.errors import InvalidArgumentsError, RunStoreError
from miniagents_nb.runs.maintenance import mark_incomplete, prune_runs
from miniagents_nb.runs.reading import read_run, read_summaries
from miniagents_nb.runs.recorded import RecordedRun, RunSummary
from miniagents_nb.runs.recorder import StoreRecording
from miniagents_nb.runs.run_requests import RunRequest, requested_run
from miniagents_nb.runs.schema import SCHEMA_VERSION, configure
from miniagents_nb.runs.writer import StoreWriter

__all__ = ["DEFAULT_KEEP_RUNS", "RunLabel", "RunStore", "flush_stores_of", "logger"]

DEFAULT_KEEP_RUNS = 1000
"""A store keeps the newest 1000 runs: older ones are pruned when a process first writes to it."""

logger = logging.getLogger("miniagents_nb.runs")

_shared: dict[str, RunStore] = {}
_shared_lock = threading.Lock()
_open_stores: set[RunStore] = set()


class RunLabel:
    """`with store.run_label("name"):` (or `async with`): top-level calls made inside belong to a run of that name."""

    def __init__(self, store: RunStore, label: str | None, notebook: str | None, cell: str | None) -> None:
        self.request = RunRequest(store, label, notebook, cell)
        self._token: Any = None

    def __enter__(self) -> RunLabel:
        self._token = requested_run.set(self.request)
        return self

    def __exit__(self, *exc_info: object) -> None:
        requested_run.reset(self._token)
        self.request.end()

    async def __aenter__(self) -> RunLabel:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, traceback)


class RunStore:
    """A run store file (SQLite, WAL): `MiniAgents(record_to=store)` records into it; `runs()` and `load()` read.

    `keep_runs`: how many runs the file keeps (older ones are pruned when this store first opens it for writing;
    None keeps everything). `size_limit_bytes`: a hard cap on the file (past it, recording stops as on a full
    disk). `flush_interval_s`: how often the writer thread writes; `token_sample_interval_s`: the precision of
    token arrival times (see `miniagents_nb.runs.recorder`). `busy_timeout_s`: how long a write waits for another
    process holding the file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        keep_runs: int | None = DEFAULT_KEEP_RUNS,
        size_limit_bytes: int | None = None,
        flush_interval_s: float = 0.1,
        token_sample_interval_s: float = 0.005,
        busy_timeout_s: float = 5.0,
    ) -> None:
        if keep_runs is not None and keep_runs < 1:
            raise InvalidArgumentsError(f"`keep_runs` must be at least 1 (or None to keep every run), got {keep_runs}.")
        self.path = str(Path(path).expanduser().absolute())
        self.keep_runs = keep_runs
        self.busy_timeout_s = busy_timeout_s
        self._token_sample_interval_s = token_sample_interval_s
        self._warned = False
        self._writer = StoreWriter(
            self.path,
            busy_timeout_s=busy_timeout_s,
            flush_interval_s=flush_interval_s,
            size_limit_bytes=size_limit_bytes,
            on_fault=self._on_fault,
            on_open=self._on_open,
        )
        _open_stores.add(self)

    @classmethod
    def shared(cls, path: str | os.PathLike[str]) -> RunStore:
        """The store of this file for the whole process (what `MiniAgents(record_to=path)` records into)."""
        key = str(Path(path).expanduser().absolute())
        with _shared_lock:
            store = _shared.get(key)
            if store is None or store.closed:
                store = _shared[key] = cls(key)
            return store

    @property
    def writer(self) -> StoreWriter:
        """The writer thread's end of the store (what recordings hand their rows to)."""
        return self._writer

    @property
    def token_sample_interval_s(self) -> float:
        return self._token_sample_interval_s

    # --- recording ----------------------------------------------------------------------------------------------

    def open_recording(self, miniagents: Any) -> StoreRecording:
        """A recording of one activation of `miniagents` (`MiniAgents(record_to=store)` calls this)."""
        return StoreRecording(self, miniagents)

    def run_label(self, label: str, *, notebook: str | None = None, cell: str | None = None) -> RunLabel:
        """A block whose top-level calls form one run named `label` (the run ends when the block does)."""
        return RunLabel(self, label, notebook, cell)

    @property
    def fault(self) -> BaseException | None:
        """Why recording stopped (None while it works)."""
        return self._writer.fault

    @property
    def recording(self) -> bool:
        """Whether what the contexts hand over is written."""
        return self._writer.accepting

    def resume(self) -> None:
        """Start recording again after a fault (the file is reopened; runs cut by the fault stay incomplete)."""
        self._warned = False
        self._writer.resume()

    def _on_fault(self, error: BaseException) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "Recording runs to %s stopped (%s: %s). The agents are not affected; fix the file or its directory "
                "(permissions, free space, another process holding it) and call `store.resume()`, or record "
                "elsewhere.",
                self.path,
                type(error).__name__,
                error,
            )

    def _on_open(self, connection: sqlite3.Connection) -> None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            mark_incomplete(connection)
            if self.keep_runs is not None:
                prune_runs(connection, self.keep_runs, None)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    # --- reading ------------------------------------------------------------------------------------------------

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until everything recorded so far in this process is in the file (False on timeout)."""
        return self._writer.flush(timeout)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        self.flush()
        if not Path(self.path).exists():
            raise RunStoreError(f"There is no run store at {self.path}: nothing was recorded there yet.")
        try:
            connection = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, isolation_level=None)
        except sqlite3.Error as error:
            raise RunStoreError(f"Cannot open the run store {self.path}: {error}.") from error
        try:
            configure(connection, self.busy_timeout_s)
            version = int(connection.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise RunStoreError(
                    f"The run store {self.path} has schema version {version}, newer than this miniagents_nb knows "
                    f"({SCHEMA_VERSION}): upgrade miniagents_nb to read it."
                )
            with contextlib.suppress(sqlite3.OperationalError):  # a read-only file is still readable
                mark_incomplete(connection)
            yield connection
        except sqlite3.DatabaseError as error:
            raise RunStoreError(
                f"Cannot read the run store {self.path} ({error}): if the file is corrupt, move it away; "
                "recording then starts a new one."
            ) from error
        finally:
            connection.close()

    def runs(self, limit: int | None = 20, label: str | None = None) -> list[RunSummary]:
        """The newest runs first (at most `limit`; only those named `label` when given)."""
        with self._reading() as connection:
            return read_summaries(connection, limit, label)

    def load(self, run_id: int) -> RecordedRun:
        """One run with its call tree, messages and timings (`UnknownRunError` if the store does not hold it)."""
        with self._reading() as connection:
            connection.execute("BEGIN")  # one snapshot of the whole run
            try:
                return read_run(connection, run_id)
            finally:
                connection.execute("COMMIT")

    def prune(self, keep_runs: int | None = None, older_than: float | None = None) -> int:
        """Delete runs beyond the newest `keep_runs` and runs older than `older_than` seconds (never one still being
        recorded), with the messages no kept run refers to; returns how many runs went."""
        if keep_runs is None and older_than is None:
            keep_runs = self.keep_runs
        try:
            deleted: int = self._writer.run_task(lambda connection: prune_runs(connection, keep_runs, older_than))
        except (sqlite3.Error, OSError) as error:
            raise RunStoreError(f"Cannot prune the run store {self.path}: {error}.") from error
        return deleted

    # --- lifetime -----------------------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self not in _open_stores

    def close(self) -> None:
        """Write what is left and stop the writer thread."""
        _open_stores.discard(self)
        self._writer.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({self.path!r})"


def flush_stores_of(path: str) -> None:
    """Write what this process's open stores of the file `path` (absolute) recorded so far (replay reads the file
    with a connection of its own, so it sees a run recorded a moment ago in the same process)."""
    for store in list(_open_stores):
        if store.path == path:
            store.flush()


@atexit.register
def _close_open_stores() -> None:
    for store in list(_open_stores):
        store.close()


register_path_recorder(RunStore.shared)
