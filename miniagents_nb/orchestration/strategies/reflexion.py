"""The reflexion strategy: an actor runs commands; when it seems stuck, a reflector diagnoses the attempt and
writes a new plan, which the actor's prompt then shows.

Agents: `actor` (every accepted turn is an environment step) and `reflector` (an internal hop that runs first in
a step, then hands over to the actor). The transition asks `needs_reflection(state)` after each of the actor's
actions; reflection is due when

1. the environment reported a failure: a negative reward, or `state["evaluation"]["error_occurred"]` set by the
   environment loop (tinysmith read this flag but nothing ever set it);
2. only one action is left before `state.max_steps` (skipped when there is no limit; tinysmith crashed);
3. the actor repeated its previous command exactly;
4. the actor's commands were near-duplicates of the previous ones `SIMILAR_COMMANDS_BEFORE_REFLECTION` times
   since the last reflection (tinysmith never reset this count).

Fixed compared with tinysmith: the reflections reach the actor's prompt directly (tinysmith's actor saw them only
through a long-term memory module, and without it they were written and never used); the transcript module is
shared by both agents, so the observation of a step with a reflection is not lost; steps are counted by the
orchestrator, so a rejected reply no longer skips a step number.
"""

from __future__ import annotations

import logging
from typing import Any

from miniagents_nb.agents import MiniAgent
from miniagents_nb.ext.llms.messages import LLMMessage, SystemMessage, UserMessage
from miniagents_nb.orchestration.adapters import LLMAdapter
from miniagents_nb.orchestration.agent import Agent
from miniagents_nb.orchestration.errors import ResponseParseError, UnknownAgentError
from miniagents_nb.orchestration.modules import ListMemory
from miniagents_nb.orchestration.orchestrator import Orchestrator
from miniagents_nb.orchestration.parsing import parse_command
from miniagents_nb.orchestration.prompting import PromptEngineer
from miniagents_nb.orchestration.state import DEFAULT_MAX_ERRORS, INITIAL_AGENT_NAME, State, signal_error
from miniagents_nb.orchestration.strategies._common import (
    SHELL_RULES,
    SUBMIT_BY_COMMAND,
    knowledge_section,
    memory_text,
    task_text,
)
from miniagents_nb.orchestration.strategies.single_agent import COMMAND_FORMAT, parse_error_messages

__all__ = [
    "ACTOR",
    "EVALUATION",
    "REFLECTOR",
    "SIMILARITY_THRESHOLD",
    "SIMILAR_COMMANDS_BEFORE_REFLECTION",
    "TRAJECTORY_KEY",
    "ActorPromptEngineer",
    "ReflectorPromptEngineer",
    "build_reflexion",
    "command_distance",
    "needs_reflection",
    "reflexion",
]

logger = logging.getLogger("tinysmith.strategies.reflexion")

ACTOR = "actor"
REFLECTOR = "reflector"
EVALUATION = "evaluation"
"""The namespace of the evaluator: `last_command`, `current_command`, `num_similar`, `error_occurred`, `reason`."""
TRAJECTORY_KEY = "reflexion_trajectory"
"""Where the transcript module publishes the attempt so far."""
LONG_TERM_KEY = "reflexion_longterm"
"""Where a long-term memory module may publish what was learned in earlier episodes (shown to the actor)."""
SIMILARITY_THRESHOLD = 0.2
"""Commands closer than this (normalised edit distance) count as near-duplicates."""
SIMILAR_COMMANDS_BEFORE_REFLECTION = 3
REFLECTIONS_SHOWN = 3
"""How many of the latest reflections the actor's prompt shows."""
NEW_PLAN_MARKER = "new plan:"


def command_distance(first: str, second: str) -> float:
    """Levenshtein distance between two commands divided by the longer length: 0 equal, 1 nothing in common."""
    if first == second:
        return 0.0
    if not first or not second:
        return 1.0
    previous = list(range(len(second) + 1))
    for i, char_a in enumerate(first, 1):
        current = [i]
        for j, char_b in enumerate(second, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1] / max(len(first), len(second))


def _evaluation(state: State) -> dict[str, Any]:
    evaluation = state.namespace(EVALUATION)
    evaluation.setdefault("num_similar", 0)
    evaluation.setdefault("error_occurred", False)
    return evaluation


def needs_reflection(state: State) -> bool:
    """Whether the actor should stop and reflect before its next action (the reason goes to
    `state["evaluation"]["reason"]`)."""
    evaluation = _evaluation(state)
    current, last = evaluation.get("current_command"), evaluation.get("last_command")
    reason: str | None = None
    if evaluation["error_occurred"] or (state.reward is not None and state.reward < 0):
        reason = "the environment reported a failure"
    elif state.max_steps is not None and state.max_steps > 1 and state.env_steps == state.max_steps - 1:
        reason = "only one action is left"
    elif isinstance(current, str) and isinstance(last, str):
        distance = command_distance(current, last)
        if distance == 0:
            reason = "the same command was run twice in a row"
        elif distance < SIMILARITY_THRESHOLD:
            evaluation["num_similar"] += 1
            if evaluation["num_similar"] >= SIMILAR_COMMANDS_BEFORE_REFLECTION:
                reason = "the last commands were nearly identical"
    if reason is None:
        return False
    evaluation["reason"] = reason
    logger.info("Reflection needed: %s", reason)
    return True


