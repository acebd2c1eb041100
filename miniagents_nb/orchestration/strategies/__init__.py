"""Built-in strategies: each a transition function, its prompt engineers, its limits and a `build_*` helper.

- `single_agent`: one agent, one command per turn;
- `planner_reviewer_executor`: plan, review, execute subtask by subtask;
- `reflexion`: an actor and a reflector that steps in when the actor seems stuck.
"""

from __future__ import annotations

from miniagents_nb.orchestration.strategies.planner_reviewer_executor import (
    ExecutorPromptEngineer,
    PlannerPromptEngineer,
    ReviewerPromptEngineer,
    build_planner_reviewer_executor,
    planner_reviewer_executor,
)
from miniagents_nb.orchestration.strategies.reflexion import (
    ActorPromptEngineer,
    ReflectorPromptEngineer,
    build_reflexion,
    needs_reflection,
    reflexion,
)
from miniagents_nb.orchestration.strategies.single_agent import (
    SingleAgentPromptEngineer,
    build_single_agent,
    single_agent,
)

__all__ = [
    "ActorPromptEngineer",
    "ExecutorPromptEngineer",
    "PlannerPromptEngineer",
    "ReflectorPromptEngineer",
    "ReviewerPromptEngineer",
    "SingleAgentPromptEngineer",
    "build_planner_reviewer_executor",
    "build_reflexion",
    "build_single_agent",
    "needs_reflection",
    "planner_reviewer_executor",
    "reflexion",
    "single_agent",
]
