"""Turning what recordings hand over into rows: one `Batch` per transaction, built by the writer's `RowBuilder`.

High-volume facts travel as `Facts`: flat lists of plain values (no tuple per fact), so a busy run does not hand the
garbage collector one more container per event. Messages are serialized here, in the `contextvars` copy the
recording captured, so their hash keys are the ones the recording context computes.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import os
import socket
import sqlite3
from typing import Any

from miniagents_nb.agents.events import wall_clock
from miniagents_nb.messages import Message
from miniagents_nb.runs.encoding import (
    arguments_json,
    error_columns,
    error_text,
    llm_columns,
    pack_keys,
    pack_tokens,
)

__all__ = [
    "CALL_FIELDS",
    "ENDED_FIELDS",
    "HOST",
    "LIST_FIELDS",
    "REPLIED_FIELDS",
    "STARTED_FIELDS",
    "WHOLE_FIELDS",
    "Batch",
    "Facts",
    "RowBuilder",
    "RunRef",
    "pid_is_alive",
]

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
_NO_STREAM: tuple[list[int], list[float], None] = ([], [], None)
"""The stream facts of a whole message (never changed)."""


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


CALL_FIELDS = 6
"""run key, call id, parent id, agent (its definition), the call's own kwargs, queued at (the writer converts it to
the wall clock)."""
STARTED_FIELDS = 3
"""run key, call id, at."""
ENDED_FIELDS = 6
"""run key, call id, status, at, error, own list (True: the call's reply list is just its own replies, the whole
messages noted in order, so it needs no list row: what its replied facts noted for the comparison is dropped)."""
WHOLE_FIELDS = 5
"""run key, call id, position, message, replied at: a whole message replied (most replies), written as a replied
fact that is not streamed, ended when replied, with no tokens."""
REPLIED_FIELDS = 10
"""run key, call id, position, entry, streamed, replied at, ended at, token counts, token times, pieces (the
streamed pieces, None for a whole message)."""
LIST_FIELDS = 4
"""run key, call id, role, entries."""


class Facts:
    """What a recording observed since its last hand-over, as flat lists (see the `*_FIELDS` strides), and the
    `contextvars` copy its messages are serialized in."""

    __slots__ = ("calls", "context", "ended", "lists", "replied", "started", "whole")

    def __init__(self, context: contextvars.Context) -> None:
        self.context = context
        self.calls: list[Any] = []
        self.started: list[Any] = []
        self.ended: list[Any] = []
        self.whole: list[Any] = []
        self.replied: list[Any] = []
        self.lists: list[Any] = []

    def __bool__(self) -> bool:
        return bool(self.calls or self.started or self.ended or self.whole or self.replied or self.lists)


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
    "usage, stop_reason, request_key, token_lengths, time_to_first_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_RUN_END = "UPDATE runs SET status = ?, ended_at = ? WHERE id = ?"


class Batch:
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

    def execute(self, connection: sqlite3.Connection) -> None:
        connection.executemany(_INSERT_CALL, self.calls)
        connection.executemany(_STARTED, self.started)
        connection.executemany(_ENDED, self.ended)
        connection.executemany(_MESSAGE, self.messages)
        connection.executemany(_LIST, self.lists)
        connection.executemany(_REPLIED, self.replied)
        connection.executemany(_LLM, self.llm)
        connection.executemany(_RUN_END, self.run_ends)


class RowBuilder:
    """The writer's memory between batches: run ids by run key, the messages already written, and per call what
    later rows need (its arguments, its start, its own replies)."""

    def __init__(self) -> None:
        self._known: set[str] = set()
        self._run_ids: dict[int, int | None] = {}
        self._own: dict[tuple[int, int], list[str | None]] = {}
        self._kwargs: dict[tuple[int, int], str] = {}
        self._started: dict[tuple[int, int], float] = {}

    def forget_messages(self) -> None:
        """Messages may have been deleted (pruning): write them again when they come back."""
        self._known.clear()

    def written(self, batch: Batch) -> None:
        self._known |= batch.new_keys

    def add(self, connection: sqlite3.Connection, batch: Batch, item: Any) -> None:
        """Add an item to the batch: `Facts`, or a `("run", RunRef)` / `("run_end", key, status, at)` tuple."""
        if isinstance(item, Facts):
            self._add_facts(batch, item)
        elif item[0] == "run":
            run: RunRef = item[1]
            cursor = connection.execute(
                "INSERT INTO runs (label, notebook, cell, status, started_wall, started_at, host, pid) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?, ?)",
                (run.label, run.notebook, run.cell, run.started_wall, run.started_at, HOST, os.getpid()),
            )
            run.row_id = cursor.lastrowid
            self._run_ids[run.key] = run.row_id
        elif item[0] == "run_end":
            run_id = self._run_ids.get(item[1])
            if run_id is not None:
                batch.run_ends.append((item[2], item[3], run_id))
                for mapping in (self._kwargs, self._started, self._own):
                    for done in [pair for pair in mapping if pair[0] == run_id]:
                        del mapping[done]

    def _add_facts(self, batch: Batch, facts: Facts) -> None:
        run_ids = self._run_ids
        values = facts.calls
        for start in range(0, len(values), CALL_FIELDS):
            key, call_id, parent_id, agent, kwargs, queued_at = values[start : start + CALL_FIELDS]
            run_id = run_ids.get(key)
            if run_id is not None:  # None: the run's own row was lost to a fault, and so are its rows
                arguments = arguments_json({**agent.frozen_kwargs, **kwargs})
                self._kwargs[(run_id, call_id)] = arguments
                batch.calls.append(
                    (
                        run_id,
                        call_id,
                        parent_id,
                        agent.alias,
                        agent.description,
                        arguments,
                        queued_at,
                        wall_clock(queued_at),
                    )
                )
        values = facts.started
        for start in range(0, len(values), STARTED_FIELDS):
            key, call_id, at = values[start : start + STARTED_FIELDS]
            run_id = run_ids.get(key)
            if run_id is not None:
                self._started[(run_id, call_id)] = at
                batch.started.append((at, run_id, call_id))
        own_lists: list[tuple[int, int]] = []
        values = facts.ended
        for start in range(0, len(values), ENDED_FIELDS):
            key, call_id, status, at, error, own_list = values[start : start + ENDED_FIELDS]
            run_id = run_ids.get(key)
            if run_id is not None:
                columns = error_columns(error) if error is not None else (None, None, None)
                batch.ended.append((status, at, *columns, run_id, call_id))
                if own_list:
                    own_lists.append((run_id, call_id))
        context = facts.context
        values = facts.whole  # (before the streams: the order the old single list of replied facts had)
        for start in range(0, len(values), WHOLE_FIELDS):
            key, call_id, position, message, at = values[start : start + WHOLE_FIELDS]
            run_id = run_ids.get(key)
            if run_id is not None:
                self._add_replied(batch, context, run_id, call_id, position, message, (False, at, at), _NO_STREAM)
        values = facts.replied
        for start in range(0, len(values), REPLIED_FIELDS):
            key, call_id, position, entry, streamed, replied_at, ended_at, counts, times, pieces = values[
                start : start + REPLIED_FIELDS
            ]
            run_id = run_ids.get(key)
            if run_id is not None:
                self._add_replied(
                    batch,
                    context,
                    run_id,
                    call_id,
                    position,
                    entry,
                    (streamed, replied_at, ended_at),
                    (counts, times, pieces),
                )
        for pair in own_lists:  # (after the replied facts, which may be in this very batch)
            self._own.pop(pair, None)
        values = facts.lists
        for start in range(0, len(values), LIST_FIELDS):
            key, call_id, role, entries = values[start : start + LIST_FIELDS]
            run_id = run_ids.get(key)
            if run_id is not None:
                self._add_list(batch, context, run_id, call_id, role, entries)

    def _add_replied(
        self,
        batch: Batch,
        context: contextvars.Context,
        run_id: int,
        call_id: int,
        position: int,
        entry: Any,
        timing: tuple[bool, float, float | None],
        stream: tuple[list[int], list[float], list[Any] | None],
    ) -> None:
        streamed, replied_at, ended_at = timing
        counts, times, pieces = stream
        key, text = self._entry(context, batch, entry)
        tokens = counts[-1] if counts else 0
        blobs = pack_tokens(counts, times) if streamed and counts else (None, None)
        ended = ended_at if streamed else None  # a whole message ended when it was replied
        batch.replied.append((run_id, call_id, position, key, text, int(streamed), replied_at, ended, tokens, *blobs))
        self._own.setdefault((run_id, call_id), []).append(key)
        if isinstance(entry, Message):
            self._add_llm(batch, context, run_id, call_id, position, entry, times if streamed else [], pieces)

    def _add_list(
        self,
        batch: Batch,
        context: contextvars.Context,
        run_id: int,
        call_id: int,
        role: str,
        entries: list[Any] | None,
    ) -> None:
        if entries is None:  # the recorder saw that the list is just the call's own replies: no row, nothing to compare
            self._own.pop((run_id, call_id), None)
            return
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

    def _entry(self, context: contextvars.Context, batch: Batch, entry: Any) -> tuple[str | None, str | None]:
        if isinstance(entry, Message):
            try:
                return context.run(self._message_rows, batch, entry), None
            except Exception as error:  # a message that cannot be serialized is recorded as that failure
                return None, error_text(error)
        if isinstance(entry, BaseException):
            return None, error_text(entry)
        return None, None  # never produced (a lazy stream nobody consumed)

    def _message_rows(self, batch: Batch, message: Message) -> str:
        for candidate in (*message.sub_messages(), message):
            key = candidate.hash_key
            if key not in self._known and key not in batch.new_keys:
                batch.new_keys.add(key)
                batch.messages.append((key, candidate.class_, candidate.serialized))
        return message.hash_key

    def _add_llm(
        self,
        batch: Batch,
        context: contextvars.Context,
        run_id: int,
        call_id: int,
        position: int,
        message: Message,
        times: list[float],
        pieces: list[Any] | None,
    ) -> None:
        try:
            columns = context.run(llm_columns, message, self._kwargs.get((run_id, call_id)), pieces)
        except Exception:
            return
        if columns is None:
            return
        started = self._started.get((run_id, call_id))
        first_token = None if started is None or not times else max(0.0, times[0] - started)
        batch.llm.append((run_id, call_id, position, *columns, first_token))
