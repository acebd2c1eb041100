"""Console agents driven through injected streams: what they print, what they read, and how bad input ends."""

from __future__ import annotations

import asyncio
import io
import sys
import types
from collections.abc import AsyncIterator
from typing import Any, TextIO

import pytest

from miniagents_nb import InteractionContext, MiniAgents, TextMessage, miniagent
from miniagents_nb.ext import (
    console_echo_agent,
    console_input_agent,
    console_output_agent,
    console_prompt_agent,
)
from miniagents_nb.ext.agents.console_agents import END_OF_INPUT_NOTICE, GREETING, INSTRUCTIONS, colors_enabled
from miniagents_nb.ext.llms.messages import AssistantMessage, UserMessage

from .helpers import WatchedBuffer

GREETING_BLOCK = f"{GREETING}\n\n{INSTRUCTIONS}"


def output_agent(buffer: io.StringIO, **kwargs: Any) -> Any:
    return console_output_agent.fork(non_freezable_kwargs={"output_stream": buffer}, **kwargs)


def input_agent(lines: str, buffer: io.StringIO, **kwargs: Any) -> Any:
    streams = {"input_stream": io.StringIO(lines), "output_stream": buffer}
    return console_input_agent.fork(non_freezable_kwargs=streams, **kwargs)


def gated_reply(tokens: list[str], gate: asyncio.Event, **known: Any) -> Any:
    """A streamed assistant message whose second token waits for `gate`."""

    async def streamer(_aux: dict[str, Any]) -> AsyncIterator[str]:
        for index, token in enumerate(tokens):
            if index == 1:
                await gate.wait()
            yield token

    return AssistantMessage.promise(message_token_streamer=streamer, **known)


def test_readme_v2_names_are_the_console_agents() -> None:
    assert console_echo_agent is console_output_agent
    assert console_prompt_agent is console_input_agent


# --- output --------------------------------------------------------------------------------------------------------


async def test_output_agent_prints_each_message_with_the_alias_and_passes_them_on() -> None:
    buffer = io.StringIO()
    async with MiniAgents():
        replies = await output_agent(buffer).trigger(
            [AssistantMessage(content="Hi!", agent_alias="anthropic_agent"), UserMessage(content="me"), "plain"]
        )
    assert buffer.getvalue() == "\nANTHROPIC_AGENT: Hi!\n\nUSER: me\n\nASSISTANT: plain\n"
    assert [str(reply) for reply in replies] == ["Hi!", "me", "plain"]


async def test_output_agent_without_aliases_uses_the_role_then_the_default_role() -> None:
    buffer = io.StringIO()
    async with MiniAgents():
        await output_agent(buffer, mention_aliases=False, default_role="bot").trigger(
            [AssistantMessage(content="a", agent_alias="x"), TextMessage("b")]
        )
    assert buffer.getvalue() == "\nASSISTANT: a\n\nBOT: b\n"


async def test_output_agent_streams_token_by_token(watched_buffer: WatchedBuffer) -> None:
    """The first token is on the console while the second one does not exist yet."""
    buffer = watched_buffer
    gate = asyncio.Event()
    async with MiniAgents():
        replies = output_agent(buffer).trigger(gated_reply(["Hel", "lo"], gate, agent_alias="BOT"))
        await asyncio.wait_for(buffer.wait_for("Hel"), timeout=10)
        assert buffer.getvalue() == "\nBOT: Hel"
        gate.set()
        await replies
    assert buffer.getvalue() == "\nBOT: Hello\n"


async def test_output_agent_colours_can_be_forced_on_and_styled_per_message() -> None:
    buffer = io.StringIO()
    async with MiniAgents():
        await output_agent(buffer, colors=True).trigger(
            [AssistantMessage(content="a"), AssistantMessage(content="b", console_style="31")]
        )
    assert buffer.getvalue() == "\n\x1b[92;1mASSISTANT: a\x1b[0m\n\n\x1b[31mASSISTANT: b\x1b[0m\n"


async def test_output_agent_ends_the_line_and_resets_the_style_when_a_stream_fails() -> None:
    async def failing(_aux: dict[str, Any]) -> AsyncIterator[str]:
        yield "partial"
        raise ValueError("the model went away")

    buffer = io.StringIO()
    async with MiniAgents():
        replies = output_agent(buffer, colors=True).trigger(TextMessage.promise(message_token_streamer=failing))
        with pytest.raises(ValueError, match="went away"):
            await replies
    assert buffer.getvalue() == "\n\x1b[92;1mASSISTANT: partial\x1b[0m\n"


def test_colours_follow_the_terminal_and_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colors_enabled(Terminal(), None) is True
    assert colors_enabled(io.StringIO(), None) is False
    assert colors_enabled(io.StringIO(), True) is True
    assert colors_enabled(Terminal(), False) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert colors_enabled(Terminal(), None) is False


# --- input ---------------------------------------------------------------------------------------------------------


async def test_input_agent_greets_at_the_start_and_replies_a_user_message() -> None:
    buffer = io.StringIO()
    async with MiniAgents():
        replies = await input_agent("hi there\n", buffer).trigger()
    assert buffer.getvalue() == f"{GREETING_BLOCK}\nUSER: hi there\n"
    assert replies == (UserMessage(content="hi there"),)


async def test_input_agent_passes_its_input_on_first_and_does_not_greet_mid_chat() -> None:
    buffer = io.StringIO()
    async with MiniAgents():
        replies = await input_agent("ok\n", buffer).trigger(AssistantMessage(content="Question?"))
    assert buffer.getvalue() == "\nUSER: ok\n"
    assert [(type(reply), str(reply)) for reply in replies] == [(AssistantMessage, "Question?"), (UserMessage, "ok")]


