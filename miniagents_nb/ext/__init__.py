"""Pre-packaged agents. Importing this package has no side effects (no prompt session, no output)."""

from __future__ import annotations

from miniagents_nb.ext.agents.aggregator_agents import agent_chain, agent_loop
from miniagents_nb.promising.sentinels import AWAIT, CLEAR
from miniagents_nb.utils import join_messages, split_messages

__all__ = ["AWAIT", "CLEAR", "agent_chain", "agent_loop", "join_messages", "split_messages"]
