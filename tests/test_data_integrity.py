"""Nothing is lost or corrupted: what freezing accepts can always be hashed, persisted and shown; sets are content
addressed; bad dict keys are named; lazy calls never lose their replies silently; any async callable is a handler.

(Issue 17, "Data lost or corrupted".)
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import batch_recorder, run_script, texts

from miniagents_nb import InteractionContext, Message, MiniAgents, TextMessage, miniagent
from miniagents_nb.errors import MessageTypeError, MiniAgentsError, NoActiveContextError, NotFreezableError
from miniagents_nb.promising import PromisingContext
from miniagents_nb.promising.ext.frozen import Frozen

# --- 1. freezing refuses what could never be hashed ----------------------------------------------------------------

BIG_INT = 10**5000  # over Python's default limit of 4300 digits for int <-> str

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=4200, max_value=4400).map(lambda digits: -(10**digits)),  # around the 4300-digit limit
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=8),
    st.binary(max_size=8),
)
hashable_values = st.recursive(
    scalars, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3), max_leaves=6
)
values = st.recursive(
    hashable_values,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=3)
        | st.frozensets(hashable_values, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(value=values)
def test_whatever_freezing_accepts_can_be_hashed_serialized_and_shown(value: Any) -> None:
    refused: MiniAgentsError | None = None
    try:
        message = Message(content="x", value=value)
    except (NotFreezableError, MessageTypeError) as error:  # refused at construction, with the library's own error
        refused = error
    if refused is not None:
        assert isinstance(refused, TypeError)
        str(refused).encode("utf-8")  # the error message itself is printable
        return
    assert len(message.hash_key) == 40
    json.loads(message.serialized)
    str(message).encode("utf-8")
    message.full_json.encode("utf-8")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (b"\xff\xfe", "cannot be turned into JSON"),
        ("caf\udce9", "lone surrogate '\\udce9' at position 3"),
        (BIG_INT, "more than 4300 decimal digits"),
        (("ok", "bad \ud800"), "lone surrogate"),
        (frozenset({b"\x80"}), "cannot be turned into JSON"),
        ({"nested": ["\udfff"]}, "lone surrogate"),
    ],
    ids=["non-utf8-bytes", "lone-surrogate", "huge-int", "in-a-tuple", "in-a-frozenset", "in-a-dict"],
)
def test_unhashable_values_are_refused_at_construction_naming_the_field(value: Any, words: str) -> None:
    with pytest.raises(NotFreezableError, match="`payload") as error_info:
        Message(content="x", payload=value)
    assert words in str(error_info.value)


def test_unhashable_content_and_field_names_are_refused_too() -> None:
    with pytest.raises(NotFreezableError, match="lone surrogate"):
        Message(content="half an emoji \ud83d")
    with pytest.raises(NotFreezableError, match="The field name"):
        Message(**{"name\ud800": 1})
    with pytest.raises(NotFreezableError, match="lone surrogate"):
        Frozen(deep=Frozen(text="\udc80"))
    assert Message(content="ok \U0001f600 é").hash_key  # real non-ASCII text is fine


async def test_an_agent_replying_an_unhashable_value_fails_at_its_position() -> None:
    @miniagent
    async def replier(ctx: InteractionContext) -> None:
        ctx.reply("first")
        ctx.reply({"content": "second", "blob": b"\xff"})

    async with MiniAgents(errors_as_messages=True, log_reduced_tracebacks=True) as mini_agents:
        mini_agents.log_level_for_errors = 10  # DEBUG: the expected failure is not logged as an error
        replies = await texts(replier.trigger())
    assert replies[0] == "first"
    assert replies[1].startswith("NotFreezableError: The field `blob` of Message")


async def test_a_streamed_reply_with_a_lone_surrogate_fails_once_and_the_rest_is_persisted() -> None:
    async def tokens(_aux: dict[str, Any]) -> AsyncIterator[str]:
        yield "half an emoji \ud83d"  # e.g. a provider that split a surrogate pair across two chunks
        yield "\ude00"

    @miniagent
    async def streamer(ctx: InteractionContext) -> None:
        ctx.reply(TextMessage.promise(message_token_streamer=tokens))
        ctx.reply("after")

    mini_agents = MiniAgents(await_reply_persistence_before_agent_finish=True)
    persisted = batch_recorder(mini_agents)
    outcomes: list[str] = []
    async with mini_agents:
        async for promise in streamer.trigger():  # the sequence itself ends normally: the failure is not repeated
            try:
                outcomes.append(str(await promise))
            except NotFreezableError as error:
                outcomes.append(f"refused: {error}")
    assert outcomes[0].startswith("refused: The field `content` of TextMessage holds text that is not valid Unicode")
    assert outcomes[1:] == ["after"]
    assert "after" in [str(message.get("content")) for batch in persisted for message in batch]


PERSISTENCE_NEVER_WEDGES = """
    import asyncio
    from miniagents_nb import Message, MiniAgents, miniagent

    class Fragile(Message):
        def serialize(self):  # e.g. a subclass whose serialization fails: its hash key cannot be computed
            raise RuntimeError("cannot serialize")

    persisted = []

    async def persist(messages):
        persisted.extend(str(m.get("content")) for m in messages if type(m) is Message)

    @miniagent
    async def first(ctx):
        ctx.reply(Message(content="parent", child=Message(content="shared"), fragile=Fragile(content="f")))

    @miniagent
    async def second(ctx):
        ctx.reply(Message(content="shared"))
        ctx.reply(Message(content="later"))

    async def main():
        await first.trigger()
        await second.trigger()

    mini_agents = MiniAgents(on_persist_messages=persist, log_level_for_errors=10)
    asyncio.run(asyncio.wait_for(mini_agents.arun(main()), 20))
    print(sorted(set(persisted)))
