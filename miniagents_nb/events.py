"""The observation API's public path: events of agent calls and their messages (defined in `agents.events`, next
to the calls that emit them). See that module, and docs/architecture.md, for what each event carries."""

from __future__ import annotations

from miniagents_nb.agents.events import (
    AgentCallCancelled,
    AgentCallEvent,
    AgentCallFailed,
    AgentCallFinished,
    AgentCallQueued,
    AgentCallStarted,
    AgentCallStatus,
    MessageReplied,
    MiniAgentsEvent,
    ObservedCall,
    Observer,
    from_wall_clock,
    wall_clock,
)

__all__ = [
    "AgentCallCancelled",
    "AgentCallEvent",
    "AgentCallFailed",
    "AgentCallFinished",
    "AgentCallQueued",
    "AgentCallStarted",
    "AgentCallStatus",
    "MessageReplied",
    "MiniAgentsEvent",
    "ObservedCall",
    "Observer",
    "from_wall_clock",
    "wall_clock",
]
