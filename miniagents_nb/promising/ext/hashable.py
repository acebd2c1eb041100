"""What freezing refuses because it could be held but never hashed, persisted or shown, and the canonical JSON
helpers `hash_key` is computed with.

A value that fails only later, when a background persistence task computes its hash key (or a view prints it),
surfaces far from its cause or not at all; refused at construction, the error names the field at the line that
made it. Each check costs nothing on the common path: ASCII text is known to be ASCII in O(1), short ints are
always printable, and only the rarer types are test-serialized.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from typing import Any

from miniagents_nb.errors import MessageTypeError, NotFreezableError

__all__ = [
    "ALWAYS_PRINTABLE_INT_BITS",
    "canonical_json_value",
    "check_field_name",
    "check_mapping_keys",
    "refuse_bad_text",
    "refuse_long_int",
    "refuse_unserializable",
    "to_json_compatible",
]

# An int with fewer bits than this has fewer decimal digits than the lowest limit Python allows (640), so it can
# always be written as text; longer ones are checked against the limit in force (`sys.set_int_max_str_digits`).
ALWAYS_PRINTABLE_INT_BITS = 2000
"""Ints with more bits than this are checked against the int-to-text limit."""


def refuse_bad_text(value: str, owner: str, key: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        key = key.encode("ascii", "backslashreplace").decode("ascii")  # the message itself must be printable
        raise NotFreezableError(
            f"{what} `{key}` of {owner} holds text that is not valid Unicode (a lone surrogate "
            f"{value[error.start]!r} at position {error.start}), so it could never be hashed, persisted or shown. "
            "Fix the text, e.g. `text.encode('utf-8', 'replace').decode('utf-8')` (or decode bytes with "
            "errors='replace', not 'surrogateescape')."
        ) from None


def refuse_long_int(value: int, owner: str, key: str) -> None:
    try:
        str(value)
    except ValueError:
        limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 4300
        raise NotFreezableError(
            f"The field `{key}` of {owner} holds an int of more than {limit} decimal digits, which Python refuses to "
            "write as text, so it could never be hashed or persisted. Send it as a str (e.g. `hex(n)`), or raise the "
            "limit with `sys.set_int_max_str_digits()`."
        ) from None


def refuse_unserializable(value: Any, owner: str, key: str) -> None:
    """Refuse an allowed type whose particular value cannot become JSON text (what `hash_key` is computed over)."""
    try:
        json.dumps(to_json_compatible(value), ensure_ascii=False).encode("utf-8")
    except Exception as error:
        hint = (
            "Send binary data as base64 text (or an ImageMessage), or decode it to str first."
            if isinstance(value, (bytes, bytearray))
            else "Convert it to a str or a plain number first."
        )
        raise NotFreezableError(
            f"The field `{key}` of {owner} holds a value of type {type(value).__name__} that cannot be turned into JSON "
            f"({type(error).__name__}: {error}), so it could never be hashed, persisted or shown. {hint}"
        ) from None


def check_mapping_keys(mapping: Any, owner: str, key: str) -> None:
    """Refuse a dict whose keys are not all str with a `MessageTypeError` naming the key (Python's own error,
    "keywords must be strings", would say neither which key nor where)."""
    for name in mapping:
        if not isinstance(name, str):
            raise MessageTypeError(
                f"Dict keys must be strings in {owner}: got the key {name!r} ({type(name).__name__}) in `{key}`. "
                "Convert the keys to str (e.g. `{str(k): v for k, v in d.items()}`)."
            )


def check_field_name(key: Any, owner: str) -> None:
    if not isinstance(key, str):
        raise MessageTypeError(
            f"Field names must be strings in {owner}: got {key!r} ({type(key).__name__}). "
            "Convert the dict's keys to str (e.g. `{str(k): v for k, v in d.items()}`)."
        )
    refuse_bad_text(key, owner, key, "The field name")


# Values that pydantic turns into JSON-compatible values the way `model_dump(mode="json")` does.
_JSON_SCALARS = (str, int, float, bool, type(None))


def to_json_compatible(value: Any) -> Any:
    """Turn a frozen scalar into what `model_dump(mode='json')` would produce for it."""
    if type(value) in _JSON_SCALARS:
        return value
    from pydantic_core import to_jsonable_python

    if isinstance(value, Decimal):
        return str(value)
    return to_jsonable_python(value)


def _canonical_key(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def canonical_json_value(items: Any) -> list[Any]:
    """JSON-compatible elements of a set, sorted by their canonical JSON: the same list in every process, whatever
    the set's iteration order (which depends on `PYTHONHASHSEED` for str and bytes elements)."""
    return sorted(items, key=_canonical_key)
