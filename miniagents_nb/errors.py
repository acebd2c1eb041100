"""The one error tree of miniagents_nb.

Every error the package raises on purpose derives from `MiniAgentsError`. Misuse errors also derive from the
built-in exception a Python user would expect (`TypeError`, `ValueError`, `RuntimeError`), so code written for
upstream MiniAgents that catches those keeps working::

    MiniAgentsError(Exception)
    ├── PromisingError
    │   ├── FunctionNotProvidedError
    │   ├── AppenderNotOpenError
    │   ├── AppenderClosedError
    │   ├── HandlerDefinitionError(ValueError)
    │   ├── PromiseNotReadyError(RuntimeError)
    │   ├── SequenceCycleError(RuntimeError)
    │   └── PromisingContextError(RuntimeError)
    │       ├── NoActiveContextError
    │       ├── WrongActiveContextError(TypeError)
    │       ├── ContextReentryError
    │       ├── SyncContextManagerError
    │       ├── RunningEventLoopError
    │       └── ForeignLoopError
    ├── MessageTypeError(TypeError)
    ├── NotAwaitedError(TypeError)
    ├── NotFreezableError(TypeError)
    ├── AgentDefinitionError(ValueError)
    ├── InvalidArgumentsError(ValueError)
    ├── RunStoreError(OSError)
    │   └── UnknownRunError(LookupError)
    ├── ReplayMismatchError(LookupError)
    ├── RecordedError
    ├── HistoryFileError(OSError)               miniagents_nb.ext.agents.history_agents
    ├── OutputFileError(OSError)                miniagents_nb.ext.agents.misc_agents
    ├── LLMError                                miniagents_nb.ext.llms.errors
    │   ├── LLMAuthenticationError
    │   ├── LLMRateLimitError
    │   ├── LLMBadRequestError
    │   ├── LLMServerError
    │   ├── LLMTimeoutError
    │   ├── LLMConnectionError
    │   ├── LLMResponseError
    │   └── LLMDependencyError(ImportError)
    ├── ToolError                               miniagents_nb.ext.llms.tool_errors
    │   ├── ToolDefinitionError(ValueError)
    │   ├── ToolArgumentsError(ValueError)
    │   ├── ToolNotFoundError(LookupError)
    │   ├── ToolTimeoutError(TimeoutError)
    │   └── ToolLoopLimitError
    ├── RayAgentError                           miniagents_nb.ext.ray.errors
    │   ├── RayDependencyError(ImportError)
    │   ├── RayConnectionError(ConnectionError)
    │   ├── RayAgentImportError(ImportError)
    │   ├── WireFormatError(TypeError)
    │   ├── RayResourcesError
    │   ├── RayWorkerDiedError
    │   └── RemoteAgentError                    (named after the remote exception's type)
    ├── OrchestrationError                      miniagents_nb.orchestration.errors
    │   ├── OrchestratorSetupError(ValueError)
    │   ├── UnknownAgentError(LookupError)
    │   ├── OrchestrationLimitError
    │   │   ├── TooManyErrorsError(OverflowError)
    │   │   ├── MaxStepsReachedError
    │   │   └── TooManyTurnsError
    │   ├── ResponseParseError(ValueError)
    │   ├── MaxContextError
    │   └── LLMAdapterError
    └── NotebookInputError(RuntimeError)        miniagents_nb.jupyter.user_agent

The errors of optional layers live beside the code that raises them (so the core never imports them); the tree
above is checked against the package by a test.
"""

from __future__ import annotations

__all__ = [
    "AgentDefinitionError",
    "AppenderClosedError",
    "AppenderNotOpenError",
    "ContextReentryError",
    "ForeignLoopError",
    "FunctionNotProvidedError",
    "HandlerDefinitionError",
    "InvalidArgumentsError",
    "MessageTypeError",
    "MiniAgentsError",
    "NoActiveContextError",
    "NotAwaitedError",
    "NotFreezableError",
    "PromisingContextError",
    "PromiseNotReadyError",
    "PromisingError",
    "RecordedError",
    "ReplayMismatchError",
    "RunStoreError",
    "RunningEventLoopError",
    "SequenceCycleError",
    "SyncContextManagerError",
    "UnknownRunError",
    "WrongActiveContextError",
]


