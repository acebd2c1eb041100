"""Messages, message promises and flat message sequences.

A message is an immutable `Frozen` model. A `MessagePromise` streams a message's tokens and resolves to the
message. A `MessageSequencePromise` streams message promises: whatever an agent replies (strings, dicts, models,
messages, promises, lists, generators, async iterables, other agents' replies, nested to any depth) is flattened
into it in the background, in order, except for what was placed out of order.
"""

from __future__ import annotations

import asyncio
import traceback
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Union, cast

from pydantic import BaseModel, ConfigDict, model_validator

from miniagents_nb.errors import (
    AppenderClosedError,
    AppenderNotOpenError,
    InvalidArgumentsError,
    MessageTypeError,
)
from miniagents_nb.promising.context import PromisingContext
from miniagents_nb.promising.ext.frozen import Frozen, cached_field, to_json_compatible
from miniagents_nb.promising.sentinels import NO_VALUE, Sentinel
from miniagents_nb.promising.sequence import FlatSequence
from miniagents_nb.promising.streamed import FinishedPieceStream, PieceStream, StreamAppender, StreamedPromise

if TYPE_CHECKING:
    from miniagents_nb.utils import as_single_text_promise as _as_single_text_promise  # noqa: F401

__all__ = [
    "ErrorMessage",
    "Message",
    "MessagePromise",
    "MessageSequence",
    "MessageSequenceAppender",
    "MessageSequencePromise",
    "MessageTokenAppender",
    "MessageTokenStreamer",
    "MessageType",
    "SafeMessageSequencePromise",
    "SingleMessageType",
    "StrictMessage",
    "TextMessage",
    "TextToken",
    "Token",
    "freeze_message_item",
]

MessageTokenStreamer = Callable[[dict[str, Any]], AsyncIterator[Any]]
"""`def streamer(auxiliary_field_collector) -> AsyncIterator[token]`; fields put in the dict land on the message."""

SingleMessageType = Union[str, dict[str, Any], BaseModel, "Message", "MessagePromise", BaseException]
MessageType = Union[SingleMessageType, Iterable[Any], AsyncIterable[Any]]  # noqa: UP007


class Token(Frozen):
    """A piece of a streamed message (a plain `str` is a token too)."""

    @classmethod
    def non_metadata_fields(cls) -> tuple[str, ...]:
        """Fields that carry the content itself rather than metadata about it."""
        return ()


class TextToken(Token):
    """A token with text `content`."""

    content: str | None = None

    def __init__(self, content: str | None = None, **metadata: Any) -> None:
        super().__init__(content=content, **metadata)

    @classmethod
    def non_metadata_fields(cls) -> tuple[str, ...]:
        return ("content",)

    def _as_string(self) -> str:
        return self.content or ""


def _message_to_dict_item(value: Any) -> Any:
    if isinstance(value, Message):
        return {"__hash_key": value.hash_key}
    if isinstance(value, Frozen):
        return _serialize_fields(value)
    if isinstance(value, tuple):
        return [_message_to_dict_item(item) for item in value]
    return to_json_compatible(value)


def _serialize_fields(model: Frozen) -> dict[str, Any]:
    """Serialize a model, putting nested messages' hash keys where the messages are (they persist separately)."""
    result: dict[str, Any] = {}
    for name, value in model:
        if isinstance(value, Message):
            result[f"{name}__hash_key"] = value.hash_key
        elif isinstance(value, tuple) and value and all(isinstance(item, Message) for item in value):
            result[f"{name}__hash_keys"] = [item.hash_key for item in value]
        else:
            result[name] = _message_to_dict_item(value)
    return result


def _nested_messages(value: Any) -> Iterator[Message]:
    if isinstance(value, Message):
        yield from value.sub_messages()
        yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from _nested_messages(item)
    elif isinstance(value, Frozen):
        for _, item in value:
            yield from _nested_messages(item)


