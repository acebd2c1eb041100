"""How recorded values become columns and back: arguments as JSON (secrets masked), token times as packed arrays,
errors as text, messages rebuilt from their serialized JSON with the same `hash_key`.
"""

from __future__ import annotations

import json
import re
import traceback
from array import array
from collections.abc import Iterator, Mapping
from typing import Any

from miniagents_nb.errors import RecordedError
from miniagents_nb.messages import Message, TextMessage
from miniagents_nb.messages.safe_text import safe_str
from miniagents_nb.promising.ext.frozen import FROZEN_CLASS_FIELD, Frozen, to_json_compatible

__all__ = [
    "SECRET_MASK",
    "arguments_json",
    "error_columns",
    "error_text",
    "llm_columns",
    "message_class",
    "nested_hash_keys",
    "pack_keys",
    "pack_tokens",
    "rebuild_messages",
    "recorded_error",
    "token_lengths",
    "unpack_keys",
    "unpack_token_lengths",
    "unpack_tokens",
]

SECRET_MASK = "•••"
"""What an argument (or a key inside one, at any depth: `headers={"Authorization": ...}`) whose name says it is a
secret is stored as: the secret itself never reaches the file."""

_SECRET_NAME = re.compile(
    r"(^|[_-])(api[_-]?key|key|token|secret|password|passwd|authorization|credentials?)($|[_-])", re.IGNORECASE
)


