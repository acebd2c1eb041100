"""Nothing hangs: every abuse of issue 17's "Hangs" list ends, with the result or a clear error at its position.

A reply that never ends is the worst failure (the cell stays busy for ever and nothing says why), so each case runs
in a fresh interpreter with a timeout: a regression fails the test instead of wedging the suite.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from support import run_script

HANG_TIMEOUT = 25
"""Seconds a script may take (each ends in well under one when nothing hangs; importing the package is most of it)."""


def run_json(code: str, *args: str) -> Any:
    """Run a script that prints one JSON document as its last line, and return that document."""
    completed = run_script(code, *args, timeout=HANG_TIMEOUT)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --- an error whose `str()` raises ---------------------------------------------------------------------------------

UNPRINTABLE_ERROR = """
import asyncio, json, sys
from miniagents_nb import MiniAgents, TextMessage, miniagent

class Unprintable(Exception):
    def __str__(self):
        raise ValueError("no text for you")

tracebacks = sys.argv[1] == "tracebacks"

@miniagent
async def failing(ctx):
    ctx.reply("before")
    raise Unprintable()

@miniagent
async def failing_tokens(ctx):
    async def tokens():
        yield "partial"
        raise Unprintable()
    ctx.reply(TextMessage.promise(message_token_streamer=lambda aux: tokens()))

async def main():
    async with MiniAgents(errors_as_messages=True, error_tracebacks_in_messages=tracebacks):
        replies = await failing.trigger()
        tokens = await failing_tokens.trigger()
    async with MiniAgents():
        try:
            await failing.trigger()
        except Unprintable:
            raised = "Unprintable"
    print(json.dumps({
        "replies": [[type(m).__name__, str(m)] for m in replies],
        "tokens": [[type(m).__name__, str(m)] for m in tokens],
        "raised": raised,
    }))

asyncio.run(main())
"""


@pytest.mark.parametrize("tracebacks", ["plain", "tracebacks"])
def test_an_error_whose_str_raises_still_ends_the_sequence(tracebacks: str) -> None:
    result = run_json(UNPRINTABLE_ERROR, tracebacks)
    (first, first_text), (kind, text) = result["replies"]
    assert (first, first_text) == ("TextMessage", "before")
    assert kind == "ErrorMessage"
    if tracebacks == "plain":
        assert text == "<Unprintable: str() failed: ValueError: no text for you>"
    else:
        assert text.startswith("Traceback")
        assert "Unprintable" in text
    [(token_kind, token_text)] = result["tokens"]
    assert token_kind == "ErrorMessage"
    assert token_text.startswith("partial\n")
    assert "Unprintable" in token_text
    assert result["raised"] == "Unprintable"  # without errors_as_messages the error itself is raised, as ever


# --- observers that raise BaseExceptions ---------------------------------------------------------------------------

RAISING_OBSERVER = """
import asyncio, json, logging, sys
from miniagents_nb import MiniAgents, miniagent

event_name, raised_name = sys.argv[1], sys.argv[2]

class Custom(BaseException):
    pass

RAISED = {"CancelledError": asyncio.CancelledError, "GeneratorExit": GeneratorExit, "Custom": Custom,
          "KeyboardInterrupt": KeyboardInterrupt}[raised_name]
logged = []

class Keep(logging.Handler):
    def emit(self, record):
        logged.append(record.getMessage())

@miniagent
async def helper(ctx):
    ctx.reply("from the helper")

@miniagent
async def watched(ctx):
    ctx.reply("hello")
    ctx.reply(helper.trigger())

def observer(event):
    if type(event).__name__ == event_name:
        raise RAISED()

async def main():
    logger = logging.getLogger("hangs-test")
    logger.addHandler(Keep())
    logger.propagate = False
    statuses = []
    try:
        async with MiniAgents(logger=logger) as context:
            context.subscribe(observer)
            context.subscribe(lambda event: statuses.append(type(event).__name__))
            call = watched.initiate_call()
            replies = await call.reply_sequence()
    except KeyboardInterrupt:
        print(json.dumps({"interrupted": True}))
        return
    print(json.dumps({"replies": [str(m) for m in replies], "status": call.status.value,
                      "logged": logged, "events": statuses}))

