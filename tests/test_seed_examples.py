"""Acceptance tests: the no-LLM code examples of the seed documents, run against `miniagents_nb`.

Seeds (with `miniagents` replaced by `miniagents_nb`):
- seeds/miniagents_readme_v1.md, seeds/miniagents_readme_v2.md (echo agent, custom dialog loop,
  agent parallelism, initiate_inquiry/send_message, the three ways to use `MiniAgents()`, message models)
- seeds/miniagents_tutorial_web_research.md (naive async generators vs. message sequence flattening,
  the "sequential code, parallel execution" aggregator snippet)

Each example keeps the seed's agent code and its `MiniAgents().run(main())` call (in a plain sync test:
`run()` creates its own event loop) and asserts the printed output the seed documents, exactly.

Not covered here (they belong to a later issue): the earliest README's `miniagents_nb.utils.adialog_loop`,
`achain_loop`, `join_messages`, `split_messages`, `ChatHistory`, `InMemoryChatHistory`,
`miniagents_nb.ext.console_user_agent.create_console_user_agent`, `miniagents_nb.ext.llm.openai.create_openai_agent`.
The LLM examples (openai_agent, anthropic_agent, dialog_loop + markdown_history_agent, the tutorial's
real web research system) are covered by other test files.
"""

import asyncio
import random
import re
import sys
from collections.abc import AsyncGenerator

import pytest

# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _scripted_input(lines):
    """A stand-in for `builtins.input`: it echoes the prompt and the "typed" line to stdout (like a terminal
    does), returns the scripted lines one by one and then raises KeyboardInterrupt (the user pressing Ctrl+C
    at the prompt; a terminal shows the prompt and no newline in that case)."""
    remaining: list[str] = list(lines)

    def fake_input(prompt: str = "") -> str:
        sys.stdout.write(prompt)
        if not remaining:
            raise KeyboardInterrupt
        line = remaining.pop(0)
        sys.stdout.write(line + "\n")
        return line

    return fake_input


# --------------------------------------------------------------------------------------------------
# README v1/v2: "Usage" - the echo agent
# --------------------------------------------------------------------------------------------------

ECHO_OUTPUT = "You said: Hello\nYou said: World\n"


def test_readme_echo_agent_inquire(capsys):
    from miniagents_nb import InteractionContext, MiniAgents, miniagent

    @miniagent
    async def my_agent(ctx: InteractionContext):
        async for msg_promise in ctx.message_promises:
            ctx.reply(f"You said: {await msg_promise}")

    async def main() -> None:
        async for msg_promise in my_agent.inquire(["Hello", "World"]):
            print(await msg_promise)

    MiniAgents().run(main())

    assert capsys.readouterr().out == ECHO_OUTPUT


def test_readme_echo_agent_trigger(capsys):
    """The same example with the newer name of `inquire()`: `trigger()`."""
    from miniagents_nb import InteractionContext, MiniAgents, miniagent

    @miniagent
    async def my_agent(ctx: InteractionContext):
        async for msg_promise in ctx.message_promises:
            ctx.reply(f"You said: {await msg_promise}")

    async def main() -> None:
        async for msg_promise in my_agent.trigger(["Hello", "World"]):
            print(await msg_promise)

    MiniAgents().run(main())

    assert capsys.readouterr().out == ECHO_OUTPUT


# --------------------------------------------------------------------------------------------------
# README v2: initiate_inquiry() + send_message() + reply_sequence()
# --------------------------------------------------------------------------------------------------


def test_readme_v2_initiate_inquiry_send_message(capsys):
    from miniagents_nb import InteractionContext, MiniAgents, miniagent

    @miniagent
    async def echo_agent(ctx: InteractionContext):
        async for msg_promise in ctx.message_promises:
            ctx.reply(f"You said: {await msg_promise}")

    async def main() -> None:
        agent_call = echo_agent.initiate_inquiry()
        agent_call.send_message("Hello").send_message("World")

        async for msg_promise in agent_call.reply_sequence():
            print(await msg_promise)

    MiniAgents().run(main())

    assert capsys.readouterr().out == ECHO_OUTPUT


