"""`LLMError`: what a failed LLM call looks like to the agents that consume its message.

Provider SDKs each raise their own exception classes (and, mid-stream, bare transport or JSON errors). An agent
that reads an LLM reply should not need to know which SDK produced it, so every failure is translated into one of the
classes below, with the HTTP `status`, the `provider` and a `message` that says what happened and what to do. The
SDK's exception stays reachable as `__cause__`. No SDK is imported here: exceptions are recognised by shape.
"""

from __future__ import annotations

import json
from typing import Any

from miniagents_nb.errors import MiniAgentsError
from miniagents_nb.ext.llms import providers
from miniagents_nb.ext.llms.credentials import redact_url

__all__ = [
    "LLMAuthenticationError",
    "LLMBadRequestError",
    "LLMConnectionError",
    "LLMDependencyError",
    "LLMError",
    "LLMRateLimitError",
    "LLMResponseError",
    "LLMServerError",
    "LLMTimeoutError",
    "llm_error_from",
    "provider_display_name",
]


class LLMError(MiniAgentsError):
    """An LLM call failed. `status` is the HTTP status (None when no response came), `provider` names the backend
    ("openai", "anthropic", "fake"), `message` is the explanation, `retry_after` the server's hint in seconds."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        self.retry_after = retry_after
        self.model = model

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor arguments: teach pickle (multiprocessing, persistence) how to rebuild the error.
        return (
            _rebuild_llm_error,
            (type(self), self.message, self.provider, self.status, self.retry_after, self.model),
        )


def _rebuild_llm_error(
    cls: type[LLMError], message: str, provider: str, status: int | None, retry_after: float | None, model: str | None
) -> LLMError:
    return cls(message, provider=provider, status=status, retry_after=retry_after, model=model)


class LLMAuthenticationError(LLMError):
    """The provider rejected (or never got) the credentials: HTTP 401/403, or no API key configured."""


class LLMRateLimitError(LLMError):
    """HTTP 429: too many requests or tokens; `retry_after` says how long the server asked to wait."""


class LLMBadRequestError(LLMError):
    """HTTP 4xx other than auth and rate limits: the request itself is wrong (unknown model, bad argument, ...)."""


class LLMServerError(LLMError):
    """HTTP 5xx (or Anthropic's 529 "overloaded"): the provider failed; retrying later may work."""


class LLMTimeoutError(LLMError):
    """No (complete) answer within the timeout."""


class LLMConnectionError(LLMError):
    """The connection failed or broke (server unreachable, stream cut mid-way)."""


class LLMResponseError(LLMError):
    """The provider answered with something that cannot be used: malformed or incomplete chunks, or structured
    output that does not match the requested schema."""


class LLMDependencyError(LLMError, ImportError):
    """The provider's SDK is not installed."""


def provider_display_name(provider: str) -> str:
    """`openai` -> `OpenAI` (for messages)."""
    return providers.display_name(provider)


def _server_message(error: Any) -> str:
    """The provider's own explanation, dug out of the SDK error's body when there is one."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    message = getattr(error, "message", None)
    return str(message if isinstance(message, str) and message else error)


def _retry_after(error: Any) -> float | None:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            return float(value) / divisor
        except ValueError:
            continue
    return None


def _is_transport_error(error: BaseException) -> bool:
    module = type(error).__module__.partition(".")[0]
    return module in {"httpx", "httpx2", "httpcore", "httpcore2", "aiohttp", "h11", "h2", "anyio"} or isinstance(
        error, (ConnectionError, EOFError)
    )


_PACKAGE = __name__.partition(".")[0]


def _raised_by_this_package(error: BaseException) -> bool:
    """Whether the innermost frame of the error's traceback is this package's code (not an SDK's or a parser's)."""
    if isinstance(error, json.JSONDecodeError) or type(error).__module__.partition(".")[0] != "builtins":
        return False  # a parser's or an SDK's own exception class
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "")
    return isinstance(module, str) and module.partition(".")[0] == _PACKAGE


def _is_timeout(error: BaseException) -> bool:
    return isinstance(error, TimeoutError) or "Timeout" in type(error).__name__


def llm_error_from(
    error: Exception,
    *,
    provider: str,
    model: str | None = None,
    max_retries: int | None = None,
    timeout: float | None = None,
    base_url: str | None = None,
) -> Exception:
    """Translate what an SDK (or the transport under it, or a JSON parser) raised into an `LLMError`.

    Only failures of the provider's side are translated. An error that is already ours, or a plain Python error
    raised by this package's own code (a bug, or a misuse caught before the call), is returned unchanged: calling it
    "a malformed response" would send the user to debug the server.
    """
    if isinstance(error, MiniAgentsError) or _raised_by_this_package(error):
        return error
    name = provider_display_name(provider)
    where = f" at {redact_url(base_url)}" if base_url else ""  # never a key from the URL in an error
    retried = f" after {max_retries} retr{'y' if max_retries == 1 else 'ies'}" if max_retries else ""
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        detail = _server_message(error)
        retry_after = _retry_after(error)
        kwargs: dict[str, Any] = {"provider": provider, "status": status, "retry_after": retry_after, "model": model}
        if status in (401, 403):
            key_name = providers.api_key_env(provider)
            return LLMAuthenticationError(
                f"{name}{where} rejected the request's credentials (HTTP {status}): {detail}. "
                f"Check {key_name} (or the api_key= argument) and the key's permissions.",
                **kwargs,
            )
        if status == 429:
            hint = f" The server asked to wait {retry_after:g} s." if retry_after is not None else ""
            return LLMRateLimitError(
                f"{name}{where} rate-limited the request (HTTP 429){retried}: {detail}.{hint} "
                "Wait and retry, send fewer requests at once, or raise max_retries=.",
                **kwargs,
            )
        if status >= 500:
            return LLMServerError(
                f"{name}{where} failed with HTTP {status}{retried}: {detail}. "
                "This is on the provider's side: retry later, or raise max_retries=.",
                **kwargs,
            )
        return LLMBadRequestError(
            f"{name}{where} refused the request (HTTP {status}): {detail}. "
            "Fix the arguments named in the message (model name, parameters, message format).",
            **kwargs,
        )
    if _is_timeout(error):
        limit = f" within {timeout:g} s" if timeout is not None else ""
        return LLMTimeoutError(
            f"{name}{where} did not answer{limit}{retried}. Raise timeout= (seconds) or retry later.",
            provider=provider,
            model=model,
        )
    cause = error.__cause__ if error.__cause__ is not None else error
    if _is_transport_error(error) or type(error).__name__ == "APIConnectionError" or _is_transport_error(cause):
        detail = str(cause) or type(cause).__name__
        return LLMConnectionError(
            f"The connection to {name}{where} failed or broke before the response was complete ({detail}). "
            "Check the server address and the network, then retry.",
            provider=provider,
            model=model,
        )
    if type(error).__name__ in {"OpenAIError", "AnthropicError"} or "authentication method" in str(error):
        # What the SDKs raise when no API key could be found (at client construction or at the request).
        key_name = providers.api_key_env(provider)
        return LLMAuthenticationError(
            f"{name}{where} could not authenticate ({error}). Set {key_name} or pass api_key=..., "
            "or run offline with FakeLLMAgent / default_llm_agent().",
            provider=provider,
            model=model,
        )
    if isinstance(error, (json.JSONDecodeError, KeyError, AttributeError, TypeError, IndexError, ValueError)):
        return LLMResponseError(
            f"{name}{where} sent a malformed response ({type(error).__name__}: {error}). "
            "The server may not speak this provider's protocol, or the response was corrupted: retry, or check "
            "base_url.",
            provider=provider,
            model=model,
        )
    return LLMError(
        f"{name}{where} call failed ({type(error).__name__}: {_server_message(error)}). "
        "Retry; if it keeps failing, check the provider's status and the call's arguments.",
        provider=provider,
        model=model,
    )
