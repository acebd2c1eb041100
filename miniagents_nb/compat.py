"""The seed-era names: every older spelling this package keeps working, in one place.

The documents the product was created from (four versions of the MiniAgents README and its tutorial) use names that
upstream MiniAgents renamed later: `inquire` for `trigger`, `start_asap` for `start_soon`, `as_single_promise` for
`as_single_text_promise`, `miniagents.promising.sentinels.AWAIT`, `miniagents.utils.adialog_loop`, ... Every example
of those documents must still run, so each old name stays, as an alias of the current one.

This module is the one place that defines them. It sits below the whole package (it imports only the standard
library), so the core classes take their old method names from the mixins here, and the old *module paths* that point
into higher layers (`promising.sentinels.AWAIT` is `agent_chain`'s marker) resolve them late, by name, with
`lazy_attributes`: the lower layer never imports the higher one. `SEED_ERA_NAMES` is the table that
`docs/architecture.md` shows; a test keeps the two in step and checks that every entry resolves.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

__all__ = [
    "SEED_ERA_NAMES",
    "SeedEraAgentMethods",
    "SeedEraContextNames",
    "SeedEraName",
    "SeedEraSequenceMethods",
    "lazy_attributes",
    "resolve",
    "take_start_asap",
]

_R_co = TypeVar("_R_co", covariant=True)
_T = TypeVar("_T")


@dataclass(frozen=True)
class SeedEraName:
    """One older spelling: what the seeds write, what it is now, and where the seeds use it."""

    old: str
    """The spelling of the seeds (`Class.method`, `Class(keyword=)`, `module.path.name`)."""
    current: str
    """What it stands for now (a dotted path that `resolve` can import, or `Class.member`)."""
    seeds: str
    """Which seed documents use it."""


SEED_ERA_NAMES: tuple[SeedEraName, ...] = (
    SeedEraName("MiniAgent.inquire", "MiniAgent.trigger", "READMEs v1, v2"),
    SeedEraName("MiniAgent.initiate_inquiry", "MiniAgent.initiate_call", "README v2"),
    SeedEraName("MiniAgent.inquire(start_asap=)", "MiniAgent.trigger(start_soon=)", "READMEs v1, v2"),
    SeedEraName("MiniAgent.trigger(start_asap=)", "MiniAgent.trigger(start_soon=)", "READMEs v1, v2 (prose)"),
    SeedEraName("MiniAgents(start_everything_asap_by_default=)", "MiniAgents(start_everything_soon_by_default=)", "v1"),
    SeedEraName("MiniAgents.start_everything_asap_by_default", "MiniAgents.start_everything_soon_by_default", "v1"),
    SeedEraName("MessageSequencePromise.as_single_promise", "MessageSequencePromise.as_single_text_promise", "v1, v2"),
    SeedEraName(
        "miniagents_nb.utils.as_single_promise", "miniagents_nb.messages.as_single_text_promise", "READMEs v1, v2"
    ),
    SeedEraName("miniagents_nb.promising.sentinels.AWAIT", "miniagents_nb.ext.AWAIT", "READMEs v1, v2"),
    SeedEraName("miniagents_nb.promising.sentinels.CLEAR", "miniagents_nb.ext.CLEAR", "README v2 (agent_loop)"),
    SeedEraName("miniagents_nb.utils.adialog_loop", "miniagents_nb.ext.agents.aggregator_agents.adialog_loop", "early"),
    SeedEraName("miniagents_nb.utils.achain_loop", "miniagents_nb.ext.agents.aggregator_agents.achain_loop", "early"),
    SeedEraName(
        "miniagents_nb.ext.console_user_agent.create_console_user_agent",
        "miniagents_nb.ext.console_user_agent.create_console_user_agent",
        "early README",
    ),
    SeedEraName("miniagents_nb.ext.llm.openai.create_openai_agent", "miniagents_nb.ext.llms.OpenAIAgent", "early"),
    SeedEraName("miniagents_nb.ext.llm.openai.openai_agent", "miniagents_nb.ext.llms.OpenAIAgent", "READMEs v1, v2"),
    SeedEraName(
        "miniagents_nb.ext.llm.anthropic.anthropic_agent", "miniagents_nb.ext.llms.AnthropicAgent", "READMEs v1, v2"
    ),
    SeedEraName("miniagents_nb.ext.llm.UserMessage", "miniagents_nb.messages.UserMessage", "READMEs v1, v2"),
    SeedEraName("miniagents_nb.ext.llm.SystemMessage", "miniagents_nb.messages.SystemMessage", "READMEs v1, v2"),
    SeedEraName("miniagents_nb.ext.llm.AssistantMessage", "miniagents_nb.messages.AssistantMessage", "v1, v2"),
    SeedEraName("miniagents_nb.ext.console_echo_agent", "miniagents_nb.ext.console_output_agent", "READMEs v1, v2"),
    SeedEraName("miniagents_nb.ext.console_prompt_agent", "miniagents_nb.ext.console_input_agent", "READMEs v1, v2"),
    SeedEraName("miniagents_nb.ext.ChatHistory", "miniagents_nb.ext.agents.history_agents.ChatHistory", "early"),
    SeedEraName(
        "miniagents_nb.ext.InMemoryChatHistory", "miniagents_nb.ext.agents.history_agents.InMemoryChatHistory", "early"
    ),
    SeedEraName(
        "miniagents_nb.ext.notebook_user_agent", "miniagents_nb.jupyter.notebook_user_agent", "(this package, 0.1)"
    ),
)
"""Every older spelling, in the order of `docs/architecture.md`'s table."""


