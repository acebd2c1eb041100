"""`MiniAgents`: the context every agent runs in; it also persists messages when asked to."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from typing_extensions import Self

from miniagents_nb.agents.events import MiniAgentsEvent, Observer
from miniagents_nb.agents.recording import PlainRecording, Recording, RecordTarget, recorder_for
from miniagents_nb.compat import SeedEraContextNames
from miniagents_nb.errors import HandlerDefinitionError
from miniagents_nb.messages import Message, MessageSequence, MessageSequencePromise, MessageType, MessagingContext
from miniagents_nb.promising.context import PromiseResolvedEventHandler, PromisingContext, is_async_callable
from miniagents_nb.promising.sentinels import NO_VALUE, Sentinel

__all__ = ["MiniAgents", "PersistMessageEventHandler", "PersistMessagesEventHandler"]


class _Agent(Protocol):
    """A `MiniAgent` as this module uses it (the context sits below agents and calls: see `agents/definition`)."""

    def trigger(self, messages: MessageType | None = None, **kwargs: Any) -> MessageSequencePromise: ...


PersistMessagesEventHandler = Callable[[list[Message]], Awaitable[None]]
"""`async def handler(messages)`: a batch of messages, each persisted once per context."""
PersistMessageEventHandler = Callable[[Message], Awaitable[None]]
"""`async def handler(message)`: one message per call."""


def _handlers(value: Any) -> list[Any]:
    if value is None:
        return []
    if callable(value):
        return [value]
    return list(value)


_observers_version = 0
"""Bumped whenever the observers of any context change (each context caches the observers up its chain)."""
_direct_emitters: weakref.WeakSet[MiniAgents] = weakref.WeakSet()
"""Contexts whose `_emit` is, for now, their own recording's observer (see `MiniAgents._current_watchers`)."""


def _observers_changed() -> None:
    """Any context's observers changed: every cache of watchers is stale, and no context emits directly any more."""
    global _observers_version
    _observers_version += 1
    for ctx in list(_direct_emitters):
        ctx.__dict__.pop("_emit", None)
        ctx._plain_recording = None
    _direct_emitters.clear()