class MiniAgentsError(Exception):
    """Root of every error raised on purpose by miniagents_nb."""


class PromisingError(MiniAgentsError):
    """Misuse of the promise engine (promises, appenders, contexts)."""


class FunctionNotProvidedError(PromisingError):
    """A promise needs a resolver or streamer and got neither."""


class AppenderNotOpenError(PromisingError):
    """Something was appended to (or streamed from) an appender that was never opened."""


class AppenderClosedError(PromisingError):
    """Something was appended to an appender (a reply sequence, an agent call's input) that is already closed."""


class HandlerDefinitionError(PromisingError, ValueError):
    """An event handler given to a context is not an async function, so it could never be awaited."""


class PromiseNotReadyError(PromisingError, RuntimeError):
    """A promise's value was asked for without waiting (`result_now()`) before it was known."""


class SequenceCycleError(PromisingError, RuntimeError):
    """A message sequence was given itself to flatten, directly or through other sequences (agent A replies agent
    B's reply, and B replies A's): it could never end, so the error takes that item's place and the sequences end."""


class PromisingContextError(PromisingError, RuntimeError):
    """A context (`MiniAgents`, `PromisingContext`, `InteractionContext`) is missing or used the wrong way."""


class NoActiveContextError(PromisingContextError):
    """An operation needs an active context and none is active in the current task."""


class WrongActiveContextError(PromisingContextError, TypeError):
    """The active context is of another kind than the one asked for."""


class ContextReentryError(PromisingContextError):
    """A context that is already active was activated again."""


class SyncContextManagerError(PromisingContextError):
    """An async-only context manager was used with `with`, or a sync-only one with `async with`."""


class RunningEventLoopError(PromisingContextError):
    """The blocking `run()` facade was called while an event loop is already running in this thread."""


class ForeignLoopError(PromisingContextError):
    """A promise was awaited from another thread's event loop while its own loop's thread is blocked waiting for
    that very `run()` (a notebook cell's `MiniAgents().run(...)` awaiting a reply an earlier cell started)."""


class MessageTypeError(MiniAgentsError, TypeError):
    """A value that cannot become a message was sent, replied or triggered with."""


class NotAwaitedError(MiniAgentsError, TypeError):
    """A promise was used as if it were its value (`reply[0]`, `len(reply)`) before it was awaited.

    A `TypeError`, as Python's own "not subscriptable" is, so code that catches that keeps working."""


class NotFreezableError(MiniAgentsError, TypeError):
    """A value that cannot be frozen was given to an immutable model or as an agent's frozen argument."""


class AgentDefinitionError(MiniAgentsError, ValueError):
    """An agent (or a handler) was defined with something that cannot work, e.g. a sync function."""


class InvalidArgumentsError(MiniAgentsError, ValueError):
    """Arguments that contradict each other were passed together."""


class RunStoreError(MiniAgentsError, OSError):
    """A run store (`miniagents_nb.runs.RunStore`) cannot be read: the file is missing, locked, corrupt or newer.

    Recording never raises it (a store that cannot be written warns once and stops recording); reading does.
    """


class UnknownRunError(RunStoreError, LookupError):
    """`RunStore.load(run_id)` was asked for a run the store does not hold (never recorded, or pruned)."""


class ReplayMismatchError(MiniAgentsError, LookupError):
    """An LLM agent answering from a run store (`MINIAGENTS_NB_LLM=replay`, `MiniAgents(replay_from=...)`) made a
    request the store holds no reply for: the message names the agent and shows the request.

    It ends that agent's reply only (like any LLM failure, at the message); other agents go on.
    """


class RecordedError(MiniAgentsError):
    """A failure as a run store recorded it: the original exception's type name, message and traceback, as text.

    A recorded call's `error` is one of these (the original exception object is gone with the process that raised
    it); `type_name` and `traceback_text` say what it was and where.
    """

    def __init__(self, type_name: str, text: str, traceback_text: str | None = None) -> None:
        super().__init__(f"{type_name}: {text}" if text else type_name)
        self.type_name = type_name
        self.text = text
        self.traceback_text = traceback_text
