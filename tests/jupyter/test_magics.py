"""The extension in IPython's own shell: the notebook-wide context, rich displays, `%%miniagent`, `%%chat`,
`%miniagents`, cancellation of an interrupted cell's calls, and the sync facade under a running loop."""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import CapturedIO, capture_output

from miniagents_nb.jupyter import current_session
from miniagents_nb.promising.context import current_context_or_none
from miniagents_nb.promising.worker_thread import run_in_worker_thread

from .helpers import RecordingComm

AGENTS = """
import asyncio
import contextlib
from miniagents_nb import MiniAgents, miniagent, TextMessage

@miniagent
async def echo(ctx):
    async for message in ctx.message_promises:
        ctx.reply(f"echo: {await message}")

slow_started = asyncio.Event()  # set when a `slow` call runs: cells wait for it instead of sleeping

@miniagent
async def slow(ctx):
    ctx.reply("slow started")
    slow_started.set()
    await asyncio.sleep(30)  # runs until cancelled

def suppress_cancelled():
    return contextlib.suppress(asyncio.CancelledError)
"""

# A cell that starts a `slow` call and returns once it runs.
START_SLOW = "slow_started.clear()\n{name} = slow.trigger()\nawait slow_started.wait()"


def run(shell: Any, code: str) -> tuple[Any, CapturedIO]:
    with capture_output() as captured:
        result = shell.run_cell(code)
    return result, captured


def ok(shell: Any, code: str) -> CapturedIO:
    result, captured = run(shell, code)
    assert result.success, (result.error_before_exec, result.error_in_exec, captured.stdout, captured.stderr)
    return captured


def usage_error(shell: Any, code: str) -> str:
    result, _ = run(shell, code)
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    return str(result.error_in_exec)


def test_load_activates_one_notebook_context_and_unload_tears_it_down(comms: list[RecordingComm]) -> None:
    ip = InteractiveShell.instance()
    try:
        ok(ip, "%load_ext miniagents_nb")
        session = current_session(ip)
        assert session is not None
        assert current_context_or_none() is session.miniagents
        ok(ip, "%load_ext miniagents_nb")  # loading twice changes nothing
        assert current_session(ip) is session
        ok(ip, AGENTS)
        ok(ip, START_SLOW.format(name="reply"))
        assert [record.alias for record in session.tracker.active_records()] == ["SLOW"]
        ok(ip, "%unload_ext miniagents_nb")  # cancels what runs; no ValueError from context tokens
        assert current_context_or_none() is None
        assert current_session(ip) is None
        ok(ip, "with suppress_cancelled():\n    await reply")  # the cancelled agent finishes on the shell's loop
        assert ip.user_ns["reply"].producer_ended
        assert "miniagent" not in ip.magics_manager.magics["cell"]
        ok(ip, "%load_ext miniagents_nb")  # and it loads again
        assert current_session(ip) is not session
        ok(ip, "print(await echo.trigger('again'))")
    finally:
        ip.run_cell("%unload_ext miniagents_nb")
        ip.reset(new_session=False)


def test_await_trigger_works_in_any_cell_and_agents_run_in_the_background(shell: Any) -> None:
    ok(shell, AGENTS)
    captured = ok(shell, "print([str(m) for m in await echo.trigger(['a', 'b'])])")
    assert captured.stdout == "['echo: a', 'echo: b']\n"
    # IPython's terminal shell runs its loop only while a cell awaits (a kernel's loop always runs): the agent is
    # triggered in a cell that returns right away, and it goes on while a later cell awaits something else.
    ok(shell, "slow_started.clear()\nbackground = slow.trigger()\nawait asyncio.sleep(0)")
    ok(shell, "await slow_started.wait()")
    session = current_session(shell)
    assert session is not None
    (record,) = session.tracker.active_records()
    assert (record.alias, record.status) == ("SLOW", "running")
    ok(shell, "%miniagents cancel")


def test_displaying_sequences_promises_and_messages_shows_views(shell: Any, comms: list[RecordingComm]) -> None:
    ok(shell, AGENTS)
    ok(shell, "reply = echo.trigger('hi')\nawait reply")
    captured = ok(shell, "reply")
    (output,) = captured.outputs
    # finished already: the static form alone (a saved notebook renders it without a kernel), the live view's DOM
    assert "application/vnd.jupyter.widget-view+json" not in output.data
    assert output.data["text/plain"] == (
        "ECHO · 1 message · done\n[ECHO] echo: hi\nAgent calls:\n  ECHO: done, 1 message"
    )
    assert '<div class="mna-message-text">echo: hi</div>' in output.data["text/html"]
    captured = ok(shell, "message_promise = await reply.__aiter__().__anext__()\ndisplay(message_promise)")
    assert captured.outputs[0].data["text/plain"] == "Message from ECHO · done\necho: hi"
    captured = ok(shell, "TextMessage('plain')")
    assert captured.outputs[0].data["text/plain"] == "TextMessage · done\nplain"
    captured = ok(shell, "import miniagents_nb\nminiagents_nb.show(reply, tree=False)")
    assert captured.outputs[0].data["text/plain"] == "ECHO · 1 message · done\n[ECHO] echo: hi"


