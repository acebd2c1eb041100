"""`ray_agent(agent)`: the same agent, its calls run in Ray workers and their replies streamed back.

A call of a `ray_agent` is an ordinary local call (the *proxy*: it waits for its input, sends it to a worker and
ends when the remote stream ends), and once the worker starts it, a second local call appears under it, named
`<ALIAS>@ray` with the worker's node, process and actor as its arguments: the *remote run*, whose start and end
are the remote agent's own and whose replies are the remote agent's replies, rebuilt here as they arrive (tokens
included). So views, the run store and every other observer see a remote call through the public observation API
like any local one, and the reply is an ordinary replayable `MessageSequencePromise`.

Cancelling the proxy (`call.cancel()`, a kernel interrupt) cancels the remote task (`ray.cancel`) and the remote
run; a worker that dies fails the call with `RayWorkerDiedError` where the stream stopped.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any

from miniagents_nb.agents import AgentCall, InteractionContext, MiniAgent
from miniagents_nb.ext.ray.errors import RayWorkerDiedError
from miniagents_nb.ext.ray.pool import ActorPool, PoolOptions, ensure_ray, import_ray
from miniagents_nb.ext.ray.wire import agent_spec, decode_error, decode_value, encode_value, import_path
from miniagents_nb.messages import Message, MessagePromise, MessageTokenAppender

__all__ = ["RemoteAgentTarget", "ray_agent", "ray_target"]

_END = object()


async def _remote_run(ctx: InteractionContext, feed: asyncio.Queue[Any], **_where: Any) -> None:
    """The remote run's local stand-in: replies what the worker replied, fails where it failed."""
    while True:
        kind, item = await feed.get()
        if kind == "reply":
            ctx.reply(item)
        elif kind == "raise":
            raise item
        else:
            return


class RemoteAgentTarget:
    """Where the calls of one `ray_agent` go: the agent's spec, its actor pool and the batching of replies."""

    def __init__(self, spec: Mapping[str, Any], pool: ActorPool, batch_seconds: float, batch_tokens: int) -> None:
        self.spec = dict(spec)
        self.pool = pool
        self.batch_seconds = batch_seconds
        self.batch_tokens = batch_tokens
        self.remote_run_agent = MiniAgent(
            _remote_run,
            alias=f"{spec['alias']}@ray",
            description=f"The run of {spec['alias']} in a Ray worker (its node, process and actor are its arguments).",
        )

    async def arun(self, ctx: InteractionContext, kwargs: Mapping[str, Any]) -> None:
        """Run one call remotely, replying in `ctx` what the worker streams back."""
        inputs = [encode_value(message) for message in await ctx.message_promises]
        call_kwargs = {name: encode_value(value) for name, value in kwargs.items()}
        ray = import_ray()
        if not ray.is_initialized():  # starting (or joining) Ray takes seconds: the loop goes on meanwhile
            await asyncio.get_running_loop().run_in_executor(None, ensure_ray, self.pool.options.address)
        actor = self.pool.acquire()
        key = uuid.uuid4().hex
        stream = actor.run.options(num_returns="streaming").remote(
            key, self.spec, inputs, call_kwargs, self.batch_seconds, self.batch_tokens
        )
        receiver = _Receiver(ctx, self)
        try:
            async for ref in stream:
                batch = await ref
                for event in batch:
                    receiver.apply(event)
        except asyncio.CancelledError:
            ray.cancel(stream)
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
        receiver.finish()


class _Receiver:
    """Turns the worker's events back into message promises, token appenders and the remote run's ending."""

    def __init__(self, ctx: InteractionContext, target: RemoteAgentTarget) -> None:
        self.ctx = ctx
        self.target = target
        self.feed: asyncio.Queue[Any] = asyncio.Queue()
        self.run_call: AgentCall | None = None
        self.appender: MessageTokenAppender | None = None
        self.ended = False
        self.messages = 0

    def _put(self, kind: str, item: Any) -> None:
        if self.run_call is None:  # nothing reached the remote run yet: the proxy itself ends this way
            if kind == "raise":
                self.ctx.reply(item)
            return
        self.feed.put_nowait((kind, item))

    def apply(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "t":
            assert self.appender is not None
            for token in event[1]:
                self.appender.append(token if type(token) is str else decode_value(token))
        elif kind == "m":
            cls = import_path(event[1])
            self.appender = MessageTokenAppender(capture_errors=True).open()
            known = decode_value(event[2])
            promise = MessagePromise(message_token_streamer=self.appender, message_class=cls, **known)
            self.messages += 1
            self._put("reply", promise)
        elif kind == "e":
            assert self.appender is not None
            self.appender.auxiliary_field_collector.update(decode_value(event[1]))
            self.appender.close()
            self.appender = None
        elif kind == "x":
            assert self.appender is not None
            self.appender.close(decode_error(event[1]))
            self.appender = None
        elif kind == "w":
            message = decode_value(event[1])
            assert isinstance(message, Message)
            self.messages += 1
            self._put("reply", message)
        elif kind == "X":
            self._put("reply", decode_error(event[1]))
        elif kind == "F":
            self._end("raise", decode_error(event[1]))
        elif kind == "C":
            self._end("raise", asyncio.CancelledError())
        elif kind == "D":
            self._end("end", None)
        elif kind == "s":
            node_id, pid, actor_id = event[1], event[2], event[3]
            agent = self.target.remote_run_agent.fork(non_freezable_kwargs={"feed": self.feed})
            self.run_call = agent.initiate_call(ray_node_id=node_id, ray_worker_pid=pid, ray_actor_id=actor_id)
            self.ctx.reply(self.run_call.reply_sequence())

    def _end(self, kind: str, item: Any) -> None:
        if not self.ended:
            self.ended = True
            self._put(kind, item)

    def fail(self, error: BaseException) -> None:
        if self.appender is not None:
            self.appender.close(error)
            self.appender = None
        if self.run_call is None:
            raise error
        self._end("raise", error)

    def cancel(self) -> None:
        if self.appender is not None:
            self.appender.close(asyncio.CancelledError())
            self.appender = None
        if self.run_call is not None:
            self.run_call.cancel()

    def finish(self) -> None:
        if not self.ended:  # the stream ended without saying how: treat it as a failure of the machinery
            self.fail(RayWorkerDiedError(f"The Ray stream of agent {self.target.spec['alias']} ended early."))


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
    **ray_options: Any,
) -> MiniAgent:
    """`agent` (a module-level `MiniAgent`, or its import path `'package.module:name'`), run in Ray workers.

    The agent travels by import path (never pickled): workers import its module, so it must be defined at the top
    level of an importable module, not in a notebook. `num_cpus`, `resources`, `max_concurrency`, `runtime_env`
    and any other `ray_options` configure each actor; `pool_size` caps the actors (default: cluster CPUs /
    `num_cpus`); replies stream back in batches of at most `batch_seconds` or `batch_tokens` tokens. Ray starts
    (locally, or joining `address` / `MINIAGENTS_NB_RAY_ADDRESS`) at the first call.
    """
    spec = agent_spec(agent)
    options = PoolOptions(address, pool_size, num_cpus, resources, max_concurrency, runtime_env, dict(ray_options))
    options.actor_options()  # a runtime env naming local code fails here, not at the first call
    target = RemoteAgentTarget(spec, ActorPool(options), batch_seconds, batch_tokens)

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
