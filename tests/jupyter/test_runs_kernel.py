"""Runs recorded by one real kernel, listed and reopened by a second one (the kernel restart of issue 13).

The first kernel loads the extension (which records by default), runs a cell that triggers a small tree of agents
(a streamed reply among them), and prints what it saw: its call records with their monotonic times, the reply's
messages, and the final state of the live view of that reply. The second kernel, started afresh on the same store,
lists the run with `%miniagents runs` and reopens it with `%miniagents run ID`: the tree, the messages and every
time are equal to the first kernel's, and the reopened view reads as the live one did.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.provisioning.local_provisioner import LocalProvisioner

from miniagents_nb.errors import RunStoreError
from miniagents_nb.runs import RunStore, RunSummary

from .kernel_harness import ARTIFACTS, Kernel

pytestmark = pytest.mark.timeout(120)


AGENTS = """\
import asyncio, json
from miniagents_nb import MessageTokenAppender, TextMessage, miniagent
from miniagents_nb.jupyter import current_session


@miniagent
async def streamer(ctx, words="one two three"):
    with MessageTokenAppender(capture_errors=True) as appender:  # tokens from its own task, as an LLM agent's
        ctx.reply(TextMessage.promise(message_token_streamer=appender))
        for word in words.split():
            await asyncio.sleep(0.01)
            appender.append(word + " ")
    ctx.reply("streamed: " + words)


@miniagent
async def boss(ctx):
    ctx.reply(["boss says hi", streamer.trigger(ctx.message_promises, words="alpha beta")])
"""

RUN = 'reply = boss.trigger("hello")\nawait reply'

SEEN = """\
view = current_session().view(reply, tree=True)
await view.wait()
root = current_session().tracker.record_of_sequence(reply)
seen = {
    "calls": [
        [r.alias, r.caller.alias if r.caller else None, r.status, r.queued_at, r.started_at, r.ended_at]
        for r in root.walk()
    ],
    "messages": [str(m) for m in await reply],
    "state": view.state,
    "text": view.text(),
}
print(json.dumps(seen))
"""

REOPENED = """\
import json, os
from miniagents_nb.runs import RunStore
from miniagents_nb.jupyter._recorded_view import recorded_state
run = RunStore.shared(os.environ["MINIAGENTS_NB_RECORD"]).load({run_id})
calls = [
    [c.alias, c.parent.alias if c.parent else None, c.status.value, c.queued_at, c.started_at, c.ended_at]
    for c in run.calls.values()
]
print(json.dumps({{"calls": calls, "label": run.label, "cell": run.summary.cell, "state": recorded_state(run)}}))
"""

_STATUS = {"finished": "done"}
_TIMES = ("queued", "started", "ended", "elapsed", "marks")
"""What the views compute from the calls' times. Token ticks, and the "with its callees" total that ends at the last
one, are samples: the recorder's and the live view's are taken at different moments."""


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "nb" / ".miniagents" / "runs.sqlite"
    monkeypatch.setenv("MINIAGENTS_NB_RECORD", str(path))
    return path


def _last_json(stdout: str) -> Any:
    return json.loads(stdout.strip().splitlines()[-1])


def _plain(run: Any) -> str:
    data = run.display_data()
    assert data, run.messages
    return str(data[-1]["data"]["text/plain"])


def test_a_second_kernel_lists_and_reopens_the_run_of_the_first(store: Path) -> None:
    first = Kernel(ARTIFACTS / "runs-first-kernel.log")
    try:
        first.ok("%load_ext miniagents_nb")
        first.ok(AGENTS)
        first.ok(RUN)
        seen = _last_json(first.ok(SEEN).stdout)
        status = _plain(first.ok("%miniagents"))
    finally:
        first.close()
    assert f"Recording: runs to {store}" in status
    assert [call[0] for call in seen["calls"]] == ["BOSS", "STREAMER"]

    second = Kernel(ARTIFACTS / "runs-second-kernel.log")
    try:
        second.ok("%load_ext miniagents_nb")
        table = _plain(second.ok("%miniagents runs"))
        [row] = [line for line in table.splitlines() if line.startswith("#")]
        run_id = int(re.match(r"#(\d+) ", row).group(1))  # type: ignore[union-attr]
        shown = second.ok(f"%miniagents run {run_id}").display_data()[-1]["data"]
        reopened = _last_json(second.ok(REOPENED.format(run_id=run_id)).stdout)
    finally:
        second.close()

    # the table: one run, the cell that triggered the agents, its counts
    assert table.splitlines()[0] == f"1 recent run in {store}"
    cells = [cell.strip() for cell in row.split(" · ")]
    assert cells[1] == "In [3]"
    assert cells[4:] == ["finished", "2", "3", "2", "0", f"%miniagents run {run_id}"]
    assert reopened["label"] == "In [3]"
    assert reopened["cell"] == "3"

    # the tree and every time, exactly as the first kernel's records had them (its monotonic clock)
    recorded = [
        [alias, parent, _STATUS.get(status, status), *times] for alias, parent, status, *times in reopened["calls"]
    ]
    assert recorded == seen["calls"]

    # the messages, and the view: the reopened one reads as the live one did
    assert [message["text"] for message in reopened["state"]["messages"]] == seen["messages"]
    live, again = seen["state"], reopened["state"]
    for key in ("kind", "title", "status", "error", "show_messages", "show_tree", "messages", "roots"):
        assert again[key] == live[key], key
    assert again["nodes"].keys() == live["nodes"].keys()
    for label, node in live["nodes"].items():
        for key in ("alias", "status", "error", "children", "message_count", *_TIMES):
            assert again["nodes"][label][key] == node[key], (label, key)
        # the live tree shows a message the list shows as a short "↑ " reference; the reopened one in full
        assert [text.removeprefix("↑ ") for text in node["messages"]] == [
            text[: len(text.removeprefix("↑ "))] for text in again["nodes"][label]["messages"]
        ], label
    for label, node in again["nodes"].items():
        assert node["ticks"] == sorted(node["ticks"])
        assert (node["total"] is not None) == (live["nodes"][label]["total"] is not None)
    assert again["nodes"][live["roots"][0]]["children"]
    assert again["nodes"][again["nodes"][live["roots"][0]]["children"][0]]["ticks"]
    assert shown["text/plain"].split("\n", 1)[1] == seen["text"]
    assert shown["text/plain"].startswith('Recorded Run "In [3]" · finished · 2 calls · 3 messages · 0 failures')
    assert '<div class="mna-tree">' in shown["text/html"]
    assert 'class="mna-timeline"' in shown["text/html"]


def _widget_comm_of_table(messages: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The comm id and first state of the runs table widget a cell opened."""
    for message in messages:
        if message["msg_type"] == "comm_open":
            state = message["content"]["data"]["state"]
            if "rows" in state and "opened" in state:
                return str(message["content"]["comm_id"]), state
    raise AssertionError(f"no runs table widget was opened: {[m['msg_type'] for m in messages]}")


