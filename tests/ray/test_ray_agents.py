"""`miniagents_nb.ext.ray` on a local Ray with two CPUs: streaming, replay, errors, cancellation, worker faults,
nested remote calls, observation and the run store.

Ordering is proved with `ray_test_agents.Signal` (an actor holding events), never with sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import ray
from ray_fixtures import local_ray, signal_fixture  # noqa: F401  (fixtures: found by pytest here)
from ray_test_agents import (
    LIGHT,
    Reading,
    Summary,
    Timing,
    background_agent,
    busy_pipeline_agent,
    delegating_agent,
    echo_each_agent,
    failing_agent,
    gated_agent,
    grandparent_agent,
    nested_failure_agent,
    outer_agent,
    sensor_agent,
)

from miniagents_nb import MiniAgents
from miniagents_nb.events import (
    AgentCallCancelled,
    AgentCallFailed,
    AgentCallFinished,
    AgentCallQueued,
    AgentCallStatus,
    MessageReplied,
    MiniAgentsEvent,
    from_wall_clock,
)
from miniagents_nb.ext.ray import (
    RayAgentError,
    RayAgentImportError,
    RayResourcesError,
    RayWorkerDiedError,
    RemoteAgentError,
    WireFormatError,
    ray_agent,
    ray_target,
)
from miniagents_nb.messages import ErrorMessage, Message, TextMessage
from miniagents_nb.runs import RunStore

HERE = Path(__file__).parent
pytestmark = pytest.mark.timeout(60)


remote_sensor = ray_agent(sensor_agent, num_cpus=LIGHT, pool_size=1)
remote_gated = ray_agent(gated_agent, num_cpus=LIGHT, pool_size=1)
remote_failing = ray_agent(failing_agent, num_cpus=LIGHT, pool_size=1)


async def test_replies_stream_back_in_order_with_their_classes_and_hash_keys() -> None:
    async with MiniAgents():
        reply = remote_sensor.trigger(["hello", Reading(sensor="in", value=7)], sensor="s2", count=4)
        messages = await reply
        local = await sensor_agent.trigger(["hello", Reading(sensor="in", value=7)], sensor="s2", count=4)
        replayed = [await promise async for promise in reply]
        remote_tokens = [[token async for token in promise] async for promise in reply]
        local_tokens = [[token async for token in promise] async for promise in sensor_agent.trigger(count=4)]
    assert [str(message) for message in messages] == [
        "readings follow",
        "r0 r1 r2 r3 ",
        str(Reading(sensor="s2", value=4)),
        "input: TextMessage hello",
        "input: Reading 7",
    ]
    assert isinstance(messages[1], Summary)
    assert messages[1].readings == (Reading(sensor="s2", value=0),)
    assert isinstance(messages[2], Reading)
    assert [message.hash_key for message in messages] == [message.hash_key for message in local]
    assert replayed == list(messages)
    assert remote_tokens[1] == local_tokens[1] == ["r0 ", "r1 ", "r2 ", "r3 "]  # streamed token by token
    assert all(a is b for a, b in zip(replayed, messages, strict=True))  # a replay hands out the same objects


async def test_the_first_token_arrives_before_the_remote_agent_finishes(signal: tuple[str, Any]) -> None:
    name, actor = signal
    async with MiniAgents():
        reply = remote_gated.trigger(signal_name=name)
        [message_promise] = [promise async for promise in _first(reply)]
        tokens = aiter(message_promise)
        assert await anext(tokens) == "first "
        assert not await actor.is_set.remote("finished")  # the agent still waits for the gate
        await actor.set.remote("gate")
        assert [token async for token in tokens] == ["last"]
        assert str(await message_promise) == "first last"
    await actor.wait.remote("finished")


async def _first(reply: Any) -> Any:
    async for promise in reply:
        yield promise
        return


async def test_a_remote_failure_keeps_its_type_name_message_and_position() -> None:
    async with MiniAgents(log_level_for_errors=logging.DEBUG):
        reply = remote_failing.trigger()
        seen: list[Message] = []

        async def read_all() -> None:
            async for promise in reply:
                seen.append(await promise)

        with pytest.raises(ValueError, match="the sensor reads -1") as raised:
            await read_all()
        assert [str(message) for message in seen] == ["before the failure"]
        assert isinstance(raised.value, RemoteAgentError)
        assert type(raised.value).__name__ == "ValueError"
        assert "failing_agent" in raised.value.traceback_text  # the remote traceback comes along

        with pytest.raises(RemoteAgentError, match="sensor s9 is unplugged") as own:
            await remote_failing.trigger(kind="own")
        assert type(own.value).__name__ == "SensorFault"

        as_messages = await remote_failing.trigger(errors_as_messages=True)
    assert [str(message) for message in as_messages] == ["before the failure", "ValueError: the sensor reads -1"]
    assert isinstance(as_messages[1], ErrorMessage)


async def test_a_nested_failure_sits_at_its_position_and_the_agent_goes_on() -> None:
    remote = ray_agent(nested_failure_agent, num_cpus=LIGHT, pool_size=1)
    async with MiniAgents(log_level_for_errors=logging.DEBUG):
        messages = await remote.trigger(errors_as_messages=True)
        local = await nested_failure_agent.trigger(errors_as_messages=True)
    assert [str(message) for message in messages] == [str(message) for message in local]
    assert [str(message) for message in messages] == [
        "before the failure",
        "ValueError: the sensor reads -1",
        "after the nested failure",
    ]
    ray_target(remote).pool.close()


async def test_cancelling_the_call_cancels_the_remote_work(signal: tuple[str, Any]) -> None:
    name, actor = signal
    events: list[MiniAgentsEvent] = []
    async with MiniAgents(log_level_for_errors=logging.DEBUG) as context:
        context.subscribe(events.append)
        call = remote_gated.initiate_call(signal_name=name)
        reply = call.reply_sequence()
        [message_promise] = [promise async for promise in _first(reply)]
        assert await anext(aiter(message_promise)) == "first "
        assert call.cancel()
        await actor.wait.remote("cancelled in the worker")  # the remote agent saw its cancellation
        with pytest.raises(asyncio.CancelledError):
            await reply
        # the message that was streaming keeps its token and ends cancelled (locally the `with` would complete it)
        with pytest.raises(asyncio.CancelledError):
            await message_promise
        assert [type(piece).__name__ for piece in message_promise.pieces_so_far] == ["str", "CancelledError"]
        assert message_promise.pieces_so_far[0] == "first "
    assert not await actor.is_set.remote("finished")
    # what the views are told: the proxy call and its remote run both end cancelled, neither failed nor finished
    ended = {
        event.call.agent.alias: type(event)
        for event in events
        if isinstance(event, (AgentCallFinished, AgentCallFailed, AgentCallCancelled))
    }
    assert ended == {"GATED_AGENT": AgentCallCancelled, "GATED_AGENT@ray": AgentCallCancelled}


async def test_a_killed_worker_fails_its_call_where_the_stream_stopped(signal: tuple[str, Any]) -> None:
    name, actor = signal
    remote = ray_agent(gated_agent, num_cpus=LIGHT, pool_size=1)
    async with MiniAgents(log_level_for_errors=logging.DEBUG):
        other = remote_sensor.trigger(count=2)
        reply = remote.trigger(signal_name=name)
        [message_promise] = [promise async for promise in _first(reply)]
        assert await anext(aiter(message_promise)) == "first "
        [worker] = ray_target(remote).pool.actors
        ray.kill(worker)
        with pytest.raises(RayWorkerDiedError, match="died after 1 message"):
            await message_promise
        with pytest.raises(RayWorkerDiedError):
            await reply
        assert len(await other) == 3  # other calls go on
        await actor.set.remote("gate")
        again = await remote.trigger(signal_name=name)  # a new worker takes the next call
    assert [str(message) for message in again] == ["first last"]
    ray_target(remote).pool.close()


async def test_a_remote_agent_calls_another_remote_agent() -> None:
    remote_outer = ray_agent(outer_agent, num_cpus=LIGHT, pool_size=1)
    async with MiniAgents():
        messages = await remote_outer.trigger(value=21)
    assert [str(message) for message in messages] == ["outer got 21", str(Reading(sensor="outer", value=42))]
    assert isinstance(messages[1], Reading)
    ray_target(remote_outer).pool.close()


async def test_remote_calls_are_observed_and_recorded_with_the_worker_node(tmp_path: Path) -> None:
    events: list[MiniAgentsEvent] = []
    store = RunStore(tmp_path / "runs.sqlite")
    async with MiniAgents(record_to=store) as context:
        context.subscribe(events.append)
        await remote_sensor.trigger(count=1)
    queued = [event.call for event in events if isinstance(event, AgentCallQueued)]
    assert [call.agent.alias for call in queued] == ["SENSOR_AGENT", "SENSOR_AGENT@ray"]
    proxy, remote_run = queued
    assert remote_run.parent is proxy
    assert remote_run.kwargs["ray_node_id"] == ray.get_runtime_context().get_node_id()
    assert isinstance(remote_run.kwargs["ray_worker_pid"], int)
    assert remote_run.started_at is not None
    assert remote_run.ended_at is not None
    assert proxy.started_at is not None
    assert proxy.ended_at is not None
    assert proxy.started_at <= remote_run.started_at <= remote_run.ended_at <= proxy.ended_at
    store.flush()
    run = store.load(store.runs()[0].run_id)
    [root] = run.roots
    [child] = root.children
    assert (root.alias, child.alias) == ("SENSOR_AGENT", "SENSOR_AGENT@ray")
    assert child.kwargs["ray_node_id"] == ray.get_runtime_context().get_node_id()
    assert [message.text for message in child.replied][:2] == ["readings follow", "r0 "]
    store.close()


async def test_calls_made_in_the_worker_are_mirrored_under_the_remote_run(tmp_path: Path) -> None:
    remote = ray_agent(delegating_agent, num_cpus=LIGHT, pool_size=1)
    events: list[MiniAgentsEvent] = []
    store = RunStore(tmp_path / "runs.sqlite")
    async with MiniAgents(record_to=store, log_level_for_errors=logging.DEBUG) as context:
        context.subscribe(events.append)
        messages = await remote.trigger(errors_as_messages=True)
        calls = {event.call.agent.alias: event.call for event in events if isinstance(event, AgentCallQueued)}
        replied: dict[str, list[str]] = {}
        for event in events:
            if isinstance(event, MessageReplied):
                replied.setdefault(event.call.agent.alias, []).append(str(await event.message_promise))
        helper_tokens = [
            [token async for token in promise] async for promise in calls["HELPER_AGENT"].reply_sequence_promise
        ]
    assert [str(message) for message in messages] == [
        "delegating",
        "helped with sensors",
        "sensors done",
        "before the failure",
        "ValueError: the sensor reads -1",
    ]
    assert list(calls) == ["DELEGATING_AGENT", "DELEGATING_AGENT@ray", "HELPER_AGENT", "FAILING_AGENT"]
    proxy, remote_run, helper, failing = calls.values()
    assert helper.parent is remote_run
    assert failing.parent is remote_run
    assert dict(helper.kwargs) == {"word": "sensors"}
    assert helper.agent.description is not None
    assert helper.agent.description.startswith("Runs in the worker of the agent that calls it")
    assert helper.status is AgentCallStatus.FINISHED
    assert failing.status is AgentCallStatus.FAILED
    assert isinstance(failing.error, ValueError)
    assert isinstance(failing.error, RemoteAgentError)
    assert helper_tokens[1] == ["sensors ", "done"]  # streamed token by token
    # Each message is replied by the call it came from; the remote run forwards the others, as a local agent would.
    assert replied == {
        "DELEGATING_AGENT@ray": ["delegating"],
        "HELPER_AGENT": ["helped with sensors", "sensors done"],
        "FAILING_AGENT": ["before the failure"],
    }
    for call in (proxy, remote_run, helper, failing):
        assert call.started_at is not None
        assert call.ended_at is not None
    assert proxy.started_at <= remote_run.started_at <= helper.queued_at  # type: ignore[operator]
    assert helper.started_at <= helper.ended_at <= proxy.ended_at  # type: ignore[operator]
    store.flush()
    run = store.load(store.runs()[0].run_id)
    [root] = run.roots
    [recorded_run] = root.children
    assert [child.alias for child in recorded_run.children] == ["HELPER_AGENT", "FAILING_AGENT"]
    recorded_helper, recorded_failing = recorded_run.children
    assert recorded_helper.kwargs["word"] == "sensors"
    assert [message.text for message in recorded_helper.replied] == ["helped with sensors", "sensors done"]
    assert [message.text for message in recorded_run.replied] == ["delegating"]
    assert recorded_failing.status is AgentCallStatus.FAILED
    assert recorded_failing.error is not None
    store.close()
    ray_target(remote).pool.close()


async def test_mirrored_calls_nest_and_one_remote_error_is_one_error() -> None:
    remote = ray_agent(grandparent_agent, num_cpus=LIGHT, pool_size=1)
    events: list[MiniAgentsEvent] = []
    async with MiniAgents(log_level_for_errors=logging.DEBUG) as context:
        context.subscribe(events.append)
        reply = remote.trigger()
        with pytest.raises(ValueError, match="the sensor reads -1") as raised:
            await reply
    calls = [event.call for event in events if isinstance(event, AgentCallQueued)]
    tree = [(call.agent.alias, call.parent.agent.alias if call.parent else None) for call in calls]
    assert tree == [
        ("GRANDPARENT_AGENT", None),
        ("GRANDPARENT_AGENT@ray", "GRANDPARENT_AGENT"),
        ("DELEGATING_AGENT", "GRANDPARENT_AGENT@ray"),
        ("HELPER_AGENT", "DELEGATING_AGENT"),
        ("FAILING_AGENT", "DELEGATING_AGENT"),
    ]
    failing = calls[-1]
    assert failing.error is raised.value  # rebuilt once: the failing call's error is the one the caller meets
    ray_target(remote).pool.close()


async def test_a_call_left_running_in_the_worker_ends_in_the_tree_after_the_reply(signal: tuple[str, Any]) -> None:
    name, actor = signal
    remote = ray_agent(background_agent, num_cpus=LIGHT, pool_size=1)
    events: list[MiniAgentsEvent] = []
    async with MiniAgents() as context:
        context.subscribe(events.append)
        messages = await remote.trigger(signal_name=name)  # the reply ends when the remote agent's replies do
        assert [str(message) for message in messages] == ["started the background work"]
        [gated] = [
            event.call for event in events if isinstance(event, AgentCallQueued) and event.agent.alias == "GATED_AGENT"
        ]
        assert gated.status is AgentCallStatus.RUNNING
        assert not await actor.is_set.remote("finished")
        await actor.set.remote("gate")
        assert [str(message) for message in await gated.reply_sequence_promise] == ["first last"]
    assert gated.status in (AgentCallStatus.FINISHED,)  # (a tuple: mypy keeps `RUNNING` from above)
    assert gated.parent is not None
    assert gated.parent.agent.alias == "BACKGROUND_AGENT@ray"
    ray_target(remote).pool.close()


async def test_actors_asking_for_more_than_the_cluster_has_fail_the_call_saying_so() -> None:
    too_big = ray_agent(sensor_agent, num_cpus=64)
    custom = ray_agent(sensor_agent, num_cpus=LIGHT, resources={"TPU": 1})
    async with MiniAgents(log_level_for_errors=logging.DEBUG):
        with pytest.raises(RayResourcesError, match=r"asks for 64 CPU, but the whole cluster has 2 CPU") as raised:
            await too_big.trigger()
        with pytest.raises(RayResourcesError, match=r"asks for 1 TPU, but the whole cluster has 0 TPU"):
            await custom.trigger()
    assert "num_cpus=0" in str(raised.value)  # and it says what to do
    assert ray_target(too_big).pool.actors == []  # nothing was left waiting for resources


async def test_an_actor_that_cannot_get_free_resources_fails_the_call_after_start_timeout() -> None:
    hog = ray_agent(sensor_agent, num_cpus=1, pool_size=1)
    # 1.5 CPUs of 2, while the hog holds 1: it never fits (the other tests' actors hold a few hundredths more).
    starved = ray_agent(sensor_agent, num_cpus=1.5, pool_size=1, start_timeout=0.5)
    async with MiniAgents(log_level_for_errors=logging.DEBUG):
        assert len(await hog.trigger(count=1)) == 3  # its actor holds its CPU until its pool is closed
        with pytest.raises(RayResourcesError, match=r"\(asking for 1.5 CPU\) did not start within 0.5 s; the cluster "):
            await starved.trigger()
        assert ray_target(starved).pool.actors == []  # killed: it will not take the CPUs later
        ray_target(hog).pool.close()
        patient = ray_agent(sensor_agent, num_cpus=1.5, pool_size=1)
        assert len(await patient.trigger(count=1)) == 3  # with the CPU back, the same demand starts
    ray_target(patient).pool.close()


async def test_the_input_streams_to_the_worker_as_it_is_sent() -> None:
    remote = ray_agent(echo_each_agent, num_cpus=LIGHT, pool_size=1)
    async with MiniAgents(log_level_for_errors=logging.DEBUG):
        call = remote.initiate_call()
        call.send_message("one")
        replies = call.reply_sequence(finish_call=False)
        [first] = [promise async for promise in _first(replies)]
        assert str(await first) == "echo one"  # answered while the input is still open: it was sent alone
        call.send_message(["two", "three"])
        call.finish()
        assert [str(message) for message in await replies] == ["echo one", "echo two", "echo three"]

        streamed = sensor_agent.trigger(count=1)  # an input still streaming when the remote call starts
        messages = await remote.trigger([streamed, "last"])
        assert [str(message) for message in messages] == [
            "echo readings follow",
            "echo r0 ",
            f"echo {Reading(sensor='s1', value=1)}",
            "echo last",
        ]

        failing = remote.trigger([failing_agent.trigger(), "after"], errors_as_messages=True)
        local = echo_each_agent.trigger([failing_agent.trigger(), "after"], errors_as_messages=True)
        assert [str(message) for message in await failing] == [str(message) for message in await local]
        assert [str(message) for message in await failing] == [
            "echo before the failure",
            "ValueError: the sensor reads -1",
        ]  # the input's failure, where the remote agent read it
    ray_target(remote).pool.close()


async def test_a_message_class_the_worker_cannot_import_fails_naming_it(tmp_path: Path) -> None:
    (tmp_path / "driver_only_messages.py").write_text(
        "from miniagents_nb import Message\n\nclass DriverOnly(Message):\n    value: int\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        from driver_only_messages import DriverOnly  # type: ignore[import-not-found]

        class Local(Message):
            value: int

        async with MiniAgents(log_level_for_errors=logging.DEBUG):
            with pytest.raises(WireFormatError, match="Cannot import driver_only_messages:DriverOnly in process"):
                await remote_sensor.trigger(DriverOnly(value=1))
            with pytest.raises(WireFormatError, match="Local is defined inside a function"):
                await remote_sensor.trigger(Local(value=1))
    finally:
        sys.path.remove(str(tmp_path))


def test_an_agent_defined_in_a_notebook_cannot_go_to_ray() -> None:
    from miniagents_nb import miniagent

    @miniagent
    async def local_agent(ctx: Any) -> None:
        ctx.reply("never")

    with pytest.raises(RayAgentImportError, match="cannot be imported by a Ray worker"):
        ray_agent(local_agent)
    with pytest.raises(RayAgentImportError, match="not an import path"):
        ray_agent("sensor_agent")
    assert ray_agent("ray_test_agents:sensor_agent").alias == "SENSOR_AGENT"


_NO_RAY_SCRIPT = """
import asyncio, sys
sys.modules["ray"] = None  # as if `ray` were not installed
from miniagents_nb import MiniAgents
from miniagents_nb.ext import file_output_agent
from miniagents_nb.ext.ray import RayDependencyError, ray_agent

