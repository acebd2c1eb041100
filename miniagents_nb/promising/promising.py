"""Upstream's module path for the promise classes (`miniagents.promising.promising`)."""

from __future__ import annotations

from miniagents_nb.promising.context import PromisingContext
from miniagents_nb.promising.promise import Promise
from miniagents_nb.promising.streamed import StreamAppender, StreamedPromise

__all__ = ["Promise", "PromisingContext", "StreamAppender", "StreamedPromise"]
