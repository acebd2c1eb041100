"""The offline switches of the LLM agents: `MINIAGENTS_NB_LLM=fake` and `MINIAGENTS_NB_LLM=replay`.

A notebook written against a real provider (`OpenAIAgent.fork(...)`, the seeds' `openai_agent` /
`anthropic_agent`, `AnthropicAgent`, a registered provider's agent) runs unchanged offline:

- `fake`: every such agent answers with the offline fake LLM (`FakeLLM`: it echoes the last user message, streams
  it word by word, gives OpenAI-shaped usage); the reply keeps the agent's own message class.
- `replay` (or `MiniAgents(replay_from=store)`): every LLM agent, the fake included, answers with the reply a run
  store recorded for the same request (`miniagents_nb.runs.replay`), token by token, with its metadata and usage;
  `MINIAGENTS_NB_REPLAY_TIMING=1` (or `replay_from=ReplaySource(path, keep_timing=True)`) keeps the recorded timing too. A request
  the store never saw fails with `ReplayMismatchError`, naming the agent and showing the request.

Either switch is announced once per process (a warning on the `miniagents_nb.llms` logger). With a recording
context, every LLM reply carries `request_key` (the replay key) so the store can match it later.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from miniagents_nb.agents import MiniAgents
from miniagents_nb.compat import resolve
from miniagents_nb.errors import ReplayMismatchError
from miniagents_nb.ext.llms.conversion import is_pydantic_model_class, thaw
from miniagents_nb.ext.llms.messages import PARSED_OBJECT_KEY
from miniagents_nb.ext.llms.providers import OFFLINE_SWITCHES, api_key_env, display_name, registered_providers
from miniagents_nb.ext.llms.tools import ToolSet
from miniagents_nb.messages import MessageTokenAppender

if TYPE_CHECKING:
    from miniagents_nb.runs.replay import ReplaySource

LLMAgent = Any
"""An `llm_utils.LLMAgent` (which imports this module: named loosely here to keep the modules free of cycles)."""

__all__ = [
    "OFFLINE_SWITCHES",
    "Replayer",
    "forget_notices",
    "llm_switch",
    "producer_for",
    "replay_parameters",
    "request_key_of",
    "stamp_request_key",
]

logger = logging.getLogger("miniagents_nb.llms")

_REQUEST_SHAPING_FIELDS = ("response_format", "tool_choice", "parallel_tool_calls")
_sleep = asyncio.sleep
"""How replay waits between tokens (a module attribute, so a test can see the waits asked for with a fake)."""
_announced: set[str] = set()
_announced_lock = threading.Lock()


def llm_switch() -> str:
    """`MINIAGENTS_NB_LLM`, lower case ("" when unset)."""
    return os.environ.get("MINIAGENTS_NB_LLM", "").strip().lower()


def _announce(mode: str, text: str) -> None:
    with _announced_lock:
        if mode in _announced:
            return
        _announced.add(mode)
    logger.warning(text)


def forget_notices() -> None:
    """Announce the switches again (their notice is given once per process; tests and notebooks may reset it)."""
    with _announced_lock:
        _announced.clear()


def _switchable(agent: LLMAgent) -> bool:
    """Whether the fake switch applies: agents of a registered provider that needs the network."""
    return any(provider.name == agent.provider and not provider.offline for provider in registered_providers())


def replay_parameters(agent: LLMAgent) -> dict[str, Any]:
    """What shapes the answer besides the model and the messages: the extra SDK arguments (`temperature`,
    `max_tokens`, ...), `response_format`, the tools offered, `tool_choice`, and each provider's own declared
    arguments that the provider's class names in `replay_fields` (Anthropic's `max_tokens`)."""
    parameters: dict[str, Any] = {key: thaw(value) for key, value in (agent.model_extra or {}).items()}
    for name in (*_REQUEST_SHAPING_FIELDS, *getattr(agent, "replay_fields", ())):
        value = getattr(agent, name, None)
        if value is None:
            continue
        if is_pydantic_model_class(value):
            parameters[name] = {
                "model": f"{value.__module__}.{value.__qualname__}",
                "schema": value.model_json_schema(),
            }
        else:
            parameters[name] = thaw(value)
    tools = agent.tools
    if isinstance(tools, ToolSet):
        parameters["tools"] = [tool.name for tool in tools]
    elif tools is not None:
        parameters["tools"] = thaw(tools)
    return parameters


def request_key_of(agent: LLMAgent, message_dicts: list[dict[str, Any]]) -> str:
    from miniagents_nb.runs.replay import request_key

    return request_key(agent.provider, agent.model, replay_parameters(agent), message_dicts)


def stamp_request_key(agent: LLMAgent, message_dicts: list[dict[str, Any]], appender: MessageTokenAppender) -> None:
    """In a recording context, put the request's replay key on the reply (the store keeps it for replay)."""
    if MiniAgents.get_current().recording is None:  # record_to= or the notebook layer's recording
        return
    try:
        appender.auxiliary_field_collector.setdefault("request_key", request_key_of(agent, message_dicts))
    except Exception as error:  # a request the key cannot describe is simply not replayable
        logger.debug("No replay key for a request of %s: %s", agent.ctx.this_agent.alias, error)