class Message(Token):
    """An immutable message; a message is also its own single token when streamed whole."""

    @model_validator(mode="before")
    @classmethod
    def _text_is_content(cls, data: Any) -> Any:
        # The older seeds call a message's text `text`; it is the same thing as `content`.
        if isinstance(data, dict) and "text" in data and data.get("content") is None and "text" not in cls.model_fields:
            data = dict(data)
            data["content"] = data.pop("text")
        return data

    @property
    def text(self) -> Any:
        """The message's text (an alias of `content`, as the older seeds name it)."""
        return getattr(self, "content", None)

    @classmethod
    def token_class(cls) -> type[Token]:
        """The class of the tokens this message is streamed in."""
        return Token

    @classmethod
    def tokens_to_message(cls, tokens: Iterable[Any], **extra_fields: Any) -> Message:
        """Build the message from streamed tokens (only text messages can be streamed token by token)."""
        raise MessageTypeError(
            f"{cls.__name__} does not support token streaming: stream tokens into a TextMessage (or a subclass), "
            "or prefill the promise with a whole message."
        )

    def message_to_tokens(self) -> tuple[Any, ...]:
        """The tokens a prefilled promise of this message streams: the message itself."""
        return (self,)

    @cached_field
    def as_promise(self) -> MessagePromise:
        """An already resolved promise of this message (the same promise every time)."""
        return MessagePromise(prefill_message=self)

    @classmethod
    def promise(
        cls,
        start_soon: bool | Sentinel = NO_VALUE,
        message_token_streamer: MessageTokenStreamer | MessageTokenAppender | None = None,
        **known_beforehand: Any,
    ) -> MessagePromise:
        """A promise of a message of this class: streamed from `message_token_streamer`, or made of the fields."""
        if message_token_streamer is None:
            return cls(**known_beforehand).as_promise
        return MessagePromise(
            start_soon=start_soon,
            message_token_streamer=message_token_streamer,
            message_class=cls,
            **known_beforehand,
        )

    def _as_string(self) -> str:
        return f"```json\n{self.full_json}\n```"

    def serialize(self) -> dict[str, Any]:
        """JSON-compatible fields; nested messages appear as `<field>__hash_key(s)` (they persist on their own)."""
        return _serialize_fields(self)

    def sub_messages(self) -> Iterator[Message]:
        """Every message nested in this one, depth first, children before their parents."""
        for _, value in self:
            yield from _nested_messages(value)

    @property
    def persistence_not_needed(self) -> bool:
        """Whether persistence handlers should skip this message."""
        return bool(self.__dict__.get("_persistence_not_needed", False))

    async def aset_persistence_not_needed(self, value: bool = True) -> bool:
        """Opt this message out of (or back into) persistence; returns the previous value."""
        previous = self.persistence_not_needed
        self.__dict__["_persistence_not_needed"] = value
        return previous


class StrictMessage(Message):
    """A message that accepts declared fields only."""

    model_config = ConfigDict(extra="forbid")


class TextMessage(Message, TextToken):
    """A message whose string form is its text (`content`, or `content_template` filled with the fields)."""

    content: str | None = None
    content_template: str | None = None

    def __init__(self, content: str | None = None, **metadata: Any) -> None:
        super().__init__(content=content, **metadata)

    @classmethod
    def token_class(cls) -> type[Token]:
        return TextToken

    @classmethod
    def non_metadata_fields(cls) -> tuple[str, ...]:
        return ("content", "content_template")

    @classmethod
    def tokens_to_message(cls, tokens: Iterable[Any], **extra_fields: Any) -> Message:
        try:
            content = "".join(tokens)  # the common case: str tokens
        except TypeError:
            content = "".join([str(token) for token in tokens])
        skip = cls.non_metadata_fields()
        metadata = {key: value for key, value in extra_fields.items() if key not in skip and key != "class_"}
        return cls(content=content, **metadata)

    @classmethod
    def promise(  # type: ignore[override]
        cls,
        content: str | None = None,
        *,
        content_template: str | None = None,
        start_soon: bool | Sentinel = NO_VALUE,
        message_token_streamer: MessageTokenStreamer | MessageTokenAppender | None = None,
        **known_beforehand: Any,
    ) -> MessagePromise:
        """A promise of a text message: its tokens come from `message_token_streamer`, or it is `content`."""
        if message_token_streamer is None:
            return cls(content, content_template=content_template, **known_beforehand).as_promise
        if content is not None or content_template is not None:
            raise InvalidArgumentsError(
                "If you provide `message_token_streamer` parameter, you cannot provide `content` or "
                "`content_template` parameters."
            )
        return MessagePromise(
            start_soon=start_soon,
            message_token_streamer=message_token_streamer,
            message_class=cls,
            content_template=None,
            **known_beforehand,
        )

    def _as_string(self) -> str:
        if self.content_template is not None:
            return self.content_template.format(**dict(self))
        return self.content or ""


