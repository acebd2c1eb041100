"""`ray_agent(agent)`: the same agent, its calls run in Ray workers and their replies streamed back.

A call of a `ray_agent` is an ordinary local call (the *proxy*: it sends its input to a worker, whole or message by
message as it comes, and ends when the remote stream ends), and once the worker starts it, a second local call appears under it, named
`<ALIAS>@ray` with the worker's node, process and actor as its arguments: the *remote run*, whose start and end
are the remote agent's own and whose replies are the remote agent's replies, rebuilt here as they arrive (tokens
included). The calls the remote agent makes in the worker are mirrored under the remote run
(`miniagents_nb.ext.ray.receiver`). So views, the run store and every other observer see a remote call through the
public observation API like any local one, and the reply is an ordinary replayable `MessageSequencePromise`.

Cancelling the proxy (`call.cancel()`, a kernel interrupt) cancels the remote task (`ray.cancel`) and the remote
run; a worker that dies fails the call with `RayWorkerDiedError` where the stream stopped.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any

from miniagents_nb.agents import InteractionContext, MiniAgent
from miniagents_nb.ext.ray.errors import RayWorkerDiedError
from miniagents_nb.ext.ray.outbox import whole_message
from miniagents_nb.ext.ray.pool import ActorPool, PoolOptions, ensure_ray, import_ray
from miniagents_nb.ext.ray.receiver import Receiver, run_mirror
from miniagents_nb.ext.ray.wire import agent_spec, encode_error, encode_value
from miniagents_nb.messages import MessagePromise, MessageSequencePromise
from miniagents_nb.promising import StreamCursor

__all__ = ["RemoteAgentTarget", "ray_agent", "ray_target"]


class RemoteAgentTarget:
    """Where the calls of one `ray_agent` go: the agent's spec, its actor pool and the batching of replies."""

    def __init__(self, spec: Mapping[str, Any], pool: ActorPool, batch_seconds: float, batch_tokens: int) -> None:
        self.spec = dict(spec)
        self.pool = pool
        self.batch_seconds = batch_seconds
        self.batch_tokens = batch_tokens
        self.remote_run_agent = MiniAgent(
            run_mirror,
            alias=f"{spec['alias']}@ray",
            description=f"The run of {spec['alias']} in a Ray worker (its node, process and actor are its arguments).",
        )

    async def arun(self, ctx: InteractionContext, kwargs: Mapping[str, Any]) -> None:
        """Run one call remotely, replying in `ctx` what the worker streams back."""
        inputs = _whole_input(ctx.message_promises)  # None: it streams (see `_forward_input`)
        call_kwargs = {name: encode_value(value) for name, value in kwargs.items()}
        ray = import_ray()
        if not ray.is_initialized():  # starting (or joining) Ray takes seconds: the loop goes on meanwhile
            await asyncio.get_running_loop().run_in_executor(None, ensure_ray, self.pool.options.address)
        actor = self.pool.acquire()
        key = uuid.uuid4().hex
        stream = actor.run.options(num_returns="streaming").remote(
            key, self.spec, inputs, call_kwargs, self.batch_seconds, self.batch_tokens
        )
        forward = None if inputs is not None else asyncio.ensure_future(_forward_input(ctx, actor, key))
        receiver = Receiver(ctx, self.spec["alias"], self.remote_run_agent)
        finished_early = False
        try:
            if not self.pool.is_started(actor):  # a new actor may wait for resources: not for ever
                try:
                    first = await asyncio.wait_for(stream.__anext__(), self.pool.options.start_timeout)
                except asyncio.TimeoutError:
                    ray.cancel(stream, recursive=False)  # the agent cancels (or not) what it started itself
                    raise self.pool.start_failed(actor) from None
                self.pool.mark_started(actor)
                for event in await first:
                    receiver.apply(event)
            async for ref in stream:
                batch = await ref
                for event in batch:
                    receiver.apply(event)
                if receiver.ended and not finished_early and receiver.calls_running():
                    # The remote agent is done but calls it made go on: its replies end now, and those calls are
                    # mirrored until they end, as the stream goes on (else the stream is about to end anyway).
                    finished_early = True
                    await ctx.afinish_early(make_sure_to_wait=False)
        except asyncio.CancelledError:
            ray.cancel(stream, recursive=False)  # the agent cancels (or not) what it started itself
            actor.cancel_call.remote(key)
            receiver.cancel()
            raise
        except ray.exceptions.RayActorError as error:
            self.pool.discard(actor)
            receiver.fail(
                RayWorkerDiedError(
                    f"The Ray worker running agent {self.spec['alias']} died after {receiver.messages} "
                    f"message(s) ({type(error).__name__}: {str(error).splitlines()[0]}): the call fails here; "
                    "other calls go on. The worker's log (`ray logs`) says why it died."
                )
            )
        except ray.exceptions.RayError as error:  # the worker's own machinery failed, not the agent
            receiver.fail(error)
        finally:
            self.pool.release(actor)
            if forward is not None:  # the remote call is over: what is still to come of the input is not read
                forward.cancel()
        receiver.finish()


