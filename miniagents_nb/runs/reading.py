"""Reading a store file: run summaries, and one run rebuilt as a `RecordedRun` (plain SQL, one connection)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from miniagents_nb.errors import RecordedError, UnknownRunError
from miniagents_nb.messages import Message
from miniagents_nb.runs.encoding import (
    nested_hash_keys,
    rebuild_messages,
    recorded_error,
    unpack_keys,
    unpack_tokens,
)
from miniagents_nb.runs.recorded import LLMRequest, RecordedCall, RecordedMessage, RecordedRun, RunSummary

__all__ = ["load_messages", "read_run", "read_summaries"]

_SUMMARY = """
SELECT r.id, r.label, r.status, r.started_wall, r.started_at, r.ended_at, r.notebook, r.cell,
    (SELECT COUNT(*) FROM calls c WHERE c.run_id = r.id),
    (SELECT COUNT(*) FROM replied p WHERE p.run_id = r.id),
    (SELECT COALESCE(SUM(p.tokens), 0) FROM replied p WHERE p.run_id = r.id AND p.streamed = 1),
    (SELECT COUNT(*) FROM calls c WHERE c.run_id = r.id AND c.status = 'failed'),
    (SELECT MAX(COALESCE(c.ended_at, c.started_at, c.queued_at)) FROM calls c WHERE c.run_id = r.id)
FROM runs r
"""


def _summary(row: tuple[Any, ...]) -> RunSummary:
    run_id, label, status, wall, started_at, ended_at, notebook, cell, calls, messages, tokens, failures, last = row
    end = ended_at if ended_at is not None else last
    return RunSummary(
        run_id=run_id,
        label=label,
        status=status,
        started=wall,
        duration=None if end is None else max(0.0, end - started_at),
        calls=calls,
        messages=messages,
        tokens=tokens,
        failures=failures,
        notebook=notebook,
        cell=cell,
    )


def read_summaries(connection: sqlite3.Connection, limit: int | None, label: str | None) -> list[RunSummary]:
    where, parameters = ("WHERE r.label = ?", [label]) if label is not None else ("", [])
    query = f"{_SUMMARY} {where} ORDER BY r.id DESC LIMIT ?"
    rows = connection.execute(query, [*parameters, -1 if limit is None else limit]).fetchall()
    return [_summary(row) for row in rows]


def _as_dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _entry(hash_key: str | None, error: str | None, messages: dict[str, Message]) -> Message | RecordedError | None:
    if hash_key is not None and hash_key in messages:
        return messages[hash_key]
    return recorded_error(error)


def read_run(connection: sqlite3.Connection, run_id: int) -> RecordedRun:
    rows = connection.execute(f"{_SUMMARY} WHERE r.id = ?", (run_id,)).fetchall()
    if not rows:
        raise UnknownRunError(f"The run store holds no run {run_id}: list the runs it holds with `store.runs()`.")
    summary = _summary(rows[0])
    run = RecordedRun(summary=summary, started_at=rows[0][4], ended_at=rows[0][5])
    for row in _as_dicts(connection.execute("SELECT * FROM calls WHERE run_id = ? ORDER BY call_id", (run_id,))):
        run.calls[row["call_id"]] = RecordedCall(run, row)
    for call in run.calls.values():
        parent = call.parent
        if parent is not None:
            parent.children.append(call)
    keys = [
        key
        for (key,) in connection.execute(
            "SELECT hash_key FROM replied WHERE run_id = ? AND hash_key IS NOT NULL", (run_id,)
        )
    ]
    packed_lists = connection.execute(
        "SELECT call_id, role, hash_keys, errors FROM call_lists WHERE run_id = ?", (run_id,)
    ).fetchall()
    unpacked = [(call_id, role, unpack_keys(packed), errors) for call_id, role, packed, errors in packed_lists]
    for _, _, list_keys, _ in unpacked:
        keys.extend(key for key in list_keys if key is not None)
    run.messages = load_messages(connection, keys)
    lists: dict[tuple[int, str], list[Message | RecordedError]] = {}
    for call_id, role, list_keys, errors_json in unpacked:
        errors = json.loads(errors_json) if errors_json else {}
        entries = lists.setdefault((call_id, role), [])
        for position, hash_key in enumerate(list_keys):
            entry = _entry(hash_key, errors.get(str(position)), run.messages)
            if entry is not None:
                entries.append(entry)
    replied: dict[int, list[RecordedMessage]] = {}
    for row in _as_dicts(
        connection.execute("SELECT * FROM replied WHERE run_id = ? ORDER BY call_id, position", (run_id,))
    ):
        counts, times = unpack_tokens(row["token_counts"], row["token_times"])
        message = run.messages.get(row["hash_key"]) if row["hash_key"] is not None else None
        replied.setdefault(row["call_id"], []).append(
            RecordedMessage(
                call_id=row["call_id"],
                position=row["position"],
                message=message,
                error=row["error"],
                streamed=bool(row["streamed"]),
                replied_at=row["replied_at"],
                ended_at=row["ended_at"] if row["streamed"] else row["replied_at"],
                tokens=row["tokens"],
                token_counts=counts,
                token_times=times,
                hash_key=row["hash_key"],
            )
        )
    requests: dict[int, list[LLMRequest]] = {}
    for row in _as_dicts(
        connection.execute("SELECT * FROM llm_requests WHERE run_id = ? ORDER BY call_id, position", (run_id,))
    ):
        requests.setdefault(row["call_id"], []).append(
            LLMRequest(
                provider=row["provider"],
                model=row["model"],
                response_model=row["response_model"],
                parameters=json.loads(row["parameters"]) if row["parameters"] else {},
                usage=json.loads(row["usage"]) if row["usage"] else None,
                stop_reason=row["stop_reason"],
                time_to_first_token=row["time_to_first_token"],
                request_key=row.get("request_key"),
            )
        )
    for call_id, call in run.calls.items():
        call.inputs = tuple(lists.get((call_id, "input"), ()))
        call.replied = tuple(replied.get(call_id, ()))
        if (call_id, "reply") in lists:
            call.replies = tuple(lists[(call_id, "reply")])
        else:  # no row: the list was just the call's own replies (the writer stores no copy of them)
            own = (_entry(message.hash_key, message.error, run.messages) for message in call.replied)
            call.replies = tuple(entry for entry in own if entry is not None)
        call.llm_requests = tuple(requests.get(call_id, ()))
    return run


def load_messages(connection: sqlite3.Connection, keys: list[str]) -> dict[str, Message]:
    """The messages with these keys and every message nested in them."""
    rows: dict[str, tuple[str, str]] = {}
    todo = list(dict.fromkeys(keys))
    while todo:
        chunk, todo = todo[:500], todo[500:]
        marks = ",".join("?" * len(chunk))
        for hash_key, class_name, text in connection.execute(
            f"SELECT hash_key, class, json FROM messages WHERE hash_key IN ({marks})", chunk
        ):
            rows[hash_key] = (class_name, text)
            for nested in nested_hash_keys(json.loads(text)):
                if nested not in rows and nested not in todo:
                    todo.append(nested)
    return rebuild_messages(rows)
