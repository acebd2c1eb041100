"""Recording in IPython's own shell: the default store beside the notebook, `MINIAGENTS_NB_RECORD=0|PATH`,
`%miniagents record off|on|PATH`, `%miniagents runs` / `run ID`, a `RecordedRun` shown as a reply view, and a store
that cannot be written (one warning, the cells work on)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from support import unwritable_directory

from miniagents_nb.jupyter import current_session
from miniagents_nb.runs import RunStore

from .helpers import RecordingComm, comm_of
from .test_magics import ok, usage_error

AGENTS = """
from miniagents_nb import miniagent

@miniagent
async def helper(ctx):
    ctx.reply("helper: " + str(await ctx.message_promises.as_single_text_promise()))

@miniagent
async def boss(ctx):
    ctx.reply(["boss here", helper.trigger(ctx.message_promises)])
"""

CALL = "print([str(m) for m in await boss.trigger('hi')])"
REPLIES = "['boss here', 'helper: hi']\n"
WARNING = "miniagents_nb: not recording runs to"

Loader = Callable[[str | None], Any]
LOAD_STDERR: list[str] = []


@pytest.fixture
def load(comms: list[RecordingComm], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Loader]:
    """`load(env)`: `%load_ext miniagents_nb` with `MINIAGENTS_NB_RECORD=env` (None: unset), in `tmp_path/nb`."""
    notebook_dir = tmp_path / "nb"
    notebook_dir.mkdir()
    monkeypatch.chdir(notebook_dir)
    ip = InteractiveShell.instance()
    loaded: list[bool] = []

    def load_with(env: str | None) -> Any:
        if env is None:
            monkeypatch.delenv("MINIAGENTS_NB_RECORD", raising=False)
        else:
            monkeypatch.setenv("MINIAGENTS_NB_RECORD", env)
        LOAD_STDERR[:] = [ok(ip, "%load_ext miniagents_nb").stderr]  # what the load cell wrote (a pre-checked fault)
        loaded.append(True)
        ok(ip, AGENTS)
        return ip

    yield load_with
    if loaded:
        ip.run_cell("%unload_ext miniagents_nb")
        ip.reset(new_session=False)


def displayed(ip: Any, code: str) -> str:
    """What a cell printed and displayed, as text (the runs table is displayed, not printed, once it is a widget)."""
    captured = ok(ip, code)
    return captured.stdout + "".join(output.data.get("text/plain", "") for output in captured.outputs)


def run_count(path: Path) -> int:
    return len(RunStore.shared(path).runs(limit=None)) if path.exists() else 0


def test_the_default_store_is_beside_the_notebook_and_each_cell_is_a_run(load: Loader, tmp_path: Path) -> None:
    ip = load(None)
    default = tmp_path / "nb" / ".miniagents" / "runs.sqlite"
    assert not default.exists()  # nothing is written before a cell starts agent calls
    assert ok(ip, CALL).stdout == REPLIES
    assert ok(ip, "x = 1").stdout == ""  # a cell without agent calls makes no run
    assert ok(ip, CALL + "\n" + CALL).stdout == REPLIES * 2
    assert run_count(default) == 2
    status = ok(ip, "%miniagents").stdout
    assert "Recording: runs to .miniagents/runs.sqlite (`%miniagents runs` lists them)" in status
    table = displayed(ip, "%miniagents runs")
    assert "2 recent runs in .miniagents/runs.sqlite" in table
    rows = [line for line in table.splitlines() if line.startswith("#")]
    assert [row.split(" · ")[4].strip() for row in rows] == ["finished", "finished"]
    assert [row.split(" · ")[5].strip() for row in rows] == ["4", "2"]  # newest first: the cell with two calls
    newest = rows[0].split(" ")[0].lstrip("#")
    shown = ok(ip, f"%miniagents run {newest}").stdout
    assert "Recorded Run" in shown
    assert shown.count("[BOSS] boss here") == 2
    assert "Agent calls:" in shown
    assert "%miniagents run " + newest in displayed(ip, "%miniagents runs -n 1")


def test_env_zero_turns_recording_off_and_record_on_turns_it_on(load: Loader, tmp_path: Path) -> None:
    ip = load("0")
    default = tmp_path / "nb" / ".miniagents" / "runs.sqlite"
    assert "Recording: off (`%miniagents record on` records runs)" in ok(ip, "%miniagents").stdout
    assert ok(ip, CALL).stdout == REPLIES
    assert not default.parent.exists()
    assert "Recording: runs to .miniagents/runs.sqlite" in ok(ip, "%miniagents record on").stdout
    ok(ip, CALL)
    assert run_count(default) == 1
    assert "No runs recorded" not in displayed(ip, "%miniagents runs")


def test_env_path_and_record_path_off_on(load: Loader, tmp_path: Path) -> None:
    first = tmp_path / "first.sqlite"
    ip = load(str(first))
    ok(ip, CALL)
    assert run_count(first) == 1
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shown = ok(ip, f"%miniagents record {elsewhere}").stdout  # a directory gets runs.sqlite in it
    second = elsewhere / "runs.sqlite"
    assert f"Recording: runs to {second}" in shown
    ok(ip, CALL)
    assert (run_count(first), run_count(second)) == (1, 1)
    assert "Recording: off" in ok(ip, "%miniagents record off").stdout
    ok(ip, CALL)
    assert (run_count(first), run_count(second)) == (1, 1)
    assert current_session(ip).miniagents.recording is None  # type: ignore[union-attr]
    assert f"Recording: runs to {second}" in ok(ip, "%miniagents record on").stdout  # the last path again
    ok(ip, CALL)
    assert (run_count(first), run_count(second)) == (1, 2)
    assert "Recording: runs to" in ok(ip, "%miniagents record").stdout  # no value: just tells


def test_run_and_runs_errors_are_usage_errors(load: Loader, tmp_path: Path) -> None:
    ip = load(str(tmp_path / "empty.sqlite"))
    assert "No runs recorded in" in displayed(ip, "%miniagents runs")
    assert "give the run's id" in usage_error(ip, "%miniagents run")
    assert "give the run's id" in usage_error(ip, "%miniagents run latest")
    ok(ip, CALL)
    assert "holds no run 99" in usage_error(ip, "%miniagents run 99")
    assert "only `rerun`, `record` and `run` take a value" in usage_error(ip, "%miniagents runs 3")


def test_a_recorded_run_displays_as_the_reply_view(load: Loader, tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    ip = load(str(path))
    ok(ip, CALL)
    code = f"from miniagents_nb.runs import RunStore\nRunStore.shared({str(path)!r}).load(1)"
    [output] = ok(ip, code).outputs  # displayed, as a live view is, with its text and HTML forms
    shown = output.data["text/plain"]
    assert '<div class="mna-tree">' in output.data["text/html"]
    assert 'Recorded Run "cell ' in shown  # run_cell() stores no history: the cell has no In [N]
    assert "[HELPER] helper: hi" in shown
    assert "    HELPER: done, 1 message" in shown


def test_the_runs_table_is_a_widget_whose_ids_open_each_run_below_it(
    load: Loader, tmp_path: Path, comms: list[RecordingComm]
) -> None:
    ip = load(str(tmp_path / "runs.sqlite"))
    ok(ip, CALL)
    ok(ip, "print('no call')")
    ok(ip, "table = %miniagents runs")
    widget = ip.user_ns["table"]
    [output] = ok(ip, "table").outputs
    assert "application/vnd.jupyter.widget-view+json" in output.data
    assert output.data["text/plain"] == widget.table.text()  # the static forms travel beside the widget
    assert "%miniagents run 1" in output.data["text/html"]
    recording = comm_of(comms, widget)
    assert recording.saved_forms()[-1] == {"text/plain": widget.table.text(), "text/html": widget.table.html()}
    assert [row["run_id"] for row in widget.rows] == [1]

    recording.receive({"type": "open", "run_id": 1})  # what a click on the id button sends
    assert widget.opened["run_id"] == 1
    assert "Recorded Run &quot;cell " in widget.opened["html"]  # the run view's static HTML, drawn below the table
    assert widget.opened["html"] == widget.view.html()
    saved = recording.saved_forms()[-1]
    assert saved["text/plain"].startswith(widget.table.text())
    assert "[HELPER] helper: hi" in saved["text/plain"]
    assert "    HELPER: done, 1 message" in saved["text/plain"]  # a saved notebook keeps the run that was open

    recording.receive({"type": "open", "run_id": 99})
    assert "holds no run 99" in widget.opened["error"]
    assert "holds no run 99" in recording.saved_forms()[-1]["text/plain"]
    recording.receive({"type": "open", "run_id": "1; drop"})  # not a run id: ignored
    assert widget.opened["run_id"] == 99


def test_a_cell_recorded_by_the_notebook_replays_under_the_replay_switch(
    load: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.sqlite"
    ip = load(str(path))
    ok(ip, "from miniagents_nb.ext.llms import FakeLLMAgent\nllm = FakeLLMAgent.fork(replies=['recorded words'])")
    ok(ip, "first = await llm.trigger('question')")
    keys = [
        request.request_key for call in RunStore.shared(path).load(1).calls.values() for request in call.llm_requests
    ]
    assert len(keys) == 1
    assert keys[0] is not None  # the notebook's recording stamps the replay key, as record_to= does
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "replay")
    monkeypatch.setenv("MINIAGENTS_NB_RUNS", str(path))
    ok(ip, "again = await FakeLLMAgent.fork(replies=['never used']).trigger('question')")
    assert ok(ip, "print(again == first, str(again[0]))").stdout == "True recorded words\n"


@pytest.mark.parametrize("where", ["read-only directory", "path under a file"])
def test_a_store_that_cannot_be_written_warns_once_and_the_cells_work(load: Loader, tmp_path: Path, where: str) -> None:
    if where == "read-only directory":
        path = unwritable_directory(tmp_path) / "runs.sqlite"
    else:
        (tmp_path / "a-file").write_text("not a directory")
        path = tmp_path / "a-file" / "runs.sqlite"
    ip = InteractiveShell.instance()
    try:
        load(str(path))
        warnings = LOAD_STDERR[0].count(WARNING)
        for _ in range(3):
            captured = ok(ip, CALL)
            assert captured.stdout == REPLIES
            warnings += captured.stderr.count(WARNING)
        status = ok(ip, "%miniagents").stdout
    finally:
        os.chmod(tmp_path / "read-only", 0o700) if (tmp_path / "read-only").exists() else None
    # in the load cell (a directory that cannot be written is seen at once) or in the first cell that recorded
    assert warnings == 1
    assert f"Recording: off ({path}" in status
    assert "`%miniagents record on` tries again" in status
    assert not path.exists()


def test_the_runs_table_is_deterministic_once_sanitized() -> None:
    """Ids, start times and durations vary; the tutorials' nbval rules replace them and nothing else differs."""
    import re

    from nbval.plugin import get_sanitize_patterns  # type: ignore[import-untyped]

    from miniagents_nb.jupyter._runs_table import RunsTable
    from miniagents_nb.runs import RunSummary

    rules = get_sanitize_patterns((Path(__file__).parents[2] / "notebooks" / "nbval_sanitize.cfg").read_text())

    def sanitized(ids: list[int], durations: list[float]) -> tuple[str, str]:
        summaries = [
            RunSummary(i, "In [3]", "finished", 1.7e9 + 97 * i, d, 2, 3, 5, 0)
            for i, d in zip(ids, durations, strict=True)
        ]
        text, page = RunsTable(summaries, ".miniagents/runs.sqlite")._repr_mimebundle_().values()
        for regex, replace in rules:
            text, page = re.sub(regex, replace, text), re.sub(regex, replace, page)
        return text, page

    text, page = sanitized([1, 2], [0.001, 0.5])
    assert (text, page) == sanitized([1234, 99], [125.0, 12.5])
    assert text.splitlines()[2] == (
        "#ID · In [3] · (STARTED) · (DURATION) · finished · 2     · 3        · 5      · 0        · %miniagents run ID"
    )
    assert "(RUN-id)" in page
    assert not re.search(r"run \d", page)
