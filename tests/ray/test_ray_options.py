"""`ray_agent` options on a local Ray with two CPUs: reply batching (`batch_tokens`, `batch_seconds`),
`max_concurrency`, `runtime_env` and other actor options, start-up with no Ray running, and a worker killed in a
pool of two.

Ordering is proved with `ray_test_agents.Signal` (an actor holding events), never with sleeps. Batches are counted
in this process by spying on `Receiver.apply`: the tokens a message streams in one batch are one `("t", tokens)`
event (`Outbox.put_tokens` extends the last event while it is one), so each such event is one batch of tokens.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import ray
from ray_fixtures import local_ray, signal_fixture  # noqa: F401  (fixtures: found by pytest here)
from ray_test_agents import (
    LIGHT,
    TEST_RESOURCE,
    Timing,
    busy_agent,
    echo_each_agent,
    gated_agent,
    gated_stream_agent,
    token_stream_agent,
    turn_agent,
    worker_setup_agent,
)

import miniagents_nb
from miniagents_nb import MiniAgents
from miniagents_nb.events import AgentCallStarted, MiniAgentsEvent, from_wall_clock
from miniagents_nb.ext.ray import RayWorkerDiedError, ray_agent, ray_target
from miniagents_nb.ext.ray.receiver import Receiver

HERE = Path(__file__).parent
PYTHON_PATH = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
pytestmark = pytest.mark.timeout(60)

TOKENS = 10_000


@pytest.fixture
def token_batches(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """The tokens of each batch that reaches this process, by the `label` argument of the call (else its alias)."""
    seen: dict[str, list[list[str]]] = {}
    apply = Receiver.apply

    def spy(receiver: Receiver, event: tuple[Any, ...]) -> None:
        if event[0] == "t":
            call = receiver.ctx.call
            assert call is not None
            seen.setdefault(str(call.kwargs.get("label", call.agent.alias)), []).append(list(event[1]))
        apply(receiver, event)

    monkeypatch.setattr(Receiver, "apply", spy)
    return seen


async def _first(reply: Any) -> Any:
    async for promise in reply:
        yield promise
        return


def _said(order: list[str]) -> list[str]:
    """What the agents said, in order (without the gates the test opened)."""
    return [name for name in order if not name.startswith("gate ")]


def _streamed(count: int) -> list[str]:
    return [f"{i} " for i in range(count)]


async def test_a_fast_token_stream_reaches_the_driver_in_far_fewer_batches_than_tokens(
    token_batches: dict[str, list[list[str]]],
) -> None:
    remote = ray_agent(token_stream_agent, num_cpus=LIGHT, pool_size=1)  # batch_seconds=0.005, batch_tokens=256
    async with MiniAgents():
        reply = remote.trigger(count=TOKENS)
        [message] = await reply
        [promise] = [promise async for promise in reply]
        tokens = [token async for token in promise]
    ray_target(remote).pool.close()
    [batches] = token_batches.values()
    assert tokens == _streamed(TOKENS)  # complete, in order, and still token by token
    assert str(message) == "".join(_streamed(TOKENS))
    assert [token for batch in batches for token in batch] == tokens
    assert len(batches) <= TOKENS // 10, [len(batch) for batch in batches]  # not one Ray object per token


async def test_batch_tokens_is_how_many_tokens_a_batch_waits_for(token_batches: dict[str, list[list[str]]]) -> None:
    # `batch_seconds` is far longer than the test: only `batch_tokens` tokens waiting (or the end) send a batch.
    by_hundred = ray_agent(token_stream_agent, num_cpus=LIGHT, pool_size=1, batch_tokens=100, batch_seconds=60)
    at_once = ray_agent(token_stream_agent, num_cpus=LIGHT, pool_size=1, batch_tokens=TOKENS + 1, batch_seconds=60)
    async with MiniAgents():
        [hundreds] = await by_hundred.trigger(count=TOKENS)
        [whole] = await at_once.trigger(count=TOKENS, label="at once")
    ray_target(by_hundred).pool.close()
    ray_target(at_once).pool.close()
    assert str(hundreds) == str(whole) == "".join(_streamed(TOKENS))

    batches = token_batches["TOKEN_STREAM_AGENT"]
    sizes = [len(batch) for batch in batches]
    assert [token for batch in batches for token in batch] == _streamed(TOKENS)
    assert all(size >= 100 for size in sizes[:-1]), sizes  # each one waited for its 100 tokens (but the last)
    assert len(batches) <= TOKENS // 100 + 1, sizes
    # ... and most did not wait for many more (the agent yields after each token; a batch grows while the worker
    # hands the one before to Ray)
    assert sorted(sizes)[len(sizes) // 2] < 200, sizes
    assert len(batches) >= TOKENS // 500, sizes

    # More tokens per batch than the whole stream: it comes in one batch, at the end.
    assert token_batches["at once"] == [_streamed(TOKENS)]


async def test_batch_seconds_is_how_long_a_token_waits_for_more(
    signal: tuple[str, Any], token_batches: dict[str, list[list[str]]]
) -> None:
    name, actor = signal
    # Neither call ever has `batch_tokens` tokens waiting: only `batch_seconds` (or the end) sends a batch.
    held = ray_agent(gated_stream_agent, num_cpus=LIGHT, pool_size=1, batch_tokens=1_000, batch_seconds=60)
    prompt = ray_agent(gated_stream_agent, num_cpus=LIGHT, pool_size=1, batch_tokens=1_000, batch_seconds=0.005)
    async with MiniAgents():
        held_reply = held.trigger(signal_name=name, label="held")
        await actor.wait.remote("appended held")
        prompt_reply = prompt.trigger(signal_name=name, label="prompt")
        [prompt_promise] = [promise async for promise in _first(prompt_reply)]
        # Its first token arrives while its agent waits for the gate: sent after 5 ms, alone. So 5 ms have passed
        # since the held call's first token too (it was appended before), and that one waits for its end.
        assert await anext(aiter(prompt_promise)) == "first "
        assert not await actor.is_set.remote("gate prompt")
        await actor.set.remote("gate held")
        await actor.set.remote("gate prompt")
        assert [str(message) for message in await held_reply] == ["first last"]
        assert [str(message) for message in await prompt_reply] == ["first last"]
    ray_target(held).pool.close()
    ray_target(prompt).pool.close()
    assert token_batches["prompt"] == [["first "], ["last"]]
    assert token_batches["held"] == [["first ", "last"]]  # held past 5 ms: until the end of the stream


async def test_calls_run_at_once_in_one_actor_up_to_max_concurrency(signal: tuple[str, Any]) -> None:
    name, actor = signal
    remote = ray_agent(turn_agent, num_cpus=LIGHT, pool_size=1, max_concurrency=2)
    async with MiniAgents():
        first = remote.trigger(signal_name=name, label="a")
        second = remote.trigger(signal_name=name, label="b")
        await actor.wait.remote("started a")
        await actor.wait.remote("started b")  # both started, and neither gate is open yet
        assert sorted(await actor.order.remote()) == ["started a", "started b"]
        assert len(ray_target(remote).pool.actors) == 1
        await actor.set.remote("gate b")
        await actor.set.remote("gate a")
        [a_done] = await first
        [b_done] = await second
    ray_target(remote).pool.close()
    assert str(a_done).partition(" ran in ")[2] == str(b_done).partition(" ran in ")[2]  # the same actor and process


async def test_with_max_concurrency_one_a_call_waits_for_the_one_before(signal: tuple[str, Any]) -> None:
    name, actor = signal
    remote = ray_agent(turn_agent, num_cpus=LIGHT, pool_size=1, max_concurrency=1)
    second_sent = asyncio.Event()

    def watch(event: MiniAgentsEvent) -> None:
        # The proxy sends its remote call before it first waits: once it started, the call is on its way.
        if isinstance(event, AgentCallStarted) and event.call.kwargs.get("label") == "b":
            second_sent.set()

    async with MiniAgents() as context:
        context.subscribe(watch)
        first = remote.trigger(signal_name=name, label="a")
        await actor.wait.remote("started a")
        second = remote.trigger(signal_name=name, label="b")
        await second_sent.wait()
        assert len(ray_target(remote).pool.actors) == 1  # the same actor: the pool holds one
        assert not await actor.is_set.remote("started b")  # it waits while the first call holds its gate
        await actor.set.remote("gate a")
        await actor.wait.remote("started b")
        await actor.set.remote("gate b")
        [a_done] = await first
        [b_done] = await second
    ray_target(remote).pool.close()
    assert _said(await actor.order.remote()) == ["started a", "finished a", "started b", "finished b"]
    assert str(a_done).partition(" ran in ")[2] == str(b_done).partition(" ran in ")[2]


async def test_a_call_can_be_cancelled_in_an_actor_that_runs_one_call_at_a_time(signal: tuple[str, Any]) -> None:
    name, actor = signal
    remote = ray_agent(gated_agent, num_cpus=LIGHT, pool_size=1, max_concurrency=1)
    async with MiniAgents(log_level_for_errors=logging.DEBUG):
        call = remote.initiate_call(signal_name=name)
        reply = call.reply_sequence()
        [message_promise] = [promise async for promise in _first(reply)]
        assert await anext(aiter(message_promise)) == "first "
        assert call.cancel()
        await actor.wait.remote("cancelled in the worker")  # the cancel reached the agent in the busy actor
        with pytest.raises(asyncio.CancelledError):
            await reply
    ray_target(remote).pool.close()
    assert not await actor.is_set.remote("finished")


async def test_the_input_streams_to_an_actor_that_runs_one_call_at_a_time() -> None:
    remote = ray_agent(echo_each_agent, num_cpus=LIGHT, pool_size=1, max_concurrency=1)
    async with MiniAgents(log_level_for_errors=logging.DEBUG):
        call = remote.initiate_call()
        call.send_message("one")
        replies = call.reply_sequence(finish_call=False)
        [first] = [promise async for promise in _first(replies)]
        assert str(await first) == "echo one"  # the input reached the call that holds the actor's one slot
        call.send_message("two")
        call.finish()
        assert [str(message) for message in await replies] == ["echo one", "echo two"]
    ray_target(remote).pool.close()


@pytest.mark.parametrize("max_concurrency", [None, 1])
async def test_cpu_bound_calls_on_one_worker_run_when_they_really_ran(max_concurrency: int | None) -> None:
    # Two calls of a CPU-bound agent on one worker: its loop runs one agent at a time, so the second remote run
    # starts when the first one's work ended (not when the actor took the call), in the views and the run store.
    remote = ray_agent(busy_agent, num_cpus=LIGHT, pool_size=1, max_concurrency=max_concurrency)
    events: list[MiniAgentsEvent] = []
    async with MiniAgents() as context:
        await remote.trigger(seconds=0.01)  # the actor is up: its start-up is not in the timings below
        context.subscribe(events.append)
        replies = [remote.trigger(seconds=0.3) for _ in range(2)]
        timings = [message for reply in replies for message in await reply]
    runs = [
        event.call
        for event in events
        if isinstance(event, AgentCallStarted) and event.call.agent.alias.endswith("@ray")
    ]
    proxies = [
        event.call for event in events if isinstance(event, AgentCallStarted) and event.call.agent.alias == "BUSY_AGENT"
    ]
    assert len(runs) == len(proxies) == len(timings) == 2
    first, second = sorted(timings, key=lambda timing: timing.began)
    assert isinstance(first, Timing)
    assert isinstance(second, Timing)
    assert second.began >= first.finished  # one after the other in the worker
    run_first, run_second = sorted(runs, key=lambda call: call.started_at or 0.0)
    assert run_first.started_at is not None
    assert run_second.started_at is not None
    assert run_first.ended_at is not None
    assert run_second.ended_at is not None
    # Each run starts and ends when its agent did in the worker (to the ms: the clocks of this one machine agree).
    assert run_first.started_at <= from_wall_clock(first.began) + 0.001
    assert run_second.started_at >= from_wall_clock(first.finished) - 0.001
    assert run_second.started_at <= from_wall_clock(second.began) + 0.001
    assert run_first.ended_at <= from_wall_clock(second.began) + 0.001
    if max_concurrency == 1:
        # one call at a time: the first call's end leaves the worker before the second one's work starts
        proxy_first = min(proxies, key=lambda call: call.ended_at or 0.0)
        assert proxy_first.ended_at is not None
        assert proxy_first.ended_at <= from_wall_clock(second.finished) - 0.1
    ray_target(remote).pool.close()


async def test_runtime_env_and_other_actor_options_reach_the_worker() -> None:
    actor_name = f"setup-{uuid.uuid4().hex}"
    remote = ray_agent(
        worker_setup_agent,
        num_cpus=0.05,
        pool_size=1,
        resources={TEST_RESOURCE: 1},
        runtime_env={"env_vars": {"MINIAGENTS_NB_TEST_VALUE": "set for this agent's actors"}},
        name=actor_name,  # any other actor option goes to Ray as it is
    )
    async with MiniAgents():
        [message] = await remote.trigger(variable="MINIAGENTS_NB_TEST_VALUE")
        [actor] = ray_target(remote).pool.actors
        assert ray.get_actor(actor_name)._actor_id == actor._actor_id  # the named actor is the pool's
    ray_target(remote).pool.close()
    setup = json.loads(str(message))
    assert setup["variable"] == "set for this agent's actors"
    assert setup["resources"] == {"CPU": 0.05, TEST_RESOURCE: 1.0}
    assert setup["actor_name"] == actor_name
    # The job's runtime env still applies (merged with the agent's): the worker imports this very package.
    assert setup["package"] == miniagents_nb.__file__


_START_UP_SCRIPT = """
import asyncio, json, os
import ray
from miniagents_nb import MiniAgents
from miniagents_nb.ext.ray import ray_agent
from ray_test_agents import LIGHT, sensor_agent