def _whole_input(messages: MessageSequencePromise) -> list[Any] | None:
    """The input, encoded, if it is complete already and all its messages are whole (most calls); else None."""
    cursor: StreamCursor[Any, Any] = StreamCursor(messages)
    if not cursor.producer_ended:
        return None
    pieces = cursor.peek()
    whole = [whole_message(piece) if isinstance(piece, MessagePromise) else None for piece in pieces]
    if any(message is None for message in whole):
        return None
    return [encode_value(message) for message in whole]


async def _forward_input(ctx: InteractionContext, actor: Any, key: str) -> None:
    """Send the input to the worker message by message as it resolves, numbered (see `miniagents_nb.ext.ray.inputs`)."""
    number = 0

    def send(kind: str, data: Any) -> None:
        nonlocal number
        actor.send_input.remote(key, number, kind, data)
        number += 1

    try:
        try:
            async for promise in ctx.message_promises:
                try:
                    send("message", encode_value(await promise))
                except Exception as error:  # at its position: the remote agent meets it where it reads it
                    send("error", encode_error(error))
        except Exception as error:
            send("error", encode_error(error))
        send("end", None)
    except Exception:  # the actor is gone: the reply stream says so
        return


def ray_agent(
    agent: MiniAgent | str,
    *,
    alias: str | None = None,
    address: str | None = None,
    pool_size: int | None = None,
    num_cpus: float = 1,
    resources: Mapping[str, float] | None = None,
    max_concurrency: int | None = None,
    runtime_env: Mapping[str, Any] | None = None,
    batch_seconds: float = 0.005,
    batch_tokens: int = 256,
    start_timeout: float | None = 60.0,
    **ray_options: Any,
) -> MiniAgent:
    """`agent` (a module-level `MiniAgent`, or its import path `'package.module:name'`), run in Ray workers.

    The agent travels by import path (never pickled): workers import its module, so it must be defined at the top
    level of an importable module, not in a notebook. `num_cpus`, `resources`, `max_concurrency`, `runtime_env`
    and any other `ray_options` configure each actor; `pool_size` caps the actors (default: cluster CPUs /
    `num_cpus`); replies stream back in batches of at most `batch_seconds` or `batch_tokens` tokens. Ray starts
    (locally, or joining `address` / `MINIAGENTS_NB_RAY_ADDRESS`) at the first call. An actor asking for more than
    the cluster has fails the call with `RayResourcesError` at once; one that cannot get its resources (or set up
    its runtime env) within `start_timeout` seconds fails it then.
    """
    spec = agent_spec(agent)
    options = PoolOptions(
        address, pool_size, num_cpus, resources, max_concurrency, runtime_env, dict(ray_options), start_timeout
    )
    options.actor_options()  # a runtime env naming local code fails here, not at the first call
    target = RemoteAgentTarget(spec, ActorPool(options, spec["alias"]), batch_seconds, batch_tokens)

    async def proxy(ctx: InteractionContext, **kwargs: Any) -> None:
        await target.arun(ctx, kwargs)

    proxy.__name__ = proxy.__qualname__ = spec["path"].rpartition(":")[2].rpartition(".")[2]
    proxy.ray_target = target  # type: ignore[attr-defined]
    return MiniAgent(proxy, alias=alias or spec["alias"], description=spec["description"])


def ray_target(agent: MiniAgent) -> RemoteAgentTarget:
    """The target of a `ray_agent` (its spec and actor pool: `ray_target(agent).pool.actors`)."""
    target = getattr(agent.wrapped_func_or_class, "ray_target", None)
    if not isinstance(target, RemoteAgentTarget):
        raise TypeError(f"Agent {agent.alias} is not a ray_agent().")
    return target
