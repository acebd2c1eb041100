"""The one writer thread of a store: what the recordings hand over is written in batches, off the event loop.

`submit()` is a `deque.append` (no lock, no wake-up): the thread wakes every `flush_interval_s` and, once the queue
stopped growing (a busy event loop is left the GIL; at most `MAX_DELAY_S` later) or someone waits for it, takes
everything queued, turns it into rows (serializing messages here, in the context the recording captured, so hash keys are
the context's) and writes them in one transaction. A fault (a missing or read-only directory, a locked, corrupt or
full file) is reported once, through `on_fault`, and recording stops: what is submitted afterwards is dropped
cheaply until `resume()`. Nothing here ever raises into the agents.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from miniagents_nb.runs.rows import Batch, RowBuilder
from miniagents_nb.runs.schema import configure, migrate

__all__ = ["MAX_DELAY_S", "StoreTask", "StoreWriter"]

_ITEMS_PER_SLICE = 256
MAX_DELAY_S = 1.0
"""The longest the writer defers a batch while items keep arriving (it then writes whatever is queued)."""


class StoreTask:
    """Work for the writer's connection (pruning), run between batches; its caller waits for `done`."""

    def __init__(self, task: Callable[[sqlite3.Connection], Any]) -> None:
        self.task = task
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class StoreWriter:
    """Owns the store's writing connection and thread (see the module docstring)."""

    def __init__(
        self,
        path: str,
        *,
        busy_timeout_s: float,
        flush_interval_s: float,
        size_limit_bytes: int | None,
        on_fault: Callable[[BaseException], None],
        on_open: Callable[[sqlite3.Connection], None],
    ) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self.flush_interval_s = flush_interval_s
        self.size_limit_bytes = size_limit_bytes
        self.fault: BaseException | None = None
        self._on_fault = on_fault
        self._on_open = on_open
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._closing = False
        self._urgent = False
        self._seen: tuple[int, float] = (0, 0.0)
        self.tick_due: float | None = None
        """When a recording's next hand-over is due (`time.monotonic()`), None when none is scheduled: a hand-over
        overdue means a busy event loop (one long step of many agents), which the writer leaves the GIL to."""
        self._connection: sqlite3.Connection | None = None
        self._rows = RowBuilder()
        self._thread = threading.Thread(target=self._run, name=f"miniagents_nb run store {path}", daemon=True)
        self._thread.start()

    # --- what the other threads call ----------------------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        """Whether submitted items are written (False after a fault, until `resume()`)."""
        return self.fault is None and not self._closing

    def submit(self, item: Any) -> None:
        """Queue `Facts` or a run item (see `miniagents_nb.runs.rows.RowBuilder.add`)."""
        if self.fault is None:
            self._queue.append(item)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is written (or dropped by a fault); False on timeout."""
        if not self._thread.is_alive():
            return True
        marker = threading.Event()
        self._queue.append(marker)
        self._urgent = True
        self._wake.set()
        return marker.wait(timeout)

    def resume(self) -> None:
        """Try again after a fault: what is submitted from now on is written, and the file is reopened first."""
        self._queue.append("resume")
        self.fault = None
        self._urgent = True
        self._wake.set()

    def close(self, timeout: float | None = 10.0) -> None:
        self._closing = True
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # --- the thread ---------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            if self._still_busy():
                continue
            closing = self._closing
            items: list[Any] = []
            while self._queue:
                items.append(self._queue.popleft())
            work: list[tuple[Any, ...]] = []
            for item in items:
                if isinstance(item, threading.Event):
                    self._write(work)
                    work = []
                    item.set()
                elif item == "resume":
                    self._write(work)
                    work = []
                    self._reset()
                elif isinstance(item, StoreTask):
                    self._write(work)
                    work = []
                    self._run_task(item)
                else:
                    work.append(item)
            self._write(work)
            if closing and not self._queue:
                break
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _still_busy(self) -> bool:
        """Whether to wait one more interval: items still pour in or a hand-over is overdue (the loop is busy:
        writing now would take the GIL from it), nothing waits for them, and the oldest has waited less than
        `MAX_DELAY_S`."""
        queued = len(self._queue)
        now = time.monotonic()
        if not queued:
            self._seen = (0, now)
            return False
        last_count, since = self._seen
        if last_count == 0:
            since = now
        self._seen = (queued, since)
        urgent = self._urgent or self._closing
        due = self.tick_due
        loop_busy = queued != last_count or (due is not None and now > due)
        if not urgent and loop_busy and now - since < MAX_DELAY_S:
            return True
        self._urgent = False
        self._seen = (0, now)
        return False

    def run_task(self, task: Callable[[sqlite3.Connection], Any], timeout: float | None = 60.0) -> Any:
        """Run `task(connection)` on the writer thread, in a transaction of its own, after everything submitted so
        far; returns its result or raises its error (or the store's fault)."""
        item = StoreTask(task)
        self._queue.append(item)
        self._urgent = True
        self._wake.set()
        if not item.done.wait(timeout):
            raise TimeoutError(f"The run store {self.path} did not answer within {timeout} s.")
        if item.error is not None:
            raise item.error
        return item.result

    def _run_task(self, item: StoreTask) -> None:
        try:
            if self.fault is not None:
                raise self.fault
            if self._connection is None:
                self._connection = self._connect()
            connection = self._connection
            connection.execute("BEGIN IMMEDIATE")
            try:
                item.result = item.task(connection)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            self._rows.forget_messages()  # a task may delete messages: write them again when they come back
        except BaseException as error:
            item.error = error
        finally:
            item.done.set()

    def _reset(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except sqlite3.Error:
                pass
        self._connection = None

    def _report(self, error: BaseException) -> None:
        if self.fault is None:
            self.fault = error
            self._on_fault(error)

    def _connect(self) -> sqlite3.Connection:
        """Open the file; while another process is creating or migrating it (switching a new file to WAL does not
        wait for the busy timeout), try again until `busy_timeout_s` has passed."""
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                return self._connect_once()
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    def _connect_once(self) -> sqlite3.Connection:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            configure(connection, self.busy_timeout_s)
            migrate(connection, self.path)
            if self.size_limit_bytes is not None:
                page_size = int(connection.execute("PRAGMA page_size").fetchone()[0])
                connection.execute(f"PRAGMA max_page_count = {max(1, self.size_limit_bytes // page_size)}")
            self._on_open(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def _write(self, items: list[Any]) -> None:
        if not items or self.fault is not None:
            return
        try:
            if self._connection is None:
                self._connection = self._connect()
            connection = self._connection
            batch = Batch()
            connection.execute("BEGIN IMMEDIATE")
            try:
                for number, item in enumerate(items, 1):
                    self._rows.add(connection, batch, item)
                    if number % _ITEMS_PER_SLICE == 0:
                        time.sleep(0)  # let the event loop's thread have the GIL between slices of a big batch
                batch.execute(connection)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            self._rows.written(batch)
        except (sqlite3.Error, OSError) as error:
            self._report(error)
