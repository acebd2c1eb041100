"""Console agents: print messages token by token, and read what the user types.

Nothing here touches the terminal at import time (upstream created a prompt_toolkit session on import, which
printed a warning whenever stdin was not a terminal). `prompt_toolkit` is imported the first time a user is asked
for input on a real terminal; otherwise (pipes, files, tests with injected streams) lines are read plainly, and in a
Jupyter kernel the frontend's own input box is used.

Both agents write to `output_stream` (default: `sys.stdout` at the time of the call) and read `input_stream`
(default: `sys.stdin`); streams are not freezable, so inject them with
`console_output_agent.fork(non_freezable_kwargs={"output_stream": buffer})`. Colours are on when the output is a
terminal and `NO_COLOR` is not set; `colors=True/False` forces them. Message text (and a message's alias, role
and `console_style`) never reaches the terminal as control sequences: see `terminal_text`.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import stat
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from miniagents_nb.agents import InteractionContext, miniagent
from miniagents_nb.ext.agents.per_context import per_context
from miniagents_nb.ext.agents.terminal_text import is_sgr_style, neutralize_controls
from miniagents_nb.messages import UserMessage

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession

__all__ = [
    "colors_enabled",
    "END_OF_INPUT_NOTICE",
    "EXIT_COMMAND",
    "GREETING",
    "INSTRUCTIONS",
    "console_echo_agent",
    "console_input_agent",
    "console_output_agent",
    "console_prompt_agent",
]

GREETING = "YOU ARE NOW IN A CHAT WITH AN AI ASSISTANT"
INSTRUCTIONS = (
    "Press Enter to send your message.\n"
    "Press Ctrl+Space to insert a newline.\n"
    'Press Ctrl+C (or type "exit") to quit the conversation.\n'
)
EXIT_COMMAND = "exit"
END_OF_INPUT_NOTICE = "The input is closed (end of file): ending the conversation."

_RESET = "\x1b[0m"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def colors_enabled(stream: Any, colors: bool | None) -> bool:
    """`colors` if given; otherwise on for a terminal, off for anything else or when `NO_COLOR` is set."""
    if colors is not None:
        return colors
    return not os.environ.get("NO_COLOR") and _isatty(stream)


class _Console:
    """The output stream and the colour decision of one agent call."""

    def __init__(self, output_stream: TextIO | None, colors: bool | None) -> None:
        self.stream = output_stream if output_stream is not None else sys.stdout
        self.colors = colors_enabled(self.stream, colors)

    def style(self, style: str | int | None) -> str:
        return f"\x1b[{style}m" if self.colors and style not in (None, "") else ""

    def reset(self, style: str | int | None) -> str:
        return _RESET if self.style(style) else ""

    def write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


# --- output ------------------------------------------------------------------------------------------------------


@miniagent
async def console_output_agent(
    ctx: InteractionContext,
    assistant_style: str | int = "92;1",
    mention_aliases: bool = True,
    default_role: str = "assistant",
    colors: bool | None = None,
    output_stream: TextIO | None = None,
) -> None:
    """Print every input message token by token as `NAME: text`, and pass the messages on unchanged.

    NAME is the message's `agent_alias` (unless `mention_aliases=False`), else its `role`, else `default_role`,
    uppercased; a message's `console_style` (known beforehand) overrides `assistant_style` (an ANSI SGR code).
    """
    ctx.reply(ctx.message_promises)
    console = _Console(output_stream, colors)
    async for message_promise in ctx.message_promises:
        known = message_promise.known_beforehand
        name = (mention_aliases and known.get("agent_alias")) or known.get("role") or default_role
        style = known.get("console_style")  # message data: only a plain SGR code may style the terminal
        if not style or not is_sgr_style(style):
            style = assistant_style
        console.write(f"\n{console.style(style)}{neutralize_controls(str(name).upper())}: ")
        try:
            async for token in message_promise:
                # the message's text never drives the terminal (see `terminal_text`)
                console.write(neutralize_controls(str(token)))
        finally:
            console.write(f"{console.reset(style)}\n")


# --- input -------------------------------------------------------------------------------------------------------


class _LineSource(Protocol):
    """Reads one message from the user; raises `EOFError` at the end of input, `KeyboardInterrupt` on Ctrl+C."""

    async def aread(self, prompt: str, styled_prompt: str) -> str: ...


class _PromptToolkitSource:
    """A real terminal: multiline editing, Enter sends, Ctrl+Space (or Alt+Enter) inserts a newline."""

    def __init__(self, session: PromptSession[str], colors: bool) -> None:
        self._session = session
        self._colors = colors

    async def aread(self, prompt: str, styled_prompt: str) -> str:
        from prompt_toolkit.formatted_text import ANSI

        return await self._session.prompt_async(ANSI(styled_prompt) if self._colors else prompt)


def _new_prompt_session(input_stream: TextIO, output_stream: TextIO) -> PromptSession[str]:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.input import create_input
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
    from prompt_toolkit.output import create_output

    bindings = KeyBindings()

    @bindings.add("enter")
    def _send(event: KeyPressEvent) -> None:
        event.current_buffer.validate_and_handle()

    @bindings.add("c-space")
    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    return PromptSession(
        multiline=True,
        key_bindings=bindings,
        input=create_input(input_stream),
        output=create_output(output_stream),
    )


class _ThreadedLineReader:
    """Reads lines of a pipe or terminal in a daemon thread, so waiting for the user never blocks the event loop.

    A read whose caller was cancelled is kept and handed to the next caller, so no typed line is lost; the thread
    is a daemon, so a pending read never keeps the interpreter from exiting.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._pending: asyncio.Future[str] | None = None

    async def areadline(self) -> str:
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = pending = loop.create_future()
            thread = threading.Thread(target=self._read, args=(loop, pending), daemon=True)
            thread.name = "miniagents_nb console input"
            thread.start()
        try:
            line = await asyncio.shield(self._pending)
        except asyncio.CancelledError:
            raise  # the read goes on: its line is for the next caller
        except BaseException:
            self._pending = None
            raise
        self._pending = None
        return line

    def _read(self, loop: asyncio.AbstractEventLoop, pending: asyncio.Future[str]) -> None:
        settle: Callable[[], None]
        try:
            line = self._stream.readline()
        except BaseException as error:  # handed to the reader: nothing is lost in the thread
            failure = error

            def settle() -> None:
                if not pending.done():
                    pending.set_exception(failure)

        else:

            def settle() -> None:
                if not pending.done():
                    pending.set_result(line)

        try:
            loop.call_soon_threadsafe(settle)
        except RuntimeError:  # the loop is closed: nobody is waiting for this line any more
            pass


