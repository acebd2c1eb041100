"""The promise engine's errors (the seeds' import path); they live in `miniagents_nb.errors`."""

from __future__ import annotations

from miniagents_nb.errors import (
    AppenderClosedError,
    AppenderNotOpenError,
    ContextReentryError,
    FunctionNotProvidedError,
    InvalidArgumentsError,
    MiniAgentsError,
    NoActiveContextError,
    PromisingContextError,
    PromisingError,
    RunningEventLoopError,
    SyncContextManagerError,
    WrongActiveContextError,
)

__all__ = [
    "AppenderClosedError",
    "AppenderNotOpenError",
    "ContextReentryError",
    "FunctionNotProvidedError",
    "InvalidArgumentsError",
    "MiniAgentsError",
    "NoActiveContextError",
    "PromisingContextError",
    "PromisingError",
    "RunningEventLoopError",
    "SyncContextManagerError",
    "WrongActiveContextError",
]