inits = []
real_init = ray.init

def init(*args, **kwargs):  # what the first call asks of Ray, and the context Ray answers with
    context = real_init(*args, **kwargs)
    inits.append((kwargs, context))
    return context

ray.init = init

async def main():
    initialized_before = ray.is_initialized()
    messages = await ray_agent(sensor_agent, num_cpus=LIGHT, pool_size=1).trigger(count=1)
    [(kwargs, context)] = inits
    print(json.dumps({
        "initialized_before": initialized_before,
        "initialized": ray.is_initialized(),
        "replies": len(messages),
        "cpus": ray.cluster_resources().get("CPU"),
        "cpu_count": os.cpu_count(),
        "include_dashboard": kwargs.get("include_dashboard"),
        "dashboard_url": context.dashboard_url,
        "address": kwargs.get("address"),
    }))

asyncio.run(MiniAgents().arun(main()))
ray.shutdown()
"""


def test_the_first_call_with_no_ray_running_starts_a_local_ray_with_every_cpu_and_no_dashboard() -> None:
    env = {
        name: value for name, value in os.environ.items() if name not in ("RAY_ADDRESS", "MINIAGENTS_NB_RAY_ADDRESS")
    }
    result = subprocess.run(
        [sys.executable, "-c", _START_UP_SCRIPT],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=HERE,
        env={**env, "PYTHONPATH": PYTHON_PATH},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "initialized_before": False,
        "initialized": True,
        "replies": 3,
        "cpus": float(os.cpu_count() or 0),
        "cpu_count": os.cpu_count(),
        "include_dashboard": False,
        "dashboard_url": report["dashboard_url"],
        "address": None,
    }
    assert not report["dashboard_url"]  # no dashboard runs


async def test_a_killed_worker_fails_only_its_own_call_and_the_other_actor_of_its_pool_goes_on(
    signal: tuple[str, Any],
) -> None:
    name, actor = signal
    remote = ray_agent(turn_agent, num_cpus=LIGHT, pool_size=2)
    pool = ray_target(remote).pool
    async with MiniAgents(log_level_for_errors=logging.DEBUG):
        doomed = remote.trigger(signal_name=name, label="doomed")
        await actor.wait.remote("started doomed")
        survivor = remote.trigger(signal_name=name, label="survivor")  # the first actor is busy: a second one
        await actor.wait.remote("started survivor")
        first_actor, second_actor = pool.actors  # in the order they were made
        ray.kill(first_actor)
        with pytest.raises(RayWorkerDiedError, match="died after 0 message"):
            await doomed
        assert pool.actors == [second_actor]  # the pool forgot the dead actor only
        await actor.set.remote("gate survivor")
        [survived] = await survivor
        await actor.set.remote("gate next")
        [after] = await remote.trigger(signal_name=name, label="next")
    pool.close()
    assert str(survived).startswith("survivor ran in ")
    assert str(after).startswith("next ran in ")
    assert _said(await actor.order.remote()) == [
        "started doomed",
        "started survivor",
        "finished survivor",
        "started next",
        "finished next",
    ]
