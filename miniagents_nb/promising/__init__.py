"""The promise engine: contexts that own background tasks, promises, replayable streams and flat sequences."""

from __future__ import annotations

from miniagents_nb.promising.context import PromiseResolvedEventHandler, PromisingContext
from miniagents_nb.promising.promise import Promise, PromiseResolver
from miniagents_nb.promising.sentinels import (
    AWAIT,
    CLEAR,
    END_OF_QUEUE,
    END_OF_UNORDERED_QUEUE,
    FAILED,
    NO_VALUE,
    Sentinel,
)
from miniagents_nb.promising.sequence import FlatSequence, SequenceFlattener
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
    "Sentinel",
    "StreamAppender",
    "StreamedPromise",
]