async def main():
    try:
        await ray_agent(file_output_agent).trigger("hello")
    except RayDependencyError as error:
        print("RayDependencyError:", error)

asyncio.run(MiniAgents().arun(main()))
"""


def test_a_missing_ray_package_fails_at_the_call_saying_how_to_install_it() -> None:
    result = subprocess.run([sys.executable, "-c", _NO_RAY_SCRIPT], capture_output=True, text=True, timeout=50)
    assert "RayDependencyError: Running agents on Ray needs the `ray` package" in result.stdout, result.stderr
    assert 'pip install "miniagents-nb[ray]"' in result.stdout


_UNREACHABLE_SCRIPT = """
import asyncio
from miniagents_nb import MiniAgents
from miniagents_nb.ext.ray import ray_agent, RayConnectionError
from ray_test_agents import sensor_agent

async def main():
    try:
        await ray_agent(sensor_agent, address="127.0.0.1:9").trigger()
    except RayConnectionError as error:
        print("RayConnectionError:", error)

asyncio.run(MiniAgents().arun(main()))
"""


def test_an_unreachable_cluster_address_fails_at_the_call() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _UNREACHABLE_SCRIPT],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=HERE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))},
    )
    assert "RayConnectionError: Cannot reach the Ray cluster at 127.0.0.1:9" in result.stdout, result.stderr


def test_an_agent_runtime_env_naming_local_code_fails_at_ray_agent_saying_to_ship_it_for_the_job() -> None:
    import ray_test_agents

    with pytest.raises(
        RayAgentError, match=r"names local code \(ray_test_agents\).*ensure_ray\(runtime_env="
    ) as raised:
        ray_agent(sensor_agent, runtime_env={"py_modules": [ray_test_agents]})
    assert not isinstance(raised.value, RemoteAgentError)
    with pytest.raises(RayAgentError, match=r"names local code \(\.\)"):
        ray_agent(sensor_agent, runtime_env={"working_dir": "."})
    remote = ray_agent(sensor_agent, runtime_env={"env_vars": {"SENSOR": "1"}, "py_modules": ["s3://bucket/m.zip"]})
    assert remote.alias == "SENSOR_AGENT"  # URIs and the rest stay per agent


async def test_mirrored_calls_carry_the_workers_moments_and_inputs(tmp_path: Path) -> None:
    # The busy agent blocks its worker's loop for 0.2 s: the reports of its start and of its end leave the worker
    # together, after the work. Its mirror still lasts the 0.2 s it took there, and gets the input the worker's
    # call got (a message another mirrored call replied is the same promise on both sides).
    remote = ray_agent(busy_pipeline_agent, num_cpus=LIGHT, pool_size=1)
    events: list[MiniAgentsEvent] = []
    store = RunStore(tmp_path / "runs.sqlite")
    async with MiniAgents(record_to=store) as context:
        context.subscribe(events.append)
        messages = await remote.trigger("go")
        calls = {event.call.agent.alias: event.call for event in events if isinstance(event, AgentCallQueued)}
        busy_replies = await calls["BUSY_AGENT"].reply_sequence_promise
        echo_inputs = await calls["ECHO_EACH_AGENT"].input_sequence_promise
        run_inputs = await calls["BUSY_PIPELINE_AGENT@ray"].input_sequence_promise
    assert list(calls) == ["BUSY_PIPELINE_AGENT", "BUSY_PIPELINE_AGENT@ray", "BUSY_AGENT", "ECHO_EACH_AGENT"]
    [timing] = busy_replies
    assert isinstance(timing, Timing)
    assert [str(message) for message in messages[1:]] == [f"echo {timing}", "echo and a note"]
    busy = calls["BUSY_AGENT"]
    assert busy.started_at is not None
    assert busy.ended_at is not None
    # Its start and end enclose the work as the worker measured it (epoch seconds, converted to this clock).
    assert busy.started_at <= from_wall_clock(timing.began) + 0.001
    assert busy.ended_at >= from_wall_clock(timing.finished) - 0.001
    assert busy.ended_at - busy.started_at >= timing.finished - timing.began - 0.002
    # ... and its reply came when the work finished, not when the news arrived.
    [replied] = [event for event in events if isinstance(event, MessageReplied) and event.call is busy]
    assert abs(replied.at - from_wall_clock(timing.finished)) < 0.002
    # Each mirror got the input of the worker's call.
    assert echo_inputs == (timing, TextMessage("and a note"))
    assert run_inputs == (TextMessage("go"),)
    store.flush()
    run = store.load(store.runs()[0].run_id)
    [root] = run.roots
    [recorded_run] = root.children
    recorded_busy, recorded_echo = recorded_run.children
    assert recorded_busy.started_at is not None
    assert recorded_busy.ended_at is not None
    assert recorded_busy.ended_at - recorded_busy.started_at == pytest.approx(busy.ended_at - busy.started_at)
    assert recorded_echo.inputs == (timing, TextMessage("and a note"))
    assert recorded_run.inputs == (TextMessage("go"),)
    store.close()
    ray_target(remote).pool.close()