def test_display_time_form_is_replaced_by_the_final_form_before_the_cell_ends(shell: Any) -> None:
    ok(shell, AGENTS)
    captured = ok(shell, "reply = echo.trigger('late')\ndisplay(reply)\nawait reply")
    first, last = captured.outputs
    assert not first.update
    assert first.data["text/plain"] == "ECHO · 0 messages · streaming\nAgent calls:\n  ECHO: queued"
    assert last.update
    assert last.transient["display_id"] == first.transient["display_id"]
    assert last.data["text/plain"] == (
        "ECHO · 1 message · done\n[ECHO] echo: late\nAgent calls:\n  ECHO: done, 1 message"
    )


def test_miniagent_magic_defines_and_redefines_an_agent(shell: Any) -> None:
    ok(
        shell,
        '''%%miniagent shout --alias LOUD
"""Shouts what it hears."""
async for message in ctx.message_promises:
    ctx.reply(str(await message).upper() + "!" * excitement)
''',
    )
    captured = ok(shell, "print(shout.alias, '|', shout.description)\nprint(await shout.trigger('hi', excitement=3))")
    assert captured.stdout.splitlines()[0] == "LOUD | Shouts what it hears."
    assert "HI!!!" in captured.stdout
    # the keyword arguments are names in the body, before the notebook's globals; `kwargs` has them all
    ok(shell, "excitement = 1")
    ok(shell, "%%miniagent shout\nctx.reply(f'{excitement} {sorted(kwargs)}')")
    captured = ok(shell, "print(str((await shout.trigger())[0]), str((await shout.trigger(excitement=5))[0]))")
    assert captured.stdout == "1 [] 5 ['excitement']\n"
    captured = ok(shell, "print(shout.alias, str((await shout.fork(excitement=7).trigger())[0]))")
    assert captured.stdout == "SHOUT 7 ['excitement']\n"


def test_miniagent_magic_errors(shell: Any) -> None:
    assert "use a Python identifier" in usage_error(shell, "%%miniagent 1bad\nctx.reply('x')")
    assert "use a Python identifier" in usage_error(shell, "%%miniagent ctx\nctx.reply('x')")
    assert "the following arguments are required" in usage_error(shell, "%%miniagent\nctx.reply('x')")
    assert "uses `yield`" in usage_error(shell, "%%miniagent generator\nyield 'x'")
    result, _ = run(shell, "%%miniagent broken\nctx.reply(\n")
    assert isinstance(result.error_in_exec, SyntaxError)
    # an error inside the body surfaces where the replies are consumed, with the cell's line
    ok(shell, "%%miniagent failing\nx = 1\nraise ValueError(f'boom {x}')")
    result, captured = run(shell, "await failing.trigger()")
    assert isinstance(result.error_in_exec, ValueError)
    assert "boom 1" in str(result.error_in_exec)


def test_miniagent_help(shell: Any) -> None:
    captured = ok(shell, "%%miniagent?")
    assert "Define an async agent from the cell body" in captured.stdout
    assert "--alias" in captured.stdout
    captured = ok(shell, "%%chat?")
    assert "Send the cell text to AGENT" in captured.stdout
    assert "--new" in captured.stdout


RECORDER = """%%miniagent recorder
texts = [str(message) for message in await ctx.message_promises]
ctx.reply(kwargs.get("sep", " | ").join(texts))
"""


def test_chat_keeps_one_conversation(shell: Any) -> None:
    ok(shell, RECORDER)
    captured = ok(shell, "%%chat recorder\nhello")
    # the cell shows its exchange as a chat: the user's turn, then the reply
    assert captured.outputs[-1].data["text/plain"] == "Chat with RECORDER (done)\n\nUSER: hello\n\nRECORDER: hello"
    html = captured.outputs[-1].data["text/html"]
    assert html.index('data-role="user"') < html.index("<b>RECORDER</b></div>")
    assert "<textarea" not in html
    captured = ok(shell, "%%chat recorder\nagain")
    assert captured.outputs[-1].data["text/plain"].endswith("USER: again\n\nRECORDER: hello | hello | again")
    captured = ok(shell, '%%chat recorder sep=" / " --tree\nthird')
    exchange, tree = (output.data["text/plain"] for output in captured.outputs[-2:])
    assert exchange.endswith("USER: third\n\nRECORDER: hello / hello / again / hello | hello | again / third")
    assert "Agent calls:\n  RECORDER: done, 1 message" in tree
    captured = ok(shell, "%%chat recorder --new\nfresh")
    assert captured.outputs[-1].data["text/plain"].endswith("USER: fresh\n\nRECORDER: fresh")
    session = current_session(shell)
    assert session is not None
    assert [type(m).__name__ for m in session.chat_history] == ["UserMessage", "TextMessage"]
    assert [m.role for m in session.chat_history[:1]] == ["user"]
    ok(shell, "%miniagents reset")
    assert session.chat_history == []


