"""The single-agent strategy: one agent, every turn an environment step, the transcript as its memory.

The agent reasons briefly and ends its reply with one `Command: <command>` line. A reply without a usable command
is rejected and retried within the same step, so the environment never receives an empty action (tinysmith sent
`''` and lost the next observation).
"""

from __future__ import annotations

from miniagents_nb.agents import MiniAgent
from miniagents_nb.ext.llms.messages import LLMMessage, SystemMessage, UserMessage
from miniagents_nb.orchestration.adapters import LLMAdapter
from miniagents_nb.orchestration.agent import Agent
from miniagents_nb.orchestration.errors import ResponseParseError
from miniagents_nb.orchestration.modules import ListMemory
from miniagents_nb.orchestration.orchestrator import Orchestrator
from miniagents_nb.orchestration.parsing import parse_command
from miniagents_nb.orchestration.prompting import PromptEngineer
from miniagents_nb.orchestration.state import DEFAULT_MAX_ERRORS, State, signal_error
from miniagents_nb.orchestration.strategies._common import (
    SHELL_RULES,
    SUBMIT_BY_COMMAND,
    knowledge_section,
    memory_text,
    task_text,
)

__all__ = [
    "parse_error_messages",
    "COMMAND_FORMAT",
    "SINGLE_AGENT",
    "SingleAgentPromptEngineer",
    "build_single_agent",
    "single_agent",
]

SINGLE_AGENT = "single_agent"
"""The agent name the transition writes."""

COMMAND_FORMAT = """\
How to answer: think in a few short sentences about what you know and what to try next, then end your reply with
exactly one line of the form
Command: <the single shell command to run next>
For example:
The listing shows notes.txt, which probably holds the answer.
Command: cat notes.txt"""


def single_agent(observation: str | None, state: State) -> None:
    """Always the same agent, and every one of its turns produces the environment's next action."""
    state.set_agent_name(SINGLE_AGENT)
    state.set_is_envstep(True)


def parse_error_messages(agent: str, error: ResponseParseError) -> tuple[str, str]:
    """The log and improve messages for a reply without a usable `Command:` line."""
    return (
        f"[{agent}] unusable reply: {error.reason}",
        f"I could not use your reply: {error.reason}. End your reply with exactly one line `Command: <command>`.",
    )


class SingleAgentPromptEngineer(PromptEngineer):
    """Rebuilds the prompt every turn from the task and the transcript published by `memory_key`'s module."""

    def __init__(self, memory_key: str = "list_memory") -> None:
        self.memory_key = memory_key

    def render_prompt(self, obs: str | None, history: list[LLMMessage], state: State) -> None:
        """A system prompt with the rules and the answer format, a user prompt with the task and the transcript."""
        history.clear()
        system = (
            "You solve a task on your own by running shell commands, one per reply, until you can submit the "
            f"answer.\n\n{SHELL_RULES}{SUBMIT_BY_COMMAND}{knowledge_section(state)}\n\n{COMMAND_FORMAT}"
        )
        transcript = memory_text(state, self.memory_key)
        progress = (
            f"Commands run so far and what they printed:\n{transcript}\n\nWhat is the next command?"
            if transcript
            else "Nothing has been run yet. Start by looking at the files, e.g. with `ls -la`."
        )
        history.extend([SystemMessage(content=system), UserMessage(content=f"Task: {task_text(state)}\n\n{progress}")])

    def process_response(self, obs: str | None, response: str, history: list[LLMMessage], state: State) -> str | None:
        """The command of the reply, or a rejection saying what was wrong with it."""
        try:
            return parse_command(response)
        except ResponseParseError as error:
            signal_error(state, *parse_error_messages(SINGLE_AGENT, error))
            return None


def build_single_agent(
    llm: LLMAdapter | MiniAgent,
    task: str,
    *,
    max_errors: int = DEFAULT_MAX_ERRORS,
    max_steps: int | None = None,
    memory: ListMemory | None = None,
) -> Orchestrator:
    """A ready single-agent orchestrator for `task` (with a fresh `ListMemory` unless one is given)."""
    memory = memory if memory is not None else ListMemory("list_memory")
    state = State(max_errors=max_errors, max_steps=max_steps)
    state.set("task", task)
    agent = Agent(SINGLE_AGENT, SingleAgentPromptEngineer(memory.name), llm, [memory])
    return Orchestrator([agent], single_agent, state, name="single_agent_strategy")
