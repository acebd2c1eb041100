"""The one writer thread of a store: what the recordings hand over is written in batches, off the event loop.

`submit()` is a `deque.append` (no lock, no wake-up): the thread wakes every `flush_interval_s` and, once the queue
stopped growing (a busy event loop is left the GIL; at most `MAX_DELAY_S` later) or someone waits for it, takes
everything queued, turns it into rows (serializing messages here, in the context the recording captured, so hash keys are
the context's) and writes them in one transaction. A fault (a missing or read-only directory, a locked, corrupt or
full file) is reported once, through `on_fault`, and recording stops: what is submitted afterwards is dropped
cheaply until `resume()`. Nothing here ever raises into the agents.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import os
import socket
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from miniagents_nb.messages import Message
from miniagents_nb.runs.encoding import (
    arguments_json,
    error_columns,
    error_text,
    llm_columns,
    pack_keys,
    pack_tokens,
)
from miniagents_nb.runs.schema import configure, migrate

__all__ = ["HOST", "MAX_DELAY_S", "RunRef", "StoreTask", "StoreWriter", "pid_is_alive"]

HOST = socket.gethostname()


def pid_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return False
    return True


_run_keys = itertools.count(1)


class RunRef:
    """A run as the loop side knows it; `row_id` is set by the writer once the run's row exists."""

    __slots__ = ("cell", "failed", "key", "label", "notebook", "row_id", "started_at", "started_wall")

    def __init__(self, label: str | None, notebook: str | None, cell: str | None, at: float, wall: float) -> None:
        self.label = label
        self.notebook = notebook
        self.cell = cell
        self.started_at = at
        self.started_wall = wall
        self.row_id: int | None = None
        self.failed = False
        self.key = next(_run_keys)
        """How the writer's items name the run (plain ints keep the items out of the garbage collector's way)."""


_ITEMS_PER_SLICE = 256
MAX_DELAY_S = 1.0
"""The longest the writer defers a batch while items keep arriving (it then writes whatever is queued)."""