def test_chat_errors_are_usage_errors(shell: Any) -> None:
    ok(shell, RECORDER)
    assert "cannot find the agent 'nobody'" in usage_error(shell, "%%chat nobody\nhi")
    assert "is a builtin_function_or_method, not an agent" in usage_error(shell, "%%chat len\nhi")
    assert "the cell is empty" in usage_error(shell, "%%chat recorder\n  \n")
    assert "expected key=value" in usage_error(shell, "%%chat recorder oops\nhi")
    assert "the following arguments are required" in usage_error(shell, "%%chat\nhi")


def test_a_failed_chat_raises_and_is_not_remembered(shell: Any) -> None:
    ok(shell, "%%miniagent grumpy\nraise RuntimeError('no')")
    result, captured = run(shell, "%%chat grumpy\nhi")
    assert isinstance(result.error_in_exec, RuntimeError)
    assert captured.outputs[-1].data["text/plain"].startswith("Chat with GRUMPY (failed: RuntimeError: no)\n\nUSER: hi")
    session = current_session(shell)
    assert session is not None
    assert session.chat_history == []


def test_miniagents_status_and_cancel(shell: Any) -> None:
    ok(shell, AGENTS)
    ok(shell, START_SLOW.format(name="first"))
    captured = ok(shell, "%miniagents")
    text = captured.stdout
    assert "one notebook-wide MiniAgents" in text
    assert "Active agent calls: 1" in text
    assert "#1 SLOW, running" in text
    captured = ok(shell, "%miniagents cancel")
    assert "Cancelled 1 running agent call." in captured.stdout
    ok(shell, "with suppress_cancelled():\n    await first")
    assert "Active agent calls: 0" in ok(shell, "%miniagents").stdout
    assert "invalid choice" in usage_error(shell, "%miniagents explode")


def test_an_interrupted_cell_cancels_only_its_own_calls(shell: Any) -> None:
    ok(shell, AGENTS)
    ok(shell, START_SLOW.format(name="other"))
    result, _ = run(shell, START_SLOW.format(name="mine") + "\nraise KeyboardInterrupt")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    ok(shell, "with suppress_cancelled():\n    await mine")
    session = current_session(shell)
    assert session is not None
    assert [(r.alias, r.status) for r in session.tracker.active_records()] == [("SLOW", "running")]
    captured = ok(shell, "import asyncio\ntry:\n    await mine\nexcept asyncio.CancelledError:\n    print('cancelled')")
    assert captured.stdout == "cancelled\n"
    assert not shell.user_ns["other"].producer_ended
    ok(shell, "%miniagents cancel")


def test_seed_style_run_inside_a_running_loop(shell: Any) -> None:
    ok(shell, AGENTS)
    code = """
async def main():
    async for promise in echo.trigger("seed"):
        print(await promise)
    return 42

print("result", MiniAgents().run(main()))
await asyncio.sleep(0)  # this cell runs on the shell's loop: run() must not try to block it
"""
    captured = ok(shell, code)
    assert captured.stdout == "echo: seed\nresult 42\n"
    captured = ok(shell, "print(await echo.trigger('after'))")
    assert "echo: after" in captured.stdout


def test_sync_facade_interrupt_cancels_the_worker_loop() -> None:
    cancelled = threading.Event()

    async def long_run() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def cell() -> None:
        main_thread = threading.main_thread().ident
        assert main_thread is not None
        timer = threading.Timer(0.2, signal.pthread_kill, (main_thread, signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            run_in_worker_thread(long_run())
        timer.join()

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(cell())
    finally:
        loop.close()
        signal.signal(signal.SIGINT, previous)
    assert cancelled.is_set()


def test_sync_facade_returns_and_raises() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 7

    async def fail() -> None:
        raise LookupError("inside")

    async def cell() -> None:
        assert run_in_worker_thread(answer()) == 7
        with pytest.raises(LookupError, match="inside"):
            run_in_worker_thread(fail())

    asyncio.run(cell())


def test_an_interrupt_also_stops_messages_that_still_stream(shell: Any) -> None:
    ok(shell, AGENTS)
    ok(
        shell,
        """
pumping = asyncio.Event()

@miniagent
async def pumped(ctx):
    async def tokens(_aux):
        for index in range(1000):
            await asyncio.sleep(0.01)  # a paced stream: still streaming when the interrupt comes
            pumping.set()
            yield f"{index} "
    ctx.reply(TextMessage.promise(message_token_streamer=tokens))  # the agent returns; the stream goes on
""",
    )
    result, _ = run(shell, "reply = pumped.trigger()\nawait pumping.wait()\nraise KeyboardInterrupt")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    captured = ok(shell, "try:\n    await reply\nexcept asyncio.CancelledError:\n    print('cancelled')")
    assert captured.stdout == "cancelled\n"
    session = current_session(shell)
    assert session is not None
    assert session.tracker.live_records() == []