"""


def test_a_message_that_cannot_be_hashed_never_wedges_persistence_or_arun() -> None:
    result = run_script(PERSISTENCE_NEVER_WEDGES, timeout=40)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "['later', 'shared']"


async def test_apersist_messages_raises_the_hash_failure_after_settling_the_rest() -> None:
    class Fragile(Message):
        def serialize(self) -> dict[str, Any]:
            raise RuntimeError("cannot serialize")

    async with MiniAgents() as mini_agents:
        batches = batch_recorder(mini_agents)
        with pytest.raises(RuntimeError, match="cannot serialize"):
            await mini_agents.apersist_messages([Message(content="good"), Fragile(content="bad")])
        assert await mini_agents.apersist_messages(Message(content="good")) == []  # persisted once, settled
    assert [[str(message) for message in batch] for batch in batches] == [[str(Message(content="good"))]]


# --- 2. sets are content addressed ---------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(items=st.lists(st.one_of(st.text(max_size=5), st.integers(), st.tuples(st.integers(), st.text())), max_size=6))
def test_equal_sets_hash_equally_whatever_their_insertion_order(items: list[Any]) -> None:
    forward = Message(content="s", tags=frozenset(items), nested=Frozen(inner=frozenset(items)))
    backward = Message(content="s", tags=frozenset(reversed(items)), nested=Frozen(inner=frozenset(reversed(items))))
    assert forward == backward
    assert forward.hash_key == backward.hash_key
    assert Frozen(tags=frozenset(items)).hash_key == Frozen(tags=frozenset(reversed(items))).hash_key


def test_small_int_sets_hash_in_a_canonical_order() -> None:
    assert Message(content="x", s=frozenset([1, 9])).hash_key == Message(content="x", s=frozenset([9, 1])).hash_key
    assert json.loads(Message(content="x", s=frozenset([9, 1])).serialized)["s"] == [1, 9]


SET_HASHES = """
    from miniagents_nb import Message
    from miniagents_nb.promising.ext.frozen import Frozen

    words = frozenset(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
    message = Message(
        content="sets",
        words=words,
        pairs=frozenset({("x", 1), ("y", 2), ("z", 3)}),
        nested=frozenset({frozenset({"a", "b"}), frozenset({"c"})}),
        deep=Frozen(inner=words),
        child=Message(content="child", tags=words),
    )
    print(message.hash_key, Frozen(words=words).hash_key, message.child.hash_key)
"""


def test_set_hash_keys_are_the_same_in_every_process_whatever_pythonhashseed() -> None:
    outputs = []
    for seed in ("1", "2", "12345"):
        result = run_script(SET_HASHES, timeout=40, env={"PYTHONHASHSEED": seed})
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(result.stdout.strip())
    assert outputs[0] == outputs[1] == outputs[2]


def test_messages_nested_in_sets_are_persisted_and_referenced_by_hash() -> None:
    child = Message(content="child")
    parent = Message(content="parent", children=frozenset({child}))
    assert list(parent.sub_messages()) == [child]
    assert json.loads(parent.serialized)["children"] == [{"__hash_key": child.hash_key}]


# --- 3. dicts with non-string keys are named ----------------------------------------------------------------------


def test_non_string_dict_keys_are_refused_with_a_message_type_error_naming_the_key() -> None:
    cases: list[Callable[[], object]] = [
        lambda: Message(content="x", meta={1: "one"}),  # a field
        lambda: Message(content="x", meta={"ok": {(1, 2): "pair"}}),  # a nested value
        lambda: Message(content="x", meta=[{None: 0}]),  # inside a list
        lambda: Frozen(meta={2.5: "x"}),
        lambda: Message.model_validate({3: "x"}),
        lambda: Message(content="x").model_copy(update={4: "x"}),  # type: ignore[dict-item]
    ]
    names = ["1", "(1, 2)", "None", "2.5", "3", "4"]
    for make, name in zip(cases, names, strict=True):
        with pytest.raises(MessageTypeError) as error_info:
            make()
        assert isinstance(error_info.value, TypeError)
        assert "keywords must be strings" not in str(error_info.value)
        assert f"{name} (" in str(error_info.value)


async def test_non_string_dict_keys_in_replies_inputs_and_agent_arguments_are_named() -> None:
    @miniagent
    async def replier(ctx: InteractionContext) -> None:
        ctx.reply({7: "seven"})

    async with MiniAgents():
        with pytest.raises(MessageTypeError, match=r"the key 5 \(int\)"):
            replier.trigger({5: "five"})  # an input message given as a dict
        with pytest.raises(MessageTypeError, match=r"the key 6 \(int\) in `options`"):
            replier.trigger("hi", options={6: "six"})  # a keyword argument
        with pytest.raises(MessageTypeError, match=r"the key 8 \(int\) in `options.deep`"):
            replier.fork(options={"deep": {8: "eight"}})
        with pytest.raises(MessageTypeError, match=r"the key 9 \(int\)"):
            replier.fork(interaction_metadata={9: "nine"})  # type: ignore[dict-item]
        with pytest.raises(MessageTypeError, match=r"the key 7 \(int\)"):
            await replier.trigger()  # a reply given as a dict: the error is at its position


# --- 4. a lazy call consumed after its context finished ------------------------------------------------------------


async def test_a_lazy_call_consumed_after_its_context_finished_fails_loudly() -> None:
    ran: list[str] = []

    @miniagent
    async def lazy(ctx: InteractionContext) -> None:
        ran.append("ran")
        ctx.reply("a reply nobody would persist")

    first = MiniAgents()
    persisted = batch_recorder(first)
    async with first:
        replies = lazy.trigger("input", start_soon=False)
    async with MiniAgents():
        with pytest.raises(NoActiveContextError, match="start_soon=False") as error_info:
            await replies
    assert "consume the replies inside the same `async with MiniAgents():` block" in str(error_info.value)
    assert ran == []  # it never ran where nothing waits for it
    assert [str(message) for batch in persisted for message in batch] == ["input"]


async def test_a_lazy_call_consumed_in_its_own_context_is_persisted() -> None:
    @miniagent
    async def lazy(ctx: InteractionContext) -> None:
        ctx.reply("persisted reply")

    mini_agents = MiniAgents()
    persisted = batch_recorder(mini_agents)
    async with mini_agents:
        replies = lazy.trigger("input", start_soon=False)
        assert await texts(replies) == ["persisted reply"]
    assert "persisted reply" in [str(message.get("content")) for batch in persisted for message in batch]


# --- 5. any async callable is a handler (this already held on main; the test documents it) --------------------------


async def test_async_callables_that_are_not_async_def_functions_are_accepted_as_handlers() -> None:
    seen: list[str] = []

    class BatchHandler:
        async def __call__(self, messages: list[Message]) -> None:
            seen.extend(f"batch:{message.get('content')}" for message in messages if type(message) is Message)

    async def tagged(tag: str, message: Message) -> None:
        if type(message) is Message:
            seen.append(f"{tag}:{message.get('content')}")

    async def resolved(tag: str, promise: Any, result: Any) -> None:
        if isinstance(result, Message) and type(result) is Message:
            seen.append(f"{tag}:{result.get('content')}")

    mini_agents = MiniAgents(
        on_persist_messages=BatchHandler(),
        on_persist_message=functools.partial(tagged, "one"),
        on_promise_resolved=functools.partial(resolved, "resolved"),
    )
    async with mini_agents:
        await mini_agents.apersist_messages(Message(content="m"))
    assert sorted(seen) == ["batch:m", "one:m"]
    async with PromisingContext(on_promise_resolved=functools.partial(resolved, "plain")):
        pass  # accepted by the promise layer's own context too

    with pytest.raises(MiniAgentsError, match="must be async"):
        MiniAgents(on_persist_messages=lambda messages: None)  # type: ignore[arg-type,return-value]
