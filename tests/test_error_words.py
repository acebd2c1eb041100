"""What the core says when a reply is used as its messages, or no context is active: how to fix it, in plain
Python's words outside IPython and in a notebook's words under it (detected through `sys.modules`, never imported)."""

from __future__ import annotations

import sys
import types
from typing import Any

import pydantic
import pytest

from miniagents_nb import InteractionContext, MiniAgents, miniagent
from miniagents_nb.errors import MiniAgentsError, NoActiveContextError, NotAwaitedError
from miniagents_nb.messages import MessageSequencePromise


@miniagent
async def two_messages(ctx: InteractionContext) -> None:
    ctx.reply(["first", "second"])


@pytest.fixture
def plain_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)


@pytest.fixture
def under_ipython(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: object()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)


@pytest.mark.usefixtures("plain_python")
async def test_a_reply_used_as_its_messages_says_to_await_it() -> None:
    async with MiniAgents():
        reply = two_messages.trigger()
        text = repr(reply)
        assert text == str(reply)
        assert text.startswith("<MessageSequencePromise: a promise of a reply's messages (")
        assert "`messages = await reply` (inside an `async def`) gives them as a tuple" in text
        assert "notebook" not in text
        assert "cell" not in text
        assert "0x" not in text
        untyped: Any = reply  # (mypy already refuses the last two: the check is for code it does not see)
        for use in (lambda: reply[0], lambda: len(reply), lambda: list(untyped), lambda: "x" in untyped):
            with pytest.raises(NotAwaitedError, match="a reply is a promise of messages, not the messages") as error:
                use()
            assert isinstance(error.value, TypeError)  # what Python's own "not subscriptable" is
            assert isinstance(error.value, MiniAgentsError)
            assert "`messages = await reply` (inside an `async def`)" in str(error.value)
            assert "notebook" not in str(error.value)
        assert bool(reply)  # a promise stays truthy: `if reply:` asks no length

        messages = await reply  # await, async for and pydantic are untouched
        assert [str(message) for message in messages] == ["first", "second"]
        assert [str(await promise) async for promise in reply] == ["first", "second"]
        assert pydantic.TypeAdapter(Any).validate_python(reply) is reply
        assert "(2 messages, no more to come)" in repr(reply)

        first = [promise async for promise in reply][0]
        assert repr(first).startswith("<MessagePromise: a promise of one message (1 token, complete).")
        assert "`message = await message_promise` (inside an `async def`)" in str(first)


@pytest.mark.usefixtures("under_ipython")
async def test_under_ipython_the_hints_speak_of_cells() -> None:
    async with MiniAgents():
        reply = two_messages.trigger()
        assert "(a notebook cell can `await` at its top level)" in repr(reply)
        assert "`reply` alone on a cell's last line shows them live" in repr(reply)
        with pytest.raises(NotAwaitedError, match="a notebook cell can `await` at its top level"):
            reply[0]
        await reply


async def test_a_failed_reply_says_so() -> None:
    @miniagent
    async def failing(ctx: InteractionContext) -> None:
        ctx.reply("one")
        raise ValueError("boom")

    async with MiniAgents():
        reply = failing.trigger()
        with pytest.raises(ValueError, match="boom"):
            await reply
        assert isinstance(reply, MessageSequencePromise)
        assert "(1 message, then it failed)" in repr(reply)


@pytest.mark.usefixtures("plain_python")
def test_no_active_context_in_plain_python_names_async_with() -> None:
    with pytest.raises(NoActiveContextError) as error:
        two_messages.trigger()
    assert str(error.value) == "No MiniAgents is currently active. Did you forget to do `async with MiniAgents():`?"


@pytest.mark.usefixtures("under_ipython")
def test_no_active_context_under_ipython_names_load_ext() -> None:
    with pytest.raises(NoActiveContextError) as error:
        two_messages.trigger()
    assert str(error.value).startswith("No MiniAgents is currently active. Did you forget to do `async with")
    assert "In a notebook, run `%load_ext miniagents_nb` once" in str(error.value)
