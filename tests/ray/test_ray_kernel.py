"""A kernel interrupt reaches the Ray worker: in a real ipykernel with a local Ray of its own, interrupting a cell that
awaits a `ray_agent` call cancels the remote agent (it says so through its gate, a named `Signal` actor), the cell
ends with the one interrupt line of the notebook layer, and the call's view (its tree: the proxy call and its
`<ALIAS>@ray` run) says cancelled.

Ordering is proved with events, never with sleeps: the test interrupts once the remote agent said it started (the
cell prints it) and its first token reached the kernel (in a delta of the view's comm).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from jupyter.kernel_harness import CellRun, loaded_kernel
from jupyter.test_kernel import AGENTS
from ray_kernel_agents import FIRST_TOKEN

HERE = Path(__file__).parent
pytestmark = pytest.mark.timeout(180)  # (a kernel, a local Ray and a worker start on a loaded machine: it takes ~20 s)

# The kernel starts a local Ray of its own (never one the test process may have started: `address="local"`), whose
# workers import this directory's modules.
RAY_SETUP = """\
import logging, os, sys, uuid

import ray

sys.path.insert(0, {here!r})
from ray_kernel_agents import FIRST_TOKEN, gated_streamer
from ray_test_agents import Signal

from miniagents_nb.ext.ray import ray_agent, ray_target

ray.init(
    address="local",
    num_cpus=1,
    include_dashboard=False,
    logging_level=logging.ERROR,
    log_to_driver=False,
    runtime_env={{"env_vars": {{"PYTHONPATH": {path!r}}}}},
)
gate_name = f"gate-{{uuid.uuid4().hex}}"
gate = Signal.options(name=gate_name).remote()
ray.get(gate.is_set.remote("ready"))  # created and registered: the worker can look it up by name
remote_streamer = ray_agent(gated_streamer, num_cpus=1, pool_size=1)
"""

AWAITING_CELL = """\
reply = remote_streamer.trigger(gate_name=gate_name)
v = view(reply, tree=True)
display(v)
await gate.wait.remote("started")
print("the remote agent started", flush=True)
await reply
"""

CHECK_CELL = """\
await asyncio.wait_for(gate.wait.remote("cancelled in the worker"), 60)
print("the remote agent saw its cancellation")
await v.wait()  # final once the cancelled calls ended
print(v.is_final, v.state["status"])
print(sorted((node["alias"], node["status"]) for node in v.state["nodes"].values()))
first = v.state["messages"][0]
print(first["sender"], first["text"] == FIRST_TOKEN, first["status"])
print(sorted({(m["sender"], m["text"], m["status"]) for m in v.state["messages"][1:]}))
print("finished:", await gate.is_set.remote("finished"))
print("still active:", await settled())
"""


def _ready_to_interrupt(model_id: str) -> Any:
    """A predicate over the cell's messages: true once both the remote agent said it started (the cell printed it)
    and its first token reached the kernel (a delta of the view's comm carries it), in whichever order they come."""
    seen: set[str] = set()

    def check(message: dict[str, Any]) -> bool:
        if message["msg_type"] == "stream" and "the remote agent started" in message["content"]["text"]:
            seen.add("started")
        if (
            message["msg_type"] == "comm_msg"
            and message["content"].get("comm_id") == model_id
            and FIRST_TOKEN in json.dumps(message["content"])
        ):
            seen.add("token")
        return seen == {"started", "token"}

    return check


SHUTDOWN_CELL = """\
import ray

if "remote_streamer" in globals():
    ray_target(remote_streamer).pool.close()
ray.shutdown()
print("ray is down:", not ray.is_initialized())
"""


def test_interrupting_a_cell_cancels_the_remote_work_and_its_view_says_cancelled() -> None:
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    with loaded_kernel("ray-kernel.log", AGENTS) as kernel:
        try:
            kernel.ok(RAY_SETUP.format(here=str(HERE), path=path), timeout=120)
            run: CellRun = kernel.start(AWAITING_CELL)
            kernel.wait(run, until=lambda m: m["msg_type"] == "display_data", timeout=60)
            kernel.wait(run, until=_ready_to_interrupt(run.widget_model_id()), timeout=90)
            kernel.km.interrupt_kernel()
            kernel.wait(run, timeout=60)

            # the cell ended as an interrupted one does (one line, counting the cancelled calls)
            assert run.error is not None, run.messages
            assert run.error["ename"] in {"KeyboardInterrupt", "CancelledError"}, run.error
            assert run.error["traceback"] == ["interrupted: 2 agent calls cancelled"], run.error
            assert run.stderr == ""

            check = kernel.ok(CHECK_CELL, timeout=90)
            assert check.stdout.splitlines() == [
                "the remote agent saw its cancellation",  # the cancel reached the worker
                "True cancelled",
                "[('GATED_STREAMER', 'cancelled'), ('GATED_STREAMER@ray', 'cancelled')]",
                "GATED_STREAMER@ray True cancelled",  # the first token's message, cut off by the cancel
                "[(None, '', 'cancelled')]",  # then the end of the reply, cancelled
                "finished: False",
                "still active: []",
            ]
            # one cancellation ends the reply, as a local agent's: the remote run's, right where the proxy's would be
            pieces = kernel.ok("print([type(piece).__name__ for piece in reply.pieces_so_far])").stdout
            assert pieces == "['MessagePromise', 'CancelledError']\n"
            assert kernel.ok("print(1 + 1)").stdout == "2\n"  # later cells work
            assert kernel.ok(SHUTDOWN_CELL, timeout=90).stdout == "ray is down: True\n"
        except BaseException:
            with contextlib.suppress(Exception):  # (best effort: the failure is what matters)
                kernel.execute(SHUTDOWN_CELL, timeout=90)
            raise
