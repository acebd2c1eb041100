"""The markdown chat format of the history agents: one top-level heading per message, then its text.

Each message is written as ``\\n{role}[ / {model}]\\n{'=' * len(header)}\\n{content}\\n`` (a setext H1 heading), so
a chat file reads well as markdown and its text survives a round trip exactly. When reading, a hand-written ATX
heading (``# user``, ``# assistant / gpt-4o``) starts a section too. Only headings whose text is a known role
(`system`, `developer`, `user`, `assistant`, `tool`, plus the caller's extra roles) start a section: an LLM's own
markdown headings stay inside its message. Text before the first section (a log's preamble) is ignored.

Message text is untrusted (an LLM wrote it), so it must not be able to start a section of its own: a forged
`# system` line would become the next call's system prompt. On write, every content line that *could* read as a
section heading for some role (an ATX heading of one word, optionally `/ model`; or such a word over a `===` line)
gets one leading backslash, and so does a line that is already such a line behind backslashes; on read, section
bodies lose that one backslash. The writer does not know which extra roles a reader will accept, so it escapes
any role-like word, not only the known ones. The round trip stays exact for any text (files are read and written
with no newline translation, so a lone `\r` stays inside its line).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from miniagents_nb.messages import AssistantMessage, LLMMessage, Message, SystemMessage, UserMessage

__all__ = ["KNOWN_ROLES", "format_section", "history_message", "parse_sections"]

KNOWN_ROLES = ("system", "developer", "user", "assistant", "tool")

_HEADER_TEXT = re.compile(r"\s*(?P<role>[A-Za-z_][\w-]*)\s*(?:/\s*(?P<model>\S.*?))?\s*")
_UNDERLINE = re.compile(r"=+\s*")
_ATX = re.compile(r"#[ \t]+(?P<text>.+?)(?:[ \t]+#+)?[ \t]*")

_ROLE_CLASSES: dict[str, type[LLMMessage]] = {
    "user": UserMessage,
    "system": SystemMessage,
    "assistant": AssistantMessage,
}


def format_section(role: str, content: str, model: Any = None) -> str:
    """One message as a chat file section (appending sections one after another makes the file)."""
    header = _one_line(f"{role} / {model}" if model else role)
    return f"\n{header}\n{'=' * len(header)}\n{_escape_headings(content)}\n"


def _one_line(header: str) -> str:
    # A role or model name with a line break would end the heading early and forge the lines after it.
    return " ".join(header.splitlines()) if "\n" in header or "\r" in header else header


def _could_be_heading(line: str, next_line: str | None) -> bool:
    """Whether `line` reads as a section heading for some role, whatever roles the reader accepts."""
    atx = _ATX.fullmatch(line)
    if atx is not None:
        return _HEADER_TEXT.fullmatch(atx["text"]) is not None
    return (
        next_line is not None
        and _UNDERLINE.fullmatch(next_line) is not None
        and _HEADER_TEXT.fullmatch(line) is not None
    )


def _escape_headings(content: str) -> str:
    if "#" not in content and "=" not in content:  # the common case: nothing can read as a heading
        return content
    lines = content.split("\n")
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else None
        if _could_be_heading(line.lstrip("\\"), following):
            lines[index] = "\\" + line
    return "\n".join(lines)


def _unescape_headings(lines: list[str]) -> list[str]:
    unescaped = list(lines)
    for index, line in enumerate(lines):
        if line.startswith("\\"):
            following = lines[index + 1] if index + 1 < len(lines) else None
            if _could_be_heading(line.lstrip("\\"), following):
                unescaped[index] = line[1:]
    return unescaped


def _header(text: str, roles: frozenset[str]) -> tuple[str, str | None] | None:
    match = _HEADER_TEXT.fullmatch(text)
    if match is None or match["role"].lower() not in roles:
        return None
    return match["role"].lower(), match["model"]


def parse_sections(text: str, extra_roles: Iterable[str] = ()) -> list[tuple[str, str | None, str]]:
    """`(role, model, content)` for every section of a chat file, in order."""
    roles = frozenset([*KNOWN_ROLES, *(role.lower() for role in extra_roles)])
    lines = text.split("\n")
    # (first line of the heading, first line of the body, role, model, written by `format_section`)
    headings: list[tuple[int, int, str, str | None, bool]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        found = _header(line, roles)
        if found is not None and index + 1 < len(lines) and _UNDERLINE.fullmatch(lines[index + 1]):
            headings.append((index, index + 2, *found, True))
            index += 2
            continue
        atx = _ATX.fullmatch(line)
        found = _header(atx["text"], roles) if atx is not None else None
        if found is not None:
            headings.append((index, index + 1, *found, False))
        index += 1
    sections = []
    for number, (_, body_start, role, model, setext) in enumerate(headings):
        body_end = headings[number + 1][0] if number + 1 < len(headings) else len(lines)
        body = "\n".join(_unescape_headings(lines[body_start:body_end]))
        if setext:
            # `format_section` wrote content + "\n" (and the next section starts with "\n")
            content = body[:-1] if body.endswith("\n") else body
        else:
            content = body.strip("\n")
        sections.append((role, model, content))
    return sections


def history_message(content: str, role: str, **fields: Any) -> Message:
    """The message a chat file section stands for: a `UserMessage`, `SystemMessage` or `AssistantMessage` by role
    (so a conversation written and read back gives equal messages), an `LLMMessage` for other roles."""
    message_class = _ROLE_CLASSES.get(role)
    if message_class is not None:
        return message_class(content=content, **fields)
    return LLMMessage(content=content, role=role, **fields)
