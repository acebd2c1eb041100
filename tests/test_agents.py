"""The agent layer: `@miniagent`, `MiniAgent`, `AgentCall`, `InteractionContext`.

Pins SPEC §3 and reference/miniagents_semantics.md §2.14-2.16, §3.5-3.7 (with docs/design-decisions.md winning where
they differ). Ordering is always forced with asyncio events or explicit task switches, never with timed sleeps.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest
from pydantic import BaseModel, ConfigDict
from support import END, next_or_end, run_script, switches, texts

from miniagents_nb import (
    AgentCall,
    Frozen,
    InteractionContext,
    MessageSequencePromise,
    MiniAgent,
    MiniAgents,
    TextMessage,
    miniagent,
)
from miniagents_nb.errors import (
    AgentDefinitionError,
    AppenderClosedError,
    MiniAgentsError,
    NoActiveContextError,
    NotFreezableError,
)
from miniagents_nb.utils import MiniAgentsLogFormatter, display_agent_trace


class RecordingHandler(logging.Handler):
    """Keeps every record and its text as formatted at emit time (inside the task that logged it)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.texts: list[str] = []
        self.setFormatter(MiniAgentsLogFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.texts.append(self.format(record))


def recording_logger(name: str) -> tuple[logging.Logger, RecordingHandler]:
    logger = logging.Logger(name, level=logging.DEBUG)  # not registered with the logging manager on purpose
    handler = RecordingHandler()
    logger.addHandler(handler)
    return logger, handler


# --- @miniagent: the three ways to apply it ----------------------------------------------------------------------


async def test_decorator_bare() -> None:
    @miniagent
    async def my_agent(ctx: InteractionContext) -> None:
        ctx.reply("bare works")

    assert isinstance(my_agent, MiniAgent)
    assert my_agent.alias == "MY_AGENT"
    async with MiniAgents():
        assert await texts(my_agent.trigger()) == ["bare works"]


async def test_decorator_with_arguments() -> None:
    @miniagent(alias="CUSTOM", description="Does custom things.")
    async def some_function(ctx: InteractionContext) -> None:
        ctx.reply("with args works")

    assert isinstance(some_function, MiniAgent)
    assert some_function.alias == "CUSTOM"
    assert some_function.description == "Does custom things."
    async with MiniAgents():
        assert await texts(some_function.trigger()) == ["with args works"]


async def test_decorator_as_a_call() -> None:
    async def plain_function(ctx: InteractionContext) -> None:
        ctx.reply("call works")

    agent = miniagent(plain_function)
    aliased = miniagent(plain_function, alias="ALIASED")

    assert isinstance(agent, MiniAgent)
    assert agent.alias == "PLAIN_FUNCTION"
    assert aliased.alias == "ALIASED"
    assert agent.wrapped_func_or_class is plain_function
    async with MiniAgents():
        assert await texts(agent.trigger()) == ["call works"]
        assert await texts(aliased.trigger()) == ["call works"]


# --- class agents -------------------------------------------------------------------------------------------------


async def test_pydantic_class_agent_is_instantiated_per_call_with_ctx_and_kwargs() -> None:
    instances: list[Any] = []

    @miniagent
    class GreeterAgent(BaseModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)

        ctx: InteractionContext
        greeting: str = "Hello"

        async def __call__(self) -> None:
            instances.append(self)
            async for promise in self.ctx.message_promises:
                self.ctx.reply(f"{self.greeting}, {await promise}!")

    greeter = cast(MiniAgent, GreeterAgent)  # mypy does not apply class decorators to the name; it is an agent
    assert isinstance(greeter, MiniAgent)
    assert greeter.alias == "GREETER_AGENT"
    async with MiniAgents():
        assert await texts(greeter.trigger("Ann")) == ["Hello, Ann!"]
        assert await texts(greeter.trigger(["Bob", "Cy"], greeting="Hi")) == ["Hi, Bob!", "Hi, Cy!"]
        assert await texts(greeter.fork(greeting="Hey").trigger("Di")) == ["Hey, Di!"]

    assert len(instances) == 3
    assert len({id(instance) for instance in instances}) == 3  # a fresh instance per call
    assert all(isinstance(instance.ctx, InteractionContext) for instance in instances)
    assert all(instance.ctx.this_agent.alias == "GREETER_AGENT" for instance in instances)


async def test_plain_class_agent_gets_keyword_only_ctx_and_kwargs() -> None:
    seen: list[dict[str, Any]] = []

    class Counter:
        def __init__(self, *, ctx: InteractionContext, step: int = 1) -> None:
            self.ctx = ctx
            self.step = step

        async def __call__(self) -> None:
            seen.append({"ctx": self.ctx, "step": self.step})
            self.ctx.reply(str(self.step * 2))

    agent = miniagent(Counter)
    async with MiniAgents():
        assert await texts(agent.trigger(step=21)) == ["42"]
        assert await texts(agent.trigger()) == ["2"]

    assert agent.alias == "COUNTER"
    assert [entry["step"] for entry in seen] == [21, 1]
    assert all(isinstance(entry["ctx"], InteractionContext) for entry in seen)


# --- definition errors --------------------------------------------------------------------------------------------


def test_sync_function_is_rejected() -> None:
    def sync_agent(ctx: InteractionContext) -> None:
        ctx.reply("never")

    with pytest.raises(AgentDefinitionError, match="must be async") as error_info:
        miniagent(sync_agent)
    assert isinstance(error_info.value, ValueError)
    assert isinstance(error_info.value, MiniAgentsError)


def test_sync_function_is_rejected_by_the_decorator_with_arguments() -> None:
    decorator = miniagent(alias="SYNC")

    def sync_agent(ctx: InteractionContext) -> None:
        ctx.reply("never")

    with pytest.raises(AgentDefinitionError, match="must be async"):
        decorator(sync_agent)


def test_class_with_sync_call_is_rejected() -> None:
    class SyncCallAgent:
        def __init__(self, **kwargs: Any) -> None:
            self.kwargs = kwargs

        def __call__(self) -> None:
            return None

    with pytest.raises(AgentDefinitionError, match="must be async") as error_info:
        miniagent(SyncCallAgent)
    assert isinstance(error_info.value, ValueError)


def test_class_without_call_is_rejected() -> None:
    class NotCallableAgent:
        pass

    with pytest.raises(AgentDefinitionError, match="callable|must be async"):
        miniagent(NotCallableAgent)


def test_non_callable_object_is_rejected() -> None:
    with pytest.raises(AgentDefinitionError, match="callable|async") as error_info:
        miniagent(42)
    assert isinstance(error_info.value, ValueError)


# --- alias and description ----------------------------------------------------------------------------------------


def _function_named(name: str) -> Any:
    async def agent_function(ctx: InteractionContext) -> None:
        ctx.reply(name)

    agent_function.__name__ = name
    agent_function.__qualname__ = name
    return agent_function


@pytest.mark.parametrize(
    ("name", "alias"),
    [
        ("my_agent", "MY_AGENT"),
        ("CamelCaseAgent", "CAMEL_CASE_AGENT"),
        ("OpenAIAgent", "OPENAI_AGENT"),
        ("HTTPServer", "HTTP_SERVER"),
        ("LLMAgent", "LLM_AGENT"),
        ("ABC", "ABC"),
        ("SimpleXMLParser", "SIMPLEXML_PARSER"),
    ],
)
def test_alias_normalization(name: str, alias: str) -> None:
    agent = miniagent(_function_named(name))
    assert agent.alias == alias
    assert agent.__name__ == alias


def test_alias_normalization_of_a_class_name() -> None:
    class CamelCaseAgent:
        def __init__(self, **kwargs: Any) -> None:
            self.kwargs = kwargs

        async def __call__(self) -> None:
            return None

    assert miniagent(CamelCaseAgent).alias == "CAMEL_CASE_AGENT"


def test_alias_without_normalization() -> None:
    assert miniagent(_function_named("CamelCaseAgent"), normalize_func_or_class_name=False).alias == "CamelCaseAgent"

    @miniagent(normalize_func_or_class_name=False)
    async def my_agent(ctx: InteractionContext) -> None:
        ctx.reply("x")

    assert my_agent.alias == "my_agent"


def test_explicit_alias_is_kept_verbatim() -> None:
    agent = miniagent(_function_named("whatever"), alias="My Custom-Alias")
    assert agent.alias == "My Custom-Alias"
    assert agent.__name__ == "My Custom-Alias"


def test_description_from_docstring_is_whitespace_collapsed_with_alias_substituted() -> None:
    @miniagent
    async def doc_agent(ctx: InteractionContext) -> None:
        """
        I am   {AGENT_ALIAS}.
            I reply    politely.
        """
        ctx.reply("x")

    assert doc_agent.description == "I am DOC_AGENT. I reply politely."
    assert doc_agent.__doc__ == "I am DOC_AGENT. I reply politely."
    assert doc_agent.__name__ == "DOC_AGENT"


def test_description_without_space_normalization_keeps_whitespace() -> None:
    @miniagent(normalize_spaces_in_docstring=False)
    async def raw_doc_agent(ctx: InteractionContext) -> None:
        """I am   {AGENT_ALIAS}."""
        ctx.reply("x")

    assert raw_doc_agent.description is not None
    assert "I am   RAW_DOC_AGENT." in raw_doc_agent.description


def test_explicit_description_and_missing_docstring() -> None:
    @miniagent(description="Explicit description.")
    async def described(ctx: InteractionContext) -> None:
        """Docstring loses."""
        ctx.reply("x")

    @miniagent
    async def undocumented(ctx: InteractionContext) -> None:
        ctx.reply("x")

    assert described.description == "Explicit description."
    assert undocumented.description is None


# --- identity -----------------------------------------------------------------------------------------------------


def test_serialize_and_hash_key_depend_only_on_alias() -> None:
    first = miniagent(
        _function_named("first"),
        alias="SAME",
        description="one description",
        interaction_metadata={"team": "a"},
        k=1,
    )
    second = miniagent(_function_named("second"), alias="SAME", description="another description")
    other = miniagent(_function_named("first"), alias="OTHER")

    assert first.serialize() == {"class_": "MiniAgent", "alias": "SAME"}
    assert first.hash_key == second.hash_key
    assert first.fork(k=2, non_freezable_kwargs={"client": object()}).hash_key == first.hash_key
    assert first.hash_key != other.hash_key
    assert len(first.hash_key) == 40


# --- kwargs -------------------------------------------------------------------------------------------------------


async def test_kwargs_precedence_fork_then_non_freezable_then_trigger() -> None:
    seen: list[dict[str, Any]] = []

    @miniagent
    async def kwargs_agent(ctx: InteractionContext, **kwargs: Any) -> None:
        seen.append(kwargs)

    forked = kwargs_agent.fork(
        a="fork",
        b="fork",
        c="fork",
        non_freezable_kwargs={"b": "non_freezable", "c": "non_freezable", "d": "non_freezable"},
    )
    async with MiniAgents():
        await forked.trigger(c="trigger", e="trigger")

    assert seen == [{"a": "fork", "b": "non_freezable", "c": "trigger", "d": "non_freezable", "e": "trigger"}]


async def test_frozen_kwargs_arrive_frozen_and_non_freezable_by_reference() -> None:
    seen: dict[str, Any] = {}
    shared_state: dict[str, list[str]] = {"calls": []}
    message = TextMessage("a message kwarg")

    @miniagent
    async def kwargs_agent(ctx: InteractionContext, **kwargs: Any) -> None:
        seen.update(kwargs)
        kwargs["state"]["calls"].append("called")

    agent = kwargs_agent.fork(non_freezable_kwargs={"state": shared_state})
    async with MiniAgents():
        await agent.trigger(items=[1, [2, 3]], mapping={"x": 1, "y": [4]}, message=message, number=7)

    assert seen["items"] == (1, (2, 3))
    assert type(seen["items"]) is tuple
    assert type(seen["items"][1]) is tuple
    assert type(seen["mapping"]) is Frozen
    assert seen["mapping"]["x"] == 1
    assert seen["mapping"]["y"] == (4,)
    assert seen["message"] is message
    assert seen["number"] == 7
    assert seen["state"] is shared_state
    assert shared_state == {"calls": ["called"]}


async def test_non_freezable_value_as_frozen_kwarg_is_rejected_at_the_call() -> None:
    ran: list[str] = []

    @miniagent
    async def kwargs_agent(ctx: InteractionContext, **kwargs: Any) -> None:
        ran.append("ran")

    with pytest.raises(NotFreezableError):
        kwargs_agent.fork(bad={1, 2})
    async with MiniAgents():
        with pytest.raises(NotFreezableError):
            kwargs_agent.trigger(bad=object())
        await switches()
    assert ran == []


# --- fork ---------------------------------------------------------------------------------------------------------


async def test_fork_keeps_or_overrides_alias_and_description() -> None:
    @miniagent(interaction_metadata={"x": 1})
    async def base_agent(ctx: InteractionContext, **kwargs: Any) -> None:
        """Base {AGENT_ALIAS}."""
        ctx.reply("x")

    kept = base_agent.fork(k=1)
    renamed = base_agent.fork(alias="RENAMED", description="Renamed agent.")

    assert isinstance(kept, MiniAgent)
    assert kept is not base_agent
    assert kept.alias == "BASE_AGENT"
    assert kept.description == "Base BASE_AGENT."
    assert renamed.alias == "RENAMED"
    assert renamed.description == "Renamed agent."
    assert base_agent.alias == "BASE_AGENT"
    assert kept.wrapped_func_or_class is base_agent.wrapped_func_or_class


async def test_fork_merges_interaction_metadata_and_non_freezable_kwargs() -> None:
    seen: list[dict[str, Any]] = []
    first_client, second_client = object(), object()

    @miniagent(interaction_metadata={"x": 1}, non_freezable_kwargs={"first": first_client})
    async def base_agent(ctx: InteractionContext, **kwargs: Any) -> None:
        seen.append(kwargs)

    forked = base_agent.fork(interaction_metadata={"y": 2}, non_freezable_kwargs={"second": second_client}, k=3)

    assert forked.interaction_metadata["x"] == 1
    assert forked.interaction_metadata["y"] == 2
    assert "y" not in base_agent.interaction_metadata
    async with MiniAgents():
        await forked.trigger()
        await base_agent.trigger()

    assert seen[0]["first"] is first_client
    assert seen[0]["second"] is second_client
    assert seen[0]["k"] == 3
    assert seen[1]["first"] is first_client
    assert "second" not in seen[1]
    assert "k" not in seen[1]  # the original agent is untouched by the fork


# --- trigger and its older names ------------------------------------------------------------------------------------


async def test_trigger_returns_immediately_without_running_the_agent() -> None:
    log: list[str] = []

    @miniagent
    async def logging_agent(ctx: InteractionContext) -> None:
        log.append("agent ran")
        ctx.reply("done")

    async with MiniAgents():
        replies = logging_agent.trigger("input")
        assert isinstance(replies, MessageSequencePromise)
        assert log == []
        assert await texts(replies) == ["done"]
        assert log == ["agent ran"]


async def test_inquire_and_initiate_inquiry_are_aliases_of_trigger_and_initiate_call() -> None:
    @miniagent
    async def echo_agent(ctx: InteractionContext) -> None:
        async for promise in ctx.message_promises:
            ctx.reply(f"You said: {await promise}")

    async with MiniAgents():
        assert await texts(echo_agent.inquire(["Hello", "World"])) == ["You said: Hello", "You said: World"]

        agent_call = echo_agent.initiate_inquiry()
        assert isinstance(agent_call, AgentCall)
        agent_call.send_message("Hello").send_message("World")
        assert await texts(agent_call.reply_sequence()) == ["You said: Hello", "You said: World"]


async def test_start_asap_is_an_alias_of_start_soon() -> None:
    log: list[str] = []
    eager_ran = asyncio.Event()

    @miniagent
    async def lazy_agent(ctx: InteractionContext) -> None:
        log.append("lazy ran")

    @miniagent
    async def eager_agent(ctx: InteractionContext) -> None:
        eager_ran.set()

    async with MiniAgents():
        lazy_replies = lazy_agent.inquire("x", start_asap=False)
        lazy_call = lazy_agent.initiate_inquiry(start_asap=False)
        lazy_call_replies = lazy_call.reply_sequence()
        await switches()
        assert log == []
        await lazy_replies
        assert log == ["lazy ran"]
        await lazy_call_replies
        assert log == ["lazy ran", "lazy ran"]

    async with MiniAgents(start_everything_soon_by_default=False):
        eager_agent.trigger(start_asap=True)
        await eager_ran.wait()  # starts in the background although nobody consumes it


# --- AgentCall: full duplex -----------------------------------------------------------------------------------------


async def test_full_duplex_conversation() -> None:
    @miniagent
    async def echo_agent(ctx: InteractionContext) -> None:
        async for promise in ctx.message_promises:
            ctx.reply(f"echo: {await promise}")

    async with MiniAgents():
        agent_call = echo_agent.initiate_call()
        assert agent_call.agent is echo_agent
        replies = agent_call.reply_sequence(finish_call=False)
        iterator = aiter(replies)

        agent_call.send_message("hello")
        assert str(await (await anext(iterator))) == "echo: hello"
        assert not agent_call.is_finished

        agent_call.send_message("world")
        assert str(await (await anext(iterator))) == "echo: world"

        agent_call.finish()
        assert agent_call.is_finished
        assert await next_or_end(iterator) is END
        assert [str(message) for message in await replies] == ["echo: hello", "echo: world"]


async def test_send_message_after_finish_raises_appender_closed() -> None:
    @miniagent
    async def echo_agent(ctx: InteractionContext) -> None:
        ctx.reply(ctx.message_promises)

    async with MiniAgents():
        agent_call = echo_agent.initiate_call()
        agent_call.send_message("only")
        replies = agent_call.reply_sequence()  # finish_call=True by default
        assert agent_call.is_finished
        with pytest.raises(AppenderClosedError):
            agent_call.send_message("late")
        assert await texts(replies) == ["only"]


async def test_agent_call_agent_is_the_forked_agent() -> None:
    @miniagent
    async def base_agent(ctx: InteractionContext, **kwargs: Any) -> None:
        ctx.reply("x")

    forked = base_agent.fork(k=1)
    async with MiniAgents():
        agent_call = forked.initiate_call()
        assert agent_call.agent is forked
        assert await texts(agent_call.reply_sequence()) == ["x"]


async def test_send_out_of_order_jumps_ahead_of_a_blocked_ordered_input() -> None:
    gate = asyncio.Event()

    @miniagent
    async def slow_agent(ctx: InteractionContext) -> None:
        await gate.wait()
        ctx.reply("slow")

    @miniagent
    async def collector(ctx: InteractionContext) -> None:
        async for promise in ctx.message_promises:
            message = await promise
            if str(message) == "out-of-order":
                gate.set()  # "slow" can only exist after the out-of-order input was received
            ctx.reply(message)

    async with MiniAgents():
        agent_call = collector.initiate_call()
        agent_call.send_message(slow_agent.trigger()).send_out_of_order("out-of-order").send_message("last")
        assert await texts(agent_call.reply_sequence()) == ["out-of-order", "slow", "last"]


# --- InteractionContext ---------------------------------------------------------------------------------------------


async def test_interaction_context_get_current_inside_and_outside_an_agent() -> None:
    seen: dict[str, Any] = {}

    @miniagent
    async def context_agent(ctx: InteractionContext) -> None:
        seen["current"] = InteractionContext.get_current()
        seen["ctx"] = ctx
        seen["this_agent"] = ctx.this_agent
        seen["miniagents"] = ctx.miniagents

    with pytest.raises(NoActiveContextError, match="InteractionContext"):
        InteractionContext.get_current()
    async with MiniAgents() as mini_agents:
        with pytest.raises(NoActiveContextError, match="InteractionContext"):
            InteractionContext.get_current()
        await context_agent.trigger()

    assert seen["current"] is seen["ctx"]
    assert seen["this_agent"] is context_agent
    assert seen["miniagents"] is mini_agents


async def test_message_promises_are_replayable() -> None:
    seen: dict[str, Any] = {}

    @miniagent
    async def replaying_agent(ctx: InteractionContext) -> None:
        first_pass = [promise async for promise in ctx.message_promises]
        second_pass = [promise async for promise in ctx.message_promises]
        seen["first"] = [await promise for promise in first_pass]
        seen["second"] = [await promise for promise in second_pass]
        seen["awaited"] = await ctx.message_promises
        seen["awaited_again"] = await ctx.message_promises
        seen["same_promises"] = all(a is b for a, b in zip(first_pass, second_pass, strict=True))

    async with MiniAgents():
        await replaying_agent.trigger(["one", "two"])

    assert [str(message) for message in seen["first"]] == ["one", "two"]
    assert all(a is b for a, b in zip(seen["first"], seen["second"], strict=True))
    assert seen["awaited"] is seen["awaited_again"]
    assert list(seen["awaited"]) == seen["first"]
    assert all(a is b for a, b in zip(seen["awaited"], seen["first"], strict=True))
    assert seen["same_promises"]


async def test_agent_trace() -> None:
    seen: dict[str, Any] = {}

    @miniagent
    async def inner(ctx: InteractionContext) -> None:
        seen["trace"] = [agent.alias for agent in ctx.get_agent_trace()]
        seen["display"] = display_agent_trace()
        seen["display_explicit"] = display_agent_trace(ctx.get_agent_trace())

    @miniagent
    async def outer(ctx: InteractionContext) -> None:
        ctx.reply(inner.trigger())

    async with MiniAgents():
        await outer.trigger()

    assert seen["trace"] == ["INNER", "OUTER"]
    assert seen["display"] == "INNER <- OUTER"
    assert seen["display_explicit"] == "INNER <- OUTER"


async def test_make_sure_to_wait_starts_a_bare_coroutine_and_delays_the_end_of_the_replies() -> None:
    log: list[str] = []
    side_started = asyncio.Event()
    release_side = asyncio.Event()

    async def side_job() -> None:
        log.append("side started")
        side_started.set()
        await release_side.wait()
        log.append("side done")

    @miniagent
    async def waiting_agent(ctx: InteractionContext) -> None:
        ctx.make_sure_to_wait(side_job())  # nobody awaits it in the body: it must be started anyway
        ctx.reply("reply")
        log.append("body done")

    async with MiniAgents():
        iterator = aiter(waiting_agent.trigger())
        assert str(await (await anext(iterator))) == "reply"
        end = asyncio.create_task(next_or_end(iterator))
        await side_started.wait()
        await switches()
        assert not end.done()  # the reply sequence stays open while the side job runs
        release_side.set()
        assert await end is END
        log.append("replies closed")

    assert log.index("side done") < log.index("replies closed")
    assert log.index("body done") < log.index("side done")


async def test_make_sure_to_wait_with_a_future() -> None:
    @miniagent
    async def waiting_agent(ctx: InteractionContext, future: Any) -> None:
        ctx.make_sure_to_wait(future)
        ctx.reply("reply")

    async with MiniAgents():
        future = asyncio.get_running_loop().create_future()
        replies = waiting_agent.fork(non_freezable_kwargs={"future": future}).trigger()
        iterator = aiter(replies)
        assert str(await (await anext(iterator))) == "reply"
        end = asyncio.create_task(next_or_end(iterator))
        await switches()
        assert not end.done()
        future.set_result(None)
        assert await end is END


async def test_await_now_awaits_the_registered_awaitables() -> None:
    log: list[str] = []

    async def side_job() -> None:
        await switches(5)
        log.append("side done")

    @miniagent
    async def waiting_agent(ctx: InteractionContext) -> None:
        ctx.make_sure_to_wait(side_job())
        await ctx.await_now()
        log.append("after await_now")
        ctx.reply("reply")

    async with MiniAgents():
        assert await texts(waiting_agent.trigger()) == ["reply"]

    assert log == ["side done", "after await_now"]


async def test_afinish_early_closes_the_replies_while_the_function_keeps_running() -> None:
    log: list[str] = []
    proceed = asyncio.Event()
    body_done = asyncio.Event()

    @miniagent
    async def early_agent(ctx: InteractionContext) -> None:
        ctx.reply("before")
        await ctx.afinish_early()
        log.append("after afinish_early")
        await proceed.wait()
        try:
            ctx.reply("late")
        except AppenderClosedError:
            log.append("late reply rejected")
        body_done.set()

    async with MiniAgents():
        replies = early_agent.trigger()
        assert [str(message) for message in await replies] == ["before"]  # done while the body still waits
        assert log == ["after afinish_early"]
        proceed.set()
        await body_done.wait()
        assert log == ["after afinish_early", "late reply rejected"]
        assert [str(message) for message in await replies] == ["before"]


# --- exceptions inside agents ---------------------------------------------------------------------------------------


async def test_exception_is_delivered_at_its_position_after_earlier_replies() -> None:
    @miniagent
    async def faulty(ctx: InteractionContext) -> None:
        ctx.reply("ok1")
        ctx.reply("ok2")
        raise ValueError("boom")

    async with MiniAgents():
        replies = faulty.trigger()
        iterator = aiter(replies)
        assert str(await (await anext(iterator))) == "ok1"
        assert str(await (await anext(iterator))) == "ok2"
        with pytest.raises(ValueError, match="boom") as error_info:
            await anext(iterator)
        assert await next_or_end(iterator) is END
        with pytest.raises(ValueError, match="boom") as awaited_info:
            await replies
        assert awaited_info.value is error_info.value


async def test_exception_in_an_agent_does_not_affect_the_caller_and_is_logged_once_with_the_trace() -> None:
    logger, handler = recording_logger("test_agents.exceptions")
    child_replies: list[MessageSequencePromise] = []

    @miniagent
    async def faulty(ctx: InteractionContext) -> None:
        ctx.reply("ok1")
        raise ValueError("boom")

    @miniagent
    async def parent(ctx: InteractionContext) -> None:
        child_replies.append(faulty.trigger())  # triggered, not consumed
        ctx.reply("parent ok")

    async with MiniAgents(logger=logger):
        assert await texts(parent.trigger()) == ["parent ok"]
        iterator = aiter(child_replies[0])
        assert str(await (await anext(iterator))) == "ok1"
        with pytest.raises(ValueError, match="boom") as error_info:
            await anext(iterator)

    errors = [
        (record, text)
        for record, text in zip(handler.records, handler.texts, strict=True)
        if record.levelno >= logging.ERROR
    ]
    assert len(errors) == 1, handler.texts
    record, text = errors[0]
    assert record.exc_info is not None
    assert record.exc_info[1] is error_info.value
    assert "FAULTY <- PARENT" in text


async def test_log_formatter_agent_trace_names_the_failing_agent() -> None:
    """`MiniAgentsLogFormatter` appends "Agent trace:" (semantics §2.18); for an agent's error it is that agent's."""
    logger, handler = recording_logger("test_agents.formatter_trace")

    @miniagent
    async def faulty(ctx: InteractionContext) -> None:
        raise ValueError("boom")

    @miniagent
    async def parent(ctx: InteractionContext) -> None:
        faulty.trigger()

    async with MiniAgents(logger=logger):
        await parent.trigger()

    errors = [
        text for record, text in zip(handler.records, handler.texts, strict=True) if record.levelno >= logging.ERROR
    ]
    assert len(errors) == 1, handler.texts
    assert "\nAgent trace:\nFAULTY <- PARENT\n" in errors[0]


async def test_cancelled_error_raised_inside_an_agent_is_delivered_at_its_position() -> None:
    @miniagent
    async def cancelling_agent(ctx: InteractionContext) -> None:
        ctx.reply("before")
        raise asyncio.CancelledError

    async with MiniAgents():
        iterator = aiter(cancelling_agent.trigger())
        assert str(await (await anext(iterator))) == "before"
        with pytest.raises(asyncio.CancelledError):
            await anext(iterator)


async def test_a_call_that_cancels_what_it_waits_for_as_it_is_cancelled_ends_with_one_cancellation() -> None:
    """The nested reply it waited for ended cancelled right where the call's own reply ends: one end, not two (the
    same as when both are cancelled from outside). Cancelled replies elsewhere keep their positions."""
    streaming = asyncio.Event()

    @miniagent
    async def waiting_agent(ctx: InteractionContext) -> None:
        ctx.reply("before")
        streaming.set()
        await asyncio.Event().wait()

    @miniagent
    async def forwarding_agent(ctx: InteractionContext, cancelled_first: bool) -> None:
        if cancelled_first:  # a nested reply cancelled on its own: it keeps its position
            early = waiting_agent.initiate_call()
            ctx.reply(early.reply_sequence())
            early.cancel()
            ctx.reply("between")
        inner = waiting_agent.initiate_call()
        ctx.reply(inner.reply_sequence())
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            inner.cancel()
            raise

    async with MiniAgents():
        for cancelled_first, expected in (
            (False, ["before", "CancelledError"]),
            (True, ["CancelledError", "between", "before", "CancelledError"]),
        ):
            streaming.clear()
            call = forwarding_agent.initiate_call(cancelled_first=cancelled_first)
            reply = call.reply_sequence()
            await streaming.wait()
            await switches(3)
            call.cancel()
            pieces = [piece async for piece in _pieces(reply)]
            assert pieces == expected
            assert call.status.value == "cancelled"


async def _pieces(reply: MessageSequencePromise) -> Any:
    """Each piece of the reply as text: a message's, or an error's class name."""
    while not reply.producer_ended:
        await reply.wait_for_more()
    for piece in reply.pieces_so_far:
        yield type(piece).__name__ if isinstance(piece, BaseException) else str(await piece)


def test_keyboard_interrupt_inside_an_agent_is_raised_to_the_consumer_at_its_position() -> None:
    result = run_script(
        """
        import asyncio
        from miniagents_nb import MiniAgents, miniagent

        @miniagent
        async def interrupting_agent(ctx):
            ctx.reply("before")
            raise KeyboardInterrupt

        async def consume(**kwargs):
            seen = []
            iterator = aiter(interrupting_agent.trigger(**kwargs))
            seen.append(str(await (await anext(iterator))))
            try:
                await anext(iterator)
            except KeyboardInterrupt:
                seen.append("KeyboardInterrupt")
            return seen

        async def main():
            return [await consume(), await consume(errors_as_messages=True)]

        print(MiniAgents().run(main()))
        print("clean exit")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "[['before', 'KeyboardInterrupt'], ['before', 'KeyboardInterrupt']]",
        "clean exit",
    ]
    assert "KeyboardInterrupt" not in result.stderr  # not logged, not leaked
