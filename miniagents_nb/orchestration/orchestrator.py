"""`Orchestrator`: runs a strategy's agents, one turn at a time, until one turn produces the environment's action.

The environment drives, as in a gym loop: `action = await orchestrator.aforward(obs, reward)` (or the blocking
`forward` in scripts and notebook cells). Inside one step:

1. the transition function reads the state (the agent that ran last, the namespaces) and names the next agent;
   it may flag the turn as an environment step. It receives the observation on the first hop of a step only
   (None afterwards), which is how it tells new feedback from an internal hand-off;
2. that agent takes its turn (render the prompt, call its LLM, read the reply);
3. a turn that signalled an error is *retried* by the same agent, with the improve message appended after its
   rejected reply, at most `max_errors` times in a row; nothing reaches the environment from a rejected turn;
4. an accepted turn flagged as an environment step ends the step: its output is the action.

The step itself is a call of the orchestrator's `MiniAgent`, each turn a call of the turn's agent, each LLM call
a call of the LLM agent: the notebook views show the strategy running. The orchestrator also keeps a typed
`timeline` of what happened, shown by its deterministic `repr` and HTML form.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Union

from miniagents_nb.agents import InteractionContext, MiniAgent, MiniAgents
from miniagents_nb.orchestration._sync import run_blocking
from miniagents_nb.orchestration.adapters import TOKEN_USAGE_KEYS, LLMAdapter
from miniagents_nb.orchestration.agent import Agent, make_turn, state_changes, state_view, turn_request
from miniagents_nb.orchestration.errors import (
    MaxStepsReachedError,
    OrchestrationError,
    OrchestratorSetupError,
    TooManyErrorsError,
    TooManyTurnsError,
    UnknownAgentError,
)
from miniagents_nb.orchestration.messages import ActionMessage, ObservationMessage
from miniagents_nb.orchestration.state import ErrorStatus, State
from miniagents_nb.orchestration.timeline import (
    ActionRecord,
    ErrorRecord,
    FailureRecord,
    ResetRecord,
    StepRecord,
    TimelineRecord,
    TransitionRecord,
    TurnRecord,
    render_timeline_html,
    render_timeline_text,
)
from miniagents_nb.promising.context import current_context_or_none

__all__ = ["Orchestrator", "TransitionFunction"]

logger = logging.getLogger("tinysmith.orchestrator")

TransitionFunction = Callable[[Union[str, None], State], Union[None, Awaitable[None]]]  # noqa: UP007
"""`transition(obs, state)`: set the next agent's name on the state (and maybe the env-step flag); may be async."""


