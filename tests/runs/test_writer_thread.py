"""The store writes off the event loop, in batches: every SQLite statement of a recording runs in the store's writer
thread (never in the loop's), and a stream of 10k tokens is written in a bounded number of transactions, not one
(nor one statement) per token.

Seen through SQLite itself: `sqlite3.connect` is wrapped for the test so that every connection the store opens
reports each statement it runs (`set_trace_callback`, called in the thread that runs the statement)."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from miniagents_nb import MiniAgents
from miniagents_nb.runs import RunStore

from .helpers import aggregator, last_run, streamer

TOKENS = 10_000
FLUSH_INTERVAL_S = 0.05

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@dataclass
class Traced:
    """What the connections opened during the test did: where each was opened and each statement it ran."""

    connected_in: list[threading.Thread] = field(default_factory=list)
    statements: list[tuple[threading.Thread, str]] = field(default_factory=list)

    def writes(self) -> list[tuple[threading.Thread, str]]:
        return [(thread, sql) for thread, sql in self.statements if sql.lstrip().upper().startswith(_WRITES)]

    def transactions(self) -> list[tuple[threading.Thread, str]]:
        return [(thread, sql) for thread, sql in self.statements if sql.strip().upper().startswith("BEGIN")]


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Traced:
    seen = Traced()
    connect = sqlite3.connect

    def traced_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection: sqlite3.Connection = connect(*args, **kwargs)
        seen.connected_in.append(threading.current_thread())
        connection.set_trace_callback(lambda sql: seen.statements.append((threading.current_thread(), sql)))
        return connection

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    return seen


async def test_every_statement_of_a_recording_runs_in_the_writer_thread(traced: Traced, tmp_path: Path) -> None:
    loop_thread = threading.current_thread()
    with RunStore(tmp_path / "runs.sqlite", flush_interval_s=FLUSH_INTERVAL_S) as store:
        async with MiniAgents(record_to=store):
            await aggregator.trigger("question", count=20)
            await streamer.trigger(tokens=200)
        assert store.flush()
        connected_in, statements = list(traced.connected_in), list(traced.statements)  # before reading it back
        run = last_run(store)
    assert run.summary.calls == 22

    [writer_thread] = set(connected_in)  # one connection, opened by the writer thread
    assert writer_thread is not loop_thread
    assert writer_thread.name == f"miniagents_nb run store {store.path}"
    assert statements
    assert {thread for thread, _ in statements} == {writer_thread}
    written = " ".join(sql for _, sql in statements)
    for table in ("runs", "calls", "messages", "replied"):  # the writes are among them
        assert f"INTO {table} " in written, table


async def test_a_stream_of_10k_tokens_is_written_in_a_bounded_number_of_transactions(
    traced: Traced, tmp_path: Path
) -> None:
    started = time.monotonic()
    with RunStore(tmp_path / "runs.sqlite", flush_interval_s=FLUSH_INTERVAL_S) as store:
        async with MiniAgents(record_to=store):
            reply = await streamer.trigger(tokens=TOKENS)
        assert store.flush()
        elapsed = time.monotonic() - started
        transactions, writes = traced.transactions(), traced.writes()
        [message] = last_run(store).roots[0].replied
    assert len(str(reply[0])) == TOKENS
    assert message.tokens == TOKENS  # every token is in the file ...
    # ... written in batches: one transaction when the writer opens the file (marking dead processes' runs,
    # pruning), then at most a couple per wake-up (every flush interval, or at once for a flush)
    assert 2 <= len(transactions) <= 5 + 2 * elapsed / FLUSH_INTERVAL_S, (len(transactions), elapsed)
    assert len(transactions) < TOKENS / 100
    # and no statement per token: the token times go into the message's one `replied` row, as packed samples
    assert len(writes) <= 10 * len(transactions), [sql[:60] for _, sql in writes]
    assert 1 <= sum(" INTO replied " in sql for _, sql in writes) <= len(transactions)
