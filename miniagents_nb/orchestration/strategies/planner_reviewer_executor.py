"""The planner / reviewer / executor strategy: plan subtasks, have the plan checked, carry it out step by step.

Agents (the names the transition writes): `planner`, `reviewer`, `executor`. Only the executor acts on the
environment; planning and reviewing are internal hops of a step. The state machine:

    init     -> planner
    planner  -> reviewer
    reviewer -> executor   when it accepts, or when it already rejected `max_rejects` times in a row
    reviewer -> planner    when it rejects
    executor -> executor   after a command or a submission (the environment's answer comes back to it)
    executor -> reviewer   when it finished its subtask and subtasks remain
    executor -> planner    when it finished the last subtask (a new plan is made from what was learned)

Namespaces written: `planner: {plan}`, `reviewer: {status, feedback, num_rejects, max_rejects}`,
`executor: {max_steps, num_steps, status, stdout_hist, current_task}`, `task_list` (finished subtasks with
their summaries) and `interesting_knowledge`. The caller seeds the task (`state.set("task", ...)`) and may seed
`reviewer.max_rejects` and `executor.max_steps` (the executor's command budget per subtask).

Fixed compared with tinysmith: running out of plan goes back to the planner (no `IndexError`); a missing
`max_rejects` means the default, not unlimited rejections; the executor's budget is part of its prompt, the last
command's output is never dropped, and a subtask is never silently closed; reviewer feedback given as plain
strings works; unparsable replies tell the model what exactly was wrong.
"""

from __future__ import annotations

import logging
from typing import Any

from miniagents_nb.agents import MiniAgent
from miniagents_nb.ext.llms.messages import LLMMessage, SystemMessage, UserMessage
from miniagents_nb.orchestration.adapters import LLMAdapter
from miniagents_nb.orchestration.agent import Agent
from miniagents_nb.orchestration.errors import OrchestratorSetupError, ResponseParseError, UnknownAgentError
from miniagents_nb.orchestration.modules import describe_output
from miniagents_nb.orchestration.orchestrator import Orchestrator
from miniagents_nb.orchestration.parsing import parse_json_object, require_keys
from miniagents_nb.orchestration.prompting import PromptEngineer
from miniagents_nb.orchestration.state import DEFAULT_MAX_ERRORS, INITIAL_AGENT_NAME, State, signal_error
from miniagents_nb.orchestration.strategies._common import SHELL_RULES, knowledge_section, task_text

__all__ = [
    "DEFAULT_EXECUTOR_MAX_STEPS",
    "DEFAULT_MAX_REJECTS",
    "EXECUTOR",
    "PLANNER",
    "REVIEWER",
    "SUBMIT_PREFIX",
    "ExecutorPromptEngineer",
    "PlannerPromptEngineer",
    "ReviewerPromptEngineer",
    "build_planner_reviewer_executor",
    "planner_reviewer_executor",
]

logger = logging.getLogger("tinysmith.strategies.planner_reviewer_executor")

PLANNER = "planner"
REVIEWER = "reviewer"
EXECUTOR = "executor"

DEFAULT_MAX_REJECTS = 1
"""Rejections the reviewer gets in a row before the plan is accepted anyway."""
DEFAULT_EXECUTOR_MAX_STEPS = 10
"""Commands the executor may run for one subtask before it must report what it found."""
SUBMIT_PREFIX = "submit "
"""The executor submits an answer as the action `submit <answer>`."""


# --- shared state helpers ---------------------------------------------------------------------------------------


def _plan(state: State) -> list[str]:
    plan = state.namespace(PLANNER).setdefault("plan", [])
    if not isinstance(plan, list):
        raise OrchestratorSetupError(f"state['planner']['plan'] must be a list of subtasks, got {plan!r}.")
    return plan


def _list(state: State, key: str) -> list[Any]:
    value = state.get(key)
    if value is None:
        value = []
        state.set(key, value)
    return value  # type: ignore[no-any-return]


def _executor(state: State) -> dict[str, Any]:
    executor = state.namespace(EXECUTOR)
    if executor.get("max_steps") is None:
        executor["max_steps"] = DEFAULT_EXECUTOR_MAX_STEPS
    executor.setdefault("num_steps", 0)
    executor.setdefault("stdout_hist", [])
    return executor


def _team_context(state: State) -> str:
    parts = [
        "You are part of a small team that solves a task by running shell commands in a sandbox. The work is "
        "split into subtasks: a planner writes the plan, a reviewer checks it, and an executor carries out one "
        "subtask at a time.",
        f"Task: {task_text(state)}",
    ]
    finished = _list(state, "task_list")
    if finished:
        lines = "\n".join(f"{i}. {item['subtask']}: {item['summary']}" for i, item in enumerate(finished, 1))
        parts.append(f"Subtasks finished so far, with what was found:\n{lines}")
    knowledge = _list(state, "interesting_knowledge")
    if knowledge:
        parts.append("Notes collected so far:\n" + "\n".join(f"- {note}" for note in knowledge))
    return "\n\n".join(parts)


