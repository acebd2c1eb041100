"""Keeping a store file truthful and bounded: runs left by a killed process are marked incomplete, old runs are
pruned, and messages no kept run refers to any more (directly or nested in another message) go with them.
"""

from __future__ import annotations

import json
import sqlite3
import time

from miniagents_nb.runs.encoding import nested_hash_keys, unpack_keys
from miniagents_nb.runs.rows import HOST, pid_is_alive

__all__ = ["mark_incomplete", "prune_runs"]


def mark_incomplete(connection: sqlite3.Connection) -> int:
    """Runs still 'running' whose process (on this host) is gone: 'incomplete'. Returns how many."""
    rows = connection.execute("SELECT DISTINCT pid FROM runs WHERE status = 'running' AND host = ?", (HOST,))
    dead = [pid for (pid,) in rows.fetchall() if not pid_is_alive(int(pid))]
    for pid in dead:
        connection.execute(
            "UPDATE runs SET status = 'incomplete' WHERE status = 'running' AND host = ? AND pid = ?", (HOST, pid)
        )
    return len(dead)


def _collect_orphan_messages(connection: sqlite3.Connection) -> None:
    keep: set[str] = set()
    todo = [key for (key,) in connection.execute("SELECT hash_key FROM replied WHERE hash_key IS NOT NULL")]
    for (packed,) in connection.execute("SELECT hash_keys FROM call_lists"):
        todo.extend(key for key in unpack_keys(packed) if key is not None)
    while todo:
        fresh = [key for key in set(todo) if key not in keep]
        keep.update(fresh)
        todo = []
        for start in range(0, len(fresh), 500):
            chunk = fresh[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for (text,) in connection.execute(f"SELECT json FROM messages WHERE hash_key IN ({marks})", chunk):
                todo.extend(nested_hash_keys(json.loads(text)))
    connection.execute("CREATE TEMP TABLE IF NOT EXISTS kept_messages (hash_key TEXT PRIMARY KEY)")
    connection.execute("DELETE FROM kept_messages")
    connection.executemany("INSERT OR IGNORE INTO kept_messages VALUES (?)", [(key,) for key in keep])
    connection.execute("DELETE FROM messages WHERE hash_key NOT IN (SELECT hash_key FROM kept_messages)")
    connection.execute("DELETE FROM kept_messages")


def prune_runs(connection: sqlite3.Connection, keep_runs: int | None, older_than_s: float | None) -> int:
    """Delete all but the `keep_runs` newest runs and the runs started more than `older_than_s` seconds ago
    (never a run that is still being recorded), with their rows and the messages nobody refers to any more."""
    doomed: set[int] = set()
    if keep_runs is not None:
        rows = connection.execute("SELECT id FROM runs ORDER BY id DESC LIMIT -1 OFFSET ?", (max(0, keep_runs),))
        doomed.update(run_id for (run_id,) in rows)
    if older_than_s is not None:
        rows = connection.execute("SELECT id FROM runs WHERE started_wall < ?", (time.time() - older_than_s,))
        doomed.update(run_id for (run_id,) in rows)
    if not doomed:
        return 0
    running = {run_id for (run_id,) in connection.execute("SELECT id FROM runs WHERE status = 'running'")}
    doomed -= running
    ids = sorted(doomed)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for table in ("llm_requests", "replied", "call_lists", "calls"):
            connection.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", chunk)
        connection.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk)
    if ids:
        _collect_orphan_messages(connection)
    return len(ids)
