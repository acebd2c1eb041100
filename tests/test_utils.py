"""join_messages / split_messages and the earliest README's loop functions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from miniagents_nb import InteractionContext, MiniAgents, TextMessage, miniagent
from miniagents_nb.errors import InvalidArgumentsError, MiniAgentsError
from miniagents_nb.ext import join_messages as ext_join_messages
from miniagents_nb.ext import split_messages as ext_split_messages
from miniagents_nb.utils import achain_loop, adialog_loop, as_single_text_promise, join_messages, split_messages


def streamed(tokens: list[str], gate: asyncio.Event | None = None) -> Any:
    async def streamer(_aux: dict[str, Any]) -> AsyncIterator[str]:
        for index, token in enumerate(tokens):
            if gate is not None and index == 1:
                await gate.wait()
            yield token
            await asyncio.sleep(0)

    return TextMessage.promise(message_token_streamer=streamer)


def test_ext_reexports_the_utils_helpers() -> None:
    assert ext_join_messages is join_messages is as_single_text_promise
    assert ext_split_messages is split_messages


async def test_split_messages_splits_at_the_delimiter_even_across_tokens() -> None:
    async with MiniAgents():
        parts = await split_messages(streamed(["Hel", "lo\n", "\nWor", "ld\n\n\n\n", "!"]))
    assert [str(part) for part in parts] == ["Hello", "World", "!"]
    assert all(type(part) is TextMessage for part in parts)


async def test_split_messages_never_splits_inside_a_code_block() -> None:
    text = "intro\n\n```python\nx = 1\n\ny = 2\n```\n\noutro"
    async with MiniAgents():
        parts = await split_messages(streamed([text[i : i + 3] for i in range(0, len(text), 3)]))
    assert [str(part) for part in parts] == ["intro", "```python\nx = 1\n\ny = 2\n```", "outro"]


async def test_split_messages_keeps_message_boundaries_and_adds_known_beforehand() -> None:
    async with MiniAgents():
        parts = await split_messages(["a\n\nb", "c"], delimiter="\n\n", role="assistant")
    assert [(str(part), part.role) for part in parts] == [("a", "assistant"), ("b", "assistant"), ("c", "assistant")]


async def test_split_messages_streams_a_part_before_the_source_message_is_complete() -> None:
    gate = asyncio.Event()
    async with MiniAgents():
        parts = split_messages(streamed(["first\n\nsec", "ond"], gate))
        iterator = aiter(parts)
        first = await anext(iterator)
        assert str(await first) == "first"  # complete while the source still waits for its second token
        assert not gate.is_set()
        gate.set()
        assert str(await (await anext(iterator))) == "second"


async def test_split_messages_custom_delimiter_and_no_fence() -> None:
    async with MiniAgents():
        parts = await split_messages(["x|```|y"], delimiter="|", code_block_delimiter=None)
    assert [str(part) for part in parts] == ["x", "```", "y"]


async def test_split_messages_rejects_an_empty_delimiter() -> None:
    async with MiniAgents():
        with pytest.raises(InvalidArgumentsError, match="delimiter") as raised:
            split_messages(["x"], delimiter="")
    assert isinstance(raised.value, MiniAgentsError)


async def test_split_messages_delivers_a_source_failure_at_its_position() -> None:
    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        ctx.reply("one\n\ntwo")
        raise ValueError("boom")

    seen: list[str] = []

    async def consume() -> None:
        async for part in split_messages(failing.trigger()):
            seen.append(str(await part))

    async with MiniAgents():
        with pytest.raises(ValueError, match="boom"):
            await consume()
    assert seen == ["one", "two"]


async def test_join_messages_joins_with_the_delimiter() -> None:
    async with MiniAgents():
        joined = await join_messages(["a", "\nb"], delimiter=" | ", strip_leading_newlines=True)
    assert str(joined) == "a | b"


def test_achain_loop_and_adialog_loop_run_until_keyboard_interrupt() -> None:
    said: list[str] = []
    answers = iter(["hi", "bye"])

    @miniagent
    async def user(ctx: InteractionContext) -> None:
        async for message in ctx.message_promises:
            said.append(f"assistant: {await message}")
        try:
            ctx.reply(next(answers))
        except StopIteration:
            raise KeyboardInterrupt from None

    @miniagent
    async def assistant(ctx: InteractionContext) -> None:
        ctx.reply(f"echo {await ctx.message_promises.as_single_text_promise()}")

    MiniAgents().run(adialog_loop(user, assistant, raise_keyboard_interrupt=False))
    assert said == ["assistant: echo hi", "assistant: echo bye"]

    answers = iter(["again"])
    said.clear()
    with pytest.raises(KeyboardInterrupt):
        MiniAgents().run(achain_loop([user, "AWAIT", assistant]))
    assert said == ["assistant: echo again"]