def _replay_target() -> Any:
    """The context's `replay_from`, else the default store under `MINIAGENTS_NB_LLM=replay`, else None."""
    target = getattr(MiniAgents.get_current(), "replay_from", None)
    if target is not None:
        return target
    return ... if llm_switch() == "replay" else None


def producer_for(agent: LLMAgent) -> Any:
    """What produces this call's reply: the agent itself, a `Replayer`, or the fake LLM standing in for it."""
    target = _replay_target()
    if target is not None:
        from miniagents_nb.runs.replay import replay_source

        source = replay_source(None if target is ... else target)
        _announce(
            "replay",
            f"LLM replay is on: every LLM agent answers with the replies recorded in {source.path} and calls no "
            "provider (MINIAGENTS_NB_LLM=replay or MiniAgents(replay_from=...)). A request that was not recorded "
            "fails with ReplayMismatchError.",
        )
        return Replayer(agent, source)
    if llm_switch() == "fake" and _switchable(agent):
        _announce(
            "fake",
            "MINIAGENTS_NB_LLM=fake: every LLM agent (OpenAIAgent, AnthropicAgent, the seeds' openai_agent / "
            "anthropic_agent, ...) answers with the offline fake LLM and calls no provider. Unset "
            "MINIAGENTS_NB_LLM to use the real providers.",
        )
        return _fake_stand_in(agent)
    return agent


def _fake_stand_in(agent: LLMAgent) -> LLMAgent:
    fake_class = resolve("miniagents_nb.ext.llms.fake.FakeLLM")  # by name: the fake's module imports this one's
    base: Any = next(cls for cls in type(agent).__mro__ if cls.__name__ == "LLMAgent")
    shared = {
        name: getattr(agent, name)
        for name in base.model_fields
        if name not in ("llm_logger_agent", "response_metadata", "response_message_class")
    }
    stand_in = fake_class(**shared, **(agent.model_extra or {}), llm_logger_agent=None)
    stand_in.bind_tool_turn(agent.tool_turn)
    return stand_in


class Replayer:
    """Answers one call of `agent` from a replay source (see the module docstring)."""

    def __init__(self, agent: LLMAgent, source: ReplaySource) -> None:
        self.agent = agent
        self.source = source

    def translate_error(self, error: Exception) -> Exception:
        return error

    def _mismatch(self, message_dicts: list[dict[str, Any]], key: str) -> ReplayMismatchError:
        from miniagents_nb.runs.replay import canonical_request

        agent = self.agent
        request = canonical_request(agent.provider, agent.model, replay_parameters(agent), message_dicts)
        shown = json.dumps(request, ensure_ascii=False, indent=2, default=str)
        if len(shown) > 4000:
            shown = shown[:4000] + "\n... (cut)"
        held = self.source.recorded_requests(agent.provider)
        hint = ""
        recorded = self.source.recorded_provider() if not held else None
        if recorded is not None and recorded != agent.provider:
            hint = (
                f" The store holds requests of {recorded}, not of {agent.provider}: `default_llm_agent()` picks its "
                f"provider by the API keys set even under replay, so set {api_key_env(recorded)} (any value: "
                f"nothing is sent) or replay with an explicit {display_name(recorded)} agent."
            )
        unkeyed = self.source.unkeyed_requests()
        if unkeyed:
            hint += (
                f" It holds {unkeyed} LLM request(s) recorded with no replay key (by a miniagents_nb from before "
                "replay), which cannot be replayed: record them again."
            )
        return ReplayMismatchError(
            f"{agent.ctx.this_agent.alias} made an LLM request that the run store {self.source.path} holds no "
            f"recorded reply for (replay key {key[:16]}; the store holds {held} recorded {agent.provider} "
            f"request(s)).{hint} The request:\n{shown}\nRecord it first (run once against the provider with "
            "`MiniAgents(record_to=...)` or in a notebook with `%load_ext miniagents_nb`), or turn replay off "
            "(unset MINIAGENTS_NB_LLM / drop replay_from=)."
        )

    async def areplay(self, message_dicts: list[dict[str, Any]], appender: MessageTokenAppender) -> None:
        agent = self.agent
        key = request_key_of(agent, message_dicts)
        reply = await asyncio.to_thread(self.source.reply_for, key)
        if reply is None:
            raise self._mismatch(message_dicts, key)
        aux = appender.auxiliary_field_collector
        for name, value in reply.message.as_kwargs().items():
            if name not in ("content", "content_template"):
                aux[name] = value
        aux["request_key"] = key
        response_format = agent.response_format
        parsed = aux.get("parsed")
        if parsed is not None and is_pydantic_model_class(response_format):
            aux[PARSED_OBJECT_KEY] = response_format.model_validate(_plain(thaw(parsed)))
        keep_timing = self.source.keep_timing or os.environ.get("MINIAGENTS_NB_REPLAY_TIMING", "").strip().lower() in (
            "1",
            "true",
            "yes",
            "on",
        )
        tokens = reply.tokens if agent.stream else ("".join(reply.tokens),) if reply.tokens else ()
        delays = reply.delays if agent.stream else (sum(reply.delays),)
        append = appender.append
        for number, token in enumerate(tokens):
            if keep_timing and delays[number] > 0:
                await _sleep(delays[number])
            elif number and agent.stream:
                await _sleep(0)  # a task switch: consumers see every token, as from a provider
            append(token)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items() if key != "class_"}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