def _masked(name: object, value: Any) -> Any:
    return SECRET_MASK if _SECRET_NAME.search(str(name)) else _json_value(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, Message):
        return {"__hash_key": value.hash_key}
    if isinstance(value, Frozen):
        return {key: _masked(key, item) for key, item in value.as_kwargs().items()}
    if isinstance(value, (tuple, list, frozenset)):
        return [_json_value(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _masked(key, item) for key, item in value.items()}
    try:
        return to_json_compatible(value)
    except Exception:  # not JSON-able (a live object): its type says enough
        return f"<{type(value).__name__}>"


def arguments_json(arguments: Mapping[str, Any]) -> str:
    """The arguments as JSON; arguments and keys whose names say they are secrets are masked, at any depth."""
    plain = {name: _masked(name, value) for name, value in arguments.items()}
    return json.dumps(plain, ensure_ascii=False, sort_keys=True, default=str)


def pack_tokens(counts: list[int], times: list[float]) -> tuple[bytes, bytes]:
    """Samples of a token stream (how many tokens had arrived, when) as two compact blobs."""
    return array("I", counts).tobytes(), array("d", times).tobytes()


def pack_keys(keys: list[str | None]) -> bytes:
    """Hash keys (hex) as bytes, each prefixed by its length (0: no message at that position)."""
    packed = bytearray()
    for key in keys:
        if key is None:
            packed.append(0)
        else:
            raw = bytes.fromhex(key)
            packed.append(len(raw))
            packed += raw
    return bytes(packed)


def unpack_keys(packed: bytes) -> list[str | None]:
    keys: list[str | None] = []
    index = 0
    while index < len(packed):
        length = packed[index]
        keys.append(packed[index + 1 : index + 1 + length].hex() if length else None)
        index += 1 + length
    return keys


def unpack_tokens(counts: bytes | None, times: bytes | None) -> tuple[tuple[int, ...], tuple[float, ...]]:
    if not counts or not times:
        return (), ()
    count_array, time_array = array("I"), array("d")
    count_array.frombytes(counts)
    time_array.frombytes(times)
    return tuple(count_array), tuple(time_array)


def error_columns(error: BaseException) -> tuple[str, str, str]:
    """Type name, message and traceback of a failure (a recorded failure keeps what it recorded)."""
    if isinstance(error, RecordedError):
        return error.type_name, error.text, error.traceback_text or ""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip("\n")
    return type(error).__name__, safe_str(error), text  # (an exception whose `__str__` raises is recorded too)


def error_text(error: BaseException) -> str:
    """ "<Type>: <message>" (what a message list holds where a failure was)."""
    if isinstance(error, RecordedError):
        return str(error)
    text = safe_str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def recorded_error(text: str | None) -> RecordedError | None:
    """A `RecordedError` from "<Type>: <message>"."""
    if text is None:
        return None
    type_name, _, message = text.partition(": ")
    return RecordedError(type_name, message)


# --- LLM request metadata ------------------------------------------------------------------------------------------


def _provider_of(class_name: str) -> str:
    name = class_name[: -len("Message")] if class_name.endswith("Message") else class_name
    name = name[: -len("LLM")] if name.endswith("LLM") and len(name) > 3 else name
    return name.lower() or class_name.lower()


def token_lengths(pieces: list[Any] | None, content: Any) -> bytes | None:
    """How a streamed reply was cut into tokens (each token's length, packed), when its tokens are exactly its
    text: what replay needs to stream the reply back token by token."""
    if not pieces or not isinstance(content, str) or not all(isinstance(piece, str) for piece in pieces):
        return None
    lengths = array("I", map(len, pieces))
    return lengths.tobytes() if sum(lengths) == len(content) else None


def unpack_token_lengths(packed: bytes | None) -> tuple[int, ...]:
    if not packed:
        return ()
    lengths = array("I")
    lengths.frombytes(packed)
    return tuple(lengths)


def llm_columns(
    message: Message, parameters_json: str | None, pieces: list[Any] | None = None
) -> tuple[Any, ...] | None:
    """(provider, model, response_model, parameters, usage, stop_reason, request_key, token_lengths) when the
    message is an LLM's reply.

    An LLM agent's reply names its `model` (known before the request) and carries what the provider said
    (`usage`, `stop_reason` or `choices[0].finish_reason`, `response_model`) and, in a recorded context, the
    `request_key` replay matches requests by: read by name, no LLM module imported.
    """
    fields = message.serialize()
    if "model" not in fields or "agent_alias" not in fields:
        return None
    stop_reason = fields.get("stop_reason")
    choices = fields.get("choices")
    if stop_reason is None and isinstance(choices, list) and choices and isinstance(choices[0], dict):
        stop_reason = choices[0].get("finish_reason")
    usage = fields.get("usage")
    return (
        fields.get("provider") or _provider_of(str(fields.get(FROZEN_CLASS_FIELD, ""))),
        fields.get("model"),
        fields.get("response_model"),
        parameters_json,
        None if usage is None else json.dumps(usage, ensure_ascii=False, sort_keys=True),
        None if stop_reason is None else str(stop_reason),
        fields.get("request_key"),
        token_lengths(pieces, fields.get("content")),
    )


# --- messages back from JSON ---------------------------------------------------------------------------------------


def _message_classes() -> Iterator[type[Message]]:
    todo: list[type[Message]] = [Message]
    while todo:
        cls = todo.pop()
        yield cls
        todo.extend(cls.__subclasses__())


_STAND_INS: dict[tuple[str, bool], type[Message]] = {}


def message_class(name: str, has_content: bool) -> type[Message]:
    """The loaded class of that name if there is exactly one, else a stand-in of that name (so the `class_` field,
    and with it the `hash_key`, is the one recorded)."""
    found = [cls for cls in _message_classes() if cls.__name__ == name and cls.model_config.get("extra") != "forbid"]
    if len(found) == 1:
        return found[0]
    key = (name, has_content)
    if key not in _STAND_INS:
        _STAND_INS[key] = type(name, (TextMessage if has_content else Message,), {"__module__": __name__})
    return _STAND_INS[key]


def _field_value(value: Any, resolve: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__hash_key"}:
            return resolve(value["__hash_key"])
        return Frozen(**_fields(value, resolve))
    if isinstance(value, list):
        return tuple(_field_value(item, resolve) for item in value)
    return value


def _fields(data: Mapping[str, Any], resolve: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in data.items():
        if name == FROZEN_CLASS_FIELD:
            continue
        if name.endswith("__hash_key") and isinstance(value, str):
            fields[name[: -len("__hash_key")]] = resolve(value)
        elif name.endswith("__hash_keys") and isinstance(value, list):
            fields[name[: -len("__hash_keys")]] = tuple(resolve(key) for key in value)
        else:
            fields[name] = _field_value(value, resolve)
    return fields


def nested_hash_keys(value: Any) -> list[str]:
    """The hash keys of the messages nested in a message's serialized form (`<field>__hash_key(s)`)."""
    found: list[str] = []
    if isinstance(value, dict):
        for name, item in value.items():
            if name.endswith("__hash_key") and isinstance(item, str):
                found.append(item)
            elif name.endswith("__hash_keys") and isinstance(item, list):
                found.extend(key for key in item if isinstance(key, str))
            else:
                found.extend(nested_hash_keys(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(nested_hash_keys(item))
    return found


def rebuild_messages(rows: Mapping[str, tuple[str, str]]) -> dict[str, Message]:
    """Messages by hash key from `{hash_key: (class name, serialized JSON)}` (nested messages resolved too); a
    message whose nested messages are missing from `rows` is left out."""
    built: dict[str, Message] = {}

    def resolve(hash_key: str) -> Message:
        if hash_key not in built:
            class_name, text = rows[hash_key]
            data = json.loads(text)
            cls = message_class(class_name, "content" in data)
            built[hash_key] = cls(**_fields(data, resolve))
        return built[hash_key]

    for hash_key in rows:
        try:
            resolve(hash_key)
        except KeyError:  # refers to a message the file does not hold (lost to a fault)
            continue
    return built
