"""The caller's side of a worker's stream: the remote run's replies, and the calls made in the worker, mirrored.

Each call the worker reports becomes a local call (`_run_mirror`, under the alias, description, arguments and
interaction metadata of the worker's call) made inside its parent's local call, so that its parent is the mirror
of the worker's parent: the remote run `<ALIAS>@ray` for the calls the remote agent made, and so on down. A mirror
replies what its worker call replied (the same promise that its forwarders reply: views attribute a message to
the call it came from), gets the input that call got (at its end, when the worker reports it), and ends as that
call ended. Every mirror is made through the public agent API, so views, the run store and every observer see it
like any local call.

A mirror's events carry the worker's moments, not those of their arrival (`MiniAgent.with_event_clock`): each
moment the worker sends (epoch seconds) becomes a monotonic one here, kept between the moment the remote call was
sent and now (clocks of two machines differ a little), and never before the mirror's previous event. So a nested
call that computed for half a second in the worker lasts half a second in the views and the run store, however
the batches of its events travelled.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Mapping
from typing import Any

from miniagents_nb.agents import AgentCall, InteractionContext, MiniAgent
from miniagents_nb.events import from_wall_clock
from miniagents_nb.ext.ray.errors import RayWorkerDiedError
from miniagents_nb.ext.ray.wire import decode_error, decode_value, import_path
from miniagents_nb.messages import Message, MessagePromise, MessageSequence, MessageTokenAppender

__all__ = ["Receiver", "run_mirror"]

# Arguments that `MiniAgent(...)` itself takes: a worker agent's frozen arguments of these names go to the call.
_AGENT_PARAMETERS = frozenset(
    {
        "alias",
        "description",
        "normalize_func_or_class_name",
        "normalize_spaces_in_docstring",
        "await_reply_persistence",
        "interaction_metadata",
        "non_freezable_kwargs",
    }
)


_monotonic = time.monotonic


class _Clock:
    """A mirror's event clock: the worker's moment of the event about to be emitted (`at`), or now when none is
    known (the caller's own doing: a cancellation, a broken stream). Never goes back."""

    __slots__ = ("at", "last")

    def __init__(self) -> None:
        self.at: float | None = None
        self.last = 0.0

    def __call__(self) -> float:
        at = self.at
        moment = _monotonic() if at is None else at
        if moment < self.last:
            return self.last
        self.last = moment
        return moment


class _Mirror:
    """One worker call's local stand-in: what it is told (its feed), and where it makes its own calls."""

    __slots__ = ("call", "clock", "closed", "context", "ended", "feed", "inputs")

    def __init__(self) -> None:
        self.feed: asyncio.Queue[tuple[str, Any, float | None]] = asyncio.Queue()
        self.clock = _Clock()
        self.inputs: list[Any] = []
        """What the worker's call got as its input (reported at its end)."""
        self.call: AgentCall | None = None
        self.context: contextvars.Context | None = None
        """The mirror's own context (its call current), captured when it starts: calls under it are made there."""
        self.ended = False
        """Whether its function returned (calls the worker reports under it after that are made in `context`)."""
        self.closed = False
        """Whether it was told how it ends."""

    def give_inputs(self, inputs: list[Any]) -> None:
        """What the worker's call got, given to the mirror's call as soon as both are known: before the mirror of its
        parent ends (which finishes the input of the calls it made)."""
        self.inputs = inputs
        call = self.call
        if inputs and call is not None and not call.is_finished:
            call.send_message(inputs)

    def make(self, factory: Callable[[], None]) -> None:
        """Make a call under this mirror (its `factory` runs with this mirror's call current)."""
        if not self.ended:
            self.feed.put_nowait(("call", factory, None))
        elif self.context is not None:
            self.context.run(factory)
        else:
            factory()  # it never ran: under whichever call is current


async def run_mirror(ctx: InteractionContext, ray_mirror: _Mirror, **_arguments: Any) -> None:
    """A call run in a Ray worker, here: replies what the worker's call replied, makes the calls it made, fails
    where it failed. `_arguments` are the worker call's own (they are what the views show)."""
    mirror = ray_mirror
    mirror.context = contextvars.copy_context()
    try:
        while True:
            kind, item, at = await mirror.feed.get()
            if kind == "call":
                item()
                continue
            mirror.clock.at = at
            if kind == "reply":
                ctx.reply(item)
            elif kind == "raise":
                raise item
            else:
                return
    finally:
        mirror.ended = True
        call = mirror.call
        if call is not None and not call.is_finished:  # its input (`give_inputs`) is complete
            call.finish()
        while not mirror.feed.empty():  # calls reported before the end was read are still made here
            kind, item, _at = mirror.feed.get_nowait()
            if kind == "call":
                item()


class Receiver:
    """Turns the worker's events back into message promises, token appenders, mirrored calls and their ends."""

    def __init__(self, ctx: InteractionContext, alias: str, remote_run_agent: MiniAgent) -> None:
        self.ctx = ctx
        self.alias = alias
        self.remote_run_agent = remote_run_agent
        self.root = _Mirror()
        self.mirrors: dict[int, _Mirror] = {0: self.root}
        self.appender: MessageTokenAppender | None = None
        self.appenders: dict[int, MessageTokenAppender] = {}
        self.promises: dict[int, MessagePromise] = {}
        self.errors: dict[Any, BaseException] = {}
        self.ended = False
        self.messages = 0
        self.since = _monotonic()
        """When the remote call was sent: nothing of it happened before (whatever another machine's clock says)."""

    def _moment(self, at: float | None) -> float | None:
        """The worker's moment `at` (epoch seconds) here, kept between `since` and now."""
        if at is None:
            return None
        return min(max(from_wall_clock(at), self.since), _monotonic())

    def _put(self, kind: str, item: Any, at: float | None) -> None:
        if self.root.call is None:  # nothing reached the remote run yet: the proxy itself ends this way
            if kind == "raise":
                self.ctx.reply(item)
            return
        self.root.feed.put_nowait((kind, item, self._moment(at)))

    def _error(self, data: Mapping[str, Any]) -> BaseException:
        """The error the worker sent, rebuilt once however many times it is reported (it is logged once)."""
        key = data.get("id")
        error = self.errors.get(key) if key is not None else None
        if error is None:
            error = decode_error(data)
            if key is not None:
                self.errors[key] = error
        return error

    def _streamed(self, class_name: str, known: Any) -> tuple[MessageTokenAppender, MessagePromise]:
        appender = MessageTokenAppender(capture_errors=True).open()
        cls = import_path(class_name)
        return appender, MessagePromise(message_token_streamer=appender, message_class=cls, **decode_value(known))

    def apply(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "t":
            assert self.appender is not None
            _append(self.appender, event[1])
        elif kind == "pt":
            _append(self.appenders[event[1]], event[2])
        elif kind == "m":
            self.appender, promise = self._streamed(event[1], event[2])
            self.messages += 1
            self._put("reply", promise, event[3])
        elif kind == "e":
            assert self.appender is not None
            _end_stream(self.appender, decode_value(event[1]))
            self.appender = None
        elif kind == "pe":
            _end_stream(self.appenders.pop(event[1]), decode_value(event[2]))
        elif kind == "x":
            assert self.appender is not None
            self.appender.close(self._error(event[1]))
            self.appender = None
        elif kind == "px":
            self.appenders.pop(event[1]).close(self._error(event[2]))
        elif kind == "w":
            message = decode_value(event[1])
            assert isinstance(message, Message)
            self.messages += 1
            self._put("reply", message, event[2])
        elif kind == "R":  # a message of a call under the remote agent: replied as a nested reply, not its own
            self.messages += 1
            self._put("reply", MessageSequence.turn_into_sequence_promise(self.promises[event[1]]), None)
        elif kind == "X":
            self._put("reply", self._error(event[1]), event[2])
        elif kind == "F":
            self._end("raise", self._error(event[1]), event[2])
        elif kind == "C":
            self._end("raise", asyncio.CancelledError(), event[1])
        elif kind == "D":
            self._end("end", None, event[1])
        elif kind == "q":
            self._queued(*event[1:])
        elif kind == "f":
            self._finished(*event[1:])
        elif kind == "r":
            message = decode_value(event[3])
            assert isinstance(message, Message)
            promise = self.promises[event[2]] = MessagePromise(prefill_message=message)
            self.mirrors[event[1]].feed.put_nowait(("reply", promise, self._moment(event[4])))
        elif kind == "p":
            appender, promise = self._streamed(event[3], event[4])
            self.appenders[event[2]] = appender
            self.promises[event[2]] = promise
            self.mirrors[event[1]].feed.put_nowait(("reply", promise, self._moment(event[5])))
        elif kind == "s":
            self._started(*event[1:])
        # `("a",)`: the actor took the call (`RemoteAgentTarget.arun` waits for it); nothing to rebuild

    def _started(self, node_id: str, pid: int, actor_id: str, at: float) -> None:
        """The worker started the remote run: its mirror, with the proxy's input (what the worker got)."""
        root = self.root
        root.clock.at = self._moment(at)
        agent = self.remote_run_agent.fork(non_freezable_kwargs={"ray_mirror": root}).with_event_clock(root.clock)
        root.call = agent.initiate_call(ray_node_id=node_id, ray_worker_pid=pid, ray_actor_id=actor_id)
        root.call.send_message(self.ctx.message_promises)
        self.ctx.reply(root.call.reply_sequence())

    def _queued(
        self,
        call_id: int,
        parent_id: int,
        alias: str,
        description: str | None,
        agent_kwargs: Mapping[str, Any],
        metadata: Mapping[str, Any],
        call_kwargs: Mapping[str, Any],
        made_at: float,
        started_at: float | None,
    ) -> None:
        mirror = self.mirrors[call_id] = _Mirror()
        frozen = {name: decode_value(value) for name, value in agent_kwargs.items()}
        kwargs = {name: decode_value(value) for name, value in call_kwargs.items()}
        for name in _AGENT_PARAMETERS & frozen.keys():
            kwargs.setdefault(name, frozen.pop(name))
        interaction_metadata = {name: decode_value(value) for name, value in metadata.items()}
        interaction_metadata.pop("class_", None)
        made, started = self._moment(made_at), self._moment(started_at)

        def make() -> None:
            agent = MiniAgent(
                run_mirror,
                alias=alias,
                description=description or "",  # not the docstring of `run_mirror`
                interaction_metadata=interaction_metadata,
                non_freezable_kwargs={"ray_mirror": mirror},
                **frozen,
            ).with_event_clock(mirror.clock)
            mirror.clock.at = made
            mirror.call = agent.initiate_call(**kwargs)  # its input comes with its end (`give_inputs`)
            mirror.give_inputs(mirror.inputs)  # the end came first
            mirror.clock.at = made if started is None else started  # it starts at the next task switch

        self.mirrors.get(parent_id, self.root).make(make)

    def _finished(self, call_id: int, how: str, error: Mapping[str, Any] | None, at: float, inputs: list[Any]) -> None:
        mirror = self.mirrors.get(call_id)
        if mirror is None or mirror.closed:
            return
        mirror.closed = True
        mirror.give_inputs([self.promises[entry] if type(entry) is int else decode_value(entry) for entry in inputs])
        moment = self._moment(at)
        if how == "D":
            mirror.feed.put_nowait(("end", None, moment))
        elif how == "C":
            mirror.feed.put_nowait(("raise", asyncio.CancelledError(), moment))
        else:
            assert error is not None
            mirror.feed.put_nowait(("raise", self._error(error), moment))

    def _end(self, kind: str, item: Any, at: float | None) -> None:
        if not self.ended:
            self.ended = True
            self.root.closed = True
            self._put(kind, item, at)

    def _close_streams(self, error: BaseException) -> None:
        if self.appender is not None:
            self.appender.close(error)
            self.appender = None
        for appender in self.appenders.values():
            appender.close(error)
        self.appenders.clear()

    def calls_running(self) -> bool:
        """Whether a call the worker reported has not ended yet."""
        return any(call_id and not mirror.closed for call_id, mirror in self.mirrors.items())

    def _open_mirrors(self) -> list[_Mirror]:
        mirrors = [mirror for call_id, mirror in self.mirrors.items() if call_id and not mirror.closed]
        self.mirrors = {0: self.root}
        return mirrors

    def fail(self, error: BaseException) -> None:
        """The stream broke: what still streams fails with `error`, and so do the calls still open (now)."""
        self._close_streams(error)
        for mirror in self._open_mirrors():
            mirror.closed = True
            mirror.feed.put_nowait(("raise", error, None))
        if self.root.call is None:
            raise error
        self._end("raise", error, None)

    def cancel(self) -> None:
        self._close_streams(asyncio.CancelledError())
        for mirror in [self.root, *self._open_mirrors()]:
            mirror.closed = True
            mirror.clock.at = None  # cancelled here, now
            if mirror.call is not None:
                mirror.call.cancel()
            else:
                mirror.feed.put_nowait(("raise", asyncio.CancelledError(), None))

    def finish(self) -> None:
        """The stream ended: calls the worker never started (so never ended) end cancelled here."""
        if not self.ended:  # the stream ended without saying how: treat it as a failure of the machinery
            self.fail(RayWorkerDiedError(f"The Ray stream of agent {self.alias} ended early."))
            return
        self._close_streams(RayWorkerDiedError(f"The Ray stream of agent {self.alias} ended early."))
        for mirror in self._open_mirrors():
            mirror.closed = True
            mirror.feed.put_nowait(("raise", asyncio.CancelledError(), None))


def _append(appender: MessageTokenAppender, tokens: list[Any]) -> None:
    for token in tokens:
        appender.append(token if type(token) is str else decode_value(token))


def _end_stream(appender: MessageTokenAppender, fields: Mapping[str, Any]) -> None:
    appender.auxiliary_field_collector.update(fields)
    appender.close()