def _reject(state: State, agent: str, error: ResponseParseError, shape: str) -> None:
    signal_error(
        state,
        f"[{agent}] unusable reply: {error.reason}",
        f"I could not use your reply: {error.reason}. Reply with JSON only, in this shape: {shape}",
    )


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ResponseParseError(f'"{what}" must be a list of non-empty strings')
    return [item.strip() for item in value]


# --- planner ----------------------------------------------------------------------------------------------------

PLAN_SHAPE = '{"plan": ["first subtask", "second subtask", "...", "submit the answer"]}'


class PlannerPromptEngineer(PromptEngineer):
    """Asks for a plan of subtasks; on a re-plan, shows the reviewer's comments or what the last plan achieved."""

    def render_prompt(self, obs: str | None, history: list[LLMMessage], state: State) -> None:
        """One user message: the team context, the planner's job, the previous round if any, the reply shape."""
        history.clear()
        planner = state.namespace(PLANNER)
        reviewer = state.namespace(REVIEWER)
        role = (
            "Your role: planner. Break the task into a short ordered list of subtasks for your teammates. Each "
            "subtask should take a handful of non-interactive shell commands. Rely on the files of the task; if "
            "nobody has listed them yet, make that the first subtask. The last subtask submits the answer."
        )
        sections = [_team_context(state), role]
        previous = planner.get("plan")
        if reviewer.get("status") == "reject" and previous:
            comments = "\n".join(f"- {step}: {comment}" for step, comment in _feedback_items(reviewer))
            plan_lines = "\n".join(f"{i}. {task}" for i, task in enumerate(previous, 1))
            sections.append(
                f"Your previous plan:\n{plan_lines}\n\nThe reviewer asked for changes; address every comment:\n"
                f"{comments}"
            )
        elif not previous and planner.get("replans"):
            sections.append(
                "Every subtask of the previous plan is finished, yet the task is not solved. Plan the next "
                "subtasks from what the team found."
            )
        sections.append(f"Reply with JSON only, in this shape: {PLAN_SHAPE}")
        history.append(UserMessage(content="\n\n".join(sections)))

    def process_response(self, obs: str | None, response: str, history: list[LLMMessage], state: State) -> str | None:
        """Store the plan (a non-empty list of subtasks) or reject the reply."""
        try:
            data = parse_json_object(response)
            require_keys(data, "plan")
            plan = _strings(data["plan"], "plan")
            if not plan:
                raise ResponseParseError('"plan" is empty; list at least one subtask')
        except ResponseParseError as error:
            _reject(state, PLANNER, error, PLAN_SHAPE)
            return None
        state.namespace(PLANNER)["plan"] = plan
        _list(state, "task_list")
        _list(state, "interesting_knowledge")
        logger.info("Plan: %s", plan)
        return response


# --- reviewer ---------------------------------------------------------------------------------------------------

FEEDBACK_SHAPE = '{"feedback": []} to accept, or {"feedback": [{"step 2": "what to change"}]} to ask for changes'


def _feedback_items(reviewer: dict[str, Any]) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for entry in reviewer.get("feedback") or []:
        if isinstance(entry, dict):
            items.extend((str(step), str(comment)) for step, comment in entry.items())
        else:
            items.append(("general", str(entry)))
    return items


class ReviewerPromptEngineer(PromptEngineer):
    """Asks for a review of the current plan; an empty feedback list accepts it."""

    def render_prompt(self, obs: str | None, history: list[LLMMessage], state: State) -> None:
        """One user message: the team context, the plan, what to check, the reply shape."""
        history.clear()
        plan_lines = "\n".join(f"{i}. {task}" for i, task in enumerate(_plan(state), 1))
        role = (
            "Your role: reviewer. Check the plan below before the team acts on it. Does every subtask bring the "
            "team closer to the answer? Is a step missing? Is a subtask too big (more than about five commands)? "
            "If the way to the answer is already clear, shorter is better; if the team seems stuck, add "
            "exploration."
        )
        history.append(
            UserMessage(
                content=f"{_team_context(state)}\n\n{role}\n\nThe plan:\n{plan_lines}\n\nReply with JSON only: "
                f"{FEEDBACK_SHAPE}"
            )
        )

    def process_response(self, obs: str | None, response: str, history: list[LLMMessage], state: State) -> str | None:
        """Store the verdict: `reject` with the feedback, or `accept` when there is none."""
        try:
            data = parse_json_object(response)
            require_keys(data, "feedback")
            feedback = data["feedback"]
            if not isinstance(feedback, list):
                raise ResponseParseError('"feedback" must be a list')
            normalized: list[dict[str, str]] = []
            for entry in feedback:
                if isinstance(entry, dict) and entry:
                    normalized.extend({str(step): str(comment)} for step, comment in entry.items())
                elif isinstance(entry, str) and entry.strip():
                    normalized.append({"general": entry.strip()})
                else:
                    raise ResponseParseError('every feedback item must be an object like {"step 2": "..."}')
        except ResponseParseError as error:
            _reject(state, REVIEWER, error, FEEDBACK_SHAPE)
            return None
        reviewer = state.namespace(REVIEWER)
        reviewer["feedback"] = normalized
        reviewer["status"] = "reject" if normalized else "accept"
        logger.info("Review: %s %s", reviewer["status"], normalized)
        return response


