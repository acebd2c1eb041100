"""Upstream's module path for the promise engine's callable types."""

from __future__ import annotations

from miniagents_nb.promising.context import PromiseResolvedEventHandler
from miniagents_nb.promising.promise import PromiseResolver
from miniagents_nb.promising.sequence import SequenceFlattener
from miniagents_nb.promising.streamed import PromiseStreamer

__all__ = ["PromiseResolvedEventHandler", "PromiseResolver", "PromiseStreamer", "SequenceFlattener"]