asyncio.run(main())
"""

EVENTS = ["AgentCallQueued", "AgentCallStarted", "MessageReplied", "AgentCallFinished"]


@pytest.mark.parametrize("raised", ["CancelledError", "GeneratorExit", "Custom"])
@pytest.mark.parametrize("event", EVENTS)
def test_an_observer_raising_a_base_exception_never_breaks_the_agent(event: str, raised: str) -> None:
    result = run_json(RAISING_OBSERVER, event, raised)
    assert result["replies"] == ["hello", "from the helper"]
    assert result["status"] == "finished"
    assert any(f"AN OBSERVER FAILED ON {event}" in text for text in result["logged"])
    assert result["events"].count("AgentCallFinished") == 2  # the other observers heard everything


def test_an_observer_raising_keyboard_interrupt_still_interrupts() -> None:
    assert run_json(RAISING_OBSERVER, "AgentCallQueued", "KeyboardInterrupt") == {"interrupted": True}


# --- replies nested very deep --------------------------------------------------------------------------------------

DEEP_NESTING = """
import asyncio, json, sys
from miniagents_nb import MiniAgents, miniagent

depth, shape = int(sys.argv[1]), sys.argv[2]

async def nested(level):
    if level == 0:
        yield "leaf"
    elif shape == "generators":
        yield nested(level - 1)
    else:  # a generator yielding a list holding the next generator
        yield ["level", nested(level - 1)] if level % 100 == 0 else [nested(level - 1)]

@miniagent
async def deep(ctx):
    ctx.reply("first")
    ctx.reply(nested(depth))
    ctx.reply("after")

async def main():
    async with MiniAgents():
        replies = await deep.trigger()
    print(json.dumps([str(message) for message in replies]))

asyncio.run(main())
"""


@pytest.mark.parametrize("depth", [1000, 5000])
@pytest.mark.parametrize("shape", ["generators", "lists"])
def test_a_reply_nested_thousands_deep_is_flattened_to_its_end(depth: int, shape: str) -> None:
    replies = run_json(DEEP_NESTING, str(depth), shape)
    levels = depth // 100 if shape == "lists" else 0
    assert replies == ["first", *["level"] * levels, "leaf", "after"]


# --- a reply sequence that would wait for itself -------------------------------------------------------------------

REPLY_CYCLES = """
import asyncio, json, sys
from miniagents_nb import MiniAgents, miniagent
from miniagents_nb.errors import MiniAgentsError

shape, as_messages = sys.argv[1], sys.argv[2] == "messages"
calls = {}

@miniagent
async def agent_b(ctx):
    ctx.reply("b says")
    if shape == "through_input":
        ctx.reply(ctx.message_promises)
    else:
        ctx.reply(calls["a"])

@miniagent
async def agent_a(ctx):
    ctx.reply("a says")
    if shape == "direct":
        ctx.reply(calls["a"])
    elif shape == "out_of_order":
        ctx.reply_out_of_order(calls["a"])
    elif shape == "through_input":
        ctx.reply(agent_b.trigger(calls["a"]))
    else:
        ctx.reply(agent_b.trigger())
    ctx.reply("a again")

async def main():
    async with MiniAgents(errors_as_messages=as_messages):
        calls["a"] = agent_a.trigger()
        pieces = []
        iterator = aiter(calls["a"])
        while True:  # an error is raised at its position; iterating goes on after it
            try:
                pieces.append(["message", str(await (await anext(iterator)))])
            except StopAsyncIteration:
                break
            except Exception as error:
                pieces.append([type(error).__name__, isinstance(error, MiniAgentsError), str(error)])
    print(json.dumps(pieces))

