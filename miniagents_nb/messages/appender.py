"""`MessageSequenceAppender`: where an agent's replies (or a call's input) go in, frozen at the call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from typing_extensions import Self

from miniagents_nb.errors import AppenderClosedError, AppenderNotOpenError
from miniagents_nb.messages.freezing import freeze_message_item

if TYPE_CHECKING:
    from miniagents_nb.promising.piece_stream import PieceStream

__all__ = ["MessageSequenceAppender"]


class MessageSequenceAppender:
    """Where replies (or an agent call's input) are appended; each item is frozen synchronously, at the call.

    Every `MessageSequence` is its own appender (`sequence.message_appender is sequence`): a separate appender
    object would hold its sequence and be held by it, a reference cycle per agent call that only the cyclic garbage
    collector could free. This class holds the appending part; the sequence supplies the flattening below it.
    """

    __slots__ = ()

    _NEW, _OPEN, _CLOSED = 0, 1, 2

    _state: int
    _capture_errors: bool

    if TYPE_CHECKING:  # supplied by `FlatSequence`, which every appender also is

        def append_item(self, item: Any, out_of_order: bool = False) -> None: ...

        def close_input(self) -> None: ...

        @property
        def output_stream(self) -> PieceStream: ...

    @property
    def was_open(self) -> bool:
        """Whether `open()` was ever called."""
        return self._state != self._NEW

    @property
    def pieces_so_far(self) -> list[Any]:
        """What the sequence put out so far (message promises and exception pieces; read it, never change it)."""
        pieces: list[Any] = self.output_stream.pieces
        return pieces

    @property
    def is_open(self) -> bool:
        """Whether messages can be appended now."""
        return self._state == self._OPEN

    def open(self) -> Self:
        """Allow appending."""
        if self._state == self._CLOSED:
            raise AppenderClosedError("This message sequence is closed and cannot be reopened.")
        self._state = self._OPEN  # type: ignore[misc]  # a slot of the sequence (see the class docstring)
        return self

    def append(self, piece: Any, out_of_order: bool = False) -> Self:
        """Append messages (any nesting); `out_of_order` lets them overtake the items appended before them."""
        if self._state != self._OPEN:
            if self._state == self._NEW:
                raise AppenderNotOpenError("This message sequence is not open yet: open it before appending.")
            raise AppenderClosedError(
                "This message sequence is closed: the agent already finished (or called `afinish_early()`), "
                "or the call's input was already finished, so nothing more can be sent to it."
            )
        self.append_item(freeze_message_item(piece), out_of_order)
        return self

    def inject_out_of_order(self, piece: Any) -> Self:
        """Append out of order."""
        return self.append(piece, out_of_order=True)

    def close(self, exc_value: BaseException | None = None) -> bool:
        """Close the sequence; with `capture_errors` an exception becomes its last item (and is suppressed)."""
        if self._state == self._CLOSED:
            return False
        suppress = False
        try:
            if exc_value is not None and self._capture_errors and not isinstance(exc_value, AppenderClosedError):
                self.append_item(exc_value)
                suppress = True
        finally:  # whatever happened above, the sequence ends: a consumer must never wait for ever
            self._state = self._CLOSED  # type: ignore[misc]  # a slot of the sequence
            self.close_input()
        return suppress

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, exc_type: Any, exc_value: BaseException | None, exc_traceback: Any) -> bool:
        return self.close(exc_value)
