"""`AgentDefinition`: what an agent is (function, alias, description, frozen arguments), without the means to call it.

Calls, events, interaction contexts and persisted nodes all name the agent they belong to; they name it by this
class, so that `MiniAgent` (which adds `trigger` and `initiate_call`, see `miniagents_nb.agents.agent`) can sit
above `AgentCall` and every module of the agent core imports in one direction only, annotations included.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

from pydantic import Field
from typing_extensions import Self

from miniagents_nb.errors import AgentDefinitionError
from miniagents_nb.promising.ext.frozen import Frozen, freeze_kwargs, frozen_from_mapping
from miniagents_nb.promising.sentinels import NO_VALUE, Sentinel

__all__ = ["AgentDefinition", "AgentFunction", "normalize_alias"]

AgentFunction = Callable[..., Awaitable[None]]
"""`async def agent(ctx: InteractionContext, **kwargs) -> None`."""

_ALIAS_WORDS = re.compile(r"[A-Z][a-z]+?(?=[A-Z]+$)|.+?(?=[A-Z][a-z]|$)")


def normalize_alias(name: str) -> str:
    """`CamelCaseAgent` -> `CAMEL_CASE_AGENT`, `my_agent` -> `MY_AGENT` (upstream's rule, acronyms kept whole)."""
    return "_".join(_ALIAS_WORDS.findall(name)).upper()


def _check_agent_callable(func_or_class: Any) -> None:
    if not callable(func_or_class):
        raise AgentDefinitionError(
            f"A `@miniagent` decorated type must be a callable, got {type(func_or_class).__name__}: "
            "decorate an `async def` function or a class with an `async def __call__`."
        )
    target = func_or_class.__call__ if inspect.isclass(func_or_class) else func_or_class
    if not inspect.iscoroutinefunction(target) and not inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - callable objects with an async __call__
    ):
        raise AgentDefinitionError(
            f"A `@miniagent` decorated class or function must be async: "
            f"`{getattr(func_or_class, '__name__', func_or_class)}` is not; define it with `async def`."
        )