_INSERT_CALL = (
    "INSERT OR REPLACE INTO calls (run_id, call_id, parent_id, alias, description, kwargs, status, queued_at, "
    "wall_start) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?)"
)
_STARTED = "UPDATE calls SET status = 'running', started_at = ? WHERE run_id = ? AND call_id = ?"
_ENDED = (
    "UPDATE calls SET status = ?, ended_at = ?, error_type = ?, error_text = ?, error_traceback = ? "
    "WHERE run_id = ? AND call_id = ?"
)
_MESSAGE = "INSERT OR IGNORE INTO messages (hash_key, class, json) VALUES (?, ?, ?)"
_LIST = "INSERT OR REPLACE INTO call_lists (run_id, call_id, role, hash_keys, errors) VALUES (?, ?, ?, ?, ?)"
_REPLIED = (
    "INSERT OR REPLACE INTO replied (run_id, call_id, position, hash_key, error, streamed, replied_at, ended_at, "
    "tokens, token_counts, token_times) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_LLM = (
    "INSERT OR REPLACE INTO llm_requests (run_id, call_id, position, provider, model, response_model, parameters, "
    "usage, stop_reason, time_to_first_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_RUN_END = "UPDATE runs SET status = ?, ended_at = ? WHERE id = ?"


class _Batch:
    """The rows of one transaction, grouped so that every insert comes before the updates that need it."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.started: list[tuple[Any, ...]] = []
        self.ended: list[tuple[Any, ...]] = []
        self.messages: list[tuple[Any, ...]] = []
        self.lists: list[tuple[Any, ...]] = []
        self.replied: list[tuple[Any, ...]] = []
        self.llm: list[tuple[Any, ...]] = []
        self.run_ends: list[tuple[Any, ...]] = []
        self.new_keys: set[str] = set()


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
        self._connection: sqlite3.Connection | None = None
        self._known: set[str] = set()
        self._run_ids: dict[int, int | None] = {}
        self._own: dict[tuple[int, int], list[str | None]] = {}
        self._kwargs: dict[tuple[int, int], str] = {}
        self._started: dict[tuple[int, int], float] = {}
        self._thread = threading.Thread(target=self._run, name=f"miniagents_nb run store {path}", daemon=True)
        self._thread.start()

    # --- what the other threads call ----------------------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        """Whether submitted items are written (False after a fault, until `resume()`)."""
        return self.fault is None and not self._closing

    def submit(self, item: tuple[Any, ...]) -> None:
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
        """Whether to wait one more interval: items still pour in (the loop is busy: writing now would take the
        GIL from it), nothing waits for them, and the oldest has waited less than `MAX_DELAY_S`."""
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
        if not urgent and queued != last_count and now - since < MAX_DELAY_S:
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
            self._known.clear()  # a task may delete messages: write them again when they come back
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

    def _write(self, items: list[tuple[Any, ...]]) -> None:
        if not items or self.fault is not None:
            return
        try:
            if self._connection is None:
                self._connection = self._connect()
            connection = self._connection
            batch = _Batch()
            connection.execute("BEGIN IMMEDIATE")
            try:
                for number, item in enumerate(items, 1):
                    self._add(connection, batch, item)
                    if number % _ITEMS_PER_SLICE == 0:
                        time.sleep(0)  # let the event loop's thread have the GIL between slices of a big batch
                connection.executemany(_INSERT_CALL, batch.calls)
                connection.executemany(_STARTED, batch.started)
                connection.executemany(_ENDED, batch.ended)
                connection.executemany(_MESSAGE, batch.messages)
                connection.executemany(_LIST, batch.lists)
                connection.executemany(_REPLIED, batch.replied)
                connection.executemany(_LLM, batch.llm)
                connection.executemany(_RUN_END, batch.run_ends)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            self._known |= batch.new_keys
        except (sqlite3.Error, OSError) as error:
            self._report(error)

    # --- items to rows ------------------------------------------------------------------------------------------

    def _add(self, connection: sqlite3.Connection, batch: _Batch, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "run":
            run: RunRef = item[1]
            cursor = connection.execute(
                "INSERT INTO runs (label, notebook, cell, status, started_wall, started_at, host, pid) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?, ?)",
                (run.label, run.notebook, run.cell, run.started_wall, run.started_at, HOST, os.getpid()),
            )
            run.row_id = cursor.lastrowid
            self._run_ids[run.key] = run.row_id
            return
        run_id = self._run_ids.get(item[1])
        if run_id is None:  # the run's own row was lost to a fault: so are its rows
            return
        if kind == "call":
            _, _, call_id, parent_id, alias, description, frozen_kwargs, kwargs, queued_at, wall = item
            arguments = arguments_json({**frozen_kwargs, **kwargs})
            self._kwargs[(run_id, call_id)] = arguments
            batch.calls.append((run_id, call_id, parent_id, alias, description, arguments, queued_at, wall))
        elif kind == "started":
            self._started[(run_id, item[2])] = item[3]
            batch.started.append((item[3], run_id, item[2]))
        elif kind == "ended":
            _, _, call_id, status, at, error = item
            columns = error_columns(error) if error is not None else (None, None, None)
            batch.ended.append((status, at, *columns, run_id, call_id))
        elif kind == "list":
            _, _, context, call_id, role, entries = item
            keys: list[str | None] = []
            errors: dict[int, str] = {}
            for position, entry in enumerate(entries):
                key, text = self._entry(context, batch, entry)
                keys.append(key)
                if text is not None:
                    errors[position] = text
            own = self._own.pop((run_id, call_id), None) if role == "reply" else None
            if errors or (keys and keys != own):  # an empty list, or the call's own replies, need no row
                batch.lists.append((run_id, call_id, role, pack_keys(keys), json.dumps(errors) if errors else None))
        elif kind == "replied":
            _, _, context, call_id, position, entry, streamed, replied_at, ended_at, counts, times = item
            key, text = self._entry(context, batch, entry)
            tokens = counts[-1] if counts else 0
            blobs = pack_tokens(counts, times) if streamed and counts else (None, None)
            batch.replied.append(
                (
                    run_id,
                    call_id,
                    position,
                    key,
                    text,
                    int(streamed),
                    replied_at,
                    ended_at if streamed else None,
                    tokens,
                    *blobs,
                )
            )
            self._own.setdefault((run_id, call_id), []).append(key)
            if isinstance(entry, Message):
                self._add_llm(batch, context, run_id, call_id, position, entry, times if streamed else [])
        elif kind == "run_end":
            _, _, status, ended_at = item
            batch.run_ends.append((status, ended_at, run_id))
            for done in [pair for pair in self._kwargs if pair[0] == run_id]:
                del self._kwargs[done]
            for done in [pair for pair in self._started if pair[0] == run_id]:
                del self._started[done]
            for done in [pair for pair in self._own if pair[0] == run_id]:
                del self._own[done]

    def _entry(self, context: contextvars.Context, batch: _Batch, entry: Any) -> tuple[str | None, str | None]:
        if isinstance(entry, Message):
            try:
                return context.run(self._message_rows, batch, entry), None
            except Exception as error:  # a message that cannot be serialized is recorded as that failure
                return None, error_text(error)
        if isinstance(entry, BaseException):
            return None, error_text(entry)
        return None, None  # never produced (a lazy stream nobody consumed)

    def _message_rows(self, batch: _Batch, message: Message) -> str:
        for candidate in (*message.sub_messages(), message):
            key = candidate.hash_key
            if key not in self._known and key not in batch.new_keys:
                batch.new_keys.add(key)
                batch.messages.append((key, candidate.class_, candidate.serialized))
        return message.hash_key

    def _add_llm(
        self,
        batch: _Batch,
        context: contextvars.Context,
        run_id: int,
        call_id: int,
        position: int,
        message: Message,
        times: list[float],
    ) -> None:
        try:
            columns = context.run(llm_columns, message, self._kwargs.get((run_id, call_id)))
        except Exception:
            return
        if columns is None:
            return
        started = self._started.get((run_id, call_id))
        first_token = None if started is None or not times else max(0.0, times[0] - started)
        batch.llm.append((run_id, call_id, position, *columns, first_token))
