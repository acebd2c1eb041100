"""The `MiniAgents` context: run/arun/async with/activate, lookup errors, nesting, defaults.

Pins reference/miniagents_semantics.md §2.2, §2.4, §2.13, §3.4, §3.10-3.11 with docs/design-decisions.md
(error tree; decisions 11 and 12).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import re
import warnings
from typing import Any

import pytest
from support import switches

from miniagents_nb import InteractionContext, MiniAgents, Promise, PromisingContext, miniagent
from miniagents_nb.errors import (
    ContextReentryError,
    MiniAgentsError,
    NoActiveContextError,
    RunningEventLoopError,
    SyncContextManagerError,
    WrongActiveContextError,
)


@miniagent
async def echo(ctx: InteractionContext, prefix: str = "") -> None:
    async for promise in ctx.message_promises:
        ctx.reply(f"{prefix}{await promise}")


def make_background_agent(log: list[str]) -> Any:
    @miniagent
    async def background_agent(ctx: InteractionContext) -> None:
        await switches(10)
        log.append("background agent finished")

    return background_agent


# --- run / arun / async with / activate ---------------------------------------------------------------------------


def test_run_returns_the_result_and_waits_for_fire_and_forget_agents() -> None:
    log: list[str] = []
    background_agent = make_background_agent(log)

    async def main() -> str:
        background_agent.trigger()  # fire and forget
        log.append("main returned")
        return "main result"

    assert MiniAgents().run(main()) == "main result"
    assert log == ["main returned", "background agent finished"]


async def test_arun_returns_the_result_and_waits_for_fire_and_forget_agents() -> None:
    log: list[str] = []
    background_agent = make_background_agent(log)

    async def main() -> str:
        background_agent.trigger()
        log.append("main returned")
        return "main result"

    assert await MiniAgents().arun(main()) == "main result"
    assert log == ["main returned", "background agent finished"]
    with pytest.raises(NoActiveContextError):
        MiniAgents.get_current()


async def test_async_with_activates_and_waits_on_exit() -> None:
    log: list[str] = []
    background_agent = make_background_agent(log)

    async with MiniAgents() as mini_agents:
        assert isinstance(mini_agents, MiniAgents)
        assert MiniAgents.get_current() is mini_agents
        background_agent.trigger()
    assert log == ["background agent finished"]
    with pytest.raises(NoActiveContextError):
        MiniAgents.get_current()


async def test_activate_and_afinalize() -> None:
    log: list[str] = []
    background_agent = make_background_agent(log)
    mini_agents = MiniAgents()

    assert mini_agents.activate() is mini_agents
    try:
        assert MiniAgents.get_current() is mini_agents
        assert [str(m) for m in await echo.trigger("hi")] == ["hi"]
        background_agent.trigger()
    finally:
        await mini_agents.afinalize()
    assert log == ["background agent finished"]
    with pytest.raises(NoActiveContextError):
        MiniAgents.get_current()


async def test_a_finalized_context_can_be_activated_again() -> None:
    mini_agents = MiniAgents()
    async with mini_agents:
        assert [str(m) for m in await echo.trigger("first")] == ["first"]
    async with mini_agents:
        assert [str(m) for m in await echo.trigger("second")] == ["second"]


# --- lookup and misuse errors ----------------------------------------------------------------------------------------


def test_get_current_without_a_context() -> None:
    with pytest.raises(NoActiveContextError, match=re.escape("async with MiniAgents():")) as error_info:
        MiniAgents.get_current()
    assert "No MiniAgents is currently active" in str(error_info.value)
    assert isinstance(error_info.value, RuntimeError)
    assert isinstance(error_info.value, MiniAgentsError)


async def test_get_current_under_a_plain_promising_context() -> None:
    async with PromisingContext():
        with pytest.raises(WrongActiveContextError, match=re.escape("async with MiniAgents()")) as error_info:
            MiniAgents.get_current()
    assert isinstance(error_info.value, TypeError)
    assert isinstance(error_info.value, MiniAgentsError)


def test_sync_with_is_rejected() -> None:
    with pytest.raises(
        SyncContextManagerError, match=re.escape("Use `async with MiniAgents()` instead of `with MiniAgents()`")
    ) as error_info:
        with MiniAgents():
            pass
    assert isinstance(error_info.value, RuntimeError)


async def test_reentry_is_rejected() -> None:
    mini_agents = MiniAgents()
    async with mini_agents:
        with pytest.raises(ContextReentryError, match="is not reentrant"):
            mini_agents.activate()
        with pytest.raises(ContextReentryError, match="is not reentrant"):
            await mini_agents.__aenter__()
        assert MiniAgents.get_current() is mini_agents


# --- nesting --------------------------------------------------------------------------------------------------------


async def test_nested_contexts() -> None:
    outer = MiniAgents()
    resolved_in_outer_handler: list[Any] = []

    @outer.on_promise_resolved
    async def outer_handler(promise: Any, result: Any) -> None:
        resolved_in_outer_handler.append(result)

    async with outer:
        inner = MiniAgents()
        assert inner.parent_ctx is outer  # captured at construction
        async with inner:
            assert MiniAgents.get_current() is inner
            Promise(prefill_result="created in inner")
            assert [str(m) for m in await echo.trigger("inside inner")] == ["inside inner"]
        assert MiniAgents.get_current() is outer
    with pytest.raises(NoActiveContextError):
        MiniAgents.get_current()

    assert "created in inner" in resolved_in_outer_handler


# --- defaults ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argument", ["start_everything_soon_by_default", "start_everything_asap_by_default"])
async def test_start_everything_soon_by_default_and_its_old_name(argument: str) -> None:
    log: list[str] = []

    @miniagent
    async def recorder(ctx: InteractionContext) -> None:
        log.append("ran")

    options: dict[str, Any] = {argument: False}
    mini_agents = MiniAgents(**options)
    assert mini_agents.start_everything_soon_by_default is False
    async with mini_agents:
        replies = recorder.trigger()
        await switches()
        assert log == []
        await replies
        assert log == ["ran"]

    assert MiniAgents().start_everything_soon_by_default is True


def test_run_agent() -> None:
    replies = MiniAgents().run_agent(echo, ["a", "b"], prefix="> ")
    assert isinstance(replies, tuple)
    assert [str(message) for message in replies] == ["> a", "> b"]


# --- event loops ----------------------------------------------------------------------------------------------------


def test_run_twice_in_a_row_uses_fresh_loops_and_closes_them() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def main(text: str) -> list[str]:
        loops.append(asyncio.get_running_loop())
        return [str(m) for m in await echo.trigger(text)]

    assert MiniAgents().run(main("one")) == ["one"]
    assert MiniAgents().run(main("two")) == ["two"]
    assert loops[0] is not loops[1]
    assert all(loop.is_closed() for loop in loops)


def test_run_after_asyncio_run() -> None:
    async def plain() -> str:
        return "plain"

    async def main() -> list[str]:
        return [str(m) for m in await echo.trigger("after asyncio.run")]

    assert asyncio.run(plain()) == "plain"
    assert MiniAgents().run(main()) == ["after asyncio.run"]
    assert asyncio.run(plain()) == "plain"


async def test_run_inside_a_running_loop_raises_and_closes_the_coroutine() -> None:
    async def main() -> str:
        return "never"

    coroutine = main()
    with pytest.raises(RunningEventLoopError) as error_info:
        MiniAgents().run(coroutine)
    message = str(error_info.value)
    assert isinstance(error_info.value, RuntimeError)
    assert "arun" in message
    assert "async with MiniAgents()" in message
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED
    with pytest.raises(NoActiveContextError):
        MiniAgents.get_current()  # nothing was activated


async def test_run_inside_a_running_loop_leaves_no_never_awaited_warning() -> None:
    async def main() -> str:
        return "never"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RunningEventLoopError, match="arun"):
            MiniAgents().run(main())
        gc.collect()

    assert not [w for w in caught if "never awaited" in str(w.message)], [str(w.message) for w in caught]