class AgentDefinition(Frozen):
    """An agent's configuration: immutable; `fork()` makes variants. Every agent is a `MiniAgent`, its subclass."""

    alias: str
    description: str | None = Field(default=None, exclude=True)
    interaction_metadata: Frozen = Field(default_factory=lambda: Frozen(), exclude=True)

    # The runtime configuration below is kept in plain instance attributes (set in `__init__`), not pydantic private
    # attributes: those are read through `BaseModel.__getattr__`, which is slow on the per-call path.

    def __init__(
        self,
        func_or_class: Any,
        *,
        alias: str | None = None,
        description: str | None = None,
        normalize_func_or_class_name: bool = True,
        normalize_spaces_in_docstring: bool = True,
        await_reply_persistence: bool | Sentinel = NO_VALUE,
        interaction_metadata: dict[str, Any] | Frozen | None = None,
        non_freezable_kwargs: dict[str, Any] | None = None,
        **kwargs_to_freeze: Any,
    ) -> None:
        _check_agent_callable(func_or_class)
        if alias is None:
            alias = getattr(func_or_class, "__name__", type(func_or_class).__name__)
            if normalize_func_or_class_name:
                alias = normalize_alias(alias)
        template = description if description is not None else inspect.getdoc(func_or_class)
        if template and normalize_spaces_in_docstring:
            template = " ".join(template.split())
        if interaction_metadata is None:
            metadata = Frozen()
        elif isinstance(interaction_metadata, Frozen):
            metadata = interaction_metadata
        else:
            metadata = frozen_from_mapping(interaction_metadata, f"the interaction metadata of {alias}", "metadata")
        super().__init__(
            alias=alias,
            description=template.replace("{AGENT_ALIAS}", alias) if template else None,
            interaction_metadata=metadata,
        )
        self._func: Any = func_or_class
        self._frozen_kwargs: dict[str, Any] = freeze_kwargs(kwargs_to_freeze, f"the arguments of agent {alias}")
        self._non_freezable_kwargs: dict[str, Any] = dict(non_freezable_kwargs or {})
        self._description_template: str | None = template
        self._normalize_name: bool = normalize_func_or_class_name
        self._await_reply_persistence: bool | Sentinel = await_reply_persistence
        self._event_clock: Callable[[], float] | None = None
        object.__setattr__(self, "__name__", alias)
        object.__setattr__(self, "__doc__", self.description)

    @property
    def wrapped_func_or_class(self) -> Any:
        """The function or class this agent runs."""
        return self._func

    @property
    def frozen_kwargs(self) -> Mapping[str, Any]:
        """The (frozen) keyword arguments every call of this agent gets, as given to `@miniagent` or `fork()`."""
        return MappingProxyType(self._frozen_kwargs)

    @property
    def non_freezable_kwargs(self) -> Mapping[str, Any]:
        """The keyword arguments passed by reference (clients, streams, callbacks), never frozen or persisted."""
        return MappingProxyType(self._non_freezable_kwargs)

    @property
    def await_reply_persistence(self) -> bool | None:
        """This agent's own `await_reply_persistence` (None: the context's setting applies)."""
        value = self._await_reply_persistence
        return None if value is NO_VALUE else bool(value)

    def fork(
        self,
        alias: str | None = None,
        description: str | None = None,
        *,
        interaction_metadata: dict[str, Any] | Frozen | None = None,
        non_freezable_kwargs: dict[str, Any] | None = None,
        **kwargs_to_freeze: Any,
    ) -> Self:
        """A variant of this agent: same function, merged configuration (the new values win)."""
        metadata = self.interaction_metadata.as_kwargs()
        if interaction_metadata is not None:
            metadata.update(
                dict(interaction_metadata) if isinstance(interaction_metadata, Frozen) else interaction_metadata
            )
            metadata.pop("class_", None)
        forked = type(self)(  # subclasses (e.g. LLM agents) fork into their own kind
            self._func,
            alias=alias if alias is not None else self.alias,
            description=description if description is not None else self._description_template,
            normalize_func_or_class_name=self._normalize_name,
            normalize_spaces_in_docstring=False,
            await_reply_persistence=self._await_reply_persistence,
            interaction_metadata=metadata,
            non_freezable_kwargs={**self._non_freezable_kwargs, **(non_freezable_kwargs or {})},
        )
        forked._frozen_kwargs = {
            **self._frozen_kwargs,
            **freeze_kwargs(kwargs_to_freeze, f"the arguments of agent {forked.alias}"),
        }
        forked._event_clock = self._event_clock
        return forked

    def with_event_clock(self, clock: Callable[[], float] | None) -> Self:
        """A fork of this agent whose calls read the moments of their events from `clock` (None: the real one).

        For calls that stand for work done elsewhere (`miniagents_nb.ext.ray` mirrors the calls made in a worker
        this way): the events they emit, and so the views and the run store, say when that work really happened,
        not when the news of it arrived. `clock()` returns seconds on the `time.monotonic()` scale; a call reads it
        once per event (made, started, each reply, ended), in that order, at the moment the event is emitted.
        """
        forked = AgentDefinition.fork(self)  # the plain fork: a subclass's own `fork` may add arguments back
        forked._event_clock = clock
        return forked

    @property
    def event_clock(self) -> Callable[[], float] | None:
        """Where this agent's calls read the moments of their events (None: `time.monotonic`)."""
        return self._event_clock

    def without_non_freezable_kwargs(self, *names: str) -> Self:
        """A fork of this agent that no longer passes these non-freezable keyword arguments."""
        forked = AgentDefinition.fork(self)  # the plain fork: a subclass's own `fork` may add arguments back
        for name in names:
            forked._non_freezable_kwargs.pop(name, None)
        return forked