class ErrorMessage(TextMessage):
    """A failure turned into a message (`errors_as_messages`): its text is "<ErrorType>: <message>"."""


def error_to_text(error: BaseException, with_traceback: bool = False) -> str:
    """How an exception reads inside an `ErrorMessage`."""
    if with_traceback:
        return "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip("\n")
    return f"{type(error).__name__}: {error}"


class MessageTokenAppender(StreamAppender[Any]):
    """Push tokens of one message (e.g. from an LLM SDK callback); `auxiliary_field_collector` adds fields."""

    __slots__ = ("auxiliary_field_collector",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.auxiliary_field_collector: dict[str, Any] = {}

    def append(self, piece: Any) -> MessageTokenAppender:
        """Add a token: a `str` (kept as is), a `Token`, or a dict / model turned into a `Token`."""
        if not isinstance(piece, (str, Token)):
            if isinstance(piece, dict):
                piece = Token(**piece)
            elif isinstance(piece, BaseModel):
                piece = Token(**dict(piece))
            else:
                raise MessageTypeError(
                    f"Unexpected token type: {type(piece)}. Append a str, a Token, a dict or a pydantic model."
                )
        super().append(piece)
        return self


class MessagePromise(StreamedPromise[Any, Message]):
    """A promise of one message, streamable token by token; `known_beforehand` is readable before any token."""

    __slots__ = ("_aux", "_token_streamer", "known_beforehand", "message_class")

    def __init__(
        self,
        start_soon: bool | Sentinel = NO_VALUE,
        message_token_streamer: MessageTokenStreamer | MessageTokenAppender | None = None,
        prefill_message: Message | None = None,
        message_class: type[Message] | None = None,
        **known_beforehand: Any,
    ) -> None:
        if prefill_message is not None:
            if message_token_streamer is not None or known_beforehand or message_class is not None:
                raise InvalidArgumentsError(
                    "A prefilled MessagePromise takes no `message_token_streamer`, `message_class` or "
                    "known_beforehand fields: the message already has them."
                )
            self.known_beforehand: Frozen = prefill_message
            self.message_class: type[Message] = type(prefill_message)
            self._aux: dict[str, Any] = {}
            self._token_streamer: MessageTokenStreamer | None = None
            super().__init__(prefill_pieces=prefill_message.message_to_tokens(), prefill_result=prefill_message)
            return
        if message_token_streamer is None:
            raise InvalidArgumentsError(
                "Either 'prefill_message' or 'message_token_streamer' parameter must be provided."
            )
        if message_class is None:
            raise InvalidArgumentsError(
                "A streamed MessagePromise needs `message_class=` (e.g. TextMessage) to build the final message; "
                "or use `TextMessage.promise(message_token_streamer=...)`."
            )
        self.message_class = message_class
        self.known_beforehand = Frozen(**known_beforehand)
        if isinstance(message_token_streamer, StreamAppender):
            if not message_token_streamer.was_open:
                raise AppenderNotOpenError(
                    "The MessageTokenAppender must be open before a MessagePromise is created from it: "
                    "create the promise inside `with appender:`."
                )
            self._aux = getattr(message_token_streamer, "auxiliary_field_collector", {})
            self._token_streamer = None
            super().__init__(streamer=message_token_streamer, start_soon=start_soon)
        else:
            self._aux = {}
            self._token_streamer = message_token_streamer
            super().__init__(streamer=self._stream_tokens, start_soon=start_soon)

    @classmethod
    def _prefilled(cls, message: Message, ctx: PromisingContext) -> MessagePromise:
        """`MessagePromise(prefill_message=message)` for the flattening hot path: same object, built directly.

        Flattening makes one of these per replied string or message; skipping the generic constructor (context
        lookup, argument checks) is a measurable share of an agent call.
        """
        promise = cls.__new__(cls)
        promise._ctx = ctx
        promise._resolver_fn = None
        promise._result = message
        promise._error = None
        promise._resolve_task = None
        promise._pump_task = None
        promise._streamer_fn = None
        promise._stream = cast(PieceStream, FinishedPieceStream(message.message_to_tokens()))
        promise.known_beforehand = message
        promise.message_class = type(message)
        promise._aux = {}
        promise._token_streamer = None
        if ctx._has_resolution_work():
            ctx._promise_resolved(promise, message)
        return promise

    def _stream_tokens(self, _promise: Any) -> AsyncIterator[Any]:
        assert self._token_streamer is not None
        return self._token_streamer(self._aux)

    def _whole_from_pieces(self, pieces: list[Any]) -> Message:
        for piece in pieces:
            if isinstance(piece, BaseException):
                raise piece
        fields = {**self._aux, **self.known_beforehand.as_kwargs()}
        return self.message_class.tokens_to_message(pieces, **fields)


class _ErrorsAsMessagePromise(MessagePromise):
    """A view of a streamed message promise whose failure becomes text: a last token and an `ErrorMessage`."""

    __slots__ = ("_failed", "_original", "_with_traceback")

    def __init__(self, original: MessagePromise, with_traceback: bool) -> None:
        self._original = original
        self._failed = False
        self._with_traceback = with_traceback
        self.message_class = original.message_class
        self.known_beforehand = original.known_beforehand
        self._aux = original._aux
        self._token_streamer = None
        StreamedPromise.__init__(self, streamer=self._stream_safely, start_soon=False)

    async def _stream_safely(self, _promise: Any) -> AsyncIterator[Any]:
        try:
            async for token in self._original:
                yield token
        except Exception as error:
            self._failed = True
            yield "\n" + error_to_text(error, self._with_traceback)

    def _whole_from_pieces(self, pieces: list[Any]) -> Message:
        for piece in pieces:
            if isinstance(piece, BaseException):
                raise piece
        if self._failed:
            return ErrorMessage(content="".join([str(piece) for piece in pieces]))
        original = self._original
        if not original.is_resolved:
            original._resolve_when_finished()
        if original._error is not None:
            raise original._error
        return original._result  # type: ignore[no-any-return]


def freeze_message_item(item: Any) -> Any:
    """Make a reply / input item immutable right away (raising on what can never be a message).

    Iterables are consumed now (a generator may not be around later); async iterables are kept and consumed when
    the sequence is flattened.
    """
    if type(item) is str or isinstance(item, (Message, MessagePromise, str, BaseException, StreamedPromise)):
        return item
    if isinstance(item, BaseModel):
        return Message(**dict(item))
    if isinstance(item, dict):
        return Message(**item)
    if hasattr(item, "__aiter__"):
        return item
    if hasattr(item, "__iter__") and not isinstance(item, (bytes, bytearray)):
        return tuple([freeze_message_item(element) for element in item])
    raise MessageTypeError(
        f"Unexpected message type: {type(item)}. Send a str, dict, pydantic model, Message, MessagePromise, "
        "exception, or an iterable / async iterable of those."
    )


def _is_ready(item: Any) -> bool:
    """Whether an already frozen item can be flattened without waiting for anything."""
    if type(item) is str or isinstance(item, (Message, MessagePromise, BaseException)):
        return True
    if isinstance(item, tuple):
        return all(_is_ready(element) for element in item)
    if isinstance(item, MessageSequencePromise):
        return item._stream.finished
    return False


class MessageSequencePromise(StreamedPromise[MessagePromise, tuple[Message, ...]]):
    """A replayable stream of message promises; awaiting it gives the tuple of messages."""

    __slots__ = ("_sequence",)

    def __init__(self, *, _sequence: MessageSequence | None = None, **kwargs: Any) -> None:
        self._sequence = _sequence
        if _sequence is not None:
            kwargs["streamer"] = _sequence._out
        super().__init__(**kwargs)

    def _start_soon(self) -> None:
        self._ensure_producing()

    def _ensure_producing(self) -> None:
        if self._sequence is not None:
            self._sequence._start()
        else:
            super()._ensure_producing()

    def _on_stream_finished(self) -> None:
        if self._ctx._has_resolution_work() and self._resolve_task is None and not self.is_resolved:
            self._resolve_task = self._ctx.start_soon(self._aresolve_once())

    async def _aresolver(self) -> tuple[Message, ...]:
        pieces = await self._aall_pieces()
        for piece in pieces:
            if isinstance(piece, BaseException):
                raise piece
        return tuple([await message_promise for message_promise in pieces])

    async def aresolve(self) -> tuple[Message, ...]:
        """Wait for every message of the sequence; the same tuple every time.

        Like a message's, the whole is a pure function of the pieces (awaiting message promises only reads their
        cached results), so it is computed right in the awaiting task: no extra task, no shield. A cancelled awaiter
        loses nothing and caches nothing; the first awaiter to finish publishes the tuple everybody gets.
        """
        if self._result is NO_VALUE and self._error is None:
            pieces = await self._aall_pieces()
            try:
                messages = []
                for piece in pieces:
                    if isinstance(piece, BaseException):
                        raise piece
                    messages.append(await piece)
            except asyncio.CancelledError:
                raise  # maybe this awaiter being cancelled: nothing to cache
            except BaseException as error:
                if self._result is NO_VALUE and self._error is None:
                    self._set_error(error)
            else:
                if self._result is NO_VALUE and self._error is None:
                    self._set_result(tuple(messages))
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[no-any-return]

    def as_single_text_promise(self, **kwargs: Any) -> MessagePromise:
        """One text message promise joining every message of the sequence (lazy: starts when consumed)."""
        from miniagents_nb.utils import as_single_text_promise

        kwargs["start_soon"] = False
        return as_single_text_promise(self, **kwargs)

    def as_single_promise(self, **kwargs: Any) -> MessagePromise:
        """The older name of `as_single_text_promise`."""
        return self.as_single_text_promise(**kwargs)


class SafeMessageSequencePromise(MessageSequencePromise):
    """A sequence promise whose failures arrive as `ErrorMessage`s (`errors_as_messages`)."""

    __slots__ = ()


class MessageSequenceAppender:
    """Where replies (or an agent call's input) are appended; each item is frozen synchronously, at the call."""

    __slots__ = ("_capture_errors", "_sequence", "_state")

    _NEW, _OPEN, _CLOSED = 0, 1, 2

    def __init__(self, sequence: MessageSequence, capture_errors: bool) -> None:
        self._sequence = sequence
        self._capture_errors = capture_errors
        self._state = self._NEW

    @property
    def was_open(self) -> bool:
        """Whether `open()` was ever called."""
        return self._state != self._NEW

    @property
    def is_open(self) -> bool:
        """Whether messages can be appended now."""
        return self._state == self._OPEN

    def open(self) -> MessageSequenceAppender:
        """Allow appending."""
        if self._state == self._CLOSED:
            raise AppenderClosedError("This message sequence is closed and cannot be reopened.")
        self._state = self._OPEN
        return self

    def append(self, piece: Any, out_of_order: bool = False) -> MessageSequenceAppender:
        """Append messages (any nesting); `out_of_order` lets them overtake the items appended before them."""
        if self._state != self._OPEN:
            if self._state == self._NEW:
                raise AppenderNotOpenError("This message sequence is not open yet: open it before appending.")
            raise AppenderClosedError(
                "This message sequence is closed: the agent already finished (or called `afinish_early()`), "
                "or the call's input was already finished, so nothing more can be sent to it."
            )
        self._sequence._append(freeze_message_item(piece), out_of_order)
        return self

    def inject_out_of_order(self, piece: Any) -> MessageSequenceAppender:
        """Append out of order."""
        return self.append(piece, out_of_order=True)

    def close(self, exc_value: BaseException | None = None) -> bool:
        """Close the sequence; with `capture_errors` an exception becomes its last item (and is suppressed)."""
        if self._state == self._CLOSED:
            return False
        suppress = False
        if exc_value is not None and self._capture_errors and not isinstance(exc_value, AppenderClosedError):
            self._sequence._append(exc_value, False)
            suppress = True
        self._state = self._CLOSED
        self._sequence._close_input()
        return suppress

    def __enter__(self) -> MessageSequenceAppender:
        return self.open()

    def __exit__(self, exc_type: Any, exc_value: BaseException | None, exc_traceback: Any) -> bool:
        return self.close(exc_value)


class MessageSequence(FlatSequence[Any, MessagePromise]):
    """Flattens whatever is appended into one sequence of message promises.

    Items that are ready (strings, messages, promises, exceptions, tuples of those) are appended to the output
    synchronously, with no task; only items that must be waited for (other sequences, async iterables) are walked
    by a task: one for the ordered lane, one per out-of-order item. Nothing is pulled from a nested sequence before
    this sequence is started (at once with `start_soon`, otherwise when first consumed).
    """

    __slots__ = (
        "_backlog",
        "_ctx",
        "_errors_as_messages",
        "_input_closed",
        "_on_start",
        "_out",
        "_started",
        "_tracebacks_in_messages",
        "_unordered_running",
        "_unordered_waiting",
        "_walking",
        "message_appender",
        "on_message",
    )

    message_appender: MessageSequenceAppender
    sequence_promise: MessageSequencePromise

    def __init__(
        self,
        appender_capture_errors: bool | Sentinel = NO_VALUE,
        start_soon: bool | Sentinel = NO_VALUE,
        errors_as_messages: bool | Sentinel = NO_VALUE,
        *,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        # FlatSequence.__init__ is not called on purpose: this engine does not go through generic streamers.
        ctx = PromisingContext.get_current()
        self._ctx = ctx
        if errors_as_messages is NO_VALUE:
            errors_as_messages = bool(getattr(ctx, "errors_as_messages", False))
        if appender_capture_errors is NO_VALUE:
            appender_capture_errors = ctx.appenders_capture_errors_by_default
        self._errors_as_messages = bool(errors_as_messages)
        self._tracebacks_in_messages = bool(getattr(ctx, "error_tracebacks_in_messages", False))
        self._on_start = on_start
        self.on_message: Callable[[MessagePromise], None] | None = None
        """Called with every message promise that originates in this sequence (set by observed agent calls)."""
        self._started = False
        self._input_closed = False
        self._backlog: deque[Any] | None = None  # created on demand: most sequences never need one
        self._walking = False
        self._unordered_waiting: list[Any] | None = None
        self._unordered_running = 0
        self._out = PieceStream()
        promise_class = SafeMessageSequencePromise if self._errors_as_messages else MessageSequencePromise
        self.sequence_promise = promise_class(_sequence=self, start_soon=start_soon)
        self.message_appender = MessageSequenceAppender(self, bool(appender_capture_errors))

    @classmethod
    def turn_into_sequence_promise(cls, messages: Any) -> MessageSequencePromise:
        """`messages` as a sequence promise (returned unchanged if it is one already)."""
        if isinstance(messages, MessageSequencePromise):
            return messages
        sequence = cls(appender_capture_errors=True, start_soon=False)
        with sequence.message_appender:
            sequence.message_appender.append(messages)
        return sequence.sequence_promise

    # --- lifecycle -----------------------------------------------------------------------------------------------

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        if self._on_start is not None:
            on_start, self._on_start = self._on_start, None
            on_start()
        if self._backlog and not self._walking:
            self._start_walking()
        waiting, self._unordered_waiting = self._unordered_waiting, None
        for item in waiting or ():
            self._start_unordered(item)

    def _close_input(self) -> None:
        self._input_closed = True
        self._finish_if_done()

    def _finish_if_done(self) -> None:
        if (
            self._input_closed
            and not self._backlog
            and not self._unordered_running
            and not self._unordered_waiting
            and not self._walking
        ):
            self._out.finish()

    # --- appending -----------------------------------------------------------------------------------------------

    def _append(self, item: Any, out_of_order: bool) -> None:
        if out_of_order:
            if _is_ready(item):
                self._flatten_ready(item)
            elif self._started:
                self._start_unordered(item)
            elif self._unordered_waiting is None:
                self._unordered_waiting = [item]
            else:
                self._unordered_waiting.append(item)
        elif self._backlog:
            self._backlog.append(item)
        elif _is_ready(item):
            self._flatten_ready(item)
        else:
            if isinstance(item, tuple):  # what is ready at the front goes out now; the walker takes the rest
                ready = 0
                while _is_ready(item[ready]):
                    ready += 1
                for element in item[:ready]:
                    self._flatten_ready(element)
                item = item[ready:]
            if self._backlog is None:
                self._backlog = deque()
            self._backlog.append(item)
            if self._started:
                self._start_walking()

    def _start_walking(self) -> None:
        self._walking = True
        self._ctx.start_soon(self._awalk_ordered())

    def _start_unordered(self, item: Any) -> None:
        self._unordered_running += 1
        self._ctx.start_soon(self._aflatten_unordered(item))

    async def _awalk_ordered(self) -> None:
        backlog = self._backlog
        assert backlog is not None
        try:
            while backlog:
                await self._aflatten(backlog[0])
                backlog.popleft()
        except asyncio.CancelledError as error:
            backlog.clear()
            self._push_error(error)
            raise
        finally:
            self._walking = False
            self._finish_if_done()

    async def _aflatten_unordered(self, item: Any) -> None:
        try:
            await self._aflatten(item)
        except asyncio.CancelledError as error:
            self._push_error(error)
            raise
        finally:
            self._unordered_running -= 1
            self._finish_if_done()

    # --- flattening ----------------------------------------------------------------------------------------------

    def _push_error(self, error: BaseException) -> None:
        if self._errors_as_messages and isinstance(error, Exception):
            text = error_to_text(error, self._tracebacks_in_messages)
            self._out.push(MessagePromise(prefill_message=ErrorMessage(content=text)))
        else:
            self._out.push(error)

    def _push_message_promise(self, promise: MessagePromise) -> None:
        if self._errors_as_messages and not (promise._stream.finished and promise._error is None):
            if not isinstance(promise, _ErrorsAsMessagePromise):
                promise = _ErrorsAsMessagePromise(promise, self._tracebacks_in_messages)
        self._out.push(promise)

    def _push_reply(self, promise: MessagePromise) -> None:
        """A message that originates here (not copied from a nested sequence): observers hear of it."""
        if self.on_message is not None:
            self.on_message(promise)
        self._push_message_promise(promise)

    def _flatten_ready(self, item: Any) -> None:
        if type(item) is str:
            self._push_reply(MessagePromise._prefilled(TextMessage(item), self._ctx))
        elif isinstance(item, MessagePromise):
            self._push_reply(item)
        elif isinstance(item, Message):
            self._push_reply(MessagePromise._prefilled(item, self._ctx))
        elif isinstance(item, tuple):
            for element in item:
                self._flatten_ready(element)
        elif isinstance(item, BaseException):
            self._push_error(item)
        elif isinstance(item, str):
            self._push_reply(MessagePromise(prefill_message=TextMessage(str(item))))
        elif isinstance(item, MessageSequencePromise):
            self._copy_pieces(item._stream.pieces, 0)

    def _copy_pieces(self, pieces: list[Any], start: int) -> None:
        if not self._errors_as_messages:
            if start < len(pieces):
                self._out.extend(pieces[start:])
            return
        for piece in pieces[start:]:
            if isinstance(piece, MessagePromise):
                self._push_message_promise(piece)
            else:
                self._push_error(piece)

    async def _aflatten(self, item: Any) -> None:
        if _is_ready(item):
            self._flatten_ready(item)
        elif isinstance(item, tuple):
            for element in item:
                await self._aflatten(element)
        elif isinstance(item, MessageSequencePromise):
            stream = item._stream
            copied = 0
            while True:
                self._copy_pieces(stream.pieces, copied)
                copied = len(stream.pieces)
                if stream.finished:
                    break
                item._ensure_producing()
                await stream.wait()
        else:
            await self._aflatten_async_iterable(item)

    async def _aflatten_async_iterable(self, iterable: Any) -> None:
        try:
            async for element in iterable:
                try:
                    frozen = freeze_message_item(element)
                except MessageTypeError as error:
                    self._push_error(error)
                    continue
                await self._aflatten(frozen)
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            self._push_error(error)
