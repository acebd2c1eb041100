"""miniagents_nb: a Jupyter-first toolkit for LLM multi-agent systems, compatible with the MiniAgents API.

Agents are async functions that exchange immutable messages; their replies are replayable promises of message
sequences, flattened in the background. Importing this package has no side effects.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from miniagents_nb.agents import (
    AgentCall,
    AgentCallNode,
    AgentCallStatus,
    AgentDefinition,
    AgentFunction,
    AgentInteractionNode,
    AgentReplyNode,
    InteractionContext,
    MiniAgent,
    MiniAgents,
    PersistMessageEventHandler,
    PersistMessagesEventHandler,
    miniagent,
)
from miniagents_nb.errors import MiniAgentsError
from miniagents_nb.messages import (
    ErrorMessage,
    Message,
    MessagePromise,
    MessageSequence,
    MessageSequencePromise,
    MessageTokenAppender,
    MessageTokenStreamer,
    MessageType,
    SingleMessageType,
    StrictMessage,
    TextMessage,
    TextToken,
    Token,
    as_single_text_promise,
)
from miniagents_nb.promising import (
    NO_VALUE,
    FlatSequence,
    Promise,
    PromisingContext,
    StreamAppender,
    StreamCursor,
    StreamedPromise,
)
from miniagents_nb.promising.ext.frozen import Frozen, FrozenType, cached_privately
from miniagents_nb.runs import RecordedRun, RunStore

try:
    __version__ = version("miniagents-nb")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "__version__",
    "AgentCall",
    "AgentCallNode",
    "AgentCallStatus",
    "AgentDefinition",
    "AgentFunction",
    "AgentInteractionNode",
    "AgentReplyNode",
    "as_single_text_promise",
    "cached_privately",
    "ErrorMessage",
    "FlatSequence",
    "Frozen",
    "FrozenType",
    "InteractionContext",
    "load_ipython_extension",
    "Message",
    "MessagePromise",
    "MessageSequence",
    "MessageSequencePromise",
    "MessageTokenAppender",
    "MessageTokenStreamer",
    "MessageType",
    "MiniAgent",
    "miniagent",
    "MiniAgents",
    "MiniAgentsError",
    "NO_VALUE",
    "PersistMessageEventHandler",
    "PersistMessagesEventHandler",
    "Promise",
    "PromisingContext",
    "RecordedRun",
    "RunStore",
    "show",
    "SingleMessageType",
    "StreamAppender",
    "StreamCursor",
    "StreamedPromise",
    "StrictMessage",
    "TextMessage",
    "TextToken",
    "Token",
    "unload_ipython_extension",
]


def show(obj: Any, **options: Any) -> Any:
    """Display a live view of a sequence, message promise, message or orchestrator in a notebook cell.

    The notebook layer is imported only now (`pip install "miniagents-nb[jupyter]"`); see
    `miniagents_nb.jupyter.show` for the options.
    """
    return _notebook_layer().show(obj, **options)


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext miniagents_nb` (the notebook layer is imported only now, never by `import miniagents_nb`)."""
    _notebook_layer().load_ipython_extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext miniagents_nb`."""
    _notebook_layer().unload_ipython_extension(ipython)


def _notebook_layer() -> Any:
    try:
        return importlib.import_module("miniagents_nb.jupyter")
    except ModuleNotFoundError as error:
        if error.name != "miniagents_nb.jupyter":
            raise ImportError(
                f'The notebook layer needs `{error.name}`: install it with `pip install "miniagents-nb[jupyter]"`.'
            ) from error
        raise ImportError("This version of miniagents_nb has no notebook layer yet.") from error
