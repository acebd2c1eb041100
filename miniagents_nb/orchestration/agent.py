"""`Agent`: one named role of a strategy (a prompt engineer, an LLM adapter, optional modules, its history).

Each turn of an agent runs as a call of its own `MiniAgent` (alias: the agent's name) under the active MiniAgents
context, with the LLM call as a child call, so the notebook views show which role ran, the prompt its model saw
and what it answered.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from miniagents_nb.agents import InteractionContext, MiniAgent
from miniagents_nb.ext.llms.messages import AssistantMessage, LLMMessage, UserMessage
from miniagents_nb.orchestration.adapters import LLMAdapter, MiniAgentLLMAdapter
from miniagents_nb.orchestration.errors import MaxContextError, OrchestratorSetupError
from miniagents_nb.orchestration.messages import TurnRequest, TurnResult
from miniagents_nb.orchestration.modules import Module
from miniagents_nb.orchestration.prompting import PromptEngineer
from miniagents_nb.orchestration.state import ErrorStatus, State, signal_error

__all__ = ["Agent", "TurnOutcome", "make_turn", "state_changes", "state_view", "turn_request"]

logger = logging.getLogger("tinysmith.agent")

EMPTY_ACTION_IMPROVE_MESSAGE = (
    "Your reply did not contain an action for the environment. Answer again, following the required format exactly."
)
TOO_LONG_IMPROVE_MESSAGE = (
    "The output of the last command was too long to show you. Use a command that prints less, for example by "
    "filtering it with grep, head or tail."
)


@dataclass(frozen=True)
class TurnOutcome:
    """What one turn produced, for the orchestrator (which decides what happens next) and the timeline."""

    prompt: tuple[tuple[str, str], ...]
    reply: str | None
    output: str | None
    error: ErrorStatus | None
    env_step: bool
    state_changes: tuple[tuple[str, str], ...]


@dataclass
class _Turn:
    """The orchestrator's order for one turn (handed to the agent call as a non-freezable argument)."""

    state: State
    step: int
    attempt: int
    obs: str | None
    improve_message: str | None
    note: str | None
    outcome: TurnOutcome | None = None


def _role_and_text(message: Any) -> tuple[str, str]:
    role = getattr(message, "role", None)
    content = getattr(message, "content", None)
    return (role if isinstance(role, str) else "user", content if isinstance(content, str) else str(message))


def state_view(state: State) -> dict[str, str]:
    """The blackboard as `repr` strings (what a turn or a transition changed is told by comparing two views)."""
    return {key: repr(value) for key, value in state.items()}


