"""Between this package's values and an SDK's: messages as role/content dicts (an `ImageMessage` as the provider's
image part, when the provider says how), frozen arguments thawed back into plain dicts and lists, and keyword
arguments the installed SDK does not know routed into `extra_body`."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from miniagents_nb.messages import ImageMessage, Message, MessageSequence, TextMessage
from miniagents_nb.promising.ext.frozen import Frozen

ImagePart = Callable[[ImageMessage], dict[str, Any]]
"""How a provider shows an image in a message's content (`openai_image_part`, `anthropic_image_block`)."""

__all__ = [
    "ImagePart",
    "amessages_to_llm_dicts",
    "anthropic_image_block",
    "image_content",
    "openai_image_part",
    "is_pydantic_model_class",
    "message_to_llm_dict",
    "route_unknown_kwargs_to_extra_body",
    "thaw",
]


# --- message conversion ---------------------------------------------------------------------------------------------


def openai_image_part(image: ImageMessage) -> dict[str, Any]:
    """An OpenAI chat `image_url` content part (the image's URL, or a `data:` URL of its bytes)."""
    return {"type": "image_url", "image_url": {"url": image.data_url}}


_BASE64_DATA_URL = re.compile(r"data:([^;,]+);base64,(.*)", re.DOTALL)


def anthropic_image_block(image: ImageMessage) -> dict[str, Any]:
    """An Anthropic `image` content block: base64 bytes with their media type, or a URL source (a base64 `data:`
    URL is sent as the base64 source it is: Anthropic's URL source fetches http(s) URLs only)."""
    if image.data_base64 is None:
        inline = _BASE64_DATA_URL.fullmatch(image.url or "")
        if inline is None:
            return {"type": "image", "source": {"type": "url", "url": image.url}}
        media_type, data = inline.groups()
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "base64", "media_type": image.mime_type, "data": image.data_base64}}


def image_content(image: ImageMessage, image_part: ImagePart) -> list[dict[str, Any]]:
    """The content parts of an image message: its caption as a text part (when it has one), then the image."""
    parts: list[dict[str, Any]] = [{"type": "text", "text": image.content}] if image.content else []
    parts.append(image_part(image))
    return parts


def message_to_llm_dict(
    message: Message, default_role: str = "user", image_part: ImagePart | None = None
) -> dict[str, Any]:
    """`{"role": ..., "content": ...}` for one message: its `role` (else `default_role`) and its text; with
    `image_part`, an `ImageMessage`'s content is a list of parts (caption, image) in the provider's shape.

    The text is the message's `content` (`text` is the same field), or the template filled in for a TextMessage.
    A message without any content becomes its string form (the JSON of its fields): a model then at least sees the
    data. An LLM never gets a JSON dump of a message that has text.
    """
    role = getattr(message, "role", None)
    if not isinstance(role, str) or not role:
        role = default_role
    if image_part is not None and isinstance(message, ImageMessage):
        return {"role": role, "content": image_content(message, image_part)}
    if isinstance(message, TextMessage):
        text = str(message)
    else:
        content = getattr(message, "content", None)
        text = str(message) if content is None else content if isinstance(content, str) else str(content)
    return {"role": role, "content": text}


async def amessages_to_llm_dicts(
    messages: Any, default_role: str = "user", image_part: ImagePart | None = None
) -> list[dict[str, Any]]:
    """Resolve `messages` (any nesting of what an agent may send) and convert each to a role/content dict."""
    resolved = await MessageSequence.turn_into_sequence_promise(messages)
    return [message_to_llm_dict(message, default_role, image_part) for message in resolved]


# --- frozen <-> plain values ----------------------------------------------------------------------------------------


def thaw(value: Any) -> Any:
    """Turn frozen agent arguments back into what an SDK expects: `Frozen` -> dict, tuple -> list (recursively)."""
    if isinstance(value, Frozen):
        return {key: thaw(item) for key, item in value.as_kwargs().items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


@functools.lru_cache(maxsize=128)
def _accepted_parameters(function: Callable[..., Any]) -> frozenset[str] | None:
    """The keyword names `function` takes, or None when it takes any (`**kwargs`)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return None
    return frozenset(parameter.name for parameter in parameters)


def route_unknown_kwargs_to_extra_body(method: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Move the arguments that the SDK `method` does not name into its `extra_body` (they still reach the server).

    SDK versions add and drop parameters, and OpenAI-compatible servers take their own ones (`top_k`,
    `repetition_penalty`, ...): an argument unknown to the installed SDK becomes part of the JSON body instead of a
    TypeError, and the server decides.
    """
    accepted = _accepted_parameters(getattr(method, "__func__", method))
    if accepted is None:
        return kwargs
    unknown = [key for key in kwargs if key not in accepted]
    if not unknown:
        return kwargs
    routed = dict(kwargs)
    extra_body = dict(routed.pop("extra_body", None) or {})
    for key in unknown:
        extra_body[key] = routed.pop(key)
    routed["extra_body"] = extra_body
    return routed


def is_pydantic_model_class(value: Any) -> bool:
    """Whether `value` is a pydantic model class (a structured-output `response_format`)."""
    return isinstance(value, type) and issubclass(value, BaseModel)
