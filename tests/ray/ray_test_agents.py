"""Agents, message classes and signal actors for the Ray tests: a module the Ray workers import (the test session
puts this directory on the workers' PYTHONPATH), as a user's own module of agents would be."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

import ray

from miniagents_nb import InteractionContext, Message, miniagent
from miniagents_nb.ext.ray import ray_agent
from miniagents_nb.messages import MessageTokenAppender, TextMessage

# Test agents take next to no CPU, so that the actors of every test fit on the two CPUs of the test session.
LIGHT = 0.01


class Reading(Message):
    """A message class of the tests' own: it crosses the wire by its import path."""

    sensor: str
    value: int


class Summary(TextMessage):
    """A text message subclass, streamed token by token from the worker."""

    readings: tuple[Reading, ...] = ()


class SensorFault(Exception):
    """An exception type that only the tests define."""


@ray.remote(num_cpus=0)
class Signal:
    """Events between a test and its remote agent: `set(name)`, `wait(name)` (no sleeps, no polling), and the
    order in which they were first set (`order()`)."""

    def __init__(self) -> None:
        self.events: dict[str, asyncio.Event] = {}
        self.set_order: list[str] = []

    def _event(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())

    async def set(self, name: str) -> None:
        event = self._event(name)
        if not event.is_set():
            self.set_order.append(name)
        event.set()

    async def order(self) -> list[str]:
        return list(self.set_order)

    async def wait(self, name: str) -> None:
        await self._event(name).wait()

    async def is_set(self, name: str) -> bool:
        return self._event(name).is_set()


def signal(name: str) -> Any:
    return ray.get_actor(name)


TEST_RESOURCE = "sensor_slot"
"""A custom resource the tests' local Ray has (so that `ray_agent(resources=...)` can be seen to reach an actor)."""


def start_test_ray(python_path: str) -> bool:
    """The tests' local Ray (two CPUs, no dashboard), its workers importing `python_path`; False if one runs already
    (another test module of the session started it, and stops it)."""
    if ray.is_initialized():
        return False
    ray.init(
        num_cpus=2,
        resources={TEST_RESOURCE: 4},
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": python_path}},
    )
    return True


@miniagent
async def sensor_agent(ctx: InteractionContext, sensor: str = "s1", count: int = 3) -> None:
    """Replies a whole message, a summary streamed token by token, a Reading, and an echo of its input."""
    ctx.reply("readings follow")
    with MessageTokenAppender() as tokens:
        ctx.reply(Summary.promise(message_token_streamer=tokens, readings=(Reading(sensor=sensor, value=0),)))
        for i in range(count):
            tokens.append(f"r{i} ")
            await asyncio.sleep(0)
    ctx.reply(Reading(sensor=sensor, value=count))
    async for message_promise in ctx.message_promises:
        message = await message_promise
        ctx.reply(f"input: {message.class_} {message.get('value', message.text)}")


@miniagent
async def gated_agent(ctx: InteractionContext, signal_name: str) -> None:
    """Streams one token, then waits for the test to open the gate before streaming the rest."""
    with MessageTokenAppender() as tokens:
        ctx.reply(TextMessage.promise(message_token_streamer=tokens))
        tokens.append("first ")
        await asyncio.sleep(0)
        try:
            await signal(signal_name).wait.remote("gate")
        except asyncio.CancelledError:
            await signal(signal_name).set.remote("cancelled in the worker")
            raise
        tokens.append("last")
    await signal(signal_name).set.remote("finished")


@miniagent
async def failing_agent(ctx: InteractionContext, kind: str = "value") -> None:
    """Replies, then fails (with a built-in exception type or one of the tests' own)."""
    ctx.reply("before the failure")
    if kind == "value":
        raise ValueError("the sensor reads -1")
    raise SensorFault("sensor s9 is unplugged")


@miniagent
async def nested_failure_agent(ctx: InteractionContext) -> None:
    """Replies what a failing agent replies (its failure sits at its position), then goes on."""
    ctx.reply(failing_agent.trigger())
    ctx.reply("after the nested failure")


@miniagent
async def doubling_agent(ctx: InteractionContext) -> None:
    """Doubles the value of every Reading it gets."""
    async for message_promise in ctx.message_promises:
        reading = await message_promise
        ctx.reply(Reading(sensor=reading.sensor, value=reading.value * 2))


remote_doubling_agent = ray_agent(doubling_agent, num_cpus=LIGHT, pool_size=1)