def state_changes(before: dict[str, str], after: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """`(key, new repr)` for every key whose value changed (`<deleted>` for removed keys)."""
    changed = [(key, value) for key, value in after.items() if before.get(key) != value]
    changed += [(key, "<deleted>") for key in before if key not in after]
    return tuple(changed)


class Agent:
    """A named role: `prompt_engineer` writes its prompts and reads its replies, `llm` answers them.

    `llm` is an `LLMAdapter` or any LLM `MiniAgent` (wrapped in a `MiniAgentLLMAdapter`); `llm_adapter=` is
    tinysmith's spelling of the same argument. The name must be the one the transition function writes.

    The history is deliberate, not accidental: after every call the model's reply is appended to it (unless the
    prompt engineer already did), so a prompt engineer that only appends builds a proper alternating
    conversation and a rejected reply is followed by its correction; `max_history_messages` keeps only the
    latest messages (leading system messages are always kept); `reset()` empties it (tinysmith kept it forever).
    """

    def __init__(
        self,
        name: str,
        prompt_engineer: PromptEngineer,
        llm: LLMAdapter | MiniAgent | None = None,
        modules: Sequence[Module] | None = None,
        *,
        llm_adapter: LLMAdapter | MiniAgent | None = None,
        max_history_messages: int | None = None,
        description: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise OrchestratorSetupError(f"An agent needs a non-empty str name, got {name!r}.")
        if llm is None:
            llm = llm_adapter
        elif llm_adapter is not None and llm_adapter is not llm:
            raise OrchestratorSetupError(
                f"Agent {name!r} got both `llm` and `llm_adapter`: they are the same argument, pass one."
            )
        if isinstance(llm, MiniAgent):
            llm = MiniAgentLLMAdapter(llm)
        if not isinstance(llm, LLMAdapter):
            raise OrchestratorSetupError(
                f"Agent {name!r} needs an LLM: pass `llm=` an LLMAdapter (e.g. FakeLLMAdapter, OpenAiAPIAdapter) "
                f"or an LLM MiniAgent, got {llm!r}."
            )
        if not isinstance(prompt_engineer, PromptEngineer):
            raise OrchestratorSetupError(
                f"Agent {name!r} needs a PromptEngineer instance, got {prompt_engineer!r}: subclass PromptEngineer."
            )
        if max_history_messages is not None and max_history_messages < 1:
            raise OrchestratorSetupError(f"`max_history_messages` must be >= 1 or None, got {max_history_messages}.")
        self.name = name
        self.prompt_engineer = prompt_engineer
        self.llm: LLMAdapter = llm
        self.modules: list[Module] = list(modules or [])
        self.max_history_messages = max_history_messages
        self.history: list[LLMMessage] = []
        self.miniagent = MiniAgent(
            self._arun_turn,
            alias=name,
            description=description or f"The {name!r} role of an orchestrated strategy (one turn per call).",
        )
        self.reset()

    @property
    def llm_adapter(self) -> LLMAdapter:
        """tinysmith's name of `llm`."""
        return self.llm

    def reset(self) -> None:
        """Start a new episode: reset the modules and the prompt engineer, and empty the history."""
        for module in self.modules:
            module.reset()
        self.prompt_engineer.reset()
        self.history.clear()

    def __repr__(self) -> str:
        return (
            f"Agent(name={self.name!r}, prompt_engineer={type(self.prompt_engineer).__name__}, "
            f"llm={type(self.llm).__name__}, modules={self.modules!r})"
        )

    # --- one turn (runs as a call of `self.miniagent`) ----------------------------------------------------------

    async def _arun_turn(self, ctx: InteractionContext, turn: _Turn) -> None:
        """Render (or correct) the prompt, ask the LLM, let the prompt engineer judge the reply."""
        state = turn.state
        before = state_view(state)
        saved_history = list(self.history)
        if turn.improve_message is not None:
            self.history.append(UserMessage(content=turn.improve_message))
        else:
            await self._arender(turn.obs, state, turn.note)
        prompt = tuple(_role_and_text(message) for message in self.history)
        logger.debug("[%s] prompt: %r", self.name, prompt)
        reply: str | None = None
        output: str | None = None
        try:
            reply = await self.llm.agenerate(list(self.history))
        except MaxContextError as error:
            # Rebuild the prompt as it was before this turn, without the observation, and have the retry say why.
            self.history[:] = saved_history
            await self._arender(None, state, turn.note)
            signal_error(
                state,
                f"[{self.name}] the prompt did not fit the model's context ({error.message}); retrying without "
                "the observation.",
                TOO_LONG_IMPROVE_MESSAGE,
            )
        else:
            logger.debug("[%s] reply: %r", self.name, reply)
            if not self.history or _role_and_text(self.history[-1]) != ("assistant", reply):
                self.history.append(AssistantMessage(content=reply, agent_alias=self.name))
            result = await self.prompt_engineer.aprocess_response(turn.obs, reply, self.history, state)
            output = None if result is None else str(result)
            if not state.error.is_error and state.is_envstep and not (output or "").strip():
                signal_error(
                    state,
                    f"[{self.name}] the turn is an environment step but produced no action.",
                    EMPTY_ACTION_IMPROVE_MESSAGE,
                )
            if not state.error.is_error:
                for module in self.modules:
                    await module.apostprocessing(reply, state)
        self._trim_history()
        signalled = state.error if state.error.is_error else None
        outcome = TurnOutcome(
            prompt=prompt,
            reply=reply,
            output=output,
            error=signalled,
            env_step=state.is_envstep,
            state_changes=state_changes(before, state_view(state)),
        )
        turn.outcome = outcome
        if reply is not None:
            ctx.reply(AssistantMessage(content=reply, agent_alias=self.name))
        ctx.reply(
            TurnResult(
                content=output or "",
                agent_name=self.name,
                step=turn.step,
                attempt=turn.attempt,
                output=output,
                env_step=outcome.env_step,
                accepted=signalled is None,
                error_log=None if signalled is None else signalled.log_message,
                state_changes=outcome.state_changes,
            )
        )

    async def _arender(self, obs: str | None, state: State, note: str | None) -> None:
        for module in self.modules:
            await module.apreprocessing(obs, state)
        await self.prompt_engineer.arender_prompt(obs, self.history, state)
        if note is not None:
            self.history.append(UserMessage(content=note))

    def _trim_history(self) -> None:
        limit = self.max_history_messages
        if limit is None or len(self.history) <= limit:
            return
        head = 0
        while head < len(self.history) and _role_and_text(self.history[head])[0] == "system":
            head += 1
        keep = max(limit - head, 1)
        tail = self.history[head:][-keep:]
        while len(tail) > 1 and _role_and_text(tail[0])[0] == "assistant":
            tail = tail[1:]
        self.history[:] = self.history[:head] + tail


def make_turn(
    state: State, step: int, attempt: int, obs: str | None, improve_message: str | None, note: str | None
) -> _Turn:
    """Build the order for one turn (used by the orchestrator)."""
    return _Turn(state, step, attempt, obs, improve_message, note)


def turn_request(agent: Agent, turn: _Turn) -> TurnRequest:
    """The message a turn's agent call is triggered with (what the views show as its input)."""
    shown = turn.improve_message if turn.improve_message is not None else turn.obs
    return TurnRequest(
        content=shown or "",
        agent_name=agent.name,
        step=turn.step,
        attempt=turn.attempt,
        observation=turn.obs,
        improve_message=turn.improve_message,
        note=turn.note,
    )