def test_readme_v2_initiate_call_send_message(capsys):
    """The same example with the newer name of `initiate_inquiry()`: `initiate_call()`."""
    from miniagents_nb import InteractionContext, MiniAgents, miniagent

    @miniagent
    async def echo_agent(ctx: InteractionContext):
        async for msg_promise in ctx.message_promises:
            ctx.reply(f"You said: {await msg_promise}")

    async def main() -> None:
        agent_call = echo_agent.initiate_call()
        agent_call.send_message("Hello").send_message("World")

        async for msg_promise in agent_call.reply_sequence():
            print(await msg_promise)

    MiniAgents().run(main())

    assert capsys.readouterr().out == ECHO_OUTPUT


# --------------------------------------------------------------------------------------------------
# README v2: the other two ways to use the `MiniAgents()` context
# --------------------------------------------------------------------------------------------------


async def test_readme_v2_async_with_miniagents(capsys):
    from miniagents_nb import InteractionContext, MiniAgents, miniagent

    @miniagent
    async def echo_agent(ctx: InteractionContext):
        async for msg_promise in ctx.message_promises:
            ctx.reply(f"You said: {await msg_promise}")

    async with MiniAgents():
        async for msg_promise in echo_agent.trigger(["Hello", "World"]):
            print(await msg_promise)

    assert capsys.readouterr().out == ECHO_OUTPUT


async def test_readme_v2_activate_and_afinalize(capsys):
    from miniagents_nb import InteractionContext, MiniAgents, miniagent

    finished = []

    @miniagent
    async def echo_agent(ctx: InteractionContext):
        async for msg_promise in ctx.message_promises:
            ctx.reply(f"You said: {await msg_promise}")
        finished.append(True)

    mini_agents = MiniAgents()
    mini_agents.activate()
    try:
        async for msg_promise in echo_agent.trigger(["Hello", "World"]):
            print(await msg_promise)
        # fire-and-forget: nobody consumes this reply sequence; afinalize() must still wait for the agent
        echo_agent.trigger("unconsumed")
    finally:
        await mini_agents.afinalize()

    assert capsys.readouterr().out == ECHO_OUTPUT
    assert finished == [True, True]


# --------------------------------------------------------------------------------------------------
# README v1/v2: "Implementing a custom dialog loop"
# --------------------------------------------------------------------------------------------------

# The seed's transcript, verbatim (the markdown block strips the trailing space of the last "USER: " prompt).
SEED_DIALOG_TRANSCRIPT = """\
USER: hi
ASSISTANT: You said "hi"
USER: nice!
ASSISTANT: You said "nice!"
USER: bye
ASSISTANT: You said "bye"
USER:
"""
# What stdout holds exactly: the last prompt "USER: " is printed by input() and then the user presses
# Ctrl+C (no newline is printed after it).
EXPECTED_DIALOG_STDOUT = (
    "USER: hi\n"
    'ASSISTANT: You said "hi"\n'
    "USER: nice!\n"
    'ASSISTANT: You said "nice!"\n'
    "USER: bye\n"
    'ASSISTANT: You said "bye"\n'
    "USER: "
)


def _define_dialog_agents():
    """The seed's two agents (v1/v2 code, v2's comments dropped)."""
    from miniagents_nb import InteractionContext, miniagent

    @miniagent
    async def user_agent(ctx: InteractionContext) -> None:
        async for msg_promise in ctx.message_promises:
            print("ASSISTANT: ", end="", flush=True)
            async for token in msg_promise:
                print(token, end="", flush=True)
            print()
        ctx.reply(input("USER: "))  # noqa: ASYNC250 - the seed code reads the console this way

    @miniagent
    async def assistant_agent(ctx: InteractionContext) -> None:
        aggregated_message = await ctx.message_promises.as_single_promise()
        ctx.reply(f'You said "{aggregated_message}"')

    return user_agent, assistant_agent