asyncio.run(main())
"""


@pytest.mark.parametrize("shape", ["direct", "out_of_order", "through_b", "through_input"])
def test_a_reply_sequence_that_contains_itself_ends_with_a_library_error(shape: str) -> None:
    pieces = run_json(REPLY_CYCLES, shape, "raised")
    errors = [piece for piece in pieces if piece[0] != "message"]
    assert len(errors) == 1, pieces
    [(name, is_library_error, text)] = errors
    assert (name, is_library_error) == ("SequenceCycleError", True)
    assert "could never end" in text
    messages = [piece[1] for piece in pieces if piece[0] == "message"]
    assert messages[0] == "a says"
    assert messages[-1] == "a again"
    if shape in ("through_b", "through_input"):
        assert "b says" in messages


def test_a_reply_cycle_under_errors_as_messages_ends_with_an_error_message() -> None:
    pieces = run_json(REPLY_CYCLES, "through_b", "messages")
    texts = [piece[1] for piece in pieces]
    assert [piece[0] for piece in pieces] == ["message"] * len(pieces)
    assert texts[0] == "a says"
    assert texts[-1] == "a again"
    assert any(text.startswith("SequenceCycleError: A message sequence was given itself") for text in texts)


# --- cancelling the owner of a context -----------------------------------------------------------------------------

CANCELLED_OWNER = """
import asyncio, gc, json, sys
from miniagents_nb import MiniAgents, TextMessage, miniagent

phase, cancels = sys.argv[1], int(sys.argv[2])
never = None  # an event nobody sets: an agent waiting on it ends only when cancelled
agent_started = None
statuses = {}

@miniagent
async def waiting(ctx):
    agent_started.set()
    await never.wait()
    ctx.reply("never replied")

@miniagent
async def lazy(ctx):
    await never.wait()

@miniagent
async def streaming(ctx):
    async def tokens():
        yield "a"
        await never.wait()
    ctx.reply(TextMessage.promise(message_token_streamer=lambda aux: tokens()))
    async def more():
        yield "g"
        await never.wait()
    ctx.reply(more())

@miniagent
async def stubborn(ctx):
    try:
        await never.wait()
    finally:  # its cleanup waits for an agent that only starts now
        await lazy.trigger(start_soon=False)

@miniagent
async def parent(ctx):
    ctx.reply([waiting.trigger(), streaming.trigger(), stubborn.trigger()])
    ctx.make_sure_to_wait(never.wait())
    await never.wait()

async def persist(messages):
    await never.wait()

async def owner(in_exit):
    async with MiniAgents(on_persist_messages=persist) as context:
        context.subscribe(lambda event: statuses.__setitem__(event.call.agent.alias, event.call.status.value))
        reply = parent.trigger()
        if phase == "body":
            await reply
        in_exit.set()

async def main():
    global never, agent_started
    never, agent_started, in_exit = asyncio.Event(), asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(owner(in_exit))
    await agent_started.wait()
    if phase == "exit":
        await in_exit.wait()
    for _ in range(cancels):
        task.cancel()
        await asyncio.sleep(0)
    try:
        await task
    except asyncio.CancelledError:
        outcome = "cancelled"
    else:
        outcome = "not cancelled"
    others = [repr(other) for other in asyncio.all_tasks() if other is not asyncio.current_task()]
    return outcome, others

loop = asyncio.new_event_loop()
outcome, others = loop.run_until_complete(main())
loop.close()  # no `shutdown_asyncgens`, no cancelling of leftovers: whatever is still pending would complain now
gc.collect()
print(json.dumps({"outcome": outcome, "others": others, "statuses": statuses}))
"""


@pytest.mark.parametrize("cancels", [1, 3])
@pytest.mark.parametrize("phase", ["body", "exit"])
def test_cancelling_the_owner_cancels_its_agents_and_leaves_nothing_behind(phase: str, cancels: int) -> None:
    completed = run_script(CANCELLED_OWNER, phase, str(cancels), timeout=HANG_TIMEOUT)
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "cancelled"
    assert result["others"] == []
    assert set(result["statuses"]) == {"PARENT", "WAITING", "STREAMING", "STUBBORN", "LAZY"}
    assert result["statuses"]["STREAMING"] == "finished"  # it had returned; its streams were cancelled
    assert {status for alias, status in result["statuses"].items() if alias != "STREAMING"} == {"cancelled"}
    for noise in ("Task was destroyed", "never awaited", "Task exception was never retrieved", "Traceback"):
        assert noise not in completed.stderr


# --- a stream produced on one thread's loop, waited for from another's ---------------------------------------------

OTHER_THREAD = """
import asyncio, json, sys, threading
from miniagents_nb import MiniAgents, TextMessage, miniagent

