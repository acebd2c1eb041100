"""Reading structured answers out of LLM replies.

Every helper raises `ResponseParseError` with a reason a model can act on ("no JSON object found", "the JSON is
invalid: ...", "2 `Command:` lines"), which prompt engineers pass on in their improve message. tinysmith's
helpers swallowed every failure and returned `{}` / `[]` / None, so the real cause never reached the model.
"""

from __future__ import annotations

import json
import re
from typing import Any

from miniagents_nb.orchestration.errors import ResponseParseError

__all__ = ["parse_command", "parse_json_list", "parse_json_object", "require_keys"]

_STRAY_BACKSLASH = re.compile(r'\\(?!["\\/bfnrtu])')


def parse_command(reply: str, label: str = "Command") -> str:
    """The shell command of a reply that ends with one `Command: <cmd>` line (backticks and markup removed)."""
    pattern = re.compile(rf"^[ \t>*_#-]*{re.escape(label)}[ \t*_]*:(.*)$", re.IGNORECASE | re.MULTILINE)
    matches = pattern.findall(reply.replace("```", ""))
    if not matches:
        raise ResponseParseError(f"the reply has no `{label}:` line")
    if len(matches) > 1:
        raise ResponseParseError(f"the reply has {len(matches)} `{label}:` lines; exactly one is allowed")
    command = str(matches[0]).strip().strip("`*_ ").strip()
    if not command:
        raise ResponseParseError(f"the `{label}:` line is empty")
    return command


def _load_span(reply: str, opener: str, closer: str, kind: str) -> Any:
    start = reply.find(opener)
    end = reply.rfind(closer)
    if start < 0 or end < start:
        raise ResponseParseError(f"no JSON {kind} found in the reply")
    text = reply[start : end + 1]
    try:
        return json.loads(text)
    except json.JSONDecodeError as first_error:
        try:  # models often write regex-style backslashes ("\d") that JSON rejects
            return json.loads(_STRAY_BACKSLASH.sub(r"\\\\", text))
        except json.JSONDecodeError:
            raise ResponseParseError(f"the JSON {kind} in the reply is invalid: {first_error}") from None


def parse_json_object(reply: str) -> dict[str, Any]:
    """The JSON object of a reply, from its first `{` to its last `}` (prose and code fences around it are fine)."""
    value = _load_span(reply, "{", "}", "object")
    if not isinstance(value, dict):  # pragma: no cover - a `{...}` span always decodes to an object
        raise ResponseParseError("the reply's JSON is not an object")
    return value


def parse_json_list(reply: str) -> list[Any]:
    """The JSON list of a reply, from its first `[` to its last `]`."""
    value = _load_span(reply, "[", "]", "list")
    if not isinstance(value, list):  # pragma: no cover - a `[...]` span always decodes to a list
        raise ResponseParseError("the reply's JSON is not a list")
    return value


def require_keys(data: dict[str, Any], *keys: str) -> None:
    """Raise `ResponseParseError` naming the keys `data` lacks."""
    missing = [key for key in keys if key not in data]
    if missing:
        names = ", ".join(f'"{key}"' for key in missing)
        raise ResponseParseError(f"the JSON object lacks {names}")
