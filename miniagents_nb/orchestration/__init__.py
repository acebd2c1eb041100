"""TinyAgentSmith-style orchestration on the async core.

A strategy is a set of named `Agent`s (each a `PromptEngineer`, an LLM adapter and optional `Module`s), a
transition function that picks the next agent from the shared `State`, and an `Orchestrator` that runs them until
one turn produces the environment's action: `action = await orchestrator.aforward(observation)`, or
`orchestrator.forward(observation)` in scripts and notebook cells. Every step, turn and LLM call is an agent call,
so the notebook views show a strategy at work; `orchestrator.timeline` records it.

Logging: the orchestration logs under the `tinysmith` logger, as TinyAgentSmith did (`tinysmith.orchestrator`,
`tinysmith.agent`, `tinysmith.strategies.*`), so its README's `logging.getLogger("tinysmith").setLevel(logging.INFO)`
shows each plan, review and reflection, and `DEBUG` every prompt and reply.

Importing this package imports no LLM SDK and has no side effects.
"""

from __future__ import annotations

from miniagents_nb.orchestration.adapters import (
    CustomAPIAdapter,
    FakeLLMAdapter,
    GroqAPIAdapter,
    HumanInputAdapter,
    LLMAdapter,
    MiniAgentLLMAdapter,
    MistralAPIAdapter,
    OpenAiAPIAdapter,
)
from miniagents_nb.orchestration.agent import Agent
from miniagents_nb.orchestration.environment import (
    Environment,
    Episode,
    EpisodeStep,
    StepResult,
    ToyShellEnvironment,
    arun_episode,
    run_episode,
)
from miniagents_nb.orchestration.errors import (
    LLMAdapterError,
    MaxContextError,
    MaxStepsReachedError,
    OrchestrationError,
    OrchestrationLimitError,
    OrchestratorSetupError,
    ResponseParseError,
    TooManyErrorsError,
    TooManyTurnsError,
    UnknownAgentError,
)
from miniagents_nb.orchestration.messages import (
    ActionMessage,
    AssistantMessage,
    LLMMessage,
    ObservationMessage,
    SystemMessage,
    TurnRequest,
    TurnResult,
    UserMessage,
)
from miniagents_nb.orchestration.modules import ListMemory, Module, SummaryMemory
from miniagents_nb.orchestration.orchestrator import Orchestrator, TransitionFunction
from miniagents_nb.orchestration.parsing import parse_command, parse_json_list, parse_json_object
from miniagents_nb.orchestration.prompting import PromptEngineer
from miniagents_nb.orchestration.state import ErrorStatus, State, signal_error
from miniagents_nb.orchestration.timeline import (
    ActionRecord,
    ErrorRecord,
    FailureRecord,
    ResetRecord,
    StepRecord,
    TimelineRecord,
    TransitionRecord,
    TurnRecord,
)

__all__ = [
    "ActionMessage",
    "ActionRecord",
    "Agent",
    "arun_episode",
    "AssistantMessage",
    "CustomAPIAdapter",
    "Environment",
    "Episode",
    "EpisodeStep",
    "ErrorRecord",
    "ErrorStatus",
    "FailureRecord",
    "FakeLLMAdapter",
    "GroqAPIAdapter",
    "HumanInputAdapter",
    "ListMemory",
    "LLMAdapter",
    "LLMAdapterError",
    "LLMMessage",
    "MaxContextError",
    "MaxStepsReachedError",
    "MiniAgentLLMAdapter",
    "MistralAPIAdapter",
    "Module",
    "ObservationMessage",
    "OpenAiAPIAdapter",
    "OrchestrationError",
    "OrchestrationLimitError",
    "Orchestrator",
    "OrchestratorSetupError",
    "parse_command",
    "parse_json_list",
    "parse_json_object",
    "PromptEngineer",
    "ResetRecord",
    "ResponseParseError",
    "run_episode",
    "signal_error",
    "State",
    "StepRecord",
    "StepResult",
    "SummaryMemory",
    "SystemMessage",
    "TimelineRecord",
    "TooManyErrorsError",
    "TooManyTurnsError",
    "ToyShellEnvironment",
    "TransitionFunction",
    "TransitionRecord",
    "TurnRecord",
    "TurnRequest",
    "TurnResult",
    "UnknownAgentError",
    "UserMessage",
]
