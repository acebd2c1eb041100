"""`State`: the blackboard every agent, prompt engineer, module and transition of a strategy shares.

It keeps two kinds of data apart:

* the orchestrator's bookkeeping (which agent runs, whether its output goes to the environment, the error signalled
  by the last turn, the limits, how many actions were returned, the current observation);
* the user's blackboard (`get` / `set`), where each component by convention keeps a dict under its own name
  (`state.namespace("planner")`) and reads the namespaces of the others to learn what they found.

The getters and setters of tinysmith's `State` are all here (`get_agent_name`, `set_is_envstep`, ...), so prompt
engineers and transitions written for it keep working; properties give the same data a Pythonic spelling.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from miniagents_nb.orchestration.errors import OrchestratorSetupError

__all__ = [
    "DEFAULT_MAX_ERRORS",
    "DEFAULT_MAX_TURNS_PER_STEP",
    "INITIAL_AGENT_NAME",
    "ErrorStatus",
    "State",
    "signal_error",
]

INITIAL_AGENT_NAME = "init"
"""The agent name a fresh state starts with: transitions recognise the first hop of an episode by it."""

DEFAULT_MAX_ERRORS = 3
"""Retries one agent gets after a rejected turn (tinysmith's README value; its own default was unreachable)."""

DEFAULT_MAX_TURNS_PER_STEP = 100
"""A safety net: an environment step that needs more agent turns than this is stuck in a hand-off loop."""


@dataclass(frozen=True)
class ErrorStatus:
    """What the last turn signalled: `log_message` is for people reading logs, `improve_message` for the model."""

    is_error: bool = False
    log_message: str | None = None
    improve_message: str | None = None


_NO_ERROR = ErrorStatus()


def _check_limit(name: str, value: Any, *, allow_none: bool, minimum: int) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        accepted = f"an int >= {minimum}" + (" or None" if allow_none else "")
        raise OrchestratorSetupError(f"`{name}` must be {accepted}, got {value!r}: pass a valid limit.")
    return value


class State:
    """The shared blackboard of one episode, plus the orchestrator's bookkeeping and limits.

    `max_errors` is how many times one agent may be re-prompted in a row after rejected turns (so it gets at most
    `1 + max_errors` LLM calls), `max_steps` how many actions the orchestrator may return to the environment in
    this episode (None: no limit), and `max_turns_per_step` how many agent turns one environment step may take.
    """

    def __init__(
        self,
        *,
        max_errors: int = DEFAULT_MAX_ERRORS,
        max_steps: int | None = None,
        max_turns_per_step: int | None = DEFAULT_MAX_TURNS_PER_STEP,
    ) -> None:
        self._agent_name = INITIAL_AGENT_NAME
        self._is_envstep = False
        self._response: str | None = None
        self._error = _NO_ERROR
        self._max_errors = _check_limit("max_errors", max_errors, allow_none=False, minimum=0)
        self._max_steps = _check_limit("max_steps", max_steps, allow_none=True, minimum=1)
        self._max_turns_per_step = _check_limit("max_turns_per_step", max_turns_per_step, allow_none=True, minimum=1)
        self._env_steps = 0
        self._observation: str | None = None
        self._reward: float | None = None
        self._last_action: str | None = None
        self._data: dict[str, Any] = {}

    # --- the agent that runs -----------------------------------------------------------------------------------

    @property
    def agent_name(self) -> str:
        """The agent that ran last; a transition reads it, then writes the next one."""
        return self._agent_name

    @agent_name.setter
    def agent_name(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise OrchestratorSetupError(f"An agent name must be a non-empty str, got {value!r}.")
        self._agent_name = value

    def get_agent_name(self) -> str:
        """tinysmith spelling of `agent_name`."""
        return self._agent_name

    def set_agent_name(self, value: str) -> None:
        """tinysmith spelling of `agent_name = value`."""
        self.agent_name = value

    @property
    def is_envstep(self) -> bool:
        """Whether the output of the current turn is the action for the environment (this ends the step)."""
        return self._is_envstep

    @is_envstep.setter
    def is_envstep(self, value: bool) -> None:
        self._is_envstep = bool(value)

    def get_is_envstep(self) -> bool:
        """tinysmith spelling of `is_envstep`."""
        return self._is_envstep

    def set_is_envstep(self, value: bool) -> None:
        """tinysmith spelling of `is_envstep = value`."""
        self._is_envstep = bool(value)

    @property
    def response(self) -> str | None:
        """The output of the last accepted agent turn (rejected turns never overwrite it)."""
        return self._response

    def get_response(self) -> str | None:
        """tinysmith spelling of `response`."""
        return self._response

    # --- errors ------------------------------------------------------------------------------------------------

    @property
    def error(self) -> ErrorStatus:
        """The error signalled by the running turn or transition (cleared by the orchestrator once handled)."""
        return self._error

    def set_error_status(self, is_error: bool) -> None:
        """Raise or lower the error flag, keeping the messages."""
        error = self._error
        self._error = ErrorStatus(bool(is_error), error.log_message, error.improve_message)

    def get_error_status(self) -> bool:
        """Whether an error is signalled."""
        return self._error.is_error

    def set_error_log_message(self, message: str) -> None:
        """What the logs say about the error."""
        error = self._error
        self._error = ErrorStatus(error.is_error, message, error.improve_message)

    def get_error_log_message(self) -> str | None:
        """What the logs say about the error."""
        return self._error.log_message

    def set_error_improve_message(self, message: str) -> None:
        """What the model is told on its retry."""
        error = self._error
        self._error = ErrorStatus(error.is_error, error.log_message, message)

    def get_error_improve_message(self) -> str | None:
        """What the model is told on its retry."""
        return self._error.improve_message

    def reset_error(self) -> None:
        """Clear the flag and both messages."""
        self._error = _NO_ERROR

    # --- limits ------------------------------------------------------------------------------------------------

    @property
    def max_errors(self) -> int:
        """Retries one agent gets in a row after rejected turns."""
        return self._max_errors  # type: ignore[return-value]

    @max_errors.setter
    def max_errors(self, value: int) -> None:
        self._max_errors = _check_limit("max_errors", value, allow_none=False, minimum=0)

    def get_max_errors(self) -> int:
        """tinysmith spelling of `max_errors` (it has a default here, so it never fails)."""
        return self.max_errors

    def set_max_errors(self, value: int) -> None:
        """tinysmith spelling of `max_errors = value`."""
        self.max_errors = value

    @property
    def max_steps(self) -> int | None:
        """Actions the orchestrator may return to the environment in this episode (None: unlimited)."""
        return self._max_steps

    @max_steps.setter
    def max_steps(self, value: int | None) -> None:
        self._max_steps = _check_limit("max_steps", value, allow_none=True, minimum=1)

    def get_max_steps(self) -> int | None:
        """tinysmith spelling of `max_steps`."""
        return self._max_steps

    def set_max_steps(self, value: int | None) -> None:
        """tinysmith spelling of `max_steps = value`; the orchestrator enforces it (tinysmith did not)."""
        self.max_steps = value

    @property
    def max_turns_per_step(self) -> int | None:
        """Agent turns one environment step may take before the orchestrator gives up (None: unlimited)."""
        return self._max_turns_per_step

    @max_turns_per_step.setter
    def max_turns_per_step(self, value: int | None) -> None:
        self._max_turns_per_step = _check_limit("max_turns_per_step", value, allow_none=True, minimum=1)

    # --- the episode so far (written by the orchestrator) -------------------------------------------------------

    @property
    def env_steps(self) -> int:
        """How many actions the orchestrator has returned to the environment in this episode."""
        return self._env_steps

    @property
    def observation(self) -> str | None:
        """The observation of the environment step being worked on (every hop can read it, not only the first)."""
        return self._observation

    @property
    def reward(self) -> float | None:
        """The reward passed with the current observation."""
        return self._reward

    @property
    def last_action(self) -> str | None:
        """The action returned to the environment at the end of the previous step (what `observation` answers)."""
        return self._last_action

    def _begin_step(self, observation: str | None, reward: float | None) -> None:
        self._observation = observation
        self._reward = reward
        self._is_envstep = False
        self.reset_error()

    def _finish_step(self, action: str) -> None:
        self._last_action = action
        self._env_steps += 1
        self._is_envstep = False

    def _accept_response(self, output: str | None) -> None:
        self._response = output

    def copy_limits(self) -> State:
        """A fresh state with the same limits and an empty blackboard (what `Orchestrator.reset()` starts from)."""
        return State(max_errors=self.max_errors, max_steps=self.max_steps, max_turns_per_step=self.max_turns_per_step)

    # --- the blackboard ----------------------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under `key`, or `default`."""
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Store `value` under `key` (conventionally a component's name)."""
        self._data[key] = value

    def delete(self, key: str) -> None:
        """Forget `key` (no error when it is absent)."""
        self._data.pop(key, None)

    def namespace(self, name: str) -> dict[str, Any]:
        """The dict a component keeps under its own `name`, created empty on first use.

        Components mutate it in place; no `set` is needed afterwards.
        """
        value = self._data.get(name)
        if value is None:
            value = self._data[name] = {}
        elif not isinstance(value, dict):
            raise OrchestratorSetupError(
                f"state[{name!r}] holds a {type(value).__name__}, not a namespace dict: "
                f"store namespaces as dicts or use another key."
            )
        return value

    def keys(self) -> list[str]:
        """The keys of the blackboard, in insertion order."""
        return list(self._data)

    def items(self) -> list[tuple[str, Any]]:
        """The `(key, value)` pairs of the blackboard, in insertion order."""
        return list(self._data.items())

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data))

    def __repr__(self) -> str:
        limits = f"max_errors={self.max_errors}, max_steps={self.max_steps}"
        return f"State(agent_name={self.agent_name!r}, env_steps={self.env_steps}, {limits}, data={self._data!r})"


def signal_error(state: State, log_message: str, improve_message: str) -> None:
    """Reject the current turn: the orchestrator logs `log_message` and re-prompts the same agent with
    `improve_message` (after its rejected reply), instead of moving on to the transition.

    Called by prompt engineers and modules on a reply they cannot use; called by a transition, it adds
    `improve_message` to the next agent's prompt. Both messages are required because both audiences need to
    know what went wrong.
    """
    for name, value in (("log_message", log_message), ("improve_message", improve_message)):
        if not isinstance(value, str) or not value.strip():
            raise OrchestratorSetupError(
                f"signal_error() needs a non-empty `{name}`, got {value!r}: say what went wrong."
            )
    state._error = ErrorStatus(True, log_message, improve_message)