def test_readme_custom_dialog_loop(capsys, monkeypatch):
    import builtins

    from miniagents_nb import MiniAgents
    from miniagents_nb.ext import agent_loop
    from miniagents_nb.promising.sentinels import AWAIT

    monkeypatch.setattr(builtins, "input", _scripted_input(["hi", "nice!", "bye"]))
    user_agent, assistant_agent = _define_dialog_agents()

    async def main() -> None:
        await agent_loop.fork(agents=[user_agent, AWAIT, assistant_agent]).inquire()

    # agent_loop re-raises the KeyboardInterrupt (Ctrl+C at the last prompt) by default
    with pytest.raises(KeyboardInterrupt):
        MiniAgents().run(main())

    out = capsys.readouterr().out
    assert out == EXPECTED_DIALOG_STDOUT
    assert out.rstrip() == SEED_DIALOG_TRANSCRIPT.rstrip()


def test_readme_custom_dialog_loop_without_raising_keyboard_interrupt(capsys, monkeypatch):
    import builtins

    from miniagents_nb import MiniAgents
    from miniagents_nb.ext import agent_loop
    from miniagents_nb.promising.sentinels import AWAIT

    monkeypatch.setattr(builtins, "input", _scripted_input(["hi", "nice!", "bye"]))
    user_agent, assistant_agent = _define_dialog_agents()

    result = []

    async def main() -> None:
        replies = await agent_loop.fork(
            agents=[user_agent, AWAIT, assistant_agent], raise_keyboard_interrupt=False
        ).inquire()
        result.append(replies)

    MiniAgents().run(main())  # returns normally

    assert capsys.readouterr().out == EXPECTED_DIALOG_STDOUT
    assert result == [()]  # agent_loop replies nothing


def test_agent_await_sentinel_is_the_plain_string():
    from miniagents_nb.ext import AWAIT as EXT_AWAIT
    from miniagents_nb.promising.sentinels import AWAIT, CLEAR

    assert AWAIT == "AWAIT"
    assert CLEAR == "CLEAR"
    assert EXT_AWAIT is AWAIT


# --------------------------------------------------------------------------------------------------
# README v1/v2: "Agent parallelism explained"
# --------------------------------------------------------------------------------------------------

PARALLELISM_OUTPUT = """\
PREPARING TO DELIVER MESSAGES FROM AGGREGATOR
Aggregator started
Aggregator still working
Aggregator finished
Agent 1 started
Agent 1 finished
Agent 2 started
Agent 2 finished
*** MESSAGE from Agent 1 ***
*** MESSAGE from Agent 2 ***
*** MESSAGE #1 from Aggregator ***
*** MESSAGE #2 from Aggregator ***
TOTAL NUMBER OF MESSAGES FROM AGGREGATOR: 4
"""


def _define_parallelism_agents(call):
    """The seed's three agents; `call(agent)` is how the aggregator calls agent1/agent2 (`inquire()` in the
    seed, `trigger()` with the newer name)."""
    from miniagents_nb.miniagents import InteractionContext, miniagent

    @miniagent
    async def agent1(ctx: InteractionContext) -> None:
        print("Agent 1 started")
        ctx.reply("*** MESSAGE from Agent 1 ***")
        print("Agent 1 finished")

    @miniagent
    async def agent2(ctx: InteractionContext) -> None:
        print("Agent 2 started")
        ctx.reply("*** MESSAGE from Agent 2 ***")
        print("Agent 2 finished")

    @miniagent
    async def aggregator_agent(ctx: InteractionContext) -> None:
        print("Aggregator started")
        ctx.reply(
            [
                call(agent1),
                call(agent2),
                "*** MESSAGE #1 from Aggregator ***",
            ]
        )
        print("Aggregator still working")
        ctx.reply("*** MESSAGE #2 from Aggregator ***")
        print("Aggregator finished")

    return aggregator_agent


