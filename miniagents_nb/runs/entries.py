"""What a recording reads of the promises it watches: the entry a call list or a reply records for a piece, and the
samples of a streamed reply (see `miniagents_nb.runs.recorder`)."""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from miniagents_nb.messages import Message, MessagePromise, MessageSequencePromise
from miniagents_nb.runs.rows import RunRef

__all__ = ["MESSAGE_TYPES", "Stream", "entry_of", "is_message", "list_entries"]

MESSAGE_TYPES: set[type] = set()
"""The message classes seen so far: `isinstance` against `Message` (an ABC, as pydantic models are) costs a few times
more than a look in this set, and the recorder asks once per reply."""


def is_message(value: Any) -> bool:
    """`isinstance(value, Message)`, noting the class in `MESSAGE_TYPES`."""
    if isinstance(value, Message):
        MESSAGE_TYPES.add(type(value))
        return True
    return False


_known_beforehand = attrgetter("known_beforehand")


class Stream:
    """A streamed reply being sampled: how many tokens it had at each look, and when."""

    __slots__ = ("call_id", "counts", "position", "promise", "replied_at", "run", "times")

    def __init__(self, run: RunRef, call_id: int, position: int, promise: MessagePromise, replied_at: float) -> None:
        self.run = run
        self.call_id = call_id
        self.position = position
        self.promise = promise
        self.replied_at = replied_at
        self.counts: list[int] = []
        self.times: list[float] = []


def entry_of(promise: MessagePromise, final: bool) -> Any:
    """The message, the failure, or None (not produced); `...` when it may still come."""
    known = promise.known_beforehand
    if isinstance(known, Message):  # a promise made of a whole message (most replies): that message, as it is
        return known
    if not promise.producer_ended:
        return None if final else ...
    try:
        return promise.result_now()
    except BaseException as error:
        return error


def list_entries(sequence: MessageSequencePromise, final: bool) -> list[Any] | None:
    """A call list's entries (what `entry_of` gives for each piece), or None while it may still change."""
    if not sequence.producer_ended and not final:
        return None
    pieces = sequence.pieces_so_far
    try:  # most lists are whole messages only: taken in bulk, without a Python step per entry
        entries = list(map(_known_beforehand, pieces))
    except AttributeError:  # an exception piece: entry by entry
        pass
    else:
        if all(kind in MESSAGE_TYPES or issubclass(kind, Message) for kind in set(map(type, entries))):
            return entries
    entries = []
    for item in pieces:
        if isinstance(item, BaseException):
            entries.append(item)
            continue
        known = item.known_beforehand
        if isinstance(known, Message):  # a whole message (as most are): what `entry_of` gives, one call less
            entries.append(known)
            continue
        entry = entry_of(item.original_promise, final)
        if entry is ...:
            return None
        entries.append(entry)
    return entries