def resolve(path: str) -> Any:
    """The object at a dotted path (`package.module.name`), importing the longest importable module prefix."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for name in parts[split:]:
            target = getattr(target, name)
        return target
    raise ModuleNotFoundError(f"No module of {path!r} can be imported.")


def lazy_attributes(module_name: str, targets: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` serving `targets` (attribute -> dotted path), imported on first access.

    This is how a seed path in a lower layer names an object of a higher one without importing it: the import
    happens when a user asks for the name, never when the lower module loads.
    """

    def __getattr__(name: str) -> Any:
        target = targets.get(name)
        if target is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        return resolve(target)

    return __getattr__


def take_start_asap(kwargs: dict[str, Any], start_soon: _T, unset: object) -> _T | Any:
    """`start_soon` for a call whose keyword arguments may hold the seeds' `start_asap=` (taken out of them).

    An explicit `start_soon` wins over `start_asap`; `unset` is the caller's "not given" marker.
    """
    start_asap = kwargs.pop("start_asap", unset)
    return start_asap if start_soon is unset else start_soon


class _Triggerable(Protocol[_R_co]):
    def trigger(self, messages: Any = None, **kwargs: Any) -> _R_co: ...


class _CallInitiator(Protocol[_R_co]):
    def initiate_call(self, **kwargs: Any) -> _R_co: ...


class _TextJoiner(Protocol[_R_co]):
    def as_single_text_promise(self, **kwargs: Any) -> _R_co: ...


class _SoonByDefault(Protocol):
    start_everything_soon_by_default: bool


class SeedEraAgentMethods:
    """`inquire` / `initiate_inquiry` on agents (READMEs v1 and v2)."""

    __slots__ = ()

    def inquire(self: _Triggerable[_R_co], messages: Any = None, **kwargs: Any) -> _R_co:
        """The older name of `trigger` (`start_asap=` included)."""
        return self.trigger(messages, **kwargs)

    def initiate_inquiry(self: _CallInitiator[_R_co], **kwargs: Any) -> _R_co:
        """The older name of `initiate_call`."""
        return self.initiate_call(**kwargs)


class SeedEraSequenceMethods:
    """`as_single_promise` on message sequences (READMEs v1 and v2)."""

    __slots__ = ()

    def as_single_promise(self: _TextJoiner[_R_co], **kwargs: Any) -> _R_co:
        """The older name of `as_single_text_promise`."""
        return self.as_single_text_promise(**kwargs)


class SeedEraContextNames:
    """`start_everything_asap_by_default` on the `MiniAgents` context (README v1)."""

    __slots__ = ()

    @property
    def start_everything_asap_by_default(self: _SoonByDefault) -> bool:
        """The older name of `start_everything_soon_by_default`."""
        return self.start_everything_soon_by_default
