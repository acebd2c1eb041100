"""The errors of the orchestration layer, part of the one `MiniAgentsError` tree.

tinysmith raised bare `OverflowError`, `ValueError`, `IndexError` and `AssertionError`; here every failure the
layer raises on purpose has its own class, keeps the built-in base a caller may already catch, and says what
happened and what to do::

    MiniAgentsError
    └── OrchestrationError
        ├── OrchestratorSetupError(ValueError)   # missing agents/transition, duplicate names, bad limits or state
        ├── UnknownAgentError(LookupError)        # the transition named an agent that is not registered
        ├── OrchestrationLimitError
        │   ├── TooManyErrorsError(OverflowError) # more consecutive rejected turns than `max_errors`
        │   ├── MaxStepsReachedError              # `max_steps` actions were already returned to the environment
        │   └── TooManyTurnsError                 # one step took more agent turns than `max_turns_per_step`
        ├── ResponseParseError(ValueError)        # an LLM reply does not follow the requested format
        ├── MaxContextError                       # the prompt does not fit the model's context window
        └── LLMAdapterError                       # an LLM adapter cannot work as configured
"""

from __future__ import annotations

from miniagents_nb.errors import MiniAgentsError

__all__ = [
    "LLMAdapterError",
    "MaxContextError",
    "MaxStepsReachedError",
    "OrchestrationError",
    "OrchestrationLimitError",
    "OrchestratorSetupError",
    "ResponseParseError",
    "TooManyErrorsError",
    "TooManyTurnsError",
    "UnknownAgentError",
]


class OrchestrationError(MiniAgentsError):
    """Root of the orchestration layer's errors."""


class OrchestratorSetupError(OrchestrationError, ValueError):
    """The orchestrator, its state or a strategy was configured in a way that cannot run."""


class UnknownAgentError(OrchestrationError, LookupError):
    """The transition chose an agent name that no registered agent has (tinysmith failed with an IndexError)."""


class OrchestrationLimitError(OrchestrationError):
    """A limit of the state (`max_errors`, `max_steps`, `max_turns_per_step`) stopped the orchestrator."""


class TooManyErrorsError(OrchestrationLimitError, OverflowError):
    """One agent kept producing rejected turns; an `OverflowError` too, as tinysmith raised one here."""


class MaxStepsReachedError(OrchestrationLimitError):
    """The episode already used its `max_steps` environment actions (tinysmith never enforced the limit)."""


class TooManyTurnsError(OrchestrationLimitError):
    """Agents kept handing work to each other without ever producing an environment action."""


class ResponseParseError(OrchestrationError, ValueError):
    """An LLM reply does not have the shape a prompt engineer asked for; `reason` says what is wrong with it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MaxContextError(OrchestrationError):
    """The prompt is longer than the model accepts; the agent retries once without the observation."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LLMAdapterError(OrchestrationError):
    """An LLM adapter cannot produce a reply as configured (no LLM agent available, unusable reply, ...)."""