def test_readme_agent_parallelism_explained(capsys):
    from miniagents_nb.miniagents import (
        InteractionContext,
        Message,
        MiniAgents,
        miniagent,
    )

    @miniagent
    async def agent1(ctx: InteractionContext) -> None:
        print("Agent 1 started")
        ctx.reply("*** MESSAGE from Agent 1 ***")
        print("Agent 1 finished")

    @miniagent
    async def agent2(ctx: InteractionContext) -> None:
        print("Agent 2 started")
        ctx.reply("*** MESSAGE from Agent 2 ***")
        print("Agent 2 finished")

    @miniagent
    async def aggregator_agent(ctx: InteractionContext) -> None:
        print("Aggregator started")
        ctx.reply(
            [
                agent1.inquire(),
                agent2.inquire(),
                "*** MESSAGE #1 from Aggregator ***",
            ]
        )
        print("Aggregator still working")
        ctx.reply("*** MESSAGE #2 from Aggregator ***")
        print("Aggregator finished")

    async def main() -> None:
        msg_promises = aggregator_agent.inquire()

        print("PREPARING TO DELIVER MESSAGES FROM AGGREGATOR")

        async for msg_promise in msg_promises:
            # MessagePromises always resolve into Message objects (or subclasses),
            # even if the agent was replying with bare strings
            message: Message = await msg_promise
            assert isinstance(message, Message)
            print(message)
        # You can safely `await` again. Concrete messages (and tokens, if there was
        # token streaming) are cached inside the promises. Message sequences (as
        # well as token sequences) are "replayable".
        print("TOTAL NUMBER OF MESSAGES FROM AGGREGATOR:", len(await msg_promises))

    MiniAgents().run(main())

    assert capsys.readouterr().out == PARALLELISM_OUTPUT


def test_readme_agent_parallelism_explained_with_trigger(capsys):
    """The same example with `trigger()` (the newer name of `inquire()`)."""
    from miniagents_nb.miniagents import Message, MiniAgents

    aggregator_agent = _define_parallelism_agents(lambda agent: agent.trigger())

    async def main() -> None:
        msg_promises = aggregator_agent.trigger()

        print("PREPARING TO DELIVER MESSAGES FROM AGGREGATOR")

        async for msg_promise in msg_promises:
            message: Message = await msg_promise
            print(message)
        print("TOTAL NUMBER OF MESSAGES FROM AGGREGATOR:", len(await msg_promises))

    MiniAgents().run(main())

    assert capsys.readouterr().out == PARALLELISM_OUTPUT


def test_readme_agent_parallelism_unrelated_task_switch_starts_agents(capsys):
    """Seed prose: "If there was some other, unrelated task switch before any attempt to consume the responses
    (let's say `await asyncio.sleep(1)` some time before the loop), the processing of the agent functions would
    still have started, but now upon this other, unrelated task switch." (design decision 12: the agent body
    starts at the first task switch after `trigger()`; the aggregator has no awaits, so it runs to its end)."""
    from miniagents_nb.miniagents import Message, MiniAgents

    aggregator_agent = _define_parallelism_agents(lambda agent: agent.inquire())

    async def main() -> None:
        msg_promises = aggregator_agent.inquire()

        await asyncio.sleep(0)  # some other, unrelated task switch

        print("PREPARING TO DELIVER MESSAGES FROM AGGREGATOR")

        async for msg_promise in msg_promises:
            message: Message = await msg_promise
            print(message)
        print("TOTAL NUMBER OF MESSAGES FROM AGGREGATOR:", len(await msg_promises))

    MiniAgents().run(main())

    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == ["Aggregator started", "Aggregator still working", "Aggregator finished"]
    assert sorted(lines) == sorted(PARALLELISM_OUTPUT.splitlines())
    assert lines[-5:] == PARALLELISM_OUTPUT.splitlines()[-5:]
    assert lines.index("Agent 1 started") < lines.index("Agent 1 finished") < lines.index("Agent 2 started")
    assert lines.index("Agent 2 started") < lines.index("Agent 2 finished")


