"""Credentials that travel outside `api_key`: found, kept out of everything the package writes, still sent.

A key may reach a provider in a header (`extra_headers={"Authorization": "Bearer ..."}`, Azure's `api-key`,
`default_headers`), a query parameter (`extra_query`, `default_query`) or the `base_url` itself (`?key=...`,
`https://user:secret@host`). Agent arguments are frozen, and frozen arguments are persisted in call nodes, recorded
in the run store, shown by the notebook views and written by the LLM logger. So an argument that carries a
credential is split in two (see `llm_miniagent`): the real value is passed live (never frozen, used for the request)
and a redacted copy is frozen (what everything else sees). What is known to be secret is also scrubbed from the
error an LLM call ends with (an SDK's message may quote the URL).

A name is taken for a credential by its look (`authorization`, `api-key`, `x-api-key`, `token`, `secret`,
`password`, `cookie`, `signature`, `sig`, `key`, ...); a value is, whatever its name, when it starts with an HTTP
auth scheme (`Bearer ...`, `Basic ...`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from miniagents_nb.promising.ext.frozen import Frozen

__all__ = [
    "CREDENTIAL_CARRIERS",
    "REDACTED",
    "credential_strings",
    "is_credential_name",
    "redact_argument",
    "redact_url",
    "scrub_error",
    "scrub_text",
]

REDACTED = "•••"
"""What a credential is written as (the run store masks secret arguments the same way)."""

_HEADER_ARGUMENTS = frozenset({"extra_headers", "default_headers", "headers"})
_QUERY_ARGUMENTS = frozenset({"extra_query", "default_query", "query", "params"})
_URL_ARGUMENTS = frozenset({"base_url", "websocket_base_url", "url", "endpoint"})
CREDENTIAL_CARRIERS = _HEADER_ARGUMENTS | _QUERY_ARGUMENTS | _URL_ARGUMENTS
"""Agent arguments that may carry a credential inside them (headers, query parameters, URLs)."""

_CREDENTIAL_NAME = re.compile(
    r"auth|api[-_]?key|(^|[-_.])key($|[-_.])|token|secret|passw|pwd|cookie|credential|signature|^sig$|^code$|"
    r"session|subscription|access[-_]?key|private",
    re.IGNORECASE,
)
_AUTH_SCHEME = re.compile(r"^\s*(bearer|basic|digest|token|apikey|hmac|aws4-hmac-sha256)\s+(\S.*)$", re.IGNORECASE)
_SHORTEST_SECRET = 4  # shorter strings are not scrubbed from text (they would mangle ordinary words)


def is_credential_name(name: object) -> bool:
    """Whether a header or parameter name looks like it holds a credential."""
    return isinstance(name, str) and _CREDENTIAL_NAME.search(name) is not None


def _is_credential_parameter(name: str) -> bool:
    # "token" names counts in query strings (`max_tokens`), so a query parameter must not end in "tokens"
    return is_credential_name(name) and not name.lower().endswith("tokens")


def _looks_secret(name: object, value: object) -> bool:
    if isinstance(name, str) and name.lower().endswith("tokens"):  # `max_tokens`, `total_tokens`: counts
        return isinstance(value, str) and _AUTH_SCHEME.match(value) is not None
    return is_credential_name(name) or (isinstance(value, str) and _AUTH_SCHEME.match(value) is not None)


def _items(value: Any) -> list[tuple[Any, Any]] | None:
    if isinstance(value, Frozen):
        return list(value.as_kwargs().items())
    if isinstance(value, Mapping):
        return list(value.items())
    return None


def _redact_mapping(value: Any) -> Any:
    items = _items(value)
    if items is None or not any(_looks_secret(name, item) for name, item in items):
        return value
    return {name: REDACTED if _looks_secret(name, item) else item for name, item in items}


def redact_url(url: str) -> str:
    """`url` with its user info and its credential-looking query parameters replaced by `REDACTED`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = "&".join(
        f"{pair.partition('=')[0]}={REDACTED}" if _is_credential_parameter(unquote(pair.partition("=")[0])) else pair
        for pair in parts.query.split("&")
    )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_argument(name: str, value: Any) -> Any:
    """The value of agent argument `name` as it may be written anywhere: `value` itself (the same object) when it
    carries no credential, else a redacted copy."""
    if name in _HEADER_ARGUMENTS or name in _QUERY_ARGUMENTS:
        return _redact_mapping(value)
    if name in _URL_ARGUMENTS and isinstance(value, str):
        redacted = redact_url(value)
        return value if redacted == value else redacted
    return value


def _secrets_of_mapping(value: Any) -> Iterable[str]:
    for name, item in _items(value) or ():
        if isinstance(item, str) and _looks_secret(name, item):
            yield item
            scheme = _AUTH_SCHEME.match(item)
            if scheme is not None:
                yield scheme.group(2)


def _secrets_of_url(url: str) -> Iterable[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    if "@" in parts.netloc:
        user_info = parts.netloc.rpartition("@")[0]
        yield user_info
        yield from user_info.split(":")
    for pair in parts.query.split("&"):
        name, _, value = pair.partition("=")
        if value and _is_credential_parameter(unquote(name)):
            yield value
            yield unquote(value)


def credential_strings(arguments: Mapping[str, Any]) -> list[str]:
    """Every secret string in these arguments (`api_key`, credential headers and parameters, URL user info), longest
    first: what `scrub_text` removes from text."""
    found: set[str] = set()
    for name, value in arguments.items():
        if name == "api_key" and isinstance(value, str):
            found.add(value)
        elif name in _HEADER_ARGUMENTS or name in _QUERY_ARGUMENTS:
            found.update(_secrets_of_mapping(value))
        elif name in _URL_ARGUMENTS and isinstance(value, str):
            found.update(_secrets_of_url(value))
    return sorted((secret for secret in found if len(secret) >= _SHORTEST_SECRET), key=len, reverse=True)


def scrub_text(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret replaced by `REDACTED`."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def scrub_error(error: BaseException, secrets: list[str]) -> BaseException:
    """Remove the secrets from the messages of `error` and of the errors it was raised from (in place), so neither
    the message a consumer sees nor a logged traceback shows them; returns `error`."""
    if not secrets:
        return error
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        try:
            if any(isinstance(arg, str) and any(s in arg for s in secrets) for arg in current.args):
                current.args = tuple(scrub_text(arg, secrets) if isinstance(arg, str) else arg for arg in current.args)
            message = getattr(current, "message", None)
            if isinstance(message, str):
                current.message = scrub_text(message, secrets)  # type: ignore[attr-defined]
        except (AttributeError, TypeError):  # an exception type that does not let its message be replaced
            pass
        current = current.__cause__ or current.__context__
    return error
