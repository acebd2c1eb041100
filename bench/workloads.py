#!/usr/bin/env python3
"""The benchmark workloads: one run of one workload against one implementation, in this process.

    python bench/workloads.py --impl nb|upstream|baseline --workload NAME [--params JSON] [--out FILE]
                              [--tracemalloc] [--gc-off]

`nb` imports `miniagents_nb`, `upstream` imports `miniagents` (0.0.35; run it with bench/.venv-upstream's Python),
`baseline` is plain asyncio. The framework code is the same for `nb` and `upstream`: both are reached through the
module object `ma`. `bench/run.py` runs this script in a fresh subprocess for every measurement; `bench/profile.py`
imports it to run a workload under a profiler.

What is timed (`wall_s`): from just before the first `trigger` to leaving `async with MiniAgents()`, so every
background task has finished (the baselines: the same span around the plain asyncio code). `gc_s` is the time spent
in the cyclic GC inside that span (`gc.callbacks`); `peak_rss_mb` is `ru_maxrss`; `rss_delta_mb` is the peak minus
the RSS just before the span. With `--tracemalloc`, `tracemalloc_peak_mb` is the peak of Python allocations made
inside the span (that run's wall time is not comparable: tracemalloc slows everything down).

Every workload verifies its result (counts, contents, order) and reports `ok: false` with a `detail` otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import platform
import resource
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

# --------------------------------------------------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------------------------------------------------


def current_rss_mb() -> float:
    """The resident set size now (Linux: /proc/self/statm; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """`ru_maxrss` of this process (KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class GcMonitor:
    """Time and count cyclic-GC passes through `gc.callbacks` while `active`."""

    def __init__(self) -> None:
        self.active = False
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started_at = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if not self.active:
            return
        if phase == "start":
            self._started_at = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started_at
            self.collections[info["generation"]] += 1

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def uninstall(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)


class Meter:
    """The timed span of a workload: `start()` just before the first trigger, `stop()` when everything is done."""

    def __init__(self, trace_memory: bool = False) -> None:
        self.trace_memory = trace_memory
        self.gc = GcMonitor()
        self.t0: float | None = None
        self.t1: float | None = None
        self.rss_start_mb = 0.0
        self.tracemalloc_peak_mb: float | None = None

    def start(self) -> None:
        self.gc.install()
        self.rss_start_mb = current_rss_mb()
        if self.trace_memory:
            tracemalloc.start()
        self.gc.active = True
        self.t0 = time.perf_counter()

    def stop(self) -> None:
        self.t1 = time.perf_counter()
        self.gc.active = False
        self.gc.uninstall()
        if self.trace_memory and tracemalloc.is_tracing():
            self.tracemalloc_peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()

    @property
    def wall_s(self) -> float:
        if self.t0 is None or self.t1 is None:
            raise RuntimeError("the workload never started or never stopped its meter")
        return self.t1 - self.t0


@dataclass
class Outcome:
    """What a workload returns: whether its result was right, how many operations it did, and extras."""

    ok: bool
    ops: float
    unit: str
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    na: str | None = None  # set when the workload cannot run here (the result is then neither ok nor wrong)


def check(condition: bool, detail: str) -> str:
    """'' when the condition holds, else the detail (collect the first failure)."""
    return "" if condition else detail


# --------------------------------------------------------------------------------------------------------------------
# recording (`record=True`: the context records to a run store in a temporary directory)
# --------------------------------------------------------------------------------------------------------------------


class Recorder:
    """With `record`, the context records to a fresh run store; `finish()` (after the timed span) waits for the
    writer, checks what the store holds and reports the flush time and the file's size."""

    def __init__(self, ma: Any, record: bool) -> None:
        self.store: Any = None
        self._directory: Any = None
        if record:
            import tempfile

            self._directory = tempfile.TemporaryDirectory(prefix="miniagents_nb_bench_store_")
            runs = importlib.import_module(f"{ma.__name__}.runs")
            self.store = runs.RunStore(os.path.join(self._directory.name, "runs.sqlite"))

    def context_kwargs(self) -> dict[str, Any]:
        return {} if self.store is None else {"record_to": self.store}

    def finish(self, calls: int, tokens: int) -> tuple[str, dict[str, Any]]:
        if self.store is None:
            return "", {}
        started = time.perf_counter()
        self.store.flush()
        flush_s = time.perf_counter() - started
        [summary] = self.store.runs()
        fault = self.store.fault
        self.store.close()
        size = os.path.getsize(self.store.path)
        self._directory.cleanup()
        detail = (
            check(fault is None, f"the store failed: {fault}")
            or check(summary.calls == calls, f"the store holds {summary.calls} calls, expected {calls}")
            or check(summary.tokens == tokens, f"the store holds {summary.tokens} tokens, expected {tokens}")
        )
        return detail, {"flush_s": flush_s, "store_bytes": size, "recorded_calls": summary.calls}


# --------------------------------------------------------------------------------------------------------------------
# token streaming
# --------------------------------------------------------------------------------------------------------------------


async def token_stream(ma: Any, p: dict[str, Any], meter: Meter) -> Outcome:
    """One message of N one-char tokens through D agents (forwarding the promise, or re-streaming the tokens)."""
    n, depth, producer_kind, passthrough = int(p["N"]), int(p["D"]), p["producer"], p["passthrough"]

    @ma.miniagent
    async def gen_producer(ctx: Any) -> None:
        async def agen(_aux: dict[str, Any]) -> AsyncIterator[str]:
            for _ in range(n):
                yield "x"

        ctx.reply(ma.TextMessage.promise(message_token_streamer=agen))

    @ma.miniagent
    async def appender_producer(ctx: Any) -> None:
        # the way upstream's LLM agents do it (ext/llms/llm_utils.py)
        with ma.MessageTokenAppender() as appender:
            ctx.reply(ma.TextMessage.promise(message_token_streamer=appender, start_soon=False))
            for _ in range(n):
                appender.append("x")

    @ma.miniagent
    async def promise_relay(ctx: Any) -> None:
        ctx.reply(ctx.message_promises)

    @ma.miniagent
    async def restreamer(ctx: Any) -> None:
        async for message_promise in ctx.message_promises:

            async def agen(_aux: dict[str, Any], source: Any = message_promise) -> AsyncIterator[Any]:
                async for token in source:
                    yield token

            ctx.reply(ma.TextMessage.promise(message_token_streamer=agen))

    producer = {"gen": gen_producer, "appender": appender_producer}[producer_kind]
    relay = {"promise": promise_relay, "restream": restreamer}[passthrough]

    messages = tokens = 0
    content: Any = None
    recorder = Recorder(ma, bool(p.get("record")))
    async with ma.MiniAgents(**recorder.context_kwargs()):
        meter.start()
        sequence = producer.trigger()
        for _ in range(depth):
            sequence = relay.trigger(sequence)
        async for message_promise in sequence:
            messages += 1
            async for _token in message_promise:
                tokens += 1
            content = (await message_promise).content
    meter.stop()
    detail = (
        check(messages == 1, f"expected 1 message, got {messages}")
        or check(tokens == n, f"expected {n} tokens, got {tokens}")
        or check(content == "x" * n, f"wrong message content (length {len(content or '')}, expected {n})")
    )
    recorded, extra = recorder.finish(calls=1 + depth, tokens=n * (1 + depth if passthrough == "restream" else 1))
    detail = detail or recorded
    return Outcome(ok=not detail, ops=n, unit="tok", detail=detail, extra=extra)


async def token_stream_baseline(p: dict[str, Any], meter: Meter) -> Outcome:
    """`variant=queue`: producer, D relay tasks and the consumer linked by queues; `agen`: D chained async gens."""
    n, depth, variant = int(p["N"]), int(p["D"]), p["variant"]
    end = object()
    collected: list[str] = []
    meter.start()
    if variant == "queue":

        async def produce(out: asyncio.Queue[Any]) -> None:
            for _ in range(n):
                out.put_nowait("x")
            out.put_nowait(end)

        async def relay(source: asyncio.Queue[Any], out: asyncio.Queue[Any]) -> None:
            while True:
                item = await source.get()
                out.put_nowait(item)
                if item is end:
                    return

        queues: list[asyncio.Queue[Any]] = [asyncio.Queue() for _ in range(depth + 1)]
        tasks = [asyncio.create_task(produce(queues[0]))]
        tasks += [asyncio.create_task(relay(queues[i], queues[i + 1])) for i in range(depth)]
        last = queues[-1]
        while True:
            item = await last.get()
            if item is end:
                break
            collected.append(item)
        await asyncio.gather(*tasks)
    else:

        async def agen() -> AsyncIterator[str]:
            for _ in range(n):
                yield "x"

        async def relay_gen(source: AsyncIterator[str]) -> AsyncIterator[str]:
            async for item in source:
                yield item

        stream = agen()
        for _ in range(depth):
            stream = relay_gen(stream)
        async for item in stream:
            collected.append(item)
    content = "".join(collected)
    meter.stop()
    detail = check(len(collected) == n and content == "x" * n, f"expected {n} tokens, got {len(collected)}")
    return Outcome(ok=not detail, ops=n, unit="tok", detail=detail)


# --------------------------------------------------------------------------------------------------------------------
# fan-out
# --------------------------------------------------------------------------------------------------------------------


def fan_out_expected(k: int, m: int) -> list[str]:
    return [f"c{i}m{j}" for i in range(k) for j in range(m)]


async def fan_out(ma: Any, p: dict[str, Any], meter: Meter) -> Outcome:
    """One agent replies with K child calls; each child replies M strings."""
    k, m = int(p["K"]), int(p["M"])

    @ma.miniagent
    async def child(ctx: Any, i: int) -> None:
        for j in range(m):
            ctx.reply(f"c{i}m{j}")

    @ma.miniagent
    async def aggregator(ctx: Any) -> None:
        ctx.reply([child.trigger(i=i) for i in range(k)])

    recorder = Recorder(ma, bool(p.get("record")))
    options = recorder.context_kwargs()
    if p.get("tune_gc") is False:  # (nb only: upstream has no such option)
        options["tune_gc"] = False
    async with ma.MiniAgents(**options):
        meter.start()
        messages = await aggregator.trigger()
        texts = [message.content for message in messages]
    meter.stop()
    detail = check(texts == fan_out_expected(k, m), f"wrong replies ({len(texts)} messages, expected {k * m})")
    recorded, extra = recorder.finish(calls=k + 1, tokens=0)
    detail = detail or recorded
    return Outcome(ok=not detail, ops=k * m, unit="msg", detail=detail, extra={"calls": k, **extra})


async def fan_out_baseline(p: dict[str, Any], meter: Meter) -> Outcome:
    """`asyncio.gather` of K coroutines returning M strings each, flattened."""
    k, m = int(p["K"]), int(p["M"])

    async def child(i: int) -> list[str]:
        return [f"c{i}m{j}" for j in range(m)]

    meter.start()
    results = await asyncio.gather(*(child(i) for i in range(k)))
    texts = [text for result in results for text in result]
    meter.stop()
    detail = check(texts == fan_out_expected(k, m), f"wrong results ({len(texts)}, expected {k * m})")
    return Outcome(ok=not detail, ops=k * m, unit="msg", detail=detail, extra={"calls": k})


# --------------------------------------------------------------------------------------------------------------------
# nesting
# --------------------------------------------------------------------------------------------------------------------


def nested_list(depth: int) -> list[Any]:
    """`[[[...[[], "m0"], "m1"]...], "m<depth-1>"]`."""
    nested: list[Any] = []
    for i in range(depth):
        nested = [nested, f"m{i}"]
    return nested


async def deep_nesting(ma: Any, p: dict[str, Any], meter: Meter) -> Outcome:
    """`shape=list`: one agent replies with a list nested L deep; `shape=agents`: a chain of L agents."""
    depth, shape = int(p["L"]), p["shape"]
    if shape == "list":
        nested = nested_list(depth)

        @ma.miniagent
        async def nester(ctx: Any) -> None:
            ctx.reply(nested)

        async with ma.MiniAgents():
            meter.start()
            texts = [message.content for message in await nester.trigger()]
        meter.stop()
        expected = [f"m{i}" for i in range(depth)]
        detail = check(texts == expected, f"wrong replies ({len(texts)} messages, expected {depth})")
        return Outcome(ok=not detail, ops=depth, unit="msg", detail=detail)

    m = int(p["M"])

    @ma.miniagent
    async def chain(ctx: Any, depth: int) -> None:
        if depth == 0:
            for j in range(m):
                ctx.reply(f"m{j}")
        else:
            ctx.reply(chain.trigger(depth=depth - 1))

    async with ma.MiniAgents():
        meter.start()
        texts = [message.content for message in await chain.trigger(depth=depth)]
    meter.stop()
    detail = check(texts == [f"m{j}" for j in range(m)], f"wrong replies ({len(texts)} messages, expected {m})")
    return Outcome(ok=not detail, ops=depth, unit="level", detail=detail)


async def deep_nesting_baseline(p: dict[str, Any], meter: Meter) -> Outcome:
    """`list`: recursive async-generator flatten; `agents`: L relay tasks linked by queues."""
    depth, shape = int(p["L"]), p["shape"]
    if shape == "list":
        nested = nested_list(depth)

        async def flatten(item: Any) -> AsyncIterator[str]:
            if isinstance(item, str):
                yield item
            else:
                for element in item:
                    async for text in flatten(element):
                        yield text

        meter.start()
        texts = [text async for text in flatten(nested)]
        meter.stop()
        detail = check(texts == [f"m{i}" for i in range(depth)], f"wrong flattening ({len(texts)} items)")
        return Outcome(ok=not detail, ops=depth, unit="msg", detail=detail)

    m = int(p["M"])
    end = object()

    async def source(out: asyncio.Queue[Any]) -> None:
        for j in range(m):
            out.put_nowait(f"m{j}")
        out.put_nowait(end)

    async def relay(source_queue: asyncio.Queue[Any], out: asyncio.Queue[Any]) -> None:
        while True:
            item = await source_queue.get()
            out.put_nowait(item)
            if item is end:
                return

    meter.start()
    queues: list[asyncio.Queue[Any]] = [asyncio.Queue() for _ in range(depth + 1)]
    tasks = [asyncio.create_task(source(queues[-1]))]
    tasks += [asyncio.create_task(relay(queues[i + 1], queues[i])) for i in range(depth)]
    texts = []
    while (item := await queues[0].get()) is not end:
        texts.append(item)
    await asyncio.gather(*tasks)
    meter.stop()
    detail = check(texts == [f"m{j}" for j in range(m)], f"wrong relay result ({len(texts)} items)")
    return Outcome(ok=not detail, ops=depth, unit="level", detail=detail)


# --------------------------------------------------------------------------------------------------------------------
# parallel latency
# --------------------------------------------------------------------------------------------------------------------


async def parallel_latency(ma: Any, p: dict[str, Any], meter: Meter) -> Outcome:
    """K agents each sleeping S seconds; `mode=aggregator` (one agent replies with the K calls) or `outer`."""
    k, sleep_s, mode = int(p["K"]), float(p["S"]), p["mode"]

    @ma.miniagent
    async def sleeper(ctx: Any, i: int) -> None:
        await asyncio.sleep(sleep_s)
        ctx.reply(f"s{i}")

    @ma.miniagent
    async def aggregator(ctx: Any) -> None:
        ctx.reply([sleeper.trigger(i=i) for i in range(k)])

    async with ma.MiniAgents():
        meter.start()
        if mode == "aggregator":
            texts = [message.content for message in await aggregator.trigger()]
        else:
            sequences = [sleeper.trigger(i=i) for i in range(k)]
            texts = []
            for sequence in sequences:
                texts += [message.content for message in await sequence]
    meter.stop()
    detail = check(texts == [f"s{i}" for i in range(k)], f"wrong replies ({len(texts)} messages, expected {k})")
    return Outcome(ok=not detail, ops=k, unit="call", detail=detail)


async def parallel_latency_baseline(p: dict[str, Any], meter: Meter) -> Outcome:
    """`asyncio.gather` of K coroutines sleeping S seconds."""
    k, sleep_s = int(p["K"]), float(p["S"])

    async def sleeper(i: int) -> str:
        await asyncio.sleep(sleep_s)
        return f"s{i}"

    meter.start()
    texts = await asyncio.gather(*(sleeper(i) for i in range(k)))
    meter.stop()
    detail = check(list(texts) == [f"s{i}" for i in range(k)], "wrong results")
    return Outcome(ok=not detail, ops=k, unit="call", detail=detail)


# --------------------------------------------------------------------------------------------------------------------
# trigger round trip
# --------------------------------------------------------------------------------------------------------------------


async def trigger_round_trip(ma: Any, p: dict[str, Any], meter: Meter) -> Outcome:
    """`await echo.trigger("q")`, I times in a row (after a short warm-up)."""
    iterations, warmup = int(p["I"]), int(p.get("warmup", 20))

    @ma.miniagent
    async def echo(ctx: Any) -> None:
        async for message_promise in ctx.message_promises:
            ctx.reply(await message_promise)

    wrong = 0
    async with ma.MiniAgents():
        for _ in range(warmup):
            await echo.trigger("q")
        meter.start()
        for _ in range(iterations):
            replies = await echo.trigger("q")
            if len(replies) != 1 or replies[0].content != "q":
                wrong += 1
    meter.stop()
    detail = check(wrong == 0, f"{wrong} of {iterations} round trips returned a wrong reply")
    return Outcome(ok=not detail, ops=iterations, unit="call", detail=detail)


async def trigger_round_trip_baseline(p: dict[str, Any], meter: Meter) -> Outcome:
    """The raw-asyncio shape of a call: spawn a task that echoes its input, await it."""
    iterations, warmup = int(p["I"]), int(p.get("warmup", 20))

    async def echo(messages: list[str]) -> list[str]:
        return list(messages)

    for _ in range(warmup):
        await asyncio.create_task(echo(["q"]))
    wrong = 0
    meter.start()
    for _ in range(iterations):
        replies = await asyncio.create_task(echo(["q"]))
        if replies != ["q"]:
            wrong += 1
    meter.stop()
    detail = check(wrong == 0, f"{wrong} wrong round trips")
    return Outcome(ok=not detail, ops=iterations, unit="call", detail=detail)


# --------------------------------------------------------------------------------------------------------------------
# tool loop (nb only: upstream has no tool calling)
# --------------------------------------------------------------------------------------------------------------------


async def tool_loop(ma: Any, p: dict[str, Any], meter: Meter) -> Outcome:
    """The loop's own cost per tool call, against a direct agent call. `mode=loop`: I LLM calls on the fake LLM,
    each one turn of N parallel calls of a no-op tool, then an answer. `mode=direct`: I rounds of N concurrent direct
    calls of a no-op agent. The cost of one more tool call in the loop is (loop N=10 - loop N=1) / 9 per LLM call:
    the LLM's own turns cancel out; less a direct agent call, it is what the loop adds per tool call (the tool
    call's message, its agent call, argument validation, the result going back to the model)."""
    iterations, warmup, mode, calls = int(p["I"]), int(p.get("warmup", 20)), p["mode"], int(p.get("N", 1))
    llms = importlib.import_module("miniagents_nb.ext.llms")

    @llms.tool
    async def noop() -> str:
        """Does nothing."""
        return "ok"

    @ma.miniagent
    async def noop_agent(ctx: Any) -> None:
        ctx.reply("ok")

    looping = llms.FakeLLMAgent.fork(replies=[[llms.ToolCall("noop", {})] * calls, "done"], tools=[noop])

    async def direct_call() -> bool:
        (result,) = await noop_agent.trigger("q")
        return bool(result.content == "ok")

    async def once() -> bool:
        if mode == "loop":
            (message,) = await looping.trigger("q")
            results = [call.result for call in message.tool_calls]
            return bool(message.content == "done" and results == ["ok"] * calls)
        return all(await asyncio.gather(*(direct_call() for _ in range(calls))))

    wrong = 0
    async with ma.MiniAgents():
        for _ in range(warmup):
            await once()
        meter.start()
        for _ in range(iterations):
            if not await once():
                wrong += 1
    meter.stop()
    detail = check(wrong == 0, f"{wrong} of {iterations} iterations returned a wrong answer")
    return Outcome(ok=not detail, ops=iterations * calls, unit="tool call", detail=detail)


# --------------------------------------------------------------------------------------------------------------------
# notebook views (pluggable: n/a while miniagents_nb.jupyter cannot be imported)
# --------------------------------------------------------------------------------------------------------------------


class CommCounter:
    """Counts the messages widgets send to the front end, by replacing `comm.create_comm` (no kernel needed)."""

    def __init__(self) -> None:
        self.by_type: dict[str, int] = {}

    def install(self) -> None:
        import comm
        from comm.base_comm import BaseComm

        counter = self

        class CountingComm(BaseComm):  # type: ignore[misc]
            def publish_msg(self, msg_type: str, *args: Any, **kwargs: Any) -> None:
                counter.by_type[msg_type] = counter.by_type.get(msg_type, 0) + 1

        def create_comm(*args: Any, **kwargs: Any) -> Any:
            return CountingComm(*args, **kwargs)

        comm.create_comm = create_comm

    @property
    def total(self) -> int:
        return sum(self.by_type.values())


def attach_sequence_view(jupyter: Any, sequence: Any) -> Any:
    """Attach a live sequence view to `sequence` and return it (or None when the entry point returns nothing).

    THE PLUG-IN POINT: adapt this if the notebook layer's API changes. It uses the first entry point found among
    `miniagents_nb.jupyter.view(...)` (the widget, not displayed), `show(...)` and `sequence_view(...)`, and raises
    `LookupError` when there is none, which makes the workload report n/a.
    """
    for name in ("view", "show", "sequence_view"):
        entry = getattr(jupyter, name, None)
        if callable(entry):
            return entry(sequence)
    raise LookupError("no sequence-view entry point found (adapt bench/workloads.py:attach_sequence_view)")


def make_call_tracker(jupyter: Any, context: Any) -> Any:
    """The notebook layer's call tracker, observing `context` (what `%load_ext` sets up in a kernel).

    A PLUG-IN POINT like `attach_sequence_view`: raises `LookupError` (the workload reports n/a) without one."""
    try:
        tracker_module = importlib.import_module(f"{jupyter.__name__}._tracker")
    except ImportError as error:
        raise LookupError(f"no call tracker in this notebook layer ({error})") from error
    tracker = tracker_module.CallTracker(context)
    context.subscribe(tracker)
    return tracker


def attach_trace_view(jupyter: Any, sequence: Any, tracker: Any) -> Any:
    """A live view of `sequence` with its call tree and timeline (a PLUG-IN POINT, see `attach_sequence_view`)."""
    view_class = getattr(jupyter, "SequenceView", None)
    if view_class is None:
        raise LookupError("no SequenceView in this notebook layer")
    return view_class(sequence, tree=True, timeline=True, tracker=tracker)


async def notebook_view(ma: Any, p: dict[str, Any], meter: Meter) -> Outcome:
    """N tokens streamed to a consumer with a live sequence view attached (`view=true`) or not.

    `paced=true` makes the producer sleep 1 ms every 100 tokens, so the stream lasts about a second and the
    comm-message rate is meaningful. With `warmup=true` (the default) a 10-token stream is run the same way (with a
    view when `view=true`) before the timed span, so the one-time cost of the first widget in a process (traitlets
    class set-up, front-end code loading) is not charged to the per-stream cost the target is about.
    """
    n, with_view = int(p["N"]), bool(p["view"])
    paced, warmup = bool(p.get("paced", False)), bool(p.get("warmup", True))
    trace = bool(p.get("trace", False))  # the call tree and the timeline too (a call tracker observes the context)
    try:
        jupyter = importlib.import_module(f"{ma.__name__}.jupyter")
    except ImportError as error:
        return Outcome(ok=True, ops=n, unit="tok", na=f"notebook layer not available ({error})")
    counter = CommCounter()
    counter.install()

    @ma.miniagent
    async def producer(ctx: Any, count: int) -> None:
        async def agen(_aux: dict[str, Any]) -> AsyncIterator[str]:
            for index in range(count):
                if paced and index % 100 == 0:
                    await asyncio.sleep(0.001)
                yield "x"

        ctx.reply(ma.TextMessage.promise(message_token_streamer=agen))

    async def stream(count: int) -> tuple[int, Any, Any]:
        tokens = 0
        content: Any = None
        view: Any = None
        sequence = producer.trigger(count=count)
        if with_view:
            view = attach_trace_view(jupyter, sequence, tracker) if trace else attach_sequence_view(jupyter, sequence)
        async for message_promise in sequence:
            async for _token in message_promise:
                tokens += 1
            content = (await message_promise).content
        wait = getattr(view, "wait", None)
        if callable(wait):
            await wait()  # the view's final update belongs to the run
        else:
            await asyncio.sleep(0)
        return tokens, content, view

    tracker: Any = None
    try:
        async with ma.MiniAgents() as context:
            if trace:
                tracker = make_call_tracker(jupyter, context)
            if warmup:
                await stream(10)
                counter.by_type.clear()
            meter.start()
            tokens, content, view = await stream(n)
        meter.stop()
    except LookupError as error:  # no view entry point in this notebook layer
        return Outcome(ok=True, ops=n, unit="tok", na=str(error))
    detail = check(tokens == n and content == "x" * n, f"expected {n} tokens, got {tokens}")
    extra = {
        "comm_messages": counter.total,
        "comm_by_type": counter.by_type,
        "view_final": getattr(view, "is_final", None),
        "view_updates_sent": getattr(view, "updates_sent", None),
    }
    return Outcome(ok=not detail, ops=n, unit="tok", detail=detail, extra=extra)


# --------------------------------------------------------------------------------------------------------------------
# registry and entry point
# --------------------------------------------------------------------------------------------------------------------

FrameworkWorkload = Callable[[Any, dict[str, Any], Meter], Awaitable[Outcome]]
BaselineWorkload = Callable[[dict[str, Any], Meter], Awaitable[Outcome]]


@dataclass(frozen=True)
class Workload:
    framework: FrameworkWorkload | None
    baseline: BaselineWorkload | None
    defaults: dict[str, Any]


WORKLOADS: dict[str, Workload] = {
    "token_stream": Workload(
        token_stream,
        token_stream_baseline,
        {"N": 100_000, "D": 1, "producer": "gen", "passthrough": "promise", "variant": "queue", "record": False},
    ),
    "fan_out": Workload(fan_out, fan_out_baseline, {"K": 1000, "M": 3, "record": False}),
    "deep_nesting": Workload(deep_nesting, deep_nesting_baseline, {"L": 200, "M": 10, "shape": "agents"}),
    "parallel_latency": Workload(
        parallel_latency, parallel_latency_baseline, {"K": 1000, "S": 0.1, "mode": "aggregator"}
    ),
    "trigger_round_trip": Workload(trigger_round_trip, trigger_round_trip_baseline, {"I": 2000, "warmup": 20}),
    "tool_loop": Workload(tool_loop, None, {"I": 1000, "mode": "loop", "N": 1, "warmup": 20}),
    "notebook_view": Workload(notebook_view, None, {"N": 100_000, "view": True, "paced": False, "warmup": True}),
}

IMPL_MODULES = {"nb": "miniagents_nb", "upstream": "miniagents"}


def versions(impl: str) -> dict[str, str]:
    """Python and library versions seen by this process."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "implementation": platform.python_implementation()}
    names = {
        "nb": ["pydantic", "pydantic-core", "miniagents-nb"],
        "upstream": ["pydantic", "pydantic-core", "miniagents"],
    }
    for name in names.get(impl, []):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def make_coroutine(impl: str, name: str, params: dict[str, Any], meter: Meter) -> Awaitable[Outcome]:
    """The coroutine of one run (the framework module is imported here, outside any timed span)."""
    workload = WORKLOADS[name]
    if impl == "baseline":
        if workload.baseline is None:
            raise ValueError(f"workload {name} has no raw-asyncio baseline")
        return workload.baseline(params, meter)
    if workload.framework is None:
        raise ValueError(f"workload {name} has no framework version")
    return workload.framework(importlib.import_module(IMPL_MODULES[impl]), params, meter)


def full_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    return {**WORKLOADS[name].defaults, **params}


def run_once(impl: str, name: str, params: dict[str, Any], *, trace_memory: bool = False) -> dict[str, Any]:
    """Run one workload in this process and return the result record (what `--out` gets as JSON)."""
    params = full_params(name, params)
    meter = Meter(trace_memory=trace_memory)
    outcome = asyncio.run(make_coroutine(impl, name, params, meter))
    record: dict[str, Any] = {
        "impl": impl,
        "workload": name,
        "params": params,
        "ok": outcome.ok,
        "na": outcome.na,
        "detail": outcome.detail,
        "ops": outcome.ops,
        "unit": outcome.unit,
        "extra": outcome.extra,
        "versions": versions(impl),
        "module_file": getattr(sys.modules.get(IMPL_MODULES.get(impl, "")), "__file__", None),
        "gc_enabled": gc.isenabled(),
    }
    if outcome.na is not None:
        return record
    record.update(
        wall_s=meter.wall_s,
        gc_s=meter.gc.seconds,
        gc_collections=meter.gc.collections,
        peak_rss_mb=peak_rss_mb(),
        rss_start_mb=meter.rss_start_mb,
        rss_delta_mb=max(0.0, peak_rss_mb() - meter.rss_start_mb),
        tracemalloc_peak_mb=meter.tracemalloc_peak_mb,
    )
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", choices=["nb", "upstream", "baseline"], required=True)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), required=True)
    parser.add_argument("--params", default="{}", help="JSON object overriding the workload's defaults")
    parser.add_argument("--out", help="write the JSON result here (default: print it)")
    parser.add_argument("--tracemalloc", action="store_true", help="measure the Python allocation peak")
    parser.add_argument("--gc-off", action="store_true", help="disable the cyclic GC (diagnostic)")
    args = parser.parse_args(argv)
    if args.gc_off:
        gc.disable()
    try:
        record = run_once(args.impl, args.workload, json.loads(args.params), trace_memory=args.tracemalloc)
    except Exception as error:  # reported as a failed (not ok) result, with the reason
        import traceback

        record = {
            "impl": args.impl,
            "workload": args.workload,
            "params": full_params(args.workload, json.loads(args.params)),
            "ok": False,
            "na": None,
            "detail": f"crashed: {type(error).__name__}: {error}",
            "traceback": traceback.format_exc(),
        }
    text = json.dumps(record)
    if args.out:
        with open(args.out, "w") as out:
            out.write(text)
    else:
        print(text)
    return 0 if record["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