def test_readme_agent_parallelism_start_asap_false(capsys):
    """Seed prose: `some_agent.inquire(request_messages_if_any, start_asap=False)` - the agent does not start on
    an unrelated task switch, only when its replies are consumed (so the output is the documented one even with
    the extra task switch)."""
    from miniagents_nb.miniagents import Message, MiniAgents

    aggregator_agent = _define_parallelism_agents(lambda agent: agent.inquire())

    async def main() -> None:
        msg_promises = aggregator_agent.inquire(None, start_asap=False)

        await asyncio.sleep(0)  # some other, unrelated task switch: the aggregator must not start here

        print("PREPARING TO DELIVER MESSAGES FROM AGGREGATOR")

        async for msg_promise in msg_promises:
            message: Message = await msg_promise
            print(message)
        print("TOTAL NUMBER OF MESSAGES FROM AGGREGATOR:", len(await msg_promises))

    MiniAgents().run(main())

    assert capsys.readouterr().out == PARALLELISM_OUTPUT


# --------------------------------------------------------------------------------------------------
# README v1/v2: "Existing Message models" and "Custom Message models"
# --------------------------------------------------------------------------------------------------


def test_readme_existing_message_models():
    from miniagents_nb import Message
    from miniagents_nb.ext.llm import AssistantMessage, SystemMessage, UserMessage

    user_message = UserMessage(text="Hello!")
    system_message = SystemMessage(text="System message")
    assistant_message = AssistantMessage(text="Assistant message")

    # "The difference between these message types is in the default values of the `role` field"
    assert user_message.role == "user"
    assert system_message.role == "system"
    assert assistant_message.role == "assistant"

    for message, text in [
        (user_message, "Hello!"),
        (system_message, "System message"),
        (assistant_message, "Assistant message"),
    ]:
        assert isinstance(message, Message)
        assert message.text == text
        assert message.content == text
        assert str(message) == text

    # the role default can be overridden
    assert UserMessage(text="x", role="assistant").role == "assistant"


def test_readme_system_message_positional_text():
    """`SystemMessage("Your job is to improve ...")` - positional text, as in the README's dialog_loop example."""
    from miniagents_nb.ext.llm import SystemMessage

    text = (
        "Your job is to improve the styling and grammar of the sentences "
        "that the user throws at you. Leave the sentences unchanged if "
        "they seem fine."
    )
    message = SystemMessage(text)
    assert message.role == "system"
    assert message.text == text
    assert message.content == text
    assert str(message) == text


def test_message_models_importable_from_ext_llms_too():
    from miniagents_nb.ext import llm, llms

    assert llm.UserMessage is llms.UserMessage
    assert llm.SystemMessage is llms.SystemMessage
    assert llm.AssistantMessage is llms.AssistantMessage


def test_readme_custom_message_model(capsys):
    from miniagents_nb.messages import Message

    class CustomMessage(Message):
        custom_field: str

    message = CustomMessage(text="Hello", custom_field="Custom Value")
    print(message.text)  # Output: Hello
    print(message.custom_field)  # Output: Custom Value

    assert capsys.readouterr().out == "Hello\nCustom Value\n"
    assert message.content == "Hello"


def test_readme_messages_are_immutable():
    from miniagents_nb.ext.llm import UserMessage
    from miniagents_nb.messages import Message

    class CustomMessage(Message):
        custom_field: str

    message = CustomMessage(text="Hello", custom_field="Custom Value")
    with pytest.raises((TypeError, ValueError, AttributeError)):
        message.custom_field = "Changed"  # type: ignore[misc]  # deliberately mutating
    with pytest.raises((TypeError, ValueError, AttributeError)):
        message.content = "Changed"  # type: ignore[attr-defined]  # deliberately mutating
    with pytest.raises((TypeError, ValueError, AttributeError)):
        message.text = "Changed"  # type: ignore[misc]  # deliberately mutating
    assert message.custom_field == "Custom Value"
    assert message.text == "Hello"
    assert message.content == "Hello"

    user_message = UserMessage(text="Hello!")
    with pytest.raises((TypeError, ValueError, AttributeError)):
        user_message.role = "assistant"  # type: ignore[misc]  # deliberately mutating
    assert user_message.role == "user"


