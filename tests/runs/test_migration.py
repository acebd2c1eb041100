"""A store file written at schema version 1 (before replay keys) opens, reads, migrates to the current version when
it is opened for writing, keeps its runs, and its unkeyed LLM requests fail replay with a clear error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from miniagents_nb import MiniAgents
from miniagents_nb.errors import ReplayMismatchError
from miniagents_nb.ext.llms import FakeLLMAgent
from miniagents_nb.runs import SCHEMA_VERSION, ReplaySource, RunStore
from miniagents_nb.runs.schema import _MIGRATIONS

_TABLES = ("runs", "calls", "messages", "call_lists", "replied", "llm_requests")


def _version(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute("PRAGMA user_version").fetchone()[0])


def _as_version_1(source: Path, target: Path) -> None:
    """A file built by the version 1 script, holding the rows of `source` that version 1 had columns for."""
    connection = sqlite3.connect(target, isolation_level=None)
    try:
        connection.execute("BEGIN")
        _MIGRATIONS[0](connection)  # the version 1 script, as a released 1.x wrote it
        connection.execute("PRAGMA user_version = 1")
        connection.execute("COMMIT")
        connection.execute("ATTACH DATABASE ? AS source", (str(source),))
        for table in _TABLES:
            columns = ", ".join(row[1] for row in connection.execute(f"PRAGMA main.table_info({table})"))
            connection.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM source.{table}")
        connection.execute("DETACH DATABASE source")
    finally:
        connection.close()


async def test_a_version_1_store_migrates_keeps_its_runs_and_refuses_replay_clearly(tmp_path: Path) -> None:
    recorded_path = tmp_path / "recorded.sqlite"
    agent = FakeLLMAgent.fork(replies=["an old answer", "a new answer"])
    with RunStore(recorded_path) as recorded_store:
        async with MiniAgents(record_to=recorded_store):
            with recorded_store.run_label("old"):
                await agent.trigger("old question")
        original = recorded_store.load(recorded_store.runs()[0].run_id)
    path = tmp_path / "v1.sqlite"
    _as_version_1(recorded_path, path)
    assert _version(path) == 1

    with RunStore(path) as store:
        (old,) = store.runs()  # reading does not migrate: a version 1 file reads as it is
        assert _version(path) == 1
        assert store.load(old.run_id).text == original.text
        with pytest.raises(ReplayMismatchError) as before:
            async with MiniAgents(replay_from=ReplaySource(path)):
                await agent.trigger("old question")
        assert "recorded with no replay key" in str(before.value)

        async with MiniAgents(record_to=store):  # writing migrates the file first
            with store.run_label("new"):
                new_reply = await agent.trigger("new question")
        store.flush()
        assert _version(path) == SCHEMA_VERSION == 2
        assert [summary.label for summary in store.runs()] == ["new", "old"]
        reopened = store.load(old.run_id)
        assert reopened.text == original.text
        (old_request,) = [request for call in reopened.calls.values() for request in call.llm_requests]
        assert old_request.request_key is None  # recorded before replay keys existed
        assert old_request.model == "fake-llm"

    async with MiniAgents(replay_from=ReplaySource(path)):
        replayed = await agent.trigger("new question")  # recorded after the migration: replays
        with pytest.raises(ReplayMismatchError) as after:
            await agent.trigger("old question")  # no key: a clear mismatch, not a crash
    assert replayed == new_reply
    text = str(after.value)
    assert text.startswith("FAKE_LLM_AGENT made an LLM request")
    assert "1 LLM request(s) recorded with no replay key" in text
