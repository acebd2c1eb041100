"""Faults lose nothing else: a store that cannot write warns once and stops (or resumes), the agents never notice;
a process killed mid-run leaves its run marked incomplete; two processes write one file at once."""

from __future__ import annotations

import logging
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support import unwritable_directory

from miniagents_nb import MiniAgents
from miniagents_nb.errors import RunStoreError, UnknownRunError
from miniagents_nb.runs import DEFAULT_KEEP_RUNS, RunStore

from .helpers import aggregator

SCRIPT = Path(__file__).with_name("store_script.py")
EXPECTED = ["c0a", "c0b", "c1a", "c1b"]


async def run_twice(store: RunStore) -> None:
    """Two contexts recording into the store: the agents' replies are right whatever the store does."""
    for _ in range(2):
        async with MiniAgents(record_to=store):
            assert [str(reply) for reply in await aggregator.trigger(count=2)] == EXPECTED
    store.flush()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "miniagents_nb.runs"]


@pytest.mark.parametrize("where", ["read-only directory", "path under a file"])
async def test_a_store_that_cannot_create_its_file_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    if where == "read-only directory":
        path = unwritable_directory(tmp_path) / "runs.sqlite"
    else:
        (tmp_path / "a-file").write_text("not a directory")
        path = tmp_path / "a-file" / "runs.sqlite"
    with RunStore(path, flush_interval_s=0.01) as store:
        await run_twice(store)
        assert isinstance(store.fault, OSError)
        assert not store.recording
        [warning] = warnings_of(caplog)
        assert str(path) in warning
        assert "store.resume()" in warning
        with pytest.raises(RunStoreError, match="no run store"):
            store.runs()


async def test_a_missing_directory_is_created(tmp_path: Path) -> None:
    with RunStore(tmp_path / "new" / "deeper" / "runs.sqlite", flush_interval_s=0.01) as store:
        await run_twice(store)
        assert [summary.calls for summary in store.runs()] == [3, 3]


async def test_a_locked_file_stops_recording_until_resumed(store_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with RunStore(store_path, flush_interval_s=0.01, busy_timeout_s=0.05) as store:
        await run_twice(store)
        holder = sqlite3.connect(store_path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            await run_twice(store)
            assert isinstance(store.fault, sqlite3.OperationalError)
            assert "locked" in str(store.fault)
            assert len(warnings_of(caplog)) == 1
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        store.resume()
        await run_twice(store)
        assert store.fault is None
        assert len(store.runs()) == 4  # the two runs made while it was locked are not in the file


@pytest.fixture
def corrupt_path(store_path: Path) -> Path:
    store_path.write_bytes(b"this is not a database" * 200)
    return store_path


async def test_a_corrupt_file_warns_and_reading_says_what_to_do(
    corrupt_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store_path = corrupt_path
    with RunStore(store_path, flush_interval_s=0.01) as store:
        await run_twice(store)
        assert isinstance(store.fault, sqlite3.DatabaseError)
        assert len(warnings_of(caplog)) == 1
        with pytest.raises(RunStoreError, match="move it away"):
            store.runs()


async def test_a_full_disk_stops_recording_and_the_agents_go_on(
    store_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with RunStore(store_path, flush_interval_s=0.01, size_limit_bytes=64 * 1024) as store:
        for _ in range(3):
            async with MiniAgents(record_to=store):
                replies = await aggregator.trigger("x" * 50_000, count=2)
            assert [str(reply) for reply in replies] == EXPECTED
        store.flush()
        assert isinstance(store.fault, sqlite3.OperationalError)
        assert "full" in str(store.fault)
        assert len(warnings_of(caplog)) == 1


async def test_a_file_of_a_newer_schema_is_refused(store_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with sqlite3.connect(store_path) as connection:
        connection.execute("PRAGMA user_version = 999")
    with RunStore(store_path, flush_interval_s=0.01) as store:
        await run_twice(store)
        assert isinstance(store.fault, RunStoreError)
        assert "upgrade miniagents_nb" in warnings_of(caplog)[0]
        with pytest.raises(RunStoreError, match="schema version 999"):
            store.runs()


async def test_an_unknown_run_is_a_clear_error(store: RunStore) -> None:
    await run_twice(store)
    with pytest.raises(UnknownRunError, match="store.runs()"):
        store.load(12345)


def test_a_run_of_a_killed_process_reopens_as_incomplete(store_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, str(SCRIPT), "killed", str(store_path)], stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"  # the run is in the file, the agent still hangs
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    with RunStore(store_path) as store:
        [summary] = store.runs()
        assert (summary.label, summary.status, summary.calls) == ("killed", "incomplete", 1)
        [call] = store.load(summary.run_id).roots
        assert call.alias == "STUCK"
        assert call.status.value == "running"
        assert [str(message) for message in call.inputs] == ["what it was asked"]
        assert [message.text for message in call.replied] == ["before the kill"]


def test_two_processes_record_into_one_file_at_once(store_path: Path) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), "many", str(store_path), "15"], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=50)[0].strip() for process in processes]
    assert outputs == ["ok", "ok"]
    with RunStore(store_path) as store:
        summaries = store.runs(limit=None)
        assert len(summaries) == 30
        assert {(summary.status, summary.calls, summary.messages) for summary in summaries} == {("finished", 6, 5)}
        assert len({summary.label for summary in summaries}) == 30


async def test_prune_keeps_the_newest_runs_and_the_messages_they_need(store: RunStore, store_path: Path) -> None:
    for number in range(5):
        async with MiniAgents(record_to=store):
            await aggregator.trigger(f"question {number}", count=2)
    assert store.prune(keep_runs=2) == 3
    summaries = store.runs()
    assert len(summaries) == 2
    for summary in summaries:
        run = store.load(summary.run_id)
        assert [str(message) for message in run.roots[0].replies] == EXPECTED
    with sqlite3.connect(store_path) as connection:
        (count,) = connection.execute("SELECT COUNT(*) FROM messages").fetchone()
    assert count == 2 + 4  # the two kept questions, and the replies they share
    assert store.prune(older_than=0) == 2
    assert store.runs() == []
    assert DEFAULT_KEEP_RUNS == RunStore(store_path).keep_runs == 1000


async def test_a_store_opened_for_writing_applies_its_bound(store_path: Path) -> None:
    with RunStore(store_path, flush_interval_s=0.01) as store:
        for _ in range(4):
            async with MiniAgents(record_to=store):
                await aggregator.trigger(count=1)
    with RunStore(store_path, flush_interval_s=0.01, keep_runs=2) as bounded:
        async with MiniAgents(record_to=bounded):
            await aggregator.trigger(count=1)
        assert len(bounded.runs()) == 3  # pruned to 2 when opened, then one more


async def test_each_store_warns_once_for_itself(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    (tmp_path / "a-file").write_text("not a directory")
    stores = [RunStore(tmp_path / "a-file" / f"{name}.sqlite", flush_interval_s=0.01) for name in "ab"]
    try:
        for store in stores:
            await run_twice(store)
            await run_twice(store)
    finally:
        for store in stores:
            store.close()
    assert [warning.split(" stopped")[0] for warning in warnings_of(caplog)] == [
        f"Recording runs to {store.path}" for store in stores
    ]