def test_early_readme_core_names_importable():
    """The earliest README's "Documentation" lists these core components (its `utils`/`ext` helpers are a later
    issue and are not tested here)."""
    import miniagents_nb
    from miniagents_nb.miniagents import MiniAgents

    assert miniagents_nb.MiniAgents is MiniAgents
    for name in ["MiniAgents", "MiniAgent", "Message", "MessagePromise", "MessageSequence"]:
        assert isinstance(getattr(miniagents_nb, name), type), name


# --------------------------------------------------------------------------------------------------
# Web research tutorial: "Message Sequence Flattening" (offline parts)
# --------------------------------------------------------------------------------------------------

QUESTION = "Tell me about MiniAgents"

# Deterministic replacement delays for the tutorial's `random.uniform(0.5, 1)`, derived from the argument of the
# (pretend) agent that asks for the delay. The three searches finish in the order query 2, query 3, query 1, each
# well before/after the others; all of them take much longer than starting the three search agents does.
SEARCH_DELAYS = {"query 1": 0.05, "query 2": 0.01, "query 3": 0.03}
PAGE_DELAYS = {
    "https://dummy.com/query-1/page-1": 0.02,
    "https://dummy.com/query-1/page-2": 0.01,
    "https://dummy.com/query-2/page-1": 0.025,
    "https://dummy.com/query-2/page-2": 0.035,
    "https://dummy.com/query-3/page-1": 0.005,
    "https://dummy.com/query-3/page-2": 0.04,
}


def _expected_research_lines_in_naive_order():
    """Every line the research flow produces, in the strictly sequential order of the naive version."""
    lines = [f"RESEARCHING: {QUESTION}"]
    for q in range(1, 4):
        lines += [f"query {q} - SEARCHING", f"query {q} - SEARCH DONE"]
        for p in range(1, 3):
            url = f"https://dummy.com/query-{q}/page-{p}"
            lines += [f"{url} - SCRAPING", f"{url} - DONE"]
    return lines


@pytest.fixture
def patched_uniform(monkeypatch):
    """Patch `random.uniform` (as called by the tutorial's agents) to return the delays above; records the calls."""
    original_uniform = random.uniform
    calls = []

    def fake_uniform(a, b):
        if (a, b) != (0.5, 1):
            return original_uniform(a, b)
        caller_locals = sys._getframe(1).f_locals
        if "url" in caller_locals:
            key = caller_locals["url"]
            delay = PAGE_DELAYS[key]
        elif "search_query" in caller_locals:
            key = caller_locals["search_query"]
            delay = SEARCH_DELAYS[key]
        else:
            raise AssertionError(f"unexpected random.uniform(0.5, 1) call from {sys._getframe(1).f_code.co_name}")
        calls.append(key)
        return delay

    monkeypatch.setattr(random, "uniform", fake_uniform)
    return calls


# ---- the naive alternative, verbatim from the tutorial ----


async def research_agent_naive(question: str) -> AsyncGenerator[str, None]:
    yield f"RESEARCHING: {question}"

    for i in range(3):
        query = f"query {i + 1}"
        # NOTE: The generator below runs sequentially - "query 2" only starts
        # after "query 1" is completely finished
        async for item in web_search_agent_naive(search_query=query):
            yield item


async def web_search_agent_naive(search_query: str) -> AsyncGenerator[str, None]:
    yield f"{search_query} - SEARCHING"
    await asyncio.sleep(random.uniform(0.5, 1))
    yield f"{search_query} - SEARCH DONE"

    for i in range(2):
        url = f"https://dummy.com/{search_query.replace(' ', '-')}/page-{i + 1}"
        async for item in page_scraper_agent_naive(url=url):
            yield item


async def page_scraper_agent_naive(url: str) -> AsyncGenerator[str, None]:
    yield f"{url} - SCRAPING"
    await asyncio.sleep(random.uniform(0.5, 1))
    yield f"{url} - DONE"


# NOTE: the tutorial uses `stream_to_stdout_naive()` without showing its code; this is the one from upstream's
# examples/sequence_flattening_naive_alternative.py (the example the tutorial links to).
async def stream_to_stdout_naive(generator: AsyncGenerator[str, None]):
    i = 0
    async for message in generator:
        i += 1
        print(f"String {i}: {message}")


