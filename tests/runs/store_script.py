"""Run in a subprocess by the fault tests: `python store_script.py killed|many PATH [N]`.

`killed`: records a run whose agent replied once and then hangs; prints "ready" once that is in the file (the test
then SIGKILLs the process). `many`: records N labelled runs of a fan-out, as fast as it can (two of these write one
file at once).
"""

from __future__ import annotations

import asyncio
import os
import sys

from miniagents_nb import InteractionContext, MiniAgents, miniagent
from miniagents_nb.runs import RunStore, StoreRecording


@miniagent
async def stuck(ctx: InteractionContext) -> None:
    ctx.reply("before the kill")
    await asyncio.Event().wait()


@miniagent
async def child(ctx: InteractionContext, i: int) -> None:
    ctx.reply(f"child {i} of process {os.getpid()}")


@miniagent
async def fan_out(ctx: InteractionContext, count: int) -> None:
    ctx.reply([child.trigger(i=i) for i in range(count)])


async def killed(store: RunStore) -> None:
    context = MiniAgents(record_to=store)
    async with context:
        with store.run_label("killed"):  # the run is still going on when the process is killed
            replies = stuck.trigger("what it was asked")
            async for promise in replies:
                await promise
                break
            recording = context.recording
            assert isinstance(recording, StoreRecording)
            recording.flush()
            print("ready", flush=True)
            await asyncio.Event().wait()


async def many(store: RunStore, runs: int) -> None:
    async with MiniAgents(record_to=store):
        for number in range(runs):
            with store.run_label(f"process {os.getpid()} run {number}"):
                await fan_out.trigger(count=5)


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    store = RunStore(path, flush_interval_s=0.005)
    if mode == "killed":
        asyncio.run(killed(store))
    else:
        asyncio.run(many(store, int(sys.argv[3])))
        store.close()
        print(store.fault or "ok", flush=True)


if __name__ == "__main__":
    main()