async def test_input_agent_skips_blank_input_and_asks_again() -> None:
    buffer = io.StringIO()
    async with MiniAgents():
        replies = await input_agent("\n   \nfinally\n", buffer, greeting="").trigger()
    assert buffer.getvalue() == "\nUSER: \nUSER:    \nUSER: finally\n"
    assert [str(reply) for reply in replies] == ["finally"]


@pytest.mark.parametrize("command", ["exit", "  EXIT  "])
async def test_typing_exit_raises_keyboard_interrupt(command: str) -> None:
    buffer = io.StringIO()
    async with MiniAgents():
        replies = input_agent(f"{command}\nnever read\n", buffer, greeting="").trigger()
        with pytest.raises(KeyboardInterrupt):
            await replies
    assert buffer.getvalue() == f"\nUSER: {command}\n"


async def test_end_of_input_prints_a_notice_and_raises_keyboard_interrupt() -> None:
    buffer = io.StringIO()
    async with MiniAgents():
        replies = input_agent("", buffer, greeting="").trigger()
        with pytest.raises(KeyboardInterrupt):
            await replies
    assert buffer.getvalue() == f"\nUSER: \n{END_OF_INPUT_NOTICE}\n"


async def test_input_agent_colours_the_greeting_and_the_prompt_when_asked() -> None:
    buffer = io.StringIO()
    async with MiniAgents():
        await input_agent("x\n", buffer, colors=True, user_style="36").trigger()
    assert buffer.getvalue() == f"\x1b[36m{GREETING}\x1b[0m\n\n{INSTRUCTIONS}\n\x1b[36mUSER: \x1b[0mx\n"


async def test_missing_stdin_ends_the_input_with_the_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    buffer = io.StringIO()
    async with MiniAgents():
        replies = console_input_agent.fork(greeting="", non_freezable_kwargs={"output_stream": buffer}).trigger()
        with pytest.raises(KeyboardInterrupt):
            await replies
    assert END_OF_INPUT_NOTICE in buffer.getvalue()


async def test_input_agent_reads_sys_stdin_and_writes_sys_stdout_by_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("from stdin\n"))
    async with MiniAgents():
        replies = await console_input_agent.trigger()
    assert [str(reply) for reply in replies] == ["from stdin"]
    assert capsys.readouterr().out == f"{GREETING_BLOCK}\nUSER: from stdin\n"


async def test_a_pipe_is_read_in_a_thread_without_blocking_the_event_loop(
    pipe: tuple[TextIO, TextIO], watched_buffer: WatchedBuffer
) -> None:
    reader, writer = pipe
    other_task_ran = asyncio.Event()
    async with MiniAgents():
        agent = console_input_agent.fork(
            greeting="", non_freezable_kwargs={"input_stream": reader, "output_stream": watched_buffer}
        )
        replies = agent.trigger()
        await asyncio.wait_for(watched_buffer.wait_for("USER: "), timeout=10)  # now it waits for the line

        async def other_work() -> None:
            other_task_ran.set()

        await asyncio.wait_for(asyncio.ensure_future(other_work()), timeout=5)
        assert other_task_ran.is_set()
        writer.write("typed later\n")
        writer.flush()
        assert [str(reply) for reply in await replies] == ["typed later"]
    assert watched_buffer.getvalue() == "\nUSER: typed later\n"


async def test_a_line_read_for_a_cancelled_caller_goes_to_the_next_caller(pipe: tuple[TextIO, TextIO]) -> None:
    from miniagents_nb.ext.agents.console_agents import _ThreadedLineReader

    reader, writer = pipe
    line_reader = _ThreadedLineReader(reader)
    first = asyncio.ensure_future(line_reader.areadline())
    await asyncio.sleep(0)  # one task switch: it starts reading
    assert line_reader._pending is not None
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    writer.write("kept\n")
    writer.flush()
    assert await asyncio.wait_for(line_reader.areadline(), timeout=5) == "kept\n"


async def test_in_a_jupyter_kernel_the_frontend_input_box_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """`input()` is what a kernel routes to the notebook's input box; a frontend without stdin ends the chat."""
    import builtins

    fake_ipython = types.ModuleType("IPython")
    fake_ipython.get_ipython = lambda: types.SimpleNamespace(kernel=object())  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake_ipython)
    prompts: list[str] = []
    answers = iter(["from the notebook"])

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        try:
            return next(answers)
        except StopIteration:
            raise RuntimeError(
                "StdinNotImplementedError: raw_input was called, but this frontend does not support input requests."
            ) from None

    monkeypatch.setattr(builtins, "input", fake_input)
    buffer = io.StringIO()
    agent = console_input_agent.fork(greeting="", non_freezable_kwargs={"output_stream": buffer})
    async with MiniAgents():
        assert [str(reply) for reply in await agent.trigger()] == ["from the notebook"]
        with pytest.raises(KeyboardInterrupt):
            await agent.trigger()
    assert prompts == ["\nUSER: ", "\nUSER: "]
    assert buffer.getvalue() == f"\n{END_OF_INPUT_NOTICE}\n"


async def test_console_agents_chain_like_the_seeds_custom_dialog_loop() -> None:
    """output -> input: what the assistant said is printed before the user is asked."""

    @miniagent
    async def echo_assistant(ctx: InteractionContext) -> None:
        said = await ctx.message_promises.as_single_text_promise()
        ctx.reply(AssistantMessage(content=f'You said "{said}"'))

    buffer = io.StringIO()
    async with MiniAgents():
        first = await input_agent("hi\n", buffer, greeting="").trigger()
        answer = echo_assistant.trigger(first)
        await input_agent("bye\n", buffer).trigger(output_agent(buffer).trigger(answer))
    assert buffer.getvalue() == '\nUSER: hi\n\nASSISTANT: You said "hi"\n\nUSER: bye\n'