def test_tutorial_naive_async_generators_run_sequentially_and_do_not_replay(capsys, patched_uniform):
    outputs = []

    async def main_naive():
        result_generator = research_agent_naive(QUESTION)

        # Consume the generator once
        await stream_to_stdout_naive(result_generator)
        outputs.append(capsys.readouterr().out)

        # Attempt to reuse - will yield nothing
        await stream_to_stdout_naive(result_generator)
        outputs.append(capsys.readouterr().out)

    asyncio.run(main_naive())

    expected_lines = _expected_research_lines_in_naive_order()
    assert outputs[0] == "".join(f"String {i}: {line}\n" for i, line in enumerate(expected_lines, start=1))
    assert outputs[1] == ""  # nothing is replayed
    # sequential: one delay after another, in the order of the code
    assert patched_uniform == [
        "query 1",
        "https://dummy.com/query-1/page-1",
        "https://dummy.com/query-1/page-2",
        "query 2",
        "https://dummy.com/query-2/page-1",
        "https://dummy.com/query-2/page-2",
        "query 3",
        "https://dummy.com/query-3/page-1",
        "https://dummy.com/query-3/page-2",
    ]


# ---- the MiniAgents version, verbatim from the tutorial ----


def _define_tutorial_flattening_agents():
    from miniagents_nb import InteractionContext, miniagent

    @miniagent
    async def research_agent(ctx: InteractionContext) -> None:
        ctx.reply(f"RESEARCHING: {await ctx.message_promises.as_single_text_promise()}")

        for i in range(3):
            ctx.reply_out_of_order(
                # No `await` here! The agent starts executing in the background
                # and returns a MessageSequencePromise immediately
                web_search_agent.trigger(
                    ctx.message_promises,
                    search_query=f"query {i + 1}",
                )
            )

    @miniagent
    async def web_search_agent(ctx: InteractionContext, search_query: str) -> None:
        ctx.reply(f"{search_query} - SEARCHING")
        await asyncio.sleep(random.uniform(0.5, 1))
        ctx.reply(f"{search_query} - SEARCH DONE")

        for i in range(2):
            ctx.reply_out_of_order(
                page_scraper_agent.trigger(
                    ctx.message_promises,
                    url=f"https://dummy.com/{search_query.replace(' ', '-')}/page-{i + 1}",
                )
            )

    @miniagent
    async def page_scraper_agent(ctx: InteractionContext, url: str) -> None:
        ctx.reply(f"{url} - SCRAPING")
        await asyncio.sleep(random.uniform(0.5, 1))
        ctx.reply(f"{url} - DONE")

    return research_agent


# NOTE: the tutorial uses `stream_to_stdout()` without showing its code; this is the one from upstream's
# examples/sequence_flattening.py (the example the tutorial links to).
async def stream_to_stdout(promises):
    i = 0
    async for message_promise in promises:
        i += 1
        print(f"{message_promise.message_class.__name__} {i}: ", end="")
        async for token in message_promise:
            print(token, end="")
        print()


_STREAM_LINE = re.compile(r"^(\w+) (\d+): (.*)$")


def _parse_stream_output(out: str) -> list[str]:
    texts = []
    for number, line in enumerate(out.splitlines(), start=1):
        match = _STREAM_LINE.match(line)
        assert match, line
        assert match.group(1) == "TextMessage", line
        assert int(match.group(2)) == number, line
        texts.append(match.group(3))
    return texts


