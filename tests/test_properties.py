"""Property tests (hypothesis): flattening, out-of-order replies, freezing and hashing.

Each example runs its own event loop (`asyncio.run`) so that message promises are created inside a fresh
`MiniAgents` context, from a generated description tree.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import expected_hash

from miniagents_nb import Frozen, Message, MessageSequence, MiniAgents, TextMessage, miniagent
from miniagents_nb.errors import NotFreezableError

PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------------------------------------------------
# agents used by the properties
# ----------------------------------------------------------------------------------------------------------------------


@miniagent
async def echo_agent(ctx: Any) -> None:
    ctx.reply(ctx.message_promises)


@miniagent
async def delayed_agent(ctx: Any, label: str, switches: int) -> None:
    for _ in range(switches):
        await asyncio.sleep(0)
    ctx.reply(label)


@miniagent
async def plan_agent(ctx: Any, plan: tuple[tuple[str, bool, int], ...]) -> None:
    for label, out_of_order, switches in plan:
        item: Any = delayed_agent.trigger(label=label, switches=switches) if switches else label
        if out_of_order:
            ctx.reply_out_of_order(item)
        else:
            ctx.reply(item)


# ----------------------------------------------------------------------------------------------------------------------
# (1) flattening
# ----------------------------------------------------------------------------------------------------------------------

LEAF_KINDS = ["str", "dict", "text", "promise"]
CONTAINER_KINDS = ["list", "tuple", "gen", "agen", "echo"]

contents = st.text(max_size=6)
leaves = st.tuples(st.sampled_from(LEAF_KINDS), contents)
trees = st.recursive(
    leaves,
    lambda children: st.tuples(st.sampled_from(CONTAINER_KINDS), st.lists(children, max_size=4)),
    max_leaves=12,
)
roots = st.lists(trees, max_size=5)


async def _agen(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        await asyncio.sleep(0)
        yield item


def _gen(items: list[Any]) -> Iterator[Any]:
    yield from items


class Expected:
    def __init__(self, content: str, exact_type: type[Message], same_as: Any = None, via_promise: bool = False):
        self.content = content
        self.exact_type = exact_type
        self.same_as = same_as
        self.via_promise = via_promise


def build(node: tuple[str, Any], expected: list[Expected]) -> Any:
    """Build the object described by `node` (inside an active MiniAgents context) and record the expected output."""
    kind, payload = node
    if kind == "str":
        expected.append(Expected(payload, TextMessage))
        return payload
    if kind == "dict":
        expected.append(Expected(payload, Message))  # a dict becomes a plain Message, even with "content"
        return {"content": payload}
    if kind == "text":
        message = TextMessage(payload)
        expected.append(Expected(payload, TextMessage, same_as=message))
        return message
    if kind == "promise":
        promise = TextMessage.promise(payload)
        expected.append(Expected(payload, TextMessage, same_as=promise, via_promise=True))
        return promise
    children = [build(child, expected) for child in payload]
    if kind == "list":
        return children
    if kind == "tuple":
        return tuple(children)
    if kind == "gen":
        return _gen(children)
    if kind == "agen":
        return _agen(children)
    if kind == "echo":
        return echo_agent.trigger(children)
    raise AssertionError(kind)  # pragma: no cover


@PROPERTY_SETTINGS
@given(root=roots, through_agent=st.booleans())
def test_flattening_gives_the_expected_flat_sequence_and_replays_identical_objects(
    root: list[tuple[str, Any]], through_agent: bool
) -> None:
    async def main() -> None:
        async with MiniAgents():
            expected: list[Expected] = []
            built = [build(node, expected) for node in root]
            if through_agent:
                sequence = echo_agent.trigger(built)
            else:
                sequence = MessageSequence.turn_into_sequence_promise(built)

            messages = await sequence
            assert type(messages) is tuple
            assert [m.content for m in messages] == [e.content for e in expected]
            for message, exp in zip(messages, expected, strict=True):
                assert type(message) is exp.exact_type
                if exp.via_promise:
                    assert message is await exp.same_as
                elif exp.same_as is not None:
                    assert message is exp.same_as

            assert await sequence is messages
            replay = [await message_promise async for message_promise in sequence]
            assert len(replay) == len(messages)
            assert all(a is b for a, b in zip(replay, messages, strict=True))

    asyncio.run(main())


# ----------------------------------------------------------------------------------------------------------------------
# (2) out-of-order replies
# ----------------------------------------------------------------------------------------------------------------------

plans = st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=4)), max_size=8)


@PROPERTY_SETTINGS
@given(plan_spec=plans)
def test_out_of_order_replies_keep_the_multiset_and_the_relative_order_of_ordered_ones(
    plan_spec: list[tuple[bool, int]],
) -> None:
    plan = tuple((f"item-{i}", out_of_order, switches) for i, (out_of_order, switches) in enumerate(plan_spec))

    async def main() -> None:
        async with MiniAgents():
            messages = await plan_agent.trigger(plan=plan)
            ordered_result = await plan_agent.trigger(
                plan=tuple((label, False, switches) for label, _ooo, switches in plan)
            )
        labels = [m.content for m in messages]
        all_labels = [label for label, _ooo, _switches in plan]
        ordered_labels = [label for label, out_of_order, _switches in plan if not out_of_order]
        assert sorted(labels) == sorted(all_labels)
        assert [m.content for m in ordered_result] == all_labels
        assert [label for label in labels if label in set(ordered_labels)] == ordered_labels

    asyncio.run(main())


# ----------------------------------------------------------------------------------------------------------------------
# (3) freezing and hashing of JSON-like values
# ----------------------------------------------------------------------------------------------------------------------

keys = st.text(alphabet="abcxyzюі_", max_size=4).map(lambda s: "f_" + s)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=15,
)
json_objects = st.dictionaries(keys, json_values, max_size=5)


def expected_serialized_form(value: Any) -> Any:
    if isinstance(value, dict):
        return {"class_": "Frozen", **{k: expected_serialized_form(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return [expected_serialized_form(v) for v in value]
    return value


def lists_to_tuples(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: lists_to_tuples(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(lists_to_tuples(v) for v in value)
    return value


def assert_frozen_shape(original: Any, frozen: Any) -> None:
    if isinstance(original, dict):
        assert type(frozen) is Frozen
        assert frozen.keys() == ("class_", *original.keys())
        for key, value in original.items():
            assert_frozen_shape(value, frozen[key])
    elif isinstance(original, (list, tuple)):
        assert type(frozen) is tuple
        assert len(frozen) == len(original)
        for a, b in zip(original, frozen, strict=True):
            assert_frozen_shape(a, b)
    else:
        assert type(frozen) is type(original)
        assert frozen == original


@PROPERTY_SETTINGS
@given(data=json_objects)
def test_json_like_values_freeze_and_hash_like_sorted_json(data: dict[str, Any]) -> None:
    frozen = Frozen(**data)
    assert_frozen_shape(data, frozen)
    expected = expected_serialized_form(data)
    assert frozen.serialize() == expected
    assert frozen.serialized == json.dumps(expected, ensure_ascii=False, sort_keys=True)
    assert frozen.hash_key == expected_hash(expected)

    twin = Frozen(**copy.deepcopy(data))
    assert twin == frozen
    assert twin.hash_key == frozen.hash_key

    as_tuples = Frozen(**lists_to_tuples(data))
    assert as_tuples.hash_key == frozen.hash_key
    assert as_tuples == frozen


@PROPERTY_SETTINGS
@given(value=json_values)
def test_any_json_like_value_is_freezable_as_a_message_field(value: Any) -> None:
    message = TextMessage("content", payload=value)
    expected = {"class_": "TextMessage", "content": "content", "content_template": None}
    expected["payload"] = expected_serialized_form(value)
    assert message.hash_key == expected_hash(expected)
    assert_frozen_shape(value, message.payload)


# ----------------------------------------------------------------------------------------------------------------------
# (4) sets and arbitrary objects are rejected wherever they are
# ----------------------------------------------------------------------------------------------------------------------


class Arbitrary:
    pass


_POISON_MAKERS: dict[str, Callable[[], object]] = {
    "set": lambda: {1, 2},
    "empty-set": set,
    "object": object,
    "custom": Arbitrary,
    "bytearray": lambda: bytearray(b"x"),
    "function": lambda: lambda: None,
}
poisons = st.sampled_from(sorted(_POISON_MAKERS)).map(lambda name: _POISON_MAKERS[name]())


@st.composite
def poisoned_values(draw: st.DrawFn) -> Any:
    value: Any = draw(poisons)
    for wrapper in draw(st.lists(st.sampled_from(["list", "tuple", "dict"]), max_size=4)):
        siblings = draw(st.lists(json_values, max_size=2))
        position = draw(st.integers(min_value=0, max_value=len(siblings)))
        if wrapper == "dict":
            wrapped = {f"f_sibling{i}": sibling for i, sibling in enumerate(siblings)}
            wrapped["f_poisoned"] = value
            value = wrapped
        else:
            items = [*siblings[:position], value, *siblings[position:]]
            value = items if wrapper == "list" else tuple(items)
    return value


@PROPERTY_SETTINGS
@given(value=poisoned_values(), target=st.sampled_from([Frozen, Message, TextMessage]))
def test_anything_containing_a_set_or_an_arbitrary_object_is_not_freezable(value: Any, target: type[Frozen]) -> None:
    with pytest.raises(NotFreezableError) as exc_info:
        target(f_good=1, f_bad=value)
    assert isinstance(exc_info.value, TypeError)
    message = str(exc_info.value)
    # the key holding the bad value is named, as a path from the field when it is nested (`f_bad.f_poisoned`)
    assert "`f_bad" in message or "f_poisoned`" in message


def same_message(made: TextMessage, validated: TextMessage) -> None:
    """Everything one can read of a message, compared (the replied string's message is built without validation)."""
    assert type(made) is type(validated)
    assert made == validated
    assert made.__dict__ == validated.__dict__
    assert list(made.__dict__) == list(validated.__dict__)
    assert made.model_fields_set == validated.model_fields_set
    assert made.model_extra == validated.model_extra
    assert made.__pydantic_private__ == validated.__pydantic_private__
    assert made.model_dump() == validated.model_dump()
    assert made.hash_key == validated.hash_key
    assert (repr(made), str(made), hash(made)) == (repr(validated), str(validated), hash(validated))


@PROPERTY_SETTINGS
@given(texts=st.lists(st.text(), max_size=4), streamed=st.booleans())
def test_a_replied_string_is_the_text_message_validation_builds(texts: list[str], streamed: bool) -> None:
    @miniagent
    async def replier(ctx: Any) -> None:
        for text in texts:
            if streamed:
                ctx.reply(TextMessage.promise(message_token_streamer=tokens_of(text)))
            else:
                ctx.reply(text)

    async def main() -> tuple[Message, ...]:
        async with MiniAgents():
            return await replier.trigger()

    messages = asyncio.run(main())
    assert len(messages) == len(texts)
    for message, text in zip(messages, texts, strict=True):
        same_message(message, TextMessage(text))  # type: ignore[arg-type]


def tokens_of(text: str) -> Callable[[dict[str, Any]], AsyncIterator[str]]:
    async def stream(_aux: dict[str, Any]) -> AsyncIterator[str]:
        for index in range(0, len(text), 3):
            yield text[index : index + 3]

    return stream


def test_a_replied_string_with_a_lone_surrogate_is_refused_like_a_validated_one() -> None:
    @miniagent
    async def replier(ctx: Any) -> None:
        ctx.reply("ok \ud800")

    async def main() -> None:
        async with MiniAgents():
            await replier.trigger()

    with pytest.raises(NotFreezableError) as from_reply:
        asyncio.run(main())
    with pytest.raises(NotFreezableError) as from_constructor:
        TextMessage("ok \ud800")
    assert type(from_reply.value) is type(from_constructor.value)


async def test_out_of_order_reply_overtakes_a_blocked_ordered_one() -> None:
    """A concrete anchor for the property above: out-of-order really can jump ahead (the property is not vacuous)."""
    gate = asyncio.Event()

    @miniagent
    async def gated_agent(ctx: Any) -> None:
        await gate.wait()
        ctx.reply("slow")

    @miniagent
    async def mixed_agent(ctx: Any) -> None:
        ctx.reply("first")
        ctx.reply(gated_agent.trigger())
        ctx.reply_out_of_order("out-of-order")
        ctx.reply("last")

    got: list[str] = []

    async with MiniAgents():
        sequence = mixed_agent.trigger()

        async def consume() -> None:
            async for message_promise in sequence:
                got.append((await message_promise).content)

        consumer = asyncio.create_task(consume())
        for _ in range(500):
            if set(got) == {"first", "out-of-order"}:
                break
            await asyncio.sleep(0)
        assert set(got) == {"first", "out-of-order"}
        assert "slow" not in got
        gate.set()
        await consumer
    assert got[2:] == ["slow", "last"]
