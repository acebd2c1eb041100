"""Parsing helpers: they say what is wrong instead of returning an empty value."""

from __future__ import annotations

import pytest

from miniagents_nb.orchestration import ResponseParseError, parse_command, parse_json_list, parse_json_object
from miniagents_nb.orchestration.parsing import require_keys


@pytest.mark.parametrize(
    ("reply", "command"),
    [
        ("I will look around.\nCommand: ls -la", "ls -la"),
        ("Command: `cat flag.txt`", "cat flag.txt"),
        ("```\nCommand: grep key notes.txt\n```", "grep key notes.txt"),
        ("**Command:** pwd", "pwd"),
        ("command:   echo hi  ", "echo hi"),
    ],
)
def test_parse_command_finds_the_single_command(reply: str, command: str) -> None:
    assert parse_command(reply) == command


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("no command here", "no `Command:` line"),
        ("Command: ls\nCommand: pwd", "2 `Command:` lines"),
        ("Command:   ", "is empty"),
    ],
)
def test_parse_command_explains_what_is_wrong(reply: str, reason: str) -> None:
    with pytest.raises(ResponseParseError, match=reason) as caught:
        parse_command(reply)
    assert reason in caught.value.reason


def test_parse_json_object_tolerates_prose_and_fences() -> None:
    assert parse_json_object('Sure! ```json\n{"plan": ["a", "b"]}\n``` Good luck.') == {"plan": ["a", "b"]}


def test_parse_json_object_repairs_regex_backslashes() -> None:
    assert parse_json_object(r'{"command": "grep -E \d+ notes.txt"}') == {"command": r"grep -E \d+ notes.txt"}


def test_parse_json_object_reports_missing_and_invalid_json() -> None:
    with pytest.raises(ResponseParseError, match="no JSON object found"):
        parse_json_object("no json here")
    with pytest.raises(ResponseParseError, match="is invalid"):
        parse_json_object('{"plan": [1, 2,,]}')


def test_parse_json_list() -> None:
    assert parse_json_list('Questions: ["a?", "b?"]') == ["a?", "b?"]
    with pytest.raises(ResponseParseError, match="no JSON list found"):
        parse_json_list("none")


def test_require_keys_names_the_missing_keys() -> None:
    require_keys({"a": 1}, "a")
    with pytest.raises(ResponseParseError, match='lacks "feedback", "status"'):
        require_keys({"a": 1}, "feedback", "status")