def test_clicking_a_run_id_in_the_runs_table_shows_that_run(store: Path) -> None:
    kernel = Kernel(ARTIFACTS / "runs-table-kernel.log")
    try:
        kernel.ok("%load_ext miniagents_nb")
        kernel.ok(AGENTS)
        kernel.ok(RUN)
        listed = kernel.ok("%miniagents runs")
        comm_id, state = _widget_comm_of_table(listed.messages)
        [output] = listed.display_data()
        [row] = state["rows"]
        click = kernel.kc.session.msg(  # what the id button sends, through the widget's comm
            "comm_msg",
            {"comm_id": comm_id, "data": {"method": "custom", "content": {"type": "open", "run_id": row["run_id"]}}},
        )
        kernel.kc.shell_channel.send(click)
        updates = kernel.drain_until(
            lambda m: (
                m["msg_type"] == "comm_msg"
                and m["content"]["comm_id"] == comm_id
                and "opened" in m["content"]["data"].get("state", {})
            )
        )
        shown = _plain(kernel.ok(f"%miniagents run {row['run_id']}"))
    finally:
        kernel.close()
    assert "application/vnd.jupyter.widget-view+json" in output["data"]
    assert "%miniagents run 1" in output["data"]["text/html"]  # the static fallback names the command to copy
    assert row["cells"][1] == "In [3]"
    update = updates[-1]["content"]["data"]["state"]
    assert update["opened"]["run_id"] == row["run_id"]
    assert "Recorded Run &quot;In [3]&quot;" in update["opened"]["html"]
    assert update["saved_form"]["text/plain"].endswith(shown)  # the saved form: the table, then the run as shown
    assert "[STREAMER] streamed: alpha beta" in update["saved_form"]["text/plain"]


def test_cells_run_without_history_as_nbval_runs_them_get_distinct_labels(store: Path) -> None:
    """nbval sends every cell with `store_history=False`: such a cell has no `In [N]`, so each run is labelled by
    the session's own count of cells ("cell N") instead of sharing the number of the last stored cell."""
    kernel = Kernel(ARTIFACTS / "runs-unnumbered-kernel.log")
    try:
        kernel.ok("%load_ext miniagents_nb", store_history=False)
        kernel.ok(AGENTS, store_history=False)
        kernel.ok(RUN, store_history=False)
        kernel.ok(RUN, store_history=False)
        kernel.ok(RUN)  # a stored cell is still `In [N]`
        table = _plain(kernel.ok("%miniagents runs", store_history=False))
    finally:
        kernel.close()
    labels = [[cell.strip() for cell in line.split(" · ")][1] for line in table.splitlines() if line.startswith("#")]
    assert sorted(labels) == ["In [1]", "cell 2", "cell 3"], table  # (the session counts from the cell after loading)


