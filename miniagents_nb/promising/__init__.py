"""The promise engine: contexts that own background tasks, promises, replayable streams and flat sequences."""

from __future__ import annotations

from miniagents_nb.compat import lazy_attributes
from miniagents_nb.promising.context import PromiseResolvedEventHandler, PromisingContext
from miniagents_nb.promising.cursor import StreamCursor
from miniagents_nb.promising.promise import Promise, PromiseResolver
from miniagents_nb.promising.sentinels import (
    END_OF_QUEUE,
    END_OF_UNORDERED_QUEUE,
    FAILED,
    NO_VALUE,
    Sentinel,
)
from miniagents_nb.promising.sequence import FlatSequence, SequenceFlattener, SequencePromise
from miniagents_nb.promising.streamed import PromiseStreamer, StreamAppender, StreamedPromise

__all__ = [
    "AWAIT",
    "CLEAR",
    "END_OF_QUEUE",
    "END_OF_UNORDERED_QUEUE",
    "FAILED",
    "NO_VALUE",
    "FlatSequence",
    "Promise",
    "PromiseResolvedEventHandler",
    "PromiseResolver",
    "PromiseStreamer",
    "PromisingContext",
    "SequenceFlattener",
    "SequencePromise",
    "Sentinel",
    "StreamAppender",
    "StreamCursor",
    "StreamedPromise",
]

__getattr__ = lazy_attributes(
    __name__,
    {
        "AWAIT": "miniagents_nb.ext.agents.aggregator_agents.AWAIT",
        "CLEAR": "miniagents_nb.ext.agents.aggregator_agents.CLEAR",
    },
)
