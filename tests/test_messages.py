"""Tokens, messages, message promises, nested-message serialization and `as_single_text_promise`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pydantic
import pytest
from support import Recorded, expected_hash, fresh, switches

import miniagents_nb
import miniagents_nb.utils as utils_module
from miniagents_nb import (
    ErrorMessage,
    Frozen,
    Message,
    MessagePromise,
    MessageSequence,
    MessageSequencePromise,
    MessageTokenAppender,
    MiniAgents,
    StrictMessage,
    TextMessage,
    TextToken,
    Token,
)
from miniagents_nb.errors import AppenderNotOpenError, MiniAgentsError
from miniagents_nb.utils import as_single_text_promise

# ----------------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------------


def text_message_dict(content: str | None, **extra: Any) -> dict[str, Any]:
    return {"class_": "TextMessage", "content": content, "content_template": None, **extra}


class SpecialNode(Frozen):
    pass


# ----------------------------------------------------------------------------------------------------------------------
# tokens and messages
# ----------------------------------------------------------------------------------------------------------------------


def test_class_hierarchy() -> None:
    assert issubclass(Message, Token)
    assert issubclass(Token, Frozen)
    assert issubclass(TextToken, Token)
    assert issubclass(TextMessage, Message)
    assert issubclass(TextMessage, TextToken)
    assert issubclass(StrictMessage, Message)
    assert issubclass(ErrorMessage, TextMessage)


def test_token_and_text_token_str() -> None:
    assert str(TextToken("abc")) == "abc"
    assert str(TextToken(content="abc", meta=1)) == "abc"
    assert str(TextToken()) == ""
    assert TextToken("abc").class_ == "TextToken"
    assert str(Token(a=1)) == '{"class_":"Token","a":1}'


def test_message_str_is_a_json_fence() -> None:
    message = Message(content="hi", role="user")
    assert message.full_json == '{"class_":"Message","content":"hi","role":"user"}'
    assert str(message) == "```json\n" + message.full_json + "\n```"
    assert str(message) == '```json\n{"class_":"Message","content":"hi","role":"user"}\n```'


def test_text_message_str_is_its_content_or_its_template() -> None:
    assert str(TextMessage("hello", role="user")) == "hello"
    assert str(TextMessage()) == ""
    assert str(TextMessage(content_template="Hi {name}, you are {age}!", name="Bob", age=7)) == "Hi Bob, you are 7!"
    templated = TextMessage(content="ignored", content_template="[{role}] {content}", role="user")
    assert str(templated) == "[user] ignored"
    assert TextMessage("hello", role="user").full_json == (
        '{"class_":"TextMessage","content":"hello","content_template":null,"role":"user"}'
    )


def test_text_message_positional_content() -> None:
    message = TextMessage("positional", role="assistant")
    assert message.content == "positional"
    assert message.role == "assistant"
    assert message == TextMessage(content="positional", role="assistant")
    assert message.serialize() == text_message_dict("positional", role="assistant")


def test_text_is_an_alias_of_content() -> None:
    by_text = TextMessage(text="x")
    assert by_text.content == "x"
    assert by_text.text == "x"
    assert str(by_text) == "x"
    assert by_text == TextMessage(content="x")
    assert by_text.hash_key == TextMessage("x").hash_key == expected_hash(text_message_dict("x"))
    assert TextMessage("y").text == "y"
    plain = Message(text="How are you today?", role="user")
    assert plain.content == "How are you today?"
    assert plain.text == "How are you today?"
    assert Message(content="c").text == "c"
    error = ErrorMessage(text="boom")
    assert error.content == "boom"


def test_strict_message_forbids_extra_fields() -> None:
    class Strict(StrictMessage):
        a: int

    assert Strict(a=1).a == 1
    with pytest.raises(pydantic.ValidationError, match="b"):
        Strict(a=1, b=2)  # type: ignore[call-arg]  # deliberately wrong


def test_error_message_is_a_text_message() -> None:
    error = ErrorMessage("ValueError: boom")
    assert isinstance(error, TextMessage)
    assert str(error) == "ValueError: boom"
    assert error.class_ == "ErrorMessage"


def test_messages_are_immutable() -> None:
    message = TextMessage("fixed")
    with pytest.raises((pydantic.ValidationError, TypeError, AttributeError)):
        message.content = "changed"  # type: ignore[misc]  # deliberately wrong
    assert message.content == "fixed"


def test_text_message_tokens_to_message() -> None:
    message = TextMessage.tokens_to_message(["Hel", TextToken("lo"), "!"], role="assistant")
    assert type(message) is TextMessage
    assert message.content == "Hello!"
    assert message.role == "assistant"


def test_tokens_to_message_on_non_text_messages_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="does not support token streaming"):
        Message.tokens_to_message(["a", "b"])


def test_message_to_tokens_default_is_the_message_itself() -> None:
    message = Message(content="m")
    tokens = message.message_to_tokens()
    assert tokens == (message,)
    assert tokens[0] is message
    text = TextMessage("t")
    assert text.message_to_tokens()[0] is text


# ----------------------------------------------------------------------------------------------------------------------
# MessagePromise: prefilled
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make_message", [lambda: TextMessage("hi", role="user"), lambda: Message(content="m", k=1)])
async def test_prefilled_message_promise(make_message: Callable[[], Message]) -> None:
    async with MiniAgents():
        message = make_message()
        for promise in (message.as_promise, MessagePromise(prefill_message=message)):
            assert promise.known_beforehand is message
            assert promise.message_class is type(message)
            tokens = [token async for token in promise]
            assert len(tokens) == 1
            assert tokens[0] is message  # the message is its own single token
            assert "".join(str(token) for token in tokens) == str(message)
            assert await promise is message


async def test_as_promise_is_cached() -> None:
    # reference §2.10 / §3.9: `as_promise` is a cached property of the message
    async with MiniAgents():
        message = TextMessage("cached")
        assert message.as_promise is message.as_promise


async def test_text_message_promise_with_content_is_prefilled() -> None:
    async with MiniAgents():
        promise = TextMessage.promise("hello", role="user")
        message = await promise
        assert type(message) is TextMessage
        assert message.content == "hello"
        assert message.role == "user"
        assert promise.known_beforehand is message
        assert promise.message_class is TextMessage
        assert [str(t) async for t in promise] == ["hello"]


# ----------------------------------------------------------------------------------------------------------------------
# MessagePromise: streamed
# ----------------------------------------------------------------------------------------------------------------------


async def test_streamed_message_promise_with_a_token_streamer() -> None:
    release = asyncio.Event()
    streamer_started = asyncio.Event()
    originals = [fresh("Hel"), fresh("lo"), fresh(", world")]

    async def streamer(auxiliary_field_collector: dict[str, Any]) -> AsyncIterator[str]:
        streamer_started.set()
        await release.wait()
        for token in originals:
            yield token
        auxiliary_field_collector["model"] = "from-the-streamer"  # known_beforehand wins over this
        auxiliary_field_collector["usage"] = {"tokens": 3}
        auxiliary_field_collector["finish_reason"] = "stop"

    async with MiniAgents():
        promise = TextMessage.promise(message_token_streamer=streamer, role="assistant", model="fake")
        await streamer_started.wait()  # start_soon by default: the streamer runs and waits on the event
        known = promise.known_beforehand
        assert type(known) is Frozen
        assert known.role == "assistant"
        assert known.model == "fake"
        assert known.get("content") is None
        assert promise.message_class is TextMessage
        assert not release.is_set()

        release.set()
        tokens = [token async for token in promise]
        assert len(tokens) == 3
        for got, original in zip(tokens, originals, strict=True):
            assert type(got) is str  # design decision 1: str tokens stay str
            assert got is original
        message = await promise
        again = await promise
        replay = [token async for token in promise]

    assert type(message) is TextMessage
    assert message is again
    assert message.content == "Hello, world"
    assert message.role == "assistant"
    assert message.model == "fake"
    assert message.finish_reason == "stop"
    assert message.usage == Frozen(tokens=3)
    assert "".join(str(t) for t in tokens) == str(message)
    assert all(a is b for a, b in zip(replay, tokens, strict=True))


async def test_streamed_message_promise_with_message_promise_constructor() -> None:
    async def streamer(_aux: dict[str, Any]) -> AsyncIterator[str]:
        yield "a"
        yield "b"

    async with MiniAgents():
        promise = MessagePromise(message_token_streamer=streamer, message_class=TextMessage, role="x")
        assert promise.message_class is TextMessage
        assert promise.known_beforehand.role == "x"
        message = await promise
    assert message.content == "ab"
    assert message.role == "x"


async def test_streamed_message_promise_with_an_open_token_appender() -> None:
    first, second = fresh("first "), fresh("second")
    token_object = TextToken(" third")
    async with MiniAgents():
        with MessageTokenAppender() as appender:
            promise = TextMessage.promise(message_token_streamer=appender, role="assistant")
            assert promise.known_beforehand.role == "assistant"
            appender.append(first)
            appender.append(second)
            appender.append(token_object)
            appender.auxiliary_field_collector["stop_reason"] = "end_turn"
            appender.auxiliary_field_collector["role"] = "overridden?"  # known_beforehand wins
        tokens = [token async for token in promise]
        message = await promise
    assert tokens[0] is first
    assert tokens[1] is second
    assert tokens[2] is token_object  # Token objects stay Token objects
    assert message.content == "first second third"
    assert message.stop_reason == "end_turn"
    assert message.role == "assistant"
    assert "".join(str(t) for t in tokens) == str(message)


async def test_an_unopened_token_appender_is_rejected() -> None:
    async with MiniAgents():
        with pytest.raises(AppenderNotOpenError):
            TextMessage.promise(message_token_streamer=MessageTokenAppender())
        with pytest.raises(AppenderNotOpenError):
            MessagePromise(message_token_streamer=MessageTokenAppender(), message_class=TextMessage)


async def test_token_by_token_str_equals_whole_str_for_streamed_messages() -> None:
    async def streamer(_aux: dict[str, Any]) -> AsyncIterator[str]:
        for token in ["\n", "line one", "\n", "юнікод ✓"]:
            yield token

    async with MiniAgents():
        promise = TextMessage.promise(message_token_streamer=streamer, start_soon=False)
        pieces = [str(token) async for token in promise]
        message = await promise
    assert "".join(pieces) == str(message) == "\nline one\nюнікод ✓"


async def test_message_promise_argument_errors() -> None:
    async def streamer(_aux: dict[str, Any]) -> AsyncIterator[str]:
        yield "x"  # pragma: no cover

    async with MiniAgents():
        message = TextMessage("m")
        with pytest.raises(ValueError, match="prefill_message") as exc_info:
            MessagePromise()
        assert "message_token_streamer" in str(exc_info.value)
        assert isinstance(exc_info.value, MiniAgentsError)
        with pytest.raises(ValueError, match="prefill") as exc_info:
            MessagePromise(prefill_message=message, message_token_streamer=streamer, message_class=TextMessage)
        assert isinstance(exc_info.value, MiniAgentsError)
        with pytest.raises(ValueError, match="prefill") as exc_info:
            MessagePromise(prefill_message=message, role="known beforehand")
        assert isinstance(exc_info.value, MiniAgentsError)
        with pytest.raises(ValueError, match="message_class") as exc_info:
            MessagePromise(message_token_streamer=streamer)
        assert isinstance(exc_info.value, MiniAgentsError)
        with pytest.raises(ValueError, match="message_token_streamer") as exc_info:
            TextMessage.promise("content", message_token_streamer=streamer)
        assert "content" in str(exc_info.value)
        assert isinstance(exc_info.value, MiniAgentsError)
        with pytest.raises(ValueError, match="message_token_streamer"):
            TextMessage.promise(content_template="{x}", message_token_streamer=streamer)


# ----------------------------------------------------------------------------------------------------------------------
# nested message serialization (design decision 9, fixes 3 and 14)
# ----------------------------------------------------------------------------------------------------------------------


def test_a_message_field_is_replaced_by_its_hash_key() -> None:
    child = TextMessage("child")
    parent = TextMessage("parent", nested_message=child)
    h_child = expected_hash(text_message_dict("child"))
    expected = text_message_dict("parent", nested_message__hash_key=h_child)
    assert child.hash_key == h_child
    assert parent.serialize() == expected
    assert parent.hash_key == expected_hash(expected)
    # full_json / str still inline everything
    assert '"content":"child"' in parent.full_json


def test_a_tuple_of_messages_becomes_hash_keys() -> None:
    first, second = TextMessage("one"), TextMessage("two", role="user")
    parent = Message(content="p", replies=[first, second], single=(first,))
    h1 = expected_hash(text_message_dict("one"))
    h2 = expected_hash(text_message_dict("two", role="user"))
    expected = {"class_": "Message", "content": "p", "replies__hash_keys": [h1, h2], "single__hash_keys": [h1]}
    assert parent.serialize() == expected
    assert parent.hash_key == expected_hash(expected)


def test_the_upstream_nested_serialization_example_recomputed_independently() -> None:
    m1 = TextMessage("юнікод1")
    m2 = TextMessage("юнікод2", role="assistant")
    m3 = Message(content="юнікод3", inner=m1)
    message = TextMessage(
        content="юнікод",
        extra_field=[15, {"role": "user", "nested_nested": (m1, m2), "nested_nested2": [m2]}],
        extra_node=SpecialNode(nested_nested=m3),
        nested_message=m1,
    )
    h1 = expected_hash(text_message_dict("юнікод1"))
    h2 = expected_hash(text_message_dict("юнікод2", role="assistant"))
    h3 = expected_hash({"class_": "Message", "content": "юнікод3", "inner__hash_key": h1})
    expected = {
        "class_": "TextMessage",
        "content": "юнікод",
        "content_template": None,
        "extra_field": [
            15,
            {
                "class_": "Frozen",
                "role": "user",
                "nested_nested__hash_keys": [h1, h2],
                "nested_nested2__hash_keys": [h2],
            },
        ],
        "extra_node": {"class_": "SpecialNode", "nested_nested__hash_key": h3},
        "nested_message__hash_key": h1,
    }
    assert m3.hash_key == h3
    assert message.serialize() == expected
    assert message.serialized == json.dumps(expected, ensure_ascii=False, sort_keys=True)
    assert message.hash_key == expected_hash(expected)
    subs = list(message.sub_messages())
    assert {id(m) for m in subs} == {id(m1), id(m2), id(m3)}
    assert all(m is not message for m in subs)
    # post-order: m1 (nested inside m3) comes before m3
    first_m1 = next(i for i, m in enumerate(subs) if m is m1)
    position_m3 = next(i for i, m in enumerate(subs) if m is m3)
    assert first_m1 < position_m3


@pytest.mark.parametrize(
    ("build_items", "expected_items"),
    [
        (lambda m: (m, 5, "s"), lambda h: [{"__hash_key": h}, 5, "s"]),
        (lambda m: (5, m), lambda h: [5, {"__hash_key": h}]),
        (lambda m: ("a", m, None, m), lambda h: ["a", {"__hash_key": h}, None, {"__hash_key": h}]),
    ],
    ids=["message-first", "message-last", "message-twice"],
)
def test_mixed_tuples_serialize_and_every_message_is_a_sub_message(
    build_items: Callable[[Message], tuple[Any, ...]], expected_items: Callable[[str], list[Any]]
) -> None:
    inner = TextMessage("inner")
    h = expected_hash(text_message_dict("inner"))
    holder = TextMessage("holder", items=build_items(inner))
    expected = text_message_dict("holder", items=expected_items(h))
    assert holder.serialize() == expected
    assert holder.hash_key == expected_hash(expected)
    subs = list(holder.sub_messages())
    assert subs
    assert all(m is inner for m in subs)


def test_mixed_tuple_with_a_frozen_holding_a_message() -> None:
    inner = TextMessage("deep")
    h = expected_hash(text_message_dict("deep"))
    holder = TextMessage("holder", items=({"msg": inner, "n": 1}, inner, 2))
    expected = text_message_dict(
        "holder", items=[{"class_": "Frozen", "msg__hash_key": h, "n": 1}, {"__hash_key": h}, 2]
    )
    assert holder.serialize() == expected
    assert holder.hash_key == expected_hash(expected)
    assert all(m is inner for m in holder.sub_messages())


def test_empty_tuple_serializes_as_an_empty_list() -> None:
    holder = TextMessage("holder", messages=(), other=[])
    expected = text_message_dict("holder", messages=[], other=[])
    assert holder.serialize() == expected
    assert holder.hash_key == expected_hash(expected)
    assert list(holder.sub_messages()) == []


def test_messages_deep_inside_dicts_are_replaced() -> None:
    inner = TextMessage("deep")
    h = expected_hash(text_message_dict("deep"))
    holder = Message(content="h", meta={"level1": {"level2": inner, "list": [inner]}})
    expected = {
        "class_": "Message",
        "content": "h",
        "meta": {
            "class_": "Frozen",
            "level1": {"class_": "Frozen", "level2__hash_key": h, "list__hash_keys": [h]},
        },
    }
    assert holder.serialize() == expected
    assert holder.hash_key == expected_hash(expected)
    assert inner in list(holder.sub_messages())


def test_sub_messages_are_post_order_children_before_parents() -> None:
    leaf = TextMessage("leaf")
    mid = Message(content="mid", child=leaf)
    other = TextMessage("other")
    deep_leaf = TextMessage("deep leaf")
    deep = TextMessage("deep", kid=deep_leaf)
    top = TextMessage("top", a=mid, b=(other,), c={"x": deep})
    subs = list(top.sub_messages())
    assert [id(m) for m in subs] == [id(leaf), id(mid), id(other), id(deep_leaf), id(deep)]
    assert list(leaf.sub_messages()) == []


# ----------------------------------------------------------------------------------------------------------------------
# as_single_text_promise (§2.18, fix 2)
# ----------------------------------------------------------------------------------------------------------------------


def test_as_single_text_promise_public_names() -> None:
    assert miniagents_nb.as_single_text_promise is as_single_text_promise
    assert utils_module.as_single_promise is as_single_text_promise


async def test_as_single_text_promise_joins_with_the_default_delimiter_and_merges_metadata() -> None:
    async with MiniAgents():
        first = TextMessage("Hello world", role="assistant", usage=1, model="m1")
        second = Message(content="second", meta=1)
        third = TextMessage("third", role="user", model="m3")
        promise = as_single_text_promise([first, second, third])
        assert isinstance(promise, MessagePromise)
        assert promise.message_class is TextMessage
        message = await promise
    assert type(message) is TextMessage
    assert message.content == f"Hello world\n\n{second}\n\nthird"
    assert message.role == "user"  # later messages overwrite earlier keys
    assert message.model == "m3"
    assert message.usage == 1
    assert message.meta == 1
    assert message.content_template is None
    assert len(message.original_messages) == 3
    assert message.original_messages[0] is first
    assert message.original_messages[1] is second
    assert message.original_messages[2] is third


@pytest.mark.parametrize(("delimiter", "expected"), [(" | ", "a | b | c"), ("", "abc"), ("\n", "a\nb\nc")])
async def test_as_single_text_promise_delimiter(delimiter: str, expected: str) -> None:
    async with MiniAgents():
        message = await as_single_text_promise(["a", "b", "c"], delimiter=delimiter)
    assert message.content == expected


async def test_as_single_text_promise_without_original_messages() -> None:
    async with MiniAgents():
        message = await as_single_text_promise(["a", "b"], reference_original_messages=False)
    assert message.content == "a\n\nb"
    assert "original_messages" not in message


async def test_as_single_text_promise_known_beforehand_and_message_class() -> None:
    class Custom(TextMessage):
        pass

    async with MiniAgents():
        promise = as_single_text_promise(["a"], message_class=Custom, role="assistant")
        assert promise.message_class is Custom
        assert promise.known_beforehand.role == "assistant"
        message = await promise
    assert type(message) is Custom
    assert message.content == "a"
    assert message.role == "assistant"


async def test_strip_leading_newlines_actually_strips() -> None:
    async def streamer(_aux: dict[str, Any]) -> AsyncIterator[str]:
        for token in ["\n", "\n\nHi", " there"]:
            yield token

    async with MiniAgents():
        prefilled = TextMessage("\n\nHello")
        assert str(prefilled) == "\n\nHello"  # populate the str cache before the copy (fix 2)
        stripped = await as_single_text_promise([prefilled], strip_leading_newlines=True)
        kept = await as_single_text_promise([prefilled])
        streamed = await as_single_text_promise(
            [TextMessage.promise(message_token_streamer=streamer)], strip_leading_newlines=True
        )
    assert stripped.content == "Hello"
    assert str(stripped) == "Hello"
    assert kept.content == "\n\nHello"
    assert streamed.content == "Hi there"
    assert str(prefilled) == "\n\nHello"  # the source message is untouched


async def test_as_single_text_promise_is_lazy_by_default() -> None:
    events: list[str] = []

    async def source() -> AsyncIterator[str]:
        events.append("source pulled")
        yield "lazy"

    async with MiniAgents():
        promise = as_single_text_promise(source())
        await switches(20)
        assert events == []
        message = await promise
        assert events == ["source pulled"]
    assert message.content == "lazy"


async def test_as_single_text_promise_start_soon_true_is_eager() -> None:
    events: Recorded[str] = Recorded()

    async def source() -> AsyncIterator[str]:
        events.append("source pulled")
        yield "eager"

    async with MiniAgents():
        promise = as_single_text_promise(source(), start_soon=True)
        await events.until(lambda events: events == ["source pulled"])  # nobody awaits the promise yet
        message = await promise
    assert message.content == "eager"


async def test_sequence_promise_as_single_text_promise_is_always_lazy() -> None:
    events: list[str] = []

    async def source() -> AsyncIterator[Any]:
        events.append("source pulled")
        yield "one"
        yield TextMessage("two", role="user")

    async with MiniAgents():
        sequence = MessageSequence.turn_into_sequence_promise(source())
        assert isinstance(sequence, MessageSequencePromise)
        assert MessageSequence.turn_into_sequence_promise(sequence) is sequence
        promise = sequence.as_single_text_promise()
        await switches(20)
        assert events == []
        message = await promise
        custom = await sequence.as_single_text_promise(delimiter=" + ")
    assert events == ["source pulled"]
    assert message.content == "one\n\ntwo"
    assert message.role == "user"
    assert custom.content == "one + two"
