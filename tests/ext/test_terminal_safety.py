"""Untrusted text printed by the console agents never drives the terminal (issue 17: OSC 52 clipboard writes, screen
clearing, window titles, cursor movement that overwrites earlier lines); the agents' own colours stay."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from typing import Any

from miniagents_nb import MiniAgents
from miniagents_nb.ext import console_input_agent, console_output_agent
from miniagents_nb.ext.agents.terminal_text import neutralize_controls
from miniagents_nb.ext.llms.messages import AssistantMessage

HOSTILE = [
    "Sure! \x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07",  # OSC 52: put a command into the clipboard
    "\x1b[2J\x1b[H",  # clear the screen, cursor home
    "\x1b]0;pwned\x07",  # the window title
    "line\x1b[1A\x1b[2K",  # cursor up, erase the line above
    "fake\rreal",  # a carriage return overwrites the line
    "abc\x08\x08\x08XYZ",  # backspaces overwrite characters
    "\x9b2J\x9d0;t\x9c",  # 8-bit CSI / OSC / ST
    "\x1b",  # an escape sequence split across two tokens...
    "[31mred?",  # ...is neutralized too
    "\x00\x7f end\r\n",
]
# Every control character a terminal acts on, except the newline and the tab.
TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
AGENT_COLOURS = re.compile("\x1b\\[(?:92;1|0)m")


def tokens(pieces: list[str]) -> Any:
    async def streamer(_aux: dict[str, Any]) -> AsyncIterator[str]:
        for piece in pieces:
            yield piece

    return streamer


def assert_only_the_agents_colours(printed: str) -> None:
    leftover = AGENT_COLOURS.sub("", printed)
    assert TERMINAL_CONTROLS.search(leftover) is None, repr(leftover)


async def test_the_output_agent_neutralizes_control_sequences_in_streamed_message_text() -> None:
    buffer = io.StringIO()
    async with MiniAgents():
        replies = await console_output_agent.fork(non_freezable_kwargs={"output_stream": buffer}, colors=True).trigger(
            AssistantMessage.promise(message_token_streamer=tokens(HOSTILE))
        )
    printed = buffer.getvalue()
    assert_only_the_agents_colours(printed)
    assert printed.startswith("\n\x1b[92;1mASSISTANT: Sure! ␛]52;c;Y3VybCBldmlsLnNoIHwgc2g=␇")
    for shown in (
        "␛[2J␛[H",
        "␛]0;pwned␇",
        "line␛[1A␛[2K",
        "fake␍real",
        "abc␈␈␈XYZ",
        "\\x9b2J\\x9d0;t\\x9c",
        "␛[31mred?",
    ):
        assert shown in printed
    assert printed.endswith("␀␡ end\n\x1b[0m\n")  # a Windows line end stays a line end
    assert str(replies[0]) == "".join(HOSTILE)  # what is passed on is the message, unchanged


async def test_a_message_cannot_style_the_terminal_or_name_itself_with_escape_sequences() -> None:
    buffer = io.StringIO()
    hostile_style = "0m\x1b]52;c;ZXZpbA==\x07\x1b[31"
    async with MiniAgents():
        await console_output_agent.fork(non_freezable_kwargs={"output_stream": buffer}, colors=True).trigger(
            [
                AssistantMessage(content="a", console_style=hostile_style, agent_alias="bot\x1b]0;title\x07"),
                AssistantMessage(content="b", console_style="31;1"),  # a plain SGR code still styles
            ]
        )
    printed = buffer.getvalue()
    assert printed == "\n\x1b[92;1mBOT␛]0;TITLE␇: a\x1b[0m\n\n\x1b[31;1mASSISTANT: b\x1b[0m\n"


async def test_the_input_agent_echoes_piped_lines_neutralized() -> None:
    buffer = io.StringIO()
    streams = {"input_stream": io.StringIO("hi \x1b[2J there\n"), "output_stream": buffer}
    async with MiniAgents():
        replies = await console_input_agent.fork(non_freezable_kwargs=streams, greeting="").trigger(["earlier"])
    assert "hi ␛[2J there\n" in buffer.getvalue()
    assert "\x1b[2J" not in buffer.getvalue()
    assert str(replies[-1]) == "hi \x1b[2J there"  # the message itself is what the user typed


def test_neutralizing_keeps_newlines_tabs_and_all_printable_text() -> None:
    text = "Tabs\tand\nnewlines, unicode é 漢字 \U0001f600, and a \u2028 separator"
    assert neutralize_controls(text) == text
    assert neutralize_controls("a\r\nb\rc") == "a\nb␍c"