start_soon = sys.argv[1] == "soon"
ready, go, consumed = threading.Event(), threading.Event(), threading.Event()
shared = {}

@miniagent
async def streaming(ctx):
    shared["agent_thread"] = threading.get_ident()
    async def tokens():
        yield "a"
        await asyncio.get_running_loop().run_in_executor(None, go.wait)  # until the other thread saw "a"
        yield "b"
    ctx.reply(TextMessage.promise(message_token_streamer=lambda aux: tokens()))
    ctx.reply("second")

def producer_thread():
    async def produce():
        async with MiniAgents():
            shared["reply"] = streaming.trigger(start_soon=start_soon)
            ready.set()
            await asyncio.get_running_loop().run_in_executor(None, consumed.wait)
    shared["producer_thread"] = threading.get_ident()
    asyncio.run(produce())

async def consume():
    reply = shared["reply"]
    tokens = []
    async for message_promise in reply:  # no timer anywhere: only a real wake-up lets this loop go on
        async for token in message_promise:
            tokens.append(str(token))
            go.set()
    messages = await reply
    return tokens, [str(message) for message in messages]

thread = threading.Thread(target=producer_thread)
thread.start()
ready.wait()
try:
    tokens, messages = asyncio.run(consume())
finally:
    go.set()
    consumed.set()
    thread.join()
print(json.dumps({"tokens": tokens, "messages": messages,
                  "agent_ran_on_its_loop": shared["agent_thread"] == shared["producer_thread"]}))
"""


@pytest.mark.parametrize("start", ["soon", "when_consumed"])
def test_a_stream_of_another_threads_loop_wakes_its_waiters(start: str) -> None:
    result = run_json(OTHER_THREAD, start)
    assert result == {"tokens": ["a", "b", "second"], "messages": ["ab", "second"], "agent_ran_on_its_loop": True}


BLOCKED_LOOP = """
import asyncio, json, threading
from miniagents_nb import MiniAgents, miniagent
from miniagents_nb.errors import ForeignLoopError, MiniAgentsError
from miniagents_nb.promising.context import install_blocking_runner

go = threading.Event()

def worker_thread_runner(coroutine):  # what a notebook's `run()` does: the cell's thread waits for a worker's loop
    outcome = {}
    def target():
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as error:
            outcome["error"] = error
    worker = threading.Thread(target=target)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]

@miniagent
async def slow(ctx):
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    ctx.reply("done")

async def main():
    install_blocking_runner(worker_thread_runner)
    async with MiniAgents():
        reply = slow.trigger()
        async def await_it():
            return await reply
        try:
            MiniAgents().run(await_it())  # blocks this loop's thread while the worker's loop awaits `reply`
        except ForeignLoopError as error:
            outcome = ["ForeignLoopError", isinstance(error, MiniAgentsError), str(error)]
        go.set()
        later = [str(message) for message in await reply]
    return outcome, later

outcome, later = asyncio.run(main())
print(json.dumps({"outcome": outcome, "later": later}))
"""


def test_a_stream_whose_loop_is_blocked_by_this_run_fails_at_once() -> None:
    result = run_json(BLOCKED_LOOP)
    name, is_library_error, text = result["outcome"]
    assert (name, is_library_error) == ("ForeignLoopError", True)
    assert "blocked until this `run()` returns" in text
    assert result["later"] == ["done"]  # the stream itself is not harmed: awaited on its own loop, it ends