def reflexion(observation: str | None, state: State) -> None:
    """Choose between the actor and the reflector (see the module's docstring)."""
    name = state.get_agent_name()
    if name == INITIAL_AGENT_NAME or name == REFLECTOR:
        state.set_agent_name(ACTOR)
    elif name == ACTOR:
        state.set_agent_name(REFLECTOR if needs_reflection(state) else ACTOR)
    else:
        raise UnknownAgentError(f"reflexion does not know agent {name!r}: its agents are {ACTOR!r} and {REFLECTOR!r}.")


def _reflections(state: State) -> list[str]:
    reflector: Any = state.get(REFLECTOR)
    reflections = reflector.get("reflections") if isinstance(reflector, dict) else None
    return list(reflections or [])


class ActorPromptEngineer(PromptEngineer):
    """Like the single agent, plus the latest reflections (and a long-term memory, if a module publishes one)."""

    def render_prompt(self, obs: str | None, history: list[LLMMessage], state: State) -> None:
        """System: rules, answer format, lessons; user: the task and the attempt so far."""
        history.clear()
        system = (
            "You solve a task by running shell commands, one per reply, until you can submit the answer.\n\n"
            f"{SHELL_RULES}{SUBMIT_BY_COMMAND}{knowledge_section(state)}\n\n{COMMAND_FORMAT}"
        )
        long_term = memory_text(state, LONG_TERM_KEY)
        if long_term:
            system += f"\n\nWhat you remember from earlier attempts:\n{long_term}"
        reflections = _reflections(state)[-REFLECTIONS_SHOWN:]
        if reflections:
            lessons = "\n\n".join(reflections)
            system += f"\n\nYou stopped to reflect on this attempt. Follow your latest plan:\n{lessons}"
        transcript = memory_text(state, TRAJECTORY_KEY)
        progress = (
            f"Commands run so far and what they printed:\n{transcript}\n\nWhat is the next command?"
            if transcript
            else "Nothing has been run yet. Start by looking at the files, e.g. with `ls -la`."
        )
        history.extend([SystemMessage(content=system), UserMessage(content=f"Task: {task_text(state)}\n\n{progress}")])

    def process_response(self, obs: str | None, response: str, history: list[LLMMessage], state: State) -> str | None:
        """The command (an environment action), remembered for the evaluator; or a rejection."""
        try:
            command = parse_command(response)
        except ResponseParseError as error:
            signal_error(state, *parse_error_messages(ACTOR, error))
            return None
        evaluation = _evaluation(state)
        evaluation["last_command"] = evaluation.get("current_command")
        evaluation["current_command"] = command
        state.set_is_envstep(True)
        return command


class ReflectorPromptEngineer(PromptEngineer):
    """Asks for a diagnosis of the attempt and a short new plan, which the actor's prompt will show."""

    def render_prompt(self, obs: str | None, history: list[LLMMessage], state: State) -> None:
        """System: how to reflect; user: the task, the attempt so far, why reflection is due."""
        history.clear()
        system = (
            "You review an attempt at a task that has not succeeded yet. Do not summarise the attempt. Find the "
            "mistake in its strategy (for example: it keeps repeating a command, it ignores a clue in the output, "
            "it found the answer but never submitted it) and write a short new plan that names concrete next "
            "commands. Start your answer with `New plan:`."
        )
        transcript = memory_text(state, TRAJECTORY_KEY) or "(no commands yet)"
        reason = _evaluation(state).get("reason") or "the attempt is not making progress"
        history.extend(
            [
                SystemMessage(content=system),
                UserMessage(
                    content=f"Task: {task_text(state)}\n\nThe attempt so far:\n{transcript}\n\nStatus: not solved ({reason})."
                ),
            ]
        )

    def process_response(self, obs: str | None, response: str, history: list[LLMMessage], state: State) -> str | None:
        """Keep the reflection (from `New plan:` on) and clear the evaluator's counters."""
        start = response.lower().find(NEW_PLAN_MARKER)
        if start < 0:
            signal_error(
                state,
                f"[{REFLECTOR}] the reflection has no `New plan:`",
                "Your answer must contain a new plan that starts with `New plan:`. Answer again.",
            )
            return None
        reflection = response[start:].strip()
        reflector = state.namespace(REFLECTOR)
        reflector.setdefault("reflections", []).append(reflection)
        reflector["reflection"] = reflection
        evaluation = _evaluation(state)
        evaluation.update(num_similar=0, error_occurred=False, last_command=None)
        logger.info("Reflection: %s", reflection)
        return reflection


def build_reflexion(
    llm: LLMAdapter | MiniAgent,
    task: str,
    *,
    reflector_llm: LLMAdapter | MiniAgent | None = None,
    max_errors: int = DEFAULT_MAX_ERRORS,
    max_steps: int | None = None,
    trajectory: ListMemory | None = None,
) -> Orchestrator:
    """A ready reflexion orchestrator for `task`; both agents share one transcript module."""
    trajectory = trajectory if trajectory is not None else ListMemory(TRAJECTORY_KEY)
    state = State(max_errors=max_errors, max_steps=max_steps)
    state.set("task", task)
    agents = [
        Agent(ACTOR, ActorPromptEngineer(), llm, [trajectory]),
        Agent(REFLECTOR, ReflectorPromptEngineer(), reflector_llm or llm, [trajectory]),
    ]
    return Orchestrator(agents, reflexion, state, name="reflexion_strategy")
