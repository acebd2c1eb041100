"""The messages of an orchestrated episode.

The chat roles (`UserMessage`, `SystemMessage`, `AssistantMessage`) are the LLM agents' own, so a history goes to
an LLM agent as it is. The other classes are what the orchestrator's agent calls exchange, so that the notebook
views show a strategy running: the orchestrator gets an `ObservationMessage` and replies with each turn's reply
and `TurnResult`, then the `ActionMessage`; an agent's turn gets a `TurnRequest`.
"""

from __future__ import annotations

from miniagents_nb.ext.llms.messages import AssistantMessage, LLMMessage, SystemMessage, UserMessage
from miniagents_nb.messages import TextMessage

__all__ = [
    "ActionMessage",
    "AssistantMessage",
    "LLMMessage",
    "ObservationMessage",
    "SystemMessage",
    "TurnRequest",
    "TurnResult",
    "UserMessage",
]


class ObservationMessage(TextMessage):
    """What the environment reported; the input of one orchestrator step (`content` is the observation)."""

    observation: str | None = None
    reward: float | None = None
    step: int


class TurnRequest(TextMessage):
    """The input of one agent turn: the observation on the first hop of a step (None on later hops) and, on a
    retry, the correction the agent is given (`content` is whichever of the two applies)."""

    agent_name: str
    step: int
    attempt: int
    observation: str | None = None
    improve_message: str | None = None
    note: str | None = None


class TurnResult(TextMessage):
    """The outcome of one agent turn (`content` is the agent's output)."""

    agent_name: str
    step: int
    attempt: int
    output: str | None = None
    env_step: bool = False
    accepted: bool = True
    error_log: str | None = None
    state_changes: tuple[tuple[str, str], ...] = ()


class ActionMessage(TextMessage):
    """The action an orchestrator step returns to the environment (`content`)."""

    agent_name: str
    step: int
