"""`MiniAgent` and `@miniagent`: an agent is a configured async function (or class) with an alias.

`MiniAgent` is an `AgentDefinition` (configuration and forks, see `miniagents_nb.agents.definition`) that can be
called: `trigger` and `initiate_call` make an `AgentCall` (see `miniagents_nb.agents.call`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, overload

from miniagents_nb.agents.call import AgentCall
from miniagents_nb.agents.definition import AgentDefinition
from miniagents_nb.compat import SeedEraAgentMethods, take_start_asap
from miniagents_nb.messages import MessageSequencePromise, MessageType, freeze_message_item
from miniagents_nb.promising.ext.frozen import Frozen, freeze_kwargs
from miniagents_nb.promising.sentinels import NO_VALUE, Sentinel

__all__ = ["MiniAgent", "miniagent"]

_NO_KWARGS: dict[str, Any] = {}  # the arguments of a call given none: one dict, never changed (read only)


class MiniAgent(AgentDefinition, SeedEraAgentMethods):
    """An agent: a configured async function with an alias. Agents are immutable; `fork()` makes variants."""

    # Spelled out (not inherited) so that type checkers see this constructor rather than one made of the fields.
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
        super().__init__(
            func_or_class,
            alias=alias,
            description=description,
            normalize_func_or_class_name=normalize_func_or_class_name,
            normalize_spaces_in_docstring=normalize_spaces_in_docstring,
            await_reply_persistence=await_reply_persistence,
            interaction_metadata=interaction_metadata,
            non_freezable_kwargs=non_freezable_kwargs,
            **kwargs_to_freeze,
        )

    # --- calling -------------------------------------------------------------------------------------------------

    def trigger(
        self,
        messages: MessageType | None = None,
        *,
        start_soon: bool | Sentinel = NO_VALUE,
        errors_as_messages: bool | Sentinel = NO_VALUE,
        **kwargs_to_freeze: Any,
    ) -> MessageSequencePromise:
        """Call the agent with `messages` (any nesting; None for no input) and return its reply sequence at once.

        Everything is checked and frozen here, before anything is scheduled: bad input raises now and the agent
        never runs.
        """
        if kwargs_to_freeze:
            start_soon = take_start_asap(kwargs_to_freeze, start_soon, NO_VALUE)
        frozen_messages = None if messages is None else freeze_message_item(messages)
        call = AgentCall(
            self,
            freeze_kwargs(kwargs_to_freeze, f"the arguments of agent {self.alias}") if kwargs_to_freeze else _NO_KWARGS,
            start_soon,
            errors_as_messages,
            register=False,
            input_messages=frozen_messages,
        )
        return call.reply_sequence()

    def initiate_call(
        self,
        *,
        start_soon: bool | Sentinel = NO_VALUE,
        errors_as_messages: bool | Sentinel = NO_VALUE,
        **kwargs_to_freeze: Any,
    ) -> AgentCall:
        """Open a call whose input you send over time (`send_message`), then read `reply_sequence()`."""
        if kwargs_to_freeze:
            start_soon = take_start_asap(kwargs_to_freeze, start_soon, NO_VALUE)
        return AgentCall(
            self,
            freeze_kwargs(kwargs_to_freeze, f"the arguments of agent {self.alias}") if kwargs_to_freeze else _NO_KWARGS,
            start_soon,
            errors_as_messages,
            register=True,
        )


@overload
def miniagent(
    func_or_class: None = None,
    /,
    *,
    alias: str | None = None,
    description: str | None = None,
    normalize_func_or_class_name: bool = True,
    normalize_spaces_in_docstring: bool = True,
    await_reply_persistence: bool | Sentinel = NO_VALUE,
    interaction_metadata: dict[str, Any] | None = None,
    non_freezable_kwargs: dict[str, Any] | None = None,
    **kwargs_to_freeze: Any,
) -> Callable[[Any], MiniAgent]: ...
@overload
def miniagent(
    func_or_class: Any,
    /,
    *,
    alias: str | None = None,
    description: str | None = None,
    normalize_func_or_class_name: bool = True,
    normalize_spaces_in_docstring: bool = True,
    await_reply_persistence: bool | Sentinel = NO_VALUE,
    interaction_metadata: dict[str, Any] | None = None,
    non_freezable_kwargs: dict[str, Any] | None = None,
    **kwargs_to_freeze: Any,
) -> MiniAgent: ...
def miniagent(func_or_class: Any = None, /, **options: Any) -> MiniAgent | Callable[[Any], MiniAgent]:
    """Turn an async function (or a class with an async `__call__`) into an agent; usable bare or with options."""
    if func_or_class is None:
        return lambda target: MiniAgent(target, **options)
    return MiniAgent(func_or_class, **options)