class Orchestrator:
    """Runs the `agents` of a strategy as its `transition` function directs, sharing `state` between them.

    `name` is the alias of the orchestrator's own agent in the views.
    """

    def __init__(
        self,
        agents: Sequence[Agent] | None = None,
        transition: TransitionFunction | None = None,
        state: State | None = None,
        *,
        name: str = "orchestrator",
    ) -> None:
        self.agents: list[Agent] = []
        self.transition: TransitionFunction | None = None
        self.state: State = state if state is not None else State()
        self.timeline: list[TimelineRecord] = []
        self.name = name
        self._step_running = False
        self.miniagent = MiniAgent(
            self._arun_step,
            alias=name,
            description="Runs one environment step of an orchestrated strategy and replies with its action.",
        )
        for agent in agents or ():
            self.register_agent(agent)
        if transition is not None:
            self.register_transition(transition)

    # --- set-up ------------------------------------------------------------------------------------------------

    def register_agent(self, agent: Agent) -> None:
        """Add `agent`; its name must be unique (tinysmith silently used the first of two namesakes)."""
        if not isinstance(agent, Agent):
            raise OrchestratorSetupError(f"Expected an Agent, got {agent!r}: wrap the role in `Agent(name, ...)`.")
        if any(existing.name == agent.name for existing in self.agents):
            raise OrchestratorSetupError(
                f"An agent named {agent.name!r} is already registered: give every agent a unique name."
            )
        self.agents.append(agent)

    def register_transition(self, transition: TransitionFunction | None) -> None:
        """Set (or, with None, remove) the transition function."""
        if transition is not None and not callable(transition):
            raise OrchestratorSetupError(
                f"The transition must be callable as `transition(obs, state)`, got {transition!r}."
            )
        self.transition = transition

    def reset(self, state: State | None = None) -> None:
        """Start a new episode: reset every agent (history included) and use `state`, or a fresh state that keeps
        the current limits (tinysmith's fresh state lost `max_errors` and failed on the next step)."""
        for agent in self.agents:
            agent.reset()
        self.state = state if state is not None else self.state.copy_limits()
        self.timeline.append(ResetRecord())

    def agent(self, name: str) -> Agent:
        """The registered agent called `name`."""
        for agent in self.agents:
            if agent.name == name:
                return agent
        known = ", ".join(repr(agent.name) for agent in self.agents) or "none"
        raise UnknownAgentError(
            f"The transition chose agent {name!r}, but no agent has that name (registered: {known}): "
            "make the transition write one of the registered names with `state.set_agent_name(...)`."
        )

    @property
    def token_usage(self) -> dict[str, int]:
        """Token counts summed over the adapters of the agents and of their modules (a summary memory's LLM, ...);
        a dict shared by several adapters is counted once."""
        totals = dict.fromkeys(TOKEN_USAGE_KEYS, 0)
        seen: set[int] = set()
        adapters = [agent.llm for agent in self.agents]
        for agent in self.agents:
            adapters += [
                llm for llm in (getattr(module, "llm", None) for module in agent.modules) if isinstance(llm, LLMAdapter)
            ]
        for adapter in adapters:
            usage = adapter.token_usage
            if id(usage) in seen:
                continue
            seen.add(id(usage))
            for key in TOKEN_USAGE_KEYS:
                totals[key] += usage.get(key, 0)
        return totals

    # --- stepping ----------------------------------------------------------------------------------------------

    async def aforward(self, obs: str | None, reward: float | None = None) -> str:
        """Run one environment step: the agents' turns up to the action, which is returned.

        Runs under the active MiniAgents context, or under a new one if none is active.
        """
        self._check_ready(obs, reward)
        if isinstance(current_context_or_none(), MiniAgents):
            return await self._aforward_here(obs, reward)
        return await MiniAgents().arun(self._aforward_here(obs, reward))

    def forward(self, obs: str | None, reward: float | None = None) -> str:
        """Blocking `aforward` for scripts and notebook cells (in other async code, `await aforward(...)`).

        In a notebook, `await orchestrator.aforward(...)` is the better spelling: it runs on the kernel's loop,
        under the notebook's MiniAgents context, where the live views follow it.
        """
        self._check_ready(obs, reward)
        return run_blocking(
            lambda: self.aforward(obs, reward), "orchestrator.forward(...)", "await orchestrator.aforward(...)"
        )

    def _check_ready(self, obs: Any = None, reward: Any = None) -> None:
        """Refuse a step that cannot run, before anything is scheduled."""
        if obs is not None and not isinstance(obs, str):
            raise OrchestratorSetupError(
                f"An observation must be a str or None, got {type(obs).__name__}: convert it with str() first."
            )
        if reward is not None and (isinstance(reward, bool) or not isinstance(reward, (int, float))):
            raise OrchestratorSetupError(f"A reward must be a number or None, got {type(reward).__name__}.")
        if self.transition is None:
            raise OrchestratorSetupError(
                "The orchestrator has no transition function: pass `transition=` or call `register_transition`."
            )
        if not self.agents:
            raise OrchestratorSetupError("The orchestrator has no agents: pass `agents=` or call `register_agent`.")
        if self._step_running:
            raise OrchestrationError(
                "A step of this orchestrator is still running: await it before starting the next one "
                "(the steps of an episode share one state and must run one after another)."
            )
        max_steps = self.state.max_steps
        if max_steps is not None and self.state.env_steps >= max_steps:
            raise MaxStepsReachedError(
                f"The orchestrator already returned {self.state.env_steps} actions, the state's max_steps: end the "
                "episode, or call `reset()` (or raise `state.max_steps`) to go on."
            )

    async def _aforward_here(self, obs: str | None, reward: float | None) -> str:
        message = ObservationMessage(content=obs or "", observation=obs, reward=reward, step=self.state.env_steps + 1)
        action: ActionMessage | None = None
        for reply in await self.miniagent.trigger(message):
            if isinstance(reply, ActionMessage):
                action = reply
        if action is None or action.content is None:  # pragma: no cover - _arun_step always ends with an action
            raise OrchestrationError("The step ended without an action.")
        return action.content

    async def _arun_step(self, ctx: InteractionContext) -> None:
        """The body of the orchestrator's agent: one environment step.

        Its input is an `ObservationMessage`, or any message whose text is the observation, so the orchestrator
        can also be triggered like any other agent (in a chain, from a `%%chat` cell).
        """
        messages = await ctx.message_promises
        observations = [message for message in messages if isinstance(message, ObservationMessage)]
        if observations:
            obs, reward = observations[-1].observation, observations[-1].reward
        else:
            obs, reward = (str(messages[-1]) if messages else None), None
        self._check_ready(obs, reward)
        step = self.state.env_steps + 1
        self._step_running = True
        try:
            await self._astep(ctx, obs, reward, step)
        except Exception as error:
            self.timeline.append(FailureRecord(step, type(error).__name__, str(error)))
            raise
        finally:
            self._step_running = False

    async def _astep(self, ctx: InteractionContext, obs: str | None, reward: float | None, step: int) -> None:
        state = self.state
        transition = self.transition
        assert transition is not None
        state._begin_step(obs, reward)
        self.timeline.append(StepRecord(step, obs, reward))
        hop_obs = obs
        consecutive_errors = 0
        turns = 0
        attempt = 1
        retry: str | None = None  # the improve message of a rejected turn: the same agent goes again
        while True:
            note: str | None = None
            if retry is None:
                previous, before = state.agent_name, state_view(state)
                result = transition(hop_obs, state)
                if inspect.isawaitable(result):
                    await result
                self.timeline.append(
                    TransitionRecord(
                        step, previous, state.agent_name, state.is_envstep, state_changes(before, state_view(state))
                    )
                )
                if state.error.is_error:  # the transition asks the next agent to correct something
                    consecutive_errors += 1
                    note = self._handle_error(step, state.agent_name, "transition", state.error, consecutive_errors)
                attempt = 1
            agent = self.agent(state.agent_name)
            turns += 1
            if state.max_turns_per_step is not None and turns > state.max_turns_per_step:
                raise TooManyTurnsError(
                    f"Step {step} took more than {state.max_turns_per_step} agent turns without an action for the "
                    "environment (last agent: "
                    f"{agent.name!r}): check that the transition reaches an environment step, or raise "
                    "`state.max_turns_per_step`."
                )
            envstep_before = state.is_envstep
            turn = make_turn(state, step, attempt, hop_obs, retry, note)
            replies = agent.miniagent.fork(non_freezable_kwargs={"turn": turn}).trigger(turn_request(agent, turn))
            ctx.reply(replies)
            await replies
            outcome = turn.outcome
            assert outcome is not None
            self.timeline.append(
                TurnRecord(
                    step,
                    agent.name,
                    attempt,
                    outcome.prompt,
                    outcome.reply,
                    outcome.output,
                    outcome.env_step,
                    outcome.error is None,
                    outcome.state_changes,
                )
            )
            if outcome.error is not None:
                consecutive_errors += 1
                retry = self._handle_error(step, agent.name, "reply", outcome.error, consecutive_errors)
                state.set_is_envstep(envstep_before)  # whatever the rejected turn flagged does not count
                attempt += 1
                continue
            retry = None
            consecutive_errors = 0
            state._accept_response(outcome.output)
            if state.is_envstep:
                action = outcome.output or ""
                state._finish_step(action)
                self.timeline.append(ActionRecord(step, agent.name, action))
                logger.debug("Step %d: action from %s: %r", step, agent.name, action)
                ctx.reply(ActionMessage(content=action, agent_name=agent.name, step=step))
                return
            hop_obs = None

    def _handle_error(self, step: int, agent_name: str, source: str, error: ErrorStatus, consecutive: int) -> str:
        """Record and log a signalled error, enforce `max_errors`, clear the flag; returns the improve message."""
        state = self.state
        log_message = error.log_message or "(no log message)"
        improve_message = error.improve_message or "Your last reply could not be used. Try again."
        state.reset_error()
        self.timeline.append(ErrorRecord(step, agent_name, source, log_message, improve_message, consecutive))
        logger.info("Agent parsing error: [%s]/%s", agent_name, log_message)
        logger.debug("Improve message for [%s]: %s", agent_name, improve_message)
        if consecutive > state.max_errors:
            raise TooManyErrorsError(
                f"Too many errors encountered: agent {agent_name!r} had {consecutive} rejected turns in a row "
                f"(max_errors={state.max_errors}; last: {log_message}). Make the prompt clearer, use a stronger "
                "model, or raise `state.max_errors`."
            )
        return improve_message

    # --- display -----------------------------------------------------------------------------------------------

    def _title(self) -> str:
        transition = self.transition
        transition_name = "None" if transition is None else getattr(transition, "__name__", type(transition).__name__)
        names = ", ".join(agent.name for agent in self.agents)
        return (
            f"Orchestrator {self.name!r} (agents: {names}; transition: {transition_name}; "
            f"actions: {self.state.env_steps}; current agent: {self.state.agent_name!r})"
        )

    def __repr__(self) -> str:
        timeline = render_timeline_text(self.timeline)
        return f"<{self._title()}>" + (f"\n{timeline}" if timeline else "")

    def _repr_html_(self) -> str:
        return render_timeline_html(self._title(), self.timeline)