def test_tutorial_message_sequence_flattening_replays_and_runs_in_parallel(capsys, patched_uniform):
    from miniagents_nb import Message, MiniAgents

    research_agent = _define_tutorial_flattening_agents()
    outputs = []
    awaited = []

    async def main():
        # Trigger the agent - returns a MessageSequencePromise
        response_promises = research_agent.trigger(QUESTION)

        # Consume the sequence once
        await stream_to_stdout(response_promises)
        outputs.append(capsys.readouterr().out)

        # Consume the SAME sequence again - works perfectly!
        await stream_to_stdout(response_promises)
        outputs.append(capsys.readouterr().out)

        # the third "replay": await the whole sequence (twice)
        awaited.append(await response_promises)
        awaited.append(await response_promises)

    MiniAgents().run(main())

    # (b) replayable: the same printed text twice; awaiting returns the identical tuple object
    assert outputs[0] == outputs[1]
    assert awaited[0] is awaited[1]
    assert isinstance(awaited[0], tuple)
    assert all(isinstance(message, Message) for message in awaited[0])

    lines = _parse_stream_output(outputs[0])
    assert [str(message) for message in awaited[0]] == lines

    # the producers ran once (9 delays: 3 searches + 6 pages), even though the sequence was consumed 4 times
    assert sorted(patched_uniform) == sorted(list(SEARCH_DELAYS) + list(PAGE_DELAYS))

    # (c) the exact set of lines ...
    expected_lines = _expected_research_lines_in_naive_order()
    assert len(lines) == len(expected_lines)
    assert set(lines) == set(expected_lines)

    # ... and the ordering constraints that hold regardless of timing
    assert lines[0] == f"RESEARCHING: {QUESTION}"
    for q in range(1, 4):
        searching = lines.index(f"query {q} - SEARCHING")
        search_done = lines.index(f"query {q} - SEARCH DONE")
        assert searching < search_done
        for p in range(1, 3):
            url = f"https://dummy.com/query-{q}/page-{p}"
            scraping = lines.index(f"{url} - SCRAPING")
            done = lines.index(f"{url} - DONE")
            assert search_done < scraping < done

    # parallel: all three searches started before any search finished (unlike the naive version)
    assert max(lines.index(f"query {q} - SEARCHING") for q in range(1, 4)) < min(
        lines.index(f"query {q} - SEARCH DONE") for q in range(1, 4)
    )
    # out of order: with the patched delays the searches finish in the order query 2, query 3, query 1, and
    # `reply_out_of_order` delivers them in that order
    assert (
        lines.index("query 2 - SEARCH DONE")
        < lines.index("query 3 - SEARCH DONE")
        < lines.index("query 1 - SEARCH DONE")
    )


# ---- "Sequential code, parallel execution": the aggregator snippet ----


def test_tutorial_aggregator_agent_flattens_nested_sequences_in_order():
    """`research_agent` and `calculation_agent` are dummies (not shown in the tutorial). The calculation agent
    finishes before the research agent replies (an event, no sleeps), yet the flattened reply keeps the order
    in which the aggregator placed the items."""
    from miniagents_nb import InteractionContext, MiniAgents, miniagent

    results = []

    async def main():
        calculation_finished = asyncio.Event()

        @miniagent
        async def research_agent(ctx: InteractionContext) -> None:
            await calculation_finished.wait()
            async for msg_promise in ctx.message_promises:
                ctx.reply(f"Research on: {await msg_promise}")

        @miniagent
        async def calculation_agent(ctx: InteractionContext) -> None:
            async for msg_promise in ctx.message_promises:
                ctx.reply(f"Calculation on: {await msg_promise}")
            calculation_finished.set()

        @miniagent
        async def aggregator_agent(ctx: InteractionContext) -> None:
            # This looks sequential but all agents start working in parallel
            ctx.reply(
                [
                    # All nested sequences here will be asynchronously "flattened" in the background
                    # for an outside agent (i.e., the one triggering the `aggregator_agent`), so that
                    # when the outside agent consumes the result, it appears as a single, flat sequence
                    # of messages.
                    "Starting analysis...",
                    research_agent.trigger(ctx.message_promises),
                    calculation_agent.trigger(ctx.message_promises),
                    "Analysis complete!",
                ]
            )

        replies = aggregator_agent.trigger(["Q1", "Q2"])
        streamed = []
        async for msg_promise in replies:
            streamed.append(str(await msg_promise))
        results.append(streamed)
        results.append([str(message) for message in await replies])

    MiniAgents().run(main())

    expected = [
        "Starting analysis...",
        "Research on: Q1",
        "Research on: Q2",
        "Calculation on: Q1",
        "Calculation on: Q2",
        "Analysis complete!",
    ]
    assert results == [expected, expected]
