"""Errors in notebook words, in a real ipykernel: an interrupt ends its cell with one line that counts the cancelled
calls (no library frames), an agent's failure is reported once (no extra stderr log unless logging was configured),
a missing `%load_ext` is named, a reply used without `await` says how to get its messages, and a re-run of a cell
whose earlier run still goes on is visible ("superseded") and cancels or keeps that run (`%miniagents rerun`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from .kernel_harness import ARTIFACTS, CellRun, Kernel, loaded_kernel
from .test_kernel import AGENTS

pytestmark = pytest.mark.timeout(120)


MORE_AGENTS = """\
@miniagent
async def bad(ctx: InteractionContext) -> None:
    ctx.reply("about to fail")
    raise ValueError("boom")
"""

SLOW_MINIAGENT = """\
%%miniagent slow
ctx.reply("working on it")
await asyncio.sleep(60)
"""


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with loaded_kernel("errors-kernel.log", AGENTS, MORE_AGENTS, SLOW_MINIAGENT) as running:
        yield running


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)  # IPython colours its tracebacks


def _texts(run: CellRun) -> str:
    """Everything the cell showed as text: streams, the error, and the plain text of its displays."""
    parts = [run.stdout, run.stderr]
    if run.error is not None:
        parts.extend(run.error["traceback"])
    for content in run.display_data():
        parts.append(str(content["data"].get("text/plain", "")))
    return _plain("\n".join(parts))


def _traceback(run: CellRun) -> list[str]:
    return [_plain(line) for line in (run.error or {}).get("traceback", [])]


def _library_frames(run: CellRun) -> list[str]:
    return [line for line in _traceback(run) if "miniagents_nb/" in line]


def _started(text: str) -> Any:
    return lambda m: m["msg_type"] == "stream" and text in m["content"]["text"]


def _interrupt_after(kernel: Kernel, code: str, printed: str) -> CellRun:
    run = kernel.start(code)
    kernel.wait(run, until=_started(printed))
    kernel.km.interrupt_kernel()
    return kernel.wait(run)


def _settled(kernel: Kernel) -> str:
    return kernel.ok("print(await settled())").stdout


# --- interrupts ----------------------------------------------------------------------------------------------------


def test_interrupting_an_await_cell_shows_one_line_with_the_count(kernel: Kernel) -> None:
    run = _interrupt_after(kernel, "reply = boss.trigger()\nprint('awaiting', flush=True)\nawait reply", "awaiting")
    assert run.error is not None
    assert run.error["traceback"] == ["interrupted: 2 agent calls cancelled"]  # BOSS and the TICKER it called
    assert run.error["evalue"] == "interrupted: 2 agent calls cancelled"
    assert run.stderr == ""
    assert "miniagents_nb" not in _texts(run)
    assert _settled(kernel) == "[]\n"  # they were cancelled, not only reported
    assert kernel.ok("print(reply.pieces_so_far[-1].__class__.__name__)").stdout == "CancelledError\n"


def test_interrupting_a_chat_with_a_miniagent_cell_agent_shows_one_line(kernel: Kernel) -> None:
    run = kernel.start("%%chat slow\nhello")
    kernel.wait(run, until=lambda m: m["msg_type"] == "display_data")
    # the agent has replied (its message is in the view's deltas) and now sleeps in its body
    kernel.wait(run, until=lambda m: m["msg_type"] == "comm_msg" and "working on it" in json.dumps(m["content"]))
    kernel.km.interrupt_kernel()
    kernel.wait(run)
    assert run.error is not None
    assert run.error["traceback"] == ["interrupted: 1 agent call cancelled"]
    assert run.stderr == ""
    assert "achat_cell" not in _texts(run)  # not the rewritten `await __import__(...)` line
    assert _settled(kernel) == "[]\n"


def test_interrupting_a_sync_facade_cell_counts_the_calls_of_its_loop(kernel: Kernel) -> None:
    code = (
        "async def main():\n"
        "    async for message_promise in ticker.trigger(count=1000):\n"
        "        async for token in message_promise:\n"
        "            print('streaming', flush=True)\n"
        "MiniAgents().run(main())"
    )
    run = _interrupt_after(kernel, code, "streaming")
    assert run.error is not None
    assert run.error["traceback"] == ["interrupted: 1 agent call cancelled"]
    assert "miniagents_nb" not in _texts(run)


def test_a_cell_that_started_no_agent_call_keeps_the_usual_interrupt(kernel: Kernel) -> None:
    run = _interrupt_after(kernel, "import time\nprint('sleeping', flush=True)\ntime.sleep(30)", "sleeping")
    assert run.error is not None
    assert run.error["ename"] == "KeyboardInterrupt"
    assert len(run.error["traceback"]) > 1  # IPython's own traceback: where the user's code was interrupted
    assert "agent call" not in "".join(run.error["traceback"])
    assert kernel.ok("print('still alive')").stdout == "still alive\n"


# --- failures ------------------------------------------------------------------------------------------------------


def _one_failure(run: CellRun) -> None:
    assert run.error is not None
    assert (run.error["ename"], run.error["evalue"]) == ("ValueError", "boom")
    assert len(run.of_type("error")) == 1
    assert run.stderr == ""  # no log record through Python's last-resort handler
    assert "AN ERROR OCCURRED" not in _texts(run)
    assert _library_frames(run) == []  # the agent's own frames, not the engine's
    assert any("raise ValueError" in line for line in _traceback(run))


def test_a_failing_agent_is_reported_once_by_await(kernel: Kernel) -> None:
    run = kernel.execute("await bad.trigger()")
    _one_failure(run)
    assert run.stdout == ""


def test_a_failing_agent_is_reported_once_by_its_view_and_await(kernel: Kernel) -> None:
    run = kernel.execute("reply = bad.trigger()\ndisplay(view(reply))\nawait reply")
    _one_failure(run)
    check = kernel.ok("print(view(reply).text())")
    assert "BAD · 2 messages · failed: ValueError: boom" in check.stdout  # the view says it, once

    chat = kernel.execute("%%chat bad\nhello")
    _one_failure(chat)
    plain = [content["data"]["text/plain"] for content in chat.display_data()]
    assert plain
    assert "failed: ValueError: boom" in plain[-1]  # the view's last form says it


def test_a_failure_nobody_awaited_or_viewed_shows_in_the_status(kernel: Kernel) -> None:
    run = kernel.ok("unseen = bad.trigger()\nprint(await settled())")
    assert run.stdout == "[]\n"
    assert run.stderr == ""
    status = kernel.ok("%miniagents").display_data()[-1]["data"]["text/plain"]
    assert re.search(r"^Failed agent calls: \d+ \(latest: BAD: ValueError: boom\)$", status, re.MULTILINE), status


def test_configured_logging_still_gets_the_failure(kernel: Kernel) -> None:
    run = kernel.ok(
        "import io, logging\n"
        "buffer = io.StringIO()\n"
        "handler = logging.StreamHandler(buffer)\n"
        "logging.getLogger().addHandler(handler)\n"
        "try:\n"
        "    await bad.trigger()\n"
        "except ValueError:\n"
        "    pass\n"
        "finally:\n"
        "    logging.getLogger().removeHandler(handler)\n"
        "print('AN ERROR OCCURRED IN AGENT BAD' in buffer.getvalue(), 'ValueError: boom' in buffer.getvalue())"
    )
    assert run.stdout == "True True\n"
    assert run.stderr == ""


# --- a reply used as its messages ------------------------------------------------------------------------------------


def test_a_reply_used_before_await_says_how_to_get_its_messages(kernel: Kernel) -> None:
    kernel.ok("reply = ticker.trigger(count=2, delay=0)\nawait reply")
    printed = kernel.ok("print(reply)").stdout
    assert printed.startswith("<MessageSequencePromise: a promise of a reply's messages (1 message, no more to come)")
    assert "`messages = await reply` (a notebook cell can `await` at its top level)" in printed
    assert "0x" not in printed
    for code in ("reply[0]", "len(reply)", "[m for m in reply]"):
        run = kernel.execute(code)
        assert run.error is not None, code
        assert run.error["ename"] == "NotAwaitedError"
        assert "a reply is a promise of messages, not the messages" in run.error["evalue"]
        assert "`messages = await reply` (a notebook cell can `await` at its top level)" in run.error["evalue"]
        # the user's line is shown (the last frame, where the hint is raised, is the one IPython never hides)
        assert any(code in line for line in _traceback(run)), code
    assert kernel.ok("messages = await reply\nprint(len(messages), messages[0])").stdout == "1 t0 t1 \n"
    assert kernel.ok("print(bool(reply), [m async for m in reply][0])").stdout.startswith(
        "True <MessagePromise: a promise of one message (2 tokens, complete). `message = await message_promise`"
    )


def test_without_load_ext_the_error_names_it() -> None:
    fresh = Kernel(ARTIFACTS / "no-extension-kernel.log")
    try:
        fresh.ok("from miniagents_nb import miniagent\n@miniagent\nasync def echo(ctx):\n    ctx.reply('hi')")
        run = fresh.execute("echo.trigger('hello')")
        assert run.error is not None
        assert run.error["ename"] == "NoActiveContextError"
        assert "Did you forget to do `async with MiniAgents():`?" in run.error["evalue"]
        assert "In a notebook, run `%load_ext miniagents_nb` once" in run.error["evalue"]
        fresh.ok("%load_ext miniagents_nb")
        assert fresh.ok("print([str(m) for m in await echo.trigger('hello')])").stdout == "['hi']\n"  # the fix works
    finally:
        fresh.close()


# --- re-running a cell ---------------------------------------------------------------------------------------------

RERUN_CELL = "r = ticker.trigger(count=1000)\nv = view(r, tree=True)\nviews.append(v)\ndisplay(v)"


def _streaming(kernel: Kernel, run: CellRun) -> None:
    """Wait until the view the cell displayed has sent its first delta (its agent streams)."""
    for content in run.display_data():
        widget = content["data"].get("application/vnd.jupyter.widget-view+json")
        if widget:
            model_id = widget["model_id"]
            break
    else:
        raise AssertionError(f"no widget displayed: {run.messages!r}")
    kernel.drain_until(
        lambda m: (
            m["msg_type"] == "comm_msg"
            and m["content"].get("comm_id") == model_id
            and m["content"].get("data", {}).get("method") == "custom"
        )
    )


def test_rerunning_a_cell_cancels_its_earlier_run_by_default_and_says_superseded(kernel: Kernel) -> None:
    kernel.ok("views = []")
    shown = kernel.ok("%miniagents rerun").display_data()[-1]["data"]["text/plain"]
    assert shown.startswith("Re-running a cell cancels the calls its earlier run left going")

    first = kernel.ok(RERUN_CELL, cell_id="rerun-cell")
    _streaming(kernel, first)
    second = kernel.ok(RERUN_CELL, cell_id="rerun-cell")
    assert second.stderr == (
        "superseded: 1 agent call of this cell's earlier run cancelled (`%miniagents rerun keep` keeps such runs)\n"
    )
    check = kernel.ok(
        "await views[0].wait()\n"
        "print(views[0].state['status'], views[0].state['superseded'])\n"
        "print(views[0].text().splitlines()[0])\n"
        "print(views[1].is_final, 'superseded' in views[1].text())"
    )
    assert check.stdout == (
        "cancelled True\nTICKER · 1 message · cancelled · superseded: its cell ran again\nFalse False\n"
    )
    # another cell with the same code is not a re-run of this one
    other = kernel.ok(RERUN_CELL, cell_id="another-cell")
    assert other.stderr == ""
    kernel.ok("%miniagents cancel")
    assert _settled(kernel) == "[]\n"


def test_rerun_keep_lets_the_earlier_run_go_on(kernel: Kernel) -> None:
    kernel.ok("views = []")
    chosen = kernel.ok("%miniagents rerun keep").display_data()[-1]["data"]["text/plain"]
    assert chosen.startswith("Re-running a cell keeps the calls its earlier run left going")
    status = kernel.ok("%miniagents").display_data()[-1]["data"]["text/plain"]
    assert "Re-running a cell keeps the calls its earlier run left going" in status  # not the default: said
    try:
        first = kernel.ok(RERUN_CELL, cell_id="keep-cell")
        _streaming(kernel, first)
        second = kernel.ok(RERUN_CELL, cell_id="keep-cell")
        assert second.stderr == (
            "superseded: 1 agent call of this cell's earlier run kept running (`%miniagents cancel` stops all calls)\n"
        )
        check = kernel.ok(
            "print(views[0].is_final, views[0].text().splitlines()[0])\n"
            "print(sorted(r.superseded for r in current_session().tracker.active_records()))"
        )
        # both runs go on: the earlier one superseded, the new one not
        assert check.stdout == "False TICKER · 1 message · streaming · superseded: its cell ran again\n[False, True]\n"
    finally:
        kernel.ok("%miniagents rerun cancel")
        kernel.ok("%miniagents cancel")
    assert _settled(kernel) == "[]\n"


def test_without_cell_ids_nothing_is_taken_for_a_rerun(kernel: Kernel) -> None:
    # (nbclient, papermill and consoles send no cell id: two cells with the same source are two cells)
    kernel.ok("views = []")
    first = kernel.ok(RERUN_CELL)
    _streaming(kernel, first)
    second = kernel.ok(RERUN_CELL)
    assert second.stderr == ""
    check = kernel.ok("print([r.superseded for r in current_session().tracker.active_records()])")
    assert check.stdout == "[False, False]\n"  # both go on
    kernel.ok("%miniagents cancel")
    assert _settled(kernel) == "[]\n"


def test_the_rerun_choice_is_in_the_help_and_checked(kernel: Kernel) -> None:
    help_text = kernel.ok("print(current_session().shell.find_line_magic('miniagents').__doc__)").stdout
    assert "%miniagents rerun cancel|keep" in help_text
    assert "LLM tokens" in help_text
    wrong = kernel.execute("%miniagents cancel keep")
    assert "UsageError: %miniagents: 'keep' goes after `rerun`" in wrong.stderr  # how IPython reports a usage error