# --- executor ---------------------------------------------------------------------------------------------------

EXECUTOR_SHAPES = (
    'still working: {"status": "progress", "next": {"explanation": "why this command", "command": "the command"}}'
    ' | subtask finished: {"status": "done", "summary": "what you found", "interesting_knowledge": ["fact", ...]}'
    ' | answer found: {"status": "submit", "flag": "the answer"}'
)


class ExecutorPromptEngineer(PromptEngineer):
    """Works on the first subtask of the plan, one command per turn, until it reports done or submits."""

    def render_prompt(self, obs: str | None, history: list[LLMMessage], state: State) -> None:
        """System: the rules and reply shapes; user: the subtask, its commands so far, the budget left."""
        history.clear()
        executor = _executor(state)
        hist = executor["stdout_hist"]
        if obs is not None and hist and hist[-1][1] is None:  # the environment's answer to the last command
            hist[-1][1] = describe_output(obs)
        plan = _plan(state)
        if not plan:
            raise OrchestratorSetupError(
                "The executor has no subtask: state['planner']['plan'] is empty. Let the transition run the "
                "planner first."
            )
        executor["current_task"] = plan[0]
        system = (
            "You carry out one subtask of a larger task, one shell command per reply.\n\n"
            f'{SHELL_RULES}\n- As soon as you know the answer, reply with the "submit" shape below, even in the middle of a '
            f"subtask.{knowledge_section(state)}\n\n"
            "Reply with JSON only, in one of these shapes:\n" + EXECUTOR_SHAPES.replace(" | ", "\n")
        )
        if hist:
            done = "\n".join(
                f"$ {command}\n{output if output is not None else '(no output yet)'}" for command, output in hist
            )
            progress = f"Commands run for this subtask so far:\n{done}"
        else:
            progress = "No command has been run for this subtask yet: choose the first one."
        budget = executor["max_steps"] - executor["num_steps"]
        if budget <= 0:
            progress += (
                f"\n\nYou have used all {executor['max_steps']} commands of this subtask. Do not run another one: "
                'reply with status "done" and summarise what you found (or "submit" if you know the answer).'
            )
        else:
            progress += f"\n\nCommands left for this subtask: {budget}."
        user = f"{_team_context(state)}\n\nYour subtask: {plan[0]}\n\n{progress}"
        history.extend([SystemMessage(content=system), UserMessage(content=user)])

    def process_response(self, obs: str | None, response: str, history: list[LLMMessage], state: State) -> str | None:
        """A command or a submission (both environment actions), or the subtask's summary."""
        executor = _executor(state)
        try:
            data = parse_json_object(response)
            require_keys(data, "status")
            status = str(data["status"]).strip().lower()
            if status == "progress":
                return self._progress(data, executor, state)
            if status == "done":
                return self._done(data, executor, state)
            if status == "submit":
                return self._submit(data, executor, state)
            raise ResponseParseError(f'"status" must be "progress", "done" or "submit", not {data["status"]!r}')
        except ResponseParseError as error:
            _reject(state, EXECUTOR, error, EXECUTOR_SHAPES)
            return None

    def _progress(self, data: dict[str, Any], executor: dict[str, Any], state: State) -> str:
        if executor["num_steps"] >= executor["max_steps"]:
            raise ResponseParseError(
                f'all {executor["max_steps"]} commands of this subtask are used; reply with status "done" and a '
                "summary instead of another command"
            )
        step = data.get("next")
        command = step.get("command") if isinstance(step, dict) else None
        if not isinstance(command, str) or not command.strip():
            raise ResponseParseError('a "progress" reply needs "next": {"command": "..."} with a non-empty command')
        command = command.strip()
        executor["stdout_hist"].append([command, None])
        executor["num_steps"] += 1
        executor["status"] = "progress"
        state.set_is_envstep(True)
        return command

    def _done(self, data: dict[str, Any], executor: dict[str, Any], state: State) -> str:
        summary = data.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            raise ResponseParseError('a "done" reply needs a non-empty "summary"')
        found = _strings(data.get("interesting_knowledge", []), "interesting_knowledge")
        plan = _plan(state)
        subtask = plan.pop(0)
        _list(state, "task_list").append({"subtask": subtask, "summary": summary.strip()})
        knowledge = _list(state, "interesting_knowledge")
        knowledge.extend(note for note in found if note not in knowledge)
        if not plan:
            state.namespace(PLANNER)["replans"] = state.namespace(PLANNER).get("replans", 0) + 1
        executor["stdout_hist"] = []
        executor["num_steps"] = 0
        executor["status"] = "done"
        logger.info("Subtask done: %s -> %s", subtask, summary)
        return summary.strip()

    def _submit(self, data: dict[str, Any], executor: dict[str, Any], state: State) -> str:
        answer = data.get("flag")
        if not isinstance(answer, str) or not answer.strip():
            raise ResponseParseError('a "submit" reply needs a non-empty "flag"')
        action = SUBMIT_PREFIX + answer.strip()
        executor["stdout_hist"].append([action, None])
        executor["num_steps"] += 1
        executor["status"] = "submit"
        state.set_is_envstep(True)
        return action