class MiniAgents(MessagingContext, SeedEraContextNames):
    """The context agents run in: `MiniAgents().run(main())`, `await MiniAgents().arun(main())` or
    `async with MiniAgents(): ...`. Leaving it waits for every agent still running in the background.

    Persistence costs nothing until a handler is registered: only then are resolved messages (and the agent call
    and reply nodes) built, deduplicated by `hash_key`, and handed to the handlers.
    """

    _context_name = "MiniAgents"

    def __init__(
        self,
        *,
        stream_llm_tokens_by_default: bool = True,
        llm_logger_agent: _Agent | bool = False,
        on_persist_messages: PersistMessagesEventHandler | Iterable[PersistMessagesEventHandler] = (),
        on_persist_message: PersistMessageEventHandler | Iterable[PersistMessageEventHandler] = (),
        on_promise_resolved: PromiseResolvedEventHandler | Iterable[PromiseResolvedEventHandler] = (),
        errors_as_messages: bool = False,
        error_tracebacks_in_messages: bool = False,
        log_reduced_tracebacks: bool = True,
        await_reply_persistence_before_agent_finish: bool = False,
        start_everything_asap_by_default: bool | Sentinel = NO_VALUE,
        record_to: RecordTarget | None = None,
        replay_from: Any = None,
        **kwargs: Any,
    ) -> None:
        if start_everything_asap_by_default is not NO_VALUE:  # the seed-era name (see `miniagents_nb.compat`)
            kwargs.setdefault("start_everything_soon_by_default", start_everything_asap_by_default)
        super().__init__(
            on_promise_resolved=on_promise_resolved,
            errors_as_messages=errors_as_messages,
            error_tracebacks_in_messages=error_tracebacks_in_messages,
            **kwargs,
        )
        self.stream_llm_tokens_by_default = stream_llm_tokens_by_default
        self.llm_logger_agent = llm_logger_agent
        self.log_reduced_tracebacks = log_reduced_tracebacks
        self.await_reply_persistence_before_agent_finish = await_reply_persistence_before_agent_finish
        self.on_persist_messages_handlers: list[PersistMessagesEventHandler] = []
        self.on_persist_message_handlers: list[PersistMessageEventHandler] = []
        # hash_key -> None once persisted, or a future while its handlers are still running
        self._persistence_by_hash_key: dict[str, asyncio.Future[None] | None] = {}
        self._open_calls: list[Callable[[], object]] = []  # `finish` of each call left open at the top level
        self._observers: tuple[Observer, ...] = ()
        """Replaced, never changed in place: an event walks it without copying, even if an observer unsubscribes."""
        self._watchers: tuple[tuple[Observer, MiniAgents], ...] = ()
        """The observers of this context and its ancestors, each with its context, as of `_watchers_version`."""
        self._watchers_version = -1
        self._empty_input: MessageSequence | None = None
        self._call_count = 0
        self.recorder = recorder_for(record_to)
        """Where the runs of this context are recorded (`record_to=`: a path or a `miniagents_nb.runs.RunStore`)."""
        self.replay_from = replay_from
        """Where the LLM agents of this context take their replies from instead of the provider (`replay_from=`: a
        run store, its path or a `miniagents_nb.runs.replay.ReplaySource`; read by the LLM agents, see docs/runs.md)."""
        self.recording: Recording | None = None
        """The recording of the current activation (None when not recording): the notebook layer starts a run per
        cell through it (`RunStore` recordings have `start_run(label, notebook=..., cell=...)`)."""
        self._unsubscribe_recording: Callable[[], None] | None = None
        self._direct_observer: Observer | None = None
        """The recording's observer when it says it never raises (`Recording.never_raises`): it may be called straight."""
        self._plain_recording: PlainRecording | None = None
        """Set while the only observer is this context's own `PlainRecording`: calls tell it what happens with plain
        arguments instead of events (see `AgentCall`); cleared by `_observers_changed`."""
        for handler in _handlers(on_persist_messages):
            self.on_persist_messages(handler)
        for handler in _handlers(on_persist_message):
            self.on_persist_message(handler)

    # --- persistence ---------------------------------------------------------------------------------------------

    @staticmethod
    def _check_async(handler: Any, kind: str) -> None:
        if not is_async_callable(handler):
            raise HandlerDefinitionError(
                f"An `{kind}` handler must be async, got {handler!r}: define it with `async def`."
            )

    def on_persist_messages(self, handler: PersistMessagesEventHandler) -> PersistMessagesEventHandler:
        """Register `async def handler(messages)`: called with batches of messages not persisted before."""
        self._check_async(handler, "on_persist_messages")
        self.on_persist_messages_handlers.append(handler)
        self._own_resolution_work = True
        return handler

    def on_persist_message(self, handler: PersistMessageEventHandler) -> PersistMessageEventHandler:
        """Register `async def handler(message)`: called once for each message not persisted before."""
        self._check_async(handler, "on_persist_message")
        self.on_persist_message_handlers.append(handler)
        self._own_resolution_work = True
        return handler

    def _persists(self) -> bool:
        return bool(self.on_persist_messages_handlers or self.on_persist_message_handlers)

    def _fire_own_handlers(self, promise: Any, result: Any) -> None:
        super()._fire_own_handlers(promise, result)
        if isinstance(result, Message) and self._persists():
            self.start_soon(self.apersist_messages(result, parallelise_handlers=True))

    async def apersist_messages(
        self,
        message_or_messages: Message | Iterable[Message],
        extend_with_sub_messages: bool = True,
        parallelise_handlers: bool = False,
        raise_on_error: bool = True,
    ) -> list[Message]:
        """Hand the messages not persisted yet (by `hash_key`) to the handlers; returns that batch.

        Nested messages come first, children before parents. A message counts as persisted even when a handler
        fails, so a failure is reported once and never retried in a loop.
        """
        messages = [message_or_messages] if isinstance(message_or_messages, Message) else list(message_or_messages)
        batch: list[Message] = []
        batch_keys: list[str] = []
        unhashable: list[Exception] = []
        in_flight_elsewhere: list[asyncio.Future[None]] = []
        registry = self._persistence_by_hash_key
        try:
            for message in messages:
                candidates = [*message.sub_messages(), message] if extend_with_sub_messages else [message]
                for candidate in candidates:
                    if candidate.persistence_not_needed:
                        continue
                    try:
                        key = candidate.hash_key
                    except Exception as error:  # never the reason why other messages are not persisted
                        unhashable.append(error)
                        continue
                    if key not in registry:
                        registry[key] = asyncio.get_running_loop().create_future()
                        batch.append(candidate)
                        batch_keys.append(key)
                    else:
                        pending = registry[key]
                        if pending is not None and pending not in in_flight_elsewhere:
                            in_flight_elsewhere.append(pending)
            if batch:
                await self._acall_persistence_handlers(batch, parallelise_handlers, raise_on_error)
        finally:
            # Whatever happened (a handler failed, a message could not be hashed, the task was cancelled), every
            # message registered here is settled, so nobody waiting for the same content waits forever.
            for key in batch_keys:
                done = registry[key]
                registry[key] = None
                if done is not None and not done.done():
                    done.set_result(None)
        if in_flight_elsewhere:  # the same content is being persisted by another call: wait until it is
            await asyncio.shield(asyncio.gather(*in_flight_elsewhere))
        for failure in unhashable:
            if raise_on_error:
                raise failure
            self.log_error_once(failure, "A MESSAGE COULD NOT BE HASHED FOR PERSISTENCE", fake_log=True)
        return batch

    async def _acall_persistence_handlers(
        self, batch: list[Message], parallelise_handlers: bool, raise_on_error: bool
    ) -> None:
        calls: list[Awaitable[None]] = [handler(batch) for handler in self.on_persist_messages_handlers]
        calls += [handler(message) for handler in self.on_persist_message_handlers for message in batch]
        if parallelise_handlers:
            results = await asyncio.gather(*calls, return_exceptions=True)
            errors = [result for result in results if isinstance(result, BaseException)]
        else:
            errors = []
            for call in calls:
                try:
                    await call
                except Exception as error:
                    errors.append(error)
        for failure in errors:
            if raise_on_error:
                raise failure
            self.log_error_once(failure, "A PERSISTENCE HANDLER FAILED", fake_log=True)

    def _empty_input_sequence(self) -> MessageSequence:
        """One finished, empty input sequence shared by every call made with no messages (it is immutable)."""
        if self._empty_input is None:
            sequence = MessageSequence(appender_capture_errors=True, start_soon=False, errors_as_messages=False)
            sequence.message_appender.open()
            sequence.message_appender.close()
            self._empty_input = sequence
        return self._empty_input

    # --- observers -----------------------------------------------------------------------------------------------

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Call `observer(event)` for every event of the agents run under this context (or a nested one).

        Returns a function that unsubscribes. See `miniagents_nb.events` for the events.
        """
        if not callable(observer):
            raise HandlerDefinitionError(f"An observer must be callable, got {type(observer).__name__}.")
        self._observers = (*self._observers, observer)
        _observers_changed()

        def unsubscribe() -> None:
            if observer in self._observers:
                observers = list(self._observers)
                observers.remove(observer)
                self._observers = tuple(observers)
                _observers_changed()

        return unsubscribe

    def _current_watchers(self) -> tuple[tuple[Observer, MiniAgents], ...]:
        """Every observer up the chain of contexts (cached until any context's observers change)."""
        if self._watchers_version != _observers_version:
            watchers: list[tuple[Observer, MiniAgents]] = []
            ctx: PromisingContext | None = self
            while ctx is not None:
                if isinstance(ctx, MiniAgents):
                    watchers.extend((observer, ctx) for observer in ctx._observers)
                ctx = ctx.parent_ctx
            self._watchers = tuple(watchers)
            self._watchers_version = _observers_version
            if len(watchers) == 1 and watchers[0] == (self._direct_observer, self):
                # The one observer is this context's own recording, which never raises: events go to it straight
                # (no loop, no frame of `_emit`) until any context's observers change (`_observers_changed`).
                self.__dict__["_emit"] = self._direct_observer
                recording = self.recording
                if isinstance(recording, PlainRecording):
                    self._plain_recording = recording
                _direct_emitters.add(self)
        return self._watchers

    def _call_id_if_observed(self) -> int | None:
        """The next call's number, or None when nobody observes (asked at every call: one frame, the cache read in
        place)."""
        if self._watchers if self._watchers_version == _observers_version else self._current_watchers():
            self._call_count += 1
            return self._call_count
        return None

    def _emit(self, event: MiniAgentsEvent) -> None:
        watchers = self._watchers if self._watchers_version == _observers_version else self._current_watchers()
        for observer, ctx in watchers:
            try:
                observer(event)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as error:  # an observer must never break the agents it watches, not even with a
                # `CancelledError` or a `GeneratorExit`: it runs in the agent's own task
                ctx.log_error_once(error, f"AN OBSERVER FAILED ON {type(event).__name__}")

    # --- running -------------------------------------------------------------------------------------------------

    def run_agent(self, agent: _Agent, messages: MessageType | None = None, **kwargs: Any) -> tuple[Message, ...]:
        """Blocking shortcut: run `agent` with `messages` in this context and return its replies."""

        async def arun_agent() -> tuple[Message, ...]:
            return await agent.trigger(messages, **kwargs)

        return self.run(arun_agent())

    def activate(self) -> Self:
        """Make this the current context; with `record_to=`, its runs are recorded from now on."""
        super().activate()
        if self.recorder is not None:
            try:
                recording = self.recorder.open_recording(self)
            except Exception as error:  # a recorder must never break the agents it records
                self.log_error_once(error, "THE RUN RECORDER FAILED TO START A RECORDING")
            else:
                self.recording = recording
                observer = recording.observe
                self._direct_observer = observer if getattr(recording, "never_raises", False) is True else None
                self._unsubscribe_recording = self.subscribe(observer)
        return self

    async def afinalize(self) -> None:
        """Finish the input of calls left open at the top level, wait for every agent, deactivate."""
        open_calls, self._open_calls = self._open_calls, []
        for finish in open_calls:
            finish()
        try:
            await super().afinalize()
        finally:
            self._close_recording()

    def _close_recording(self) -> None:
        recording, self.recording = self.recording, None
        unsubscribe, self._unsubscribe_recording = self._unsubscribe_recording, None
        self._direct_observer = None
        self._plain_recording = None
        if unsubscribe is not None:
            unsubscribe()
        if recording is not None:
            try:
                recording.close()
            except Exception as error:  # a recorder must never break the agents it recorded
                self.log_error_once(error, "THE RUN RECORDER FAILED TO CLOSE ITS RECORDING")