def _needs_thread(stream: TextIO) -> bool:
    """Whether reading `stream` can block (a terminal, pipe or socket; not a regular file or an in-memory buffer)."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (AttributeError, OSError, ValueError):
        return False
    return not stat.S_ISREG(mode)


class _StreamSource:
    """Plain line reading (pipes, files, injected streams): one line is one message; the line is echoed when the
    input is not a terminal, so the transcript reads like a terminal session."""

    def __init__(self, ctx: InteractionContext, input_stream: TextIO, console: _Console) -> None:
        self._input = input_stream
        self._console = console
        self._echo = not _isatty(input_stream)
        self._reader = (
            per_context(
                ctx.miniagents, ("console_line_reader", id(input_stream)), lambda: _ThreadedLineReader(input_stream)
            )
            if _needs_thread(input_stream)
            else None
        )

    async def aread(self, prompt: str, styled_prompt: str) -> str:
        self._console.write(styled_prompt if self._console.colors else prompt)
        line = await self._reader.areadline() if self._reader is not None else self._input.readline()
        if not line:
            raise EOFError
        line = line.rstrip("\r\n")
        if self._echo:
            self._console.write(f"{neutralize_controls(line)}\n")
        return line


class _KernelInputSource:
    """Inside a Jupyter kernel: the frontend's input box (`input()`), or end of input where there is none."""

    async def aread(self, prompt: str, styled_prompt: str) -> str:
        try:
            # Blocking on purpose: a kernel answers input requests on the thread that asked, like the seeds' `input()`.
            return builtins.input(prompt)  # noqa: ASYNC250
        except EOFError:
            raise
        except Exception as error:  # e.g. IPython's StdinNotImplementedError: this frontend takes no input
            raise EOFError(str(error)) from error


class _ClosedSource:
    async def aread(self, prompt: str, styled_prompt: str) -> str:
        raise EOFError


def _in_ipython_kernel() -> bool:
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def _line_source(
    ctx: InteractionContext,
    input_stream: TextIO | None,
    console: _Console,
    use_prompt_toolkit: bool | None,
) -> _LineSource:
    if input_stream is None:
        if _in_ipython_kernel():
            return _KernelInputSource()
        input_stream = sys.stdin
        if input_stream is None:  # e.g. pythonw: there is no console at all
            return _ClosedSource()
    if use_prompt_toolkit is None:
        use_prompt_toolkit = _isatty(input_stream) and _isatty(console.stream)
    if use_prompt_toolkit:
        stdin, stdout = input_stream, console.stream
        session = per_context(
            ctx.miniagents, ("prompt_session", id(stdin), id(stdout)), lambda: _new_prompt_session(stdin, stdout)
        )
        return _PromptToolkitSource(session, console.colors)
    return _StreamSource(ctx, input_stream, console)


@miniagent
async def console_input_agent(
    ctx: InteractionContext,
    greeting: str = GREETING,
    user_prompt: str = "USER: ",
    user_style: str | int = "1",
    colors: bool | None = None,
    use_prompt_toolkit: bool | None = None,
    input_stream: TextIO | None = None,
    output_stream: TextIO | None = None,
) -> None:
    """Pass the input on, then read what the user types and reply it as a `UserMessage`.

    It waits for the whole input first (the conversation so far is printed by then); with no input at all it is
    the start of a chat, so it prints the greeting and the instructions. Blank input is skipped and asked for
    again. Typing "exit", pressing Ctrl+C, or the end of input (with a notice) raises `KeyboardInterrupt`, which
    ends `dialog_loop` / `agent_loop`. On a terminal (`use_prompt_toolkit=None` decides by itself) prompt_toolkit
    gives multiline editing.
    """
    inputs = await ctx.message_promises
    ctx.reply(inputs)
    console = _Console(output_stream, colors)
    if not inputs and greeting:
        console.write(f"{console.style(user_style)}{greeting}{console.reset(user_style)}\n\n{INSTRUCTIONS}")
    source = _line_source(ctx, input_stream, console, use_prompt_toolkit)
    styled_prompt = f"{console.style(user_style)}{user_prompt}{_RESET}" if console.colors else user_prompt
    separator = "\n"  # a blank line before the prompt; none when asking again right after blank input
    while True:
        try:
            text = await source.aread(f"{separator}{user_prompt}", f"{separator}{styled_prompt}")
        except EOFError:
            console.write(f"\n{END_OF_INPUT_NOTICE}\n")
            raise KeyboardInterrupt from None
        if text.strip().lower() == EXIT_COMMAND:
            raise KeyboardInterrupt
        if text.strip():
            ctx.reply(UserMessage(content=text))
            return
        separator = ""


console_prompt_agent = console_input_agent
"""The README's name of `console_input_agent` (the same agent)."""

console_echo_agent = console_output_agent
"""The README's name of `console_output_agent` (the same agent)."""