# --- transition -------------------------------------------------------------------------------------------------


def planner_reviewer_executor(observation: str | None, state: State) -> None:
    """Choose the next agent of the planner / reviewer / executor strategy (see the module's docstring)."""
    name = state.get_agent_name()
    if name == INITIAL_AGENT_NAME:
        state.set_agent_name(PLANNER)
    elif name == PLANNER:
        state.set_agent_name(REVIEWER)
    elif name == REVIEWER:
        reviewer = state.namespace(REVIEWER)
        if reviewer.get("max_rejects") is None:
            reviewer["max_rejects"] = DEFAULT_MAX_REJECTS
        rejects = reviewer.get("num_rejects", 0)
        status = reviewer.get("status")
        if status == "reject" and rejects < reviewer["max_rejects"]:
            reviewer["num_rejects"] = rejects + 1
            state.set_agent_name(PLANNER)
        elif status in ("accept", "reject"):
            if status == "reject":
                logger.info("The reviewer reached max_rejects=%s: the plan is accepted.", reviewer["max_rejects"])
                reviewer["status"] = "accept"
            reviewer["num_rejects"] = 0
            state.set_agent_name(EXECUTOR)
        else:
            signal_error(
                state,
                f"[{REVIEWER}] no verdict on the state (status={status!r})",
                f"Review the plan again and reply with JSON only: {FEEDBACK_SHAPE}",
            )
    elif name == EXECUTOR:
        if state.namespace(EXECUTOR).get("status") == "done":
            state.set_agent_name(REVIEWER if _plan(state) else PLANNER)
        else:  # after a command or a submission, the environment's answer goes back to the executor
            state.set_agent_name(EXECUTOR)
    else:
        raise UnknownAgentError(
            f"planner_reviewer_executor does not know agent {name!r}: its agents are "
            f"{PLANNER!r}, {REVIEWER!r} and {EXECUTOR!r}."
        )


def build_planner_reviewer_executor(
    llm: LLMAdapter | MiniAgent,
    task: str,
    *,
    planner_llm: LLMAdapter | MiniAgent | None = None,
    reviewer_llm: LLMAdapter | MiniAgent | None = None,
    executor_llm: LLMAdapter | MiniAgent | None = None,
    max_rejects: int = DEFAULT_MAX_REJECTS,
    executor_max_steps: int = DEFAULT_EXECUTOR_MAX_STEPS,
    max_errors: int = DEFAULT_MAX_ERRORS,
    max_steps: int | None = None,
) -> Orchestrator:
    """A ready planner / reviewer / executor orchestrator for `task`; each role may have its own LLM."""
    state = State(max_errors=max_errors, max_steps=max_steps)
    state.set("task", task)
    state.set(REVIEWER, {"max_rejects": max_rejects})
    state.set(EXECUTOR, {"max_steps": executor_max_steps})
    agents = [
        Agent(PLANNER, PlannerPromptEngineer(), planner_llm or llm),
        Agent(REVIEWER, ReviewerPromptEngineer(), reviewer_llm or llm),
        Agent(EXECUTOR, ExecutorPromptEngineer(), executor_llm or llm),
    ]
    return Orchestrator(agents, planner_reviewer_executor, state, name="planner_reviewer_executor_strategy")
