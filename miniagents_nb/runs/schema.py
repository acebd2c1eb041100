"""The store's SQLite schema and its migrations: the version lives in `PRAGMA user_version`.

A store file written by an older version is brought up to date when it is opened for writing, one migration at a
time, each in its own transaction; a file written by a newer version is refused (its meaning is unknown here).
Every connection runs in WAL mode with a busy timeout, so several processes can record into one file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from miniagents_nb.errors import RunStoreError

__all__ = ["SCHEMA_VERSION", "configure", "migrate"]

_V1 = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    label TEXT,
    notebook TEXT,
    cell TEXT,
    status TEXT NOT NULL,            -- running | finished | failed | incomplete
    started_wall REAL NOT NULL,      -- epoch seconds
    started_at REAL NOT NULL,        -- time.monotonic() of the recording process at the start
    ended_at REAL,                   -- time.monotonic() at the end (NULL while running or when killed)
    host TEXT NOT NULL,
    pid INTEGER NOT NULL
);
CREATE INDEX runs_by_label ON runs(label);
CREATE TABLE calls (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    call_id INTEGER NOT NULL,
    parent_id INTEGER,
    alias TEXT NOT NULL,
    description TEXT,
    kwargs TEXT NOT NULL,            -- JSON: the agent's frozen arguments, then the call's own
    status TEXT NOT NULL,
    queued_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    wall_start REAL NOT NULL,        -- epoch seconds when the call was made
    error_type TEXT,
    error_text TEXT,
    error_traceback TEXT,
    PRIMARY KEY (run_id, call_id)
) WITHOUT ROWID;
CREATE TABLE messages (
    hash_key TEXT PRIMARY KEY,
    class TEXT NOT NULL,
    json TEXT NOT NULL               -- `Message.serialized`: nested messages appear by hash key
) WITHOUT ROWID;
CREATE TABLE call_lists (           -- each call's input and reply lists, in order
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    call_id INTEGER NOT NULL,
    role TEXT NOT NULL,              -- input | reply
    hash_keys BLOB NOT NULL,         -- the entries' hash keys, packed (encoding.pack_keys); empty where a failure was
    errors TEXT,                     -- JSON {position: "<Type>: <message>"} for the failures in the list
    PRIMARY KEY (run_id, call_id, role)
) WITHOUT ROWID;
CREATE TABLE replied (              -- the messages a call's agent replied itself, with their timing
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    call_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    hash_key TEXT,
    error TEXT,
    streamed INTEGER NOT NULL,
    replied_at REAL NOT NULL,
    ended_at REAL,
    tokens INTEGER NOT NULL,
    token_counts BLOB,               -- array('I'): how many tokens had arrived at each sample
    token_times BLOB,                -- array('d'): time.monotonic() of each sample
    PRIMARY KEY (run_id, call_id, position)
) WITHOUT ROWID;
CREATE TABLE llm_requests (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    call_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    provider TEXT,
    model TEXT,
    response_model TEXT,
    parameters TEXT,                 -- JSON
    usage TEXT,                      -- JSON
    stop_reason TEXT,
    time_to_first_token REAL,        -- seconds from the call's start to its first token
    PRIMARY KEY (run_id, call_id, position)
) WITHOUT ROWID;
"""


_V2 = """
ALTER TABLE llm_requests ADD COLUMN request_key TEXT;  -- the replay key of the request (`runs.replay.request_key`)
ALTER TABLE llm_requests ADD COLUMN token_lengths BLOB;  -- array('I'): the length of each streamed token, in order
CREATE INDEX llm_requests_by_key ON llm_requests(request_key);
"""
"""Version 2: what replay needs, the request's key and how the reply was cut into tokens."""


def _statements(script: str) -> list[str]:
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]


def _run_script(script: str) -> Callable[[sqlite3.Connection], None]:
    def migration(connection: sqlite3.Connection) -> None:
        for statement in _statements(script):  # not executescript(): it would commit the migration's transaction
            connection.execute(statement)

    return migration


_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_run_script(_V1), _run_script(_V2)]
"""`_MIGRATIONS[n]` takes a file from version n to n + 1 (append new ones; never change a released one)."""

SCHEMA_VERSION = len(_MIGRATIONS)


def configure(connection: sqlite3.Connection, busy_timeout_s: float) -> None:
    """WAL, a busy timeout, foreign keys (runs cascade to their rows), normal syncing (WAL keeps it safe)."""
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("PRAGMA foreign_keys = ON")


def migrate(connection: sqlite3.Connection, path: str) -> None:
    """Bring the file to `SCHEMA_VERSION` (each step in a transaction of its own)."""
    version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise RunStoreError(
            f"The run store {path} has schema version {version}, newer than this miniagents_nb knows "
            f"({SCHEMA_VERSION}): upgrade miniagents_nb, or record to another file."
        )
    while version < SCHEMA_VERSION:
        connection.execute("BEGIN IMMEDIATE")
        try:
            current = int(connection.execute("PRAGMA user_version").fetchone()[0])  # another process may have won
            if current == version:
                _MIGRATIONS[version](connection)
                connection.execute(f"PRAGMA user_version = {version + 1}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
