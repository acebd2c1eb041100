"""The errors of LLM tool calling: a tool that cannot be defined, a call the tool cannot take, a loop that ran out.

They live apart from `LLMError` because they are not the provider's failures: a bad tool definition is the
programmer's (raised at definition, before any call), and a bad call is the model's (returned to it as an error
result by default, so that it can try again).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from miniagents_nb.errors import MiniAgentsError
from miniagents_nb.promising.ext.frozen import Frozen

__all__ = [
    "ToolArgumentsError",
    "ToolDefinitionError",
    "ToolError",
    "ToolLoopLimitError",
    "ToolNotFoundError",
    "ToolTimeoutError",
]


class ToolError(MiniAgentsError):
    """Tool calling went wrong (see the subclasses)."""


class ToolDefinitionError(ToolError, ValueError):
    """A function or agent cannot be a tool (no type hints, a type with no JSON schema, a duplicate name, ...)."""


class _ToolCallError(ToolError):
    """A call the model made that no tool can take; `tool_name` is the name the model used."""

    def __init__(self, message: str, *, tool_name: str) -> None:
        super().__init__(message)
        self.tool_name = tool_name

    def __reduce__(self) -> tuple[Any, ...]:  # (pickled across processes, e.g. to a Ray worker and back)
        return (_rebuild_tool_call_error, (type(self), str(self), self.tool_name))


def _rebuild_tool_call_error(cls: type[_ToolCallError], message: str, tool_name: str) -> _ToolCallError:
    return cls(message, tool_name=tool_name)


class ToolArgumentsError(_ToolCallError, ValueError):
    """The model called a tool with arguments that are not JSON or do not fit the tool's schema (`tool_name` says
    which tool); by default the message goes back to the model as an error result."""


class ToolNotFoundError(_ToolCallError, LookupError):
    """The model called a tool that the LLM call does not have (`tool_name` says which name it used); by default
    the message goes back to the model as an error result."""


class ToolTimeoutError(ToolError, TimeoutError):
    """A tool ran longer than its `timeout`."""


class ToolLoopLimitError(ToolError):
    """The model still asked for tools after `max_turns` requests; `turns` holds the exchange so far (what the final
    message's `tool_turns` would have been): frozen, like a message's fields, so that code catching the error reads
    it the same way (`turns[0].tool_calls[0].name`) and cannot change what the error reports."""

    def __init__(self, message: str, *, turns: Iterable[Any] = ()) -> None:
        super().__init__(message)
        self.turns: tuple[Frozen, ...] = tuple(turn if isinstance(turn, Frozen) else Frozen(**turn) for turn in turns)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_limit_error, (str(self), self.turns))


def _rebuild_limit_error(message: str, turns: tuple[Any, ...]) -> ToolLoopLimitError:
    return ToolLoopLimitError(message, turns=turns)