@miniagent
async def outer_agent(ctx: InteractionContext, value: int) -> None:
    """Runs on Ray and calls another Ray agent from its worker."""
    ctx.reply(f"outer got {value}")
    ctx.reply(remote_doubling_agent.trigger(Reading(sensor="outer", value=value)))


@miniagent
async def helper_agent(ctx: InteractionContext, word: str) -> None:
    """Runs in the worker of the agent that calls it: replies a whole message, then one streamed token by token."""
    ctx.reply(f"helped with {word}")
    with MessageTokenAppender() as tokens:
        ctx.reply(Summary.promise(message_token_streamer=tokens))
        tokens.append(f"{word} ")
        await asyncio.sleep(0)
        tokens.append("done")


@miniagent
async def delegating_agent(ctx: InteractionContext, word: str = "sensors") -> None:
    """Replies a message of its own, then the replies of two agents it calls in its worker (one of them fails)."""
    ctx.reply("delegating")
    ctx.reply(helper_agent.trigger(word=word))
    ctx.reply(failing_agent.trigger())


@miniagent
async def grandparent_agent(ctx: InteractionContext) -> None:
    """Calls an agent that calls another one, all in the same worker."""
    ctx.reply(delegating_agent.trigger(word="nested"))


@miniagent
async def background_agent(ctx: InteractionContext, signal_name: str) -> None:
    """Starts a gated agent in its worker without replying what it replies, and replies at once."""
    gated_agent.trigger(signal_name=signal_name)
    ctx.reply("started the background work")


@miniagent
async def echo_each_agent(ctx: InteractionContext) -> None:
    """Replies to each input message as it comes (a full-duplex agent)."""
    async for message_promise in ctx.message_promises:
        ctx.reply(f"echo {await message_promise}")


class Timing(Message):
    """When a piece of work began and finished in its worker (epoch seconds, as `time.time()` gives)."""

    began: float
    finished: float


@miniagent
async def busy_agent(ctx: InteractionContext, seconds: float) -> None:
    """Computes for `seconds` without ever yielding to its worker's loop (a CPU-bound tool), then says when."""
    began = time.time()
    while time.time() < began + seconds:
        pass
    ctx.reply(Timing(began=began, finished=time.time()))


@miniagent
async def busy_pipeline_agent(ctx: InteractionContext) -> None:
    """Calls a busy agent in its worker, then gives its reply and a note of its own to an agent that echoes them."""
    timing = busy_agent.trigger(seconds=0.2)
    ctx.reply(timing)
    ctx.reply(echo_each_agent.trigger([timing, "and a note"]))


@miniagent
async def token_stream_agent(ctx: InteractionContext, count: int, label: str = "") -> None:
    """Streams `count` tokens (`"0 "`, `"1 "`, ...) as fast as it can, yielding to its worker's loop after each one
    (as a client reading a fast LLM stream does). `label` only names the call (for the test that reads it)."""
    with MessageTokenAppender() as tokens:
        ctx.reply(TextMessage.promise(message_token_streamer=tokens))
        for i in range(count):
            tokens.append(f"{i} ")
            await asyncio.sleep(0)


@miniagent
async def gated_stream_agent(ctx: InteractionContext, signal_name: str, label: str) -> None:
    """Streams a token, says so (`appended <label>`), waits for `gate <label>`, then streams the last token."""
    gate = signal(signal_name)
    with MessageTokenAppender() as tokens:
        ctx.reply(TextMessage.promise(message_token_streamer=tokens))
        tokens.append("first ")
        await asyncio.sleep(0)
        await gate.set.remote(f"appended {label}")
        await gate.wait.remote(f"gate {label}")
        tokens.append("last")


@miniagent
async def turn_agent(ctx: InteractionContext, signal_name: str, label: str) -> None:
    """Says it started (`started <label>`), waits for `gate <label>`, says it finished, and replies in which actor
    and process it ran."""
    gate = signal(signal_name)
    await gate.set.remote(f"started {label}")
    await gate.wait.remote(f"gate {label}")
    await gate.set.remote(f"finished {label}")
    ctx.reply(f"{label} ran in {ray.get_runtime_context().get_actor_id()} ({os.getpid()})")


@miniagent
async def worker_setup_agent(ctx: InteractionContext, variable: str) -> None:
    """Replies (as JSON) what its worker was given: an environment variable, its actor's resources and name, and
    where it imports `miniagents_nb` from."""
    import miniagents_nb

    context = ray.get_runtime_context()
    ctx.reply(
        json.dumps(
            {
                "variable": os.environ.get(variable),
                "resources": context.get_assigned_resources(),
                "actor_name": context.get_actor_name(),
                "package": miniagents_nb.__file__,
            }
        )
    )
