"""A long notebook session under abuse, in a real ipykernel: hundreds of cells triggering agents and views, interrupt
storms at random points of streaming cells, `%%chat` cells and the sync facade's `run()` cells, and `%unload_ext` /
`%load_ext` while a reply streams. Afterwards no task, follower or live call is left behind, and the next cell runs
normally. (The random points come from a fixed seed; what is checked holds wherever the interrupts land.)"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest

from .kernel_harness import Kernel, loaded_kernel
from .test_abuse_kernel import SETUP

pytestmark = pytest.mark.timeout(240)

LEFTOVERS = """\
import asyncio
from miniagents_nb.jupyter import _follower, show


async def leftovers() -> tuple[list[str], int, list[str]]:
    # what is left once everything had a chance to end: live calls, followers, tasks (not the kernel's own)
    for _ in range(20):
        await asyncio.sleep(0.05)  # (cancelled streams end over a few loop turns; polling until settled)
        session = current_session()
        live = [record.alias for record in session.tracker.live_records()] if session else ["<no session>"]
        me = asyncio.current_task()
        tasks = sorted(
            getattr(task.get_coro(), "__qualname__", "?")
            for task in asyncio.all_tasks()
            if task is not me and not task.done()
        )
        tasks = [name for name in tasks if not name.startswith(("Kernel.", "_async_in_context"))]
        if not live and not _follower.FOLLOWERS and not tasks:
            break
    return live, len(_follower.FOLLOWERS), tasks
"""

CLEAN = "([], 0, [])\n"

STREAMING_CELLS = [
    "reply = ticker.trigger(count=100, delay=0.01)\nv = view(reply, tree=True)\ndisplay(v)\nawait reply",
    "%%chat ticker count=100 delay=0.01\nhello",
    "async def main():\n    return await ticker.trigger(count=100, delay=0.01)\nMiniAgents().run(main())",
]


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with loaded_kernel("abuse_session.log", SETUP, LEFTOVERS) as running:
        yield running


def test_interrupt_storms_leave_nothing_behind(kernel: Kernel) -> None:
    rng = random.Random(17)
    for index in range(30):
        run = kernel.start(STREAMING_CELLS[index % len(STREAMING_CELLS)])
        kernel.wait(run, until=lambda m: m["msg_type"] == "execute_input")
        time.sleep(rng.uniform(0, 0.6))  # a random point of the cell (maybe after its end: harmless too)
        for _ in range(rng.randint(1, 4)):  # a storm: one to four interrupts in quick succession
            kernel.km.interrupt_kernel()
            time.sleep(rng.uniform(0, 0.05))
        kernel.wait(run, timeout=30)
        if run.error is not None:
            assert run.error["ename"] in {"KeyboardInterrupt", "CancelledError"}, run.error
    assert kernel.ok("print(await leftovers())").stdout == CLEAN
    assert kernel.ok("r = await ticker.trigger(count=3, delay=0)\nprint([str(m) for m in r])").stdout == (
        "['t0 t1 t2 ']\n"
    )


def test_unloading_while_a_reply_streams_ends_its_view_and_loading_again_works(kernel: Kernel) -> None:
    kernel.ok("bg = ticker.trigger(count=500, delay=0.01)\nbg_view = view(bg, tree=True)\ndisplay(bg_view)")
    kernel.ok("%unload_ext miniagents_nb")
    kernel.ok("%load_ext miniagents_nb")
    run = kernel.ok(
        "print(await leftovers())\n"
        "await asyncio.wait_for(bg_view.wait(), 10)\n"
        "print(bg_view.state['status'], [node['status'] for node in bg_view.state['nodes'].values()])"
    )
    assert run.stdout == f"{CLEAN}cancelled ['cancelled']\n"
    assert kernel.ok("r = await ticker.trigger(count=2, delay=0)\nprint([str(m) for m in r])").stdout == (
        "['t0 t1 ']\n"
    )


def test_a_long_session_leaves_nothing_behind(kernel: Kernel) -> None:
    for index in range(160):
        if index % 4 == 3:
            kernel.ok("%%chat ticker count=2 delay=0\nhi")
        else:
            kernel.ok(
                f"x = ticker.trigger(count={index % 7 + 1}, delay=0)\nshow(x, tree={index % 2 == 0})\n_ = await x"
            )
    assert kernel.ok("print(await leftovers())").stdout == CLEAN
    status = kernel.ok("%miniagents").display_data()[-1]["data"]["text/plain"]
    assert "Active agent calls: 0" in status
