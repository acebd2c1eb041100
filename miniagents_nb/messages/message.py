"""Messages: immutable, content-addressed models, and `MessagePromise`, the promise of one (streamed) message.

A message is a `Frozen` model: immutable, hashed (`hash_key`), and its own single token when streamed whole. A
`MessagePromise` streams a message's tokens and resolves to the message; `known_beforehand` fields are readable
before the first token.
"""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, model_validator

from miniagents_nb.errors import AppenderNotOpenError, InvalidArgumentsError, MessageTypeError
from miniagents_nb.messages.hints import message_promise_repr
from miniagents_nb.messages.tokens import MessageTokenAppender, MessageTokenStreamer, TextToken, Token
from miniagents_nb.promising.ext.frozen import Frozen, cached_field, canonical_json_value, to_json_compatible
from miniagents_nb.promising.sentinels import NO_VALUE, Sentinel
from miniagents_nb.promising.streamed import StreamAppender, StreamedPromise

__all__ = [
    "ErrorMessage",
    "Message",
    "MessagePromise",
    "StrictMessage",
    "TextMessage",
    "error_to_text",
]


def _message_to_dict_item(value: Any) -> Any:
    if isinstance(value, Message):
        return {"__hash_key": value.hash_key}
    if isinstance(value, Frozen):
        return _serialize_fields(value)
    if isinstance(value, tuple):
        return [_message_to_dict_item(item) for item in value]
    if isinstance(value, frozenset):  # in canonical order: the hash key must not depend on PYTHONHASHSEED
        return canonical_json_value([_message_to_dict_item(item) for item in value])
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
    elif isinstance(value, (tuple, frozenset)):
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
        if cls is TextMessage and not metadata:
            return _text_message(content)
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


def _text_message(text: str) -> TextMessage:
    """`TextMessage(text)` for the flattening hot path, where every replied string becomes one.

    It is the very object validation would build (same fields, field set and extras), made without running
    pydantic's validators, which cost most of a short reply. Only ASCII text takes this way: other text is validated,
    which refuses lone surrogates.
    """
    if not text.isascii():
        return TextMessage(text)
    message = _new_text_message(TextMessage)
    fields = _TEXT_FIELDS.copy()
    fields["content"] = text
    _set_slot(message, "__dict__", fields)
    _set_slot(message, "__pydantic_fields_set__", _TEXT_FIELD_NAMES)
    _set_slot(message, "__pydantic_extra__", _NO_EXTRAS)
    _set_slot(message, "__pydantic_private__", None)
    return message


_new_text_message = object.__new__
_set_slot = object.__setattr__
_TEXT_TEMPLATE = TextMessage("")
_TEXT_FIELDS: dict[str, Any] = dict(_TEXT_TEMPLATE.__dict__)
_TEXT_FIELD_NAMES = _TEXT_TEMPLATE.__pydantic_fields_set__
_NO_EXTRAS: dict[str, Any] = {}
"""The extras of every such message, one shared empty dict: a frozen model never writes them (pydantic refuses
attribute writes first, and its copies copy them), and a dict per message is 64 bytes of every replied string."""
if _TEXT_TEMPLATE.__pydantic_extra__ or _TEXT_TEMPLATE.__pydantic_private__ is not None:  # pragma: no cover
    raise RuntimeError("TextMessage gained extras or private attributes: update _text_message() to build them too")
del _TEXT_TEMPLATE


class ErrorMessage(TextMessage):
    """A failure turned into a message (`errors_as_messages`): its text is "<ErrorType>: <message>"."""

    if TYPE_CHECKING:  # the content comes first, as for TextMessage (the pydantic plugin would make it keyword-only)

        def __init__(self, content: str | None = None, **metadata: Any) -> None: ...


def error_to_text(error: BaseException, with_traceback: bool = False) -> str:
    """How an exception reads inside an `ErrorMessage`; never raises (an error whose `str()` fails reads as
    `<Type: str() failed: ...>`, so a reply sequence always ends)."""
    if with_traceback:
        try:
            return "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip("\n")
        except Exception:  # a failure that cannot be rendered must still end as text
            pass
    try:
        return f"{type(error).__name__}: {error}"
    except Exception as failure:  # its `__str__` raised: say so instead of failing the sequence
        return f"<{type(error).__name__}: str() failed: {_safe_repr(failure)}>"


def _safe_repr(failure: BaseException) -> str:
    """`Type: text` of the error a `__str__` raised, or just its type name when that does not render either."""
    try:
        return f"{type(failure).__name__}: {failure}"
    except Exception:
        return type(failure).__name__


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

    def __repr__(self) -> str:
        return message_promise_repr(self)  # says what it is and how to get the message (no address)

    __str__ = __repr__

    @property
    def original_promise(self) -> MessagePromise:
        """The promise the sender replied: itself, except for the errors-as-messages view of a sequence, which
        delivers a failure as text and names the original here (observers know senders by it)."""
        return self

    def _stream_tokens(self, _promise: Any) -> AsyncIterator[Any]:
        assert self._token_streamer is not None
        return self._token_streamer(self._aux)

    def _whole_from_pieces(self, pieces: list[Any]) -> Message:
        tokens: Iterable[Any] | None
        try:
            tokens = ("".join(pieces),)  # all str (what LLMs stream), so no exception among them: one C pass
        except TypeError:  # Token objects, or an exception piece
            tokens = None
        if tokens is None:  # (outside the `except`: a stored exception is raised as it is, with no context added)
            for piece in pieces:
                if isinstance(piece, BaseException):
                    raise piece
            tokens = pieces
        fields = {**self._aux, **self.known_beforehand.as_kwargs()}
        return self.message_class.tokens_to_message(tokens, **fields)


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

    @property
    def original_promise(self) -> MessagePromise:
        return self._original

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