def test_a_run_records_the_notebook_path_and_cell_the_front_end_gives(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jupyter Server starts a notebook's kernel with `JPY_SESSION_NAME` (the notebook's path; ipykernel puts it in
    `__session__`) and sends each cell's id in the execute request's metadata: the cell's run carries both. A
    front end that sets `__session__` itself (VS Code) is read at each cell."""
    notebook = str(tmp_path / "nb" / "analysis.ipynb")
    monkeypatch.setenv("JPY_SESSION_NAME", notebook)
    kernel = Kernel(ARTIFACTS / "runs-notebook-path-kernel.log")
    try:
        kernel.ok("%load_ext miniagents_nb")
        kernel.ok(AGENTS)
        session = kernel.ok("print(__session__)").stdout.strip()
        kernel.ok(RUN, cell_id="0b7c5e1a-cell")
        kernel.ok(RUN)  # a console's cell: no id, the execution count stands for it
        kernel.ok('__session__ = "/elsewhere/other.ipynb"')
        kernel.ok(RUN, cell_id="other-cell")
        kernel.ok("%miniagents runs")  # (reading waits for the kernel's writer: everything is in the file)
    finally:
        kernel.close()
    assert session == notebook
    with RunStore(store) as opened:
        summaries = sorted(opened.runs(), key=lambda summary: summary.run_id)
        first = opened.load(summaries[0].run_id)
    assert [(s.label, s.notebook, s.cell, s.status) for s in summaries] == [
        ("In [4]", notebook, "0b7c5e1a-cell", "finished"),
        ("In [5]", notebook, "5", "finished"),
        ("In [7]", "/elsewhere/other.ipynb", "other-cell", "finished"),
    ]
    assert (first.summary.notebook, first.summary.cell) == (notebook, "0b7c5e1a-cell")
    assert [call.alias for call in first.calls.values()] == ["BOSS", "STREAMER"]


STUCK = """\
import asyncio, os
from miniagents_nb import miniagent

never = asyncio.Event()  # nothing ever sets it


@miniagent
async def stuck(ctx):
    ctx.reply("before the kill")
    await never.wait()


print(os.getpid())
"""


def _wait_for_run(store: Path, ready: Any, timeout: float = 30.0) -> RunSummary:
    """Poll the store (read from this process) until a run satisfies `ready`: waiting for a condition, with a
    deadline, not for a time."""
    reader = RunStore(store)
    try:
        deadline = time.monotonic() + timeout
        seen: list[RunSummary] = []
        while time.monotonic() < deadline:
            if store.exists():
                try:
                    seen = reader.runs()
                except RunStoreError:  # the kernel is still creating the file
                    seen = []
                for summary in seen:
                    if ready(summary):
                        return summary
            time.sleep(0.02)
        raise AssertionError(f"no such run in {store} within {timeout} s: {seen!r}")
    finally:
        reader.close()


def test_a_kernel_killed_mid_run_leaves_that_run_incomplete_and_loadable(store: Path) -> None:
    kernel = Kernel(ARTIFACTS / "runs-killed-kernel.log")
    try:
        kernel.ok("%load_ext miniagents_nb")
        pid = int(kernel.ok(STUCK).stdout.strip())
        provisioner = kernel.km.provisioner
        assert isinstance(provisioner, LocalProvisioner)
        assert pid == provisioner.pid
        process = provisioner.process
        assert isinstance(process, subprocess.Popen)
        kernel.start('reply = stuck.trigger("hello")\nawait reply')  # never ends
        running = _wait_for_run(store, lambda summary: summary.calls == 1 and summary.messages == 1)
        assert running.status == "running"  # the kernel is alive: its run is not taken for a dead one
        os.kill(pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL  # reaped: its pid is gone
        assert not kernel.km.is_alive()
    finally:
        kernel.close()

    with RunStore(store) as opened:
        [summary] = opened.runs()
        run = opened.load(summary.run_id)
    assert (summary.run_id, summary.label, summary.cell) == (running.run_id, "In [3]", "3")
    assert (summary.status, summary.calls, summary.messages, summary.failures) == ("incomplete", 1, 1, 0)
    assert summary.duration is not None
    assert summary.duration >= 0
    assert run.status == "incomplete"
    [call] = run.roots
    assert call.alias == "STUCK"
    assert call.status.value == "running"
    assert call.ended_at is None
    assert [str(message) for message in call.inputs] == ["hello"]  # what it was asked, noted when it started
    assert [message.text for message in call.replied] == ["before the kill"]
    assert "STUCK" in run.text
