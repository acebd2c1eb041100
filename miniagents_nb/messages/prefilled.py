"""`PrefilledMessagePromise`: the promise of a message known from the start, made for the flattening hot path.

Every string or message an agent replies becomes one, so what it costs is paid per replied message: it is built with
four attribute writes, and the stream of its one token is made only if someone reads it.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

from miniagents_nb.messages.message import Message, MessagePromise
from miniagents_nb.promising.context import PromisingContext
from miniagents_nb.promising.streamed import FinishedPieceStream, PieceStream

__all__ = ["PrefilledMessagePromise", "prefilled_promise"]


class PrefilledMessagePromise(MessagePromise):
    """What `MessagePromise(prefill_message=message)` is, without the generic constructor.

    A prefilled promise is resolved from the start, so it never gets a resolver, a producer task, a token streamer
    or an error: those attributes are class attributes here, shadowing the slots, and nothing ever writes them (the
    code that would only runs for promises that are not resolved yet). Its replay stream (the message as its one
    token) is made when first read (`__getattr__` runs only while the slot is empty).
    """

    __slots__ = ()

    _resolver_fn = None
    _error = None
    _resolve_task = None
    _pump_task = None
    _streamer_fn = None
    _token_streamer = None
    _aux: ClassVar[dict[str, Any]] = {}  # type: ignore[misc]  # read by nothing once resolved; never written

    def __getattr__(self, name: str) -> Any:
        if name == "_stream":
            stream = self._stream = cast(PieceStream, FinishedPieceStream(self._result.message_to_tokens()))
            return stream
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


PrefilledMessagePromise.__name__ = "MessagePromise"
"""What `type(promise).__name__` says (a tutorial prints it): the same type as far as users can tell; the qualified
name (`repr` of the class) still tells a debugging reader which one it is."""

_new_promise = object.__new__


def prefilled_promise(message: Message, ctx: PromisingContext) -> MessagePromise:
    """The resolved promise of `message` under `ctx` (notifying the context's resolution listeners, if any)."""
    promise = _new_promise(PrefilledMessagePromise)
    promise._ctx = ctx
    promise._result = message
    promise.known_beforehand = message
    promise.message_class = type(message)
    if ctx.has_resolution_work():
        ctx.notify_promise_resolved(promise, message)
    return promise
