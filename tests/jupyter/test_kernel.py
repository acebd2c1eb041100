"""The notebook layer in a real ipykernel: Run All with the seeds' `MiniAgents().run(main())` (nbclient), kernel
interrupts (the interrupted cell's calls are cancelled, their views say so, later cells work, no "Task was destroyed"
noise) and views that keep updating from the background after their cell returned (jupyter_client)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from .kernel_harness import ARTIFACTS, CellRun, Kernel, loaded_kernel

pytestmark = pytest.mark.timeout(120)


SEED_CELL = """\
import asyncio
from miniagents_nb import InteractionContext, MiniAgents, miniagent


@miniagent
async def sub_agent(ctx: InteractionContext) -> None:
    async for message_promise in ctx.message_promises:
        message = await message_promise
        ctx.reply(f"Sub-agent received: {message}")


@miniagent
async def aggregator_agent(ctx: InteractionContext) -> None:
    ctx.reply(["Hello from aggregator", sub_agent.trigger(ctx.message_promises)])


async def main() -> None:
    async for message_promise in aggregator_agent.trigger("Hi there!"):
        print(await message_promise)


if __name__ == "__main__":
    MiniAgents().run(main())
"""

RUN_ALL_CELLS = [
    "%load_ext miniagents_nb",
    SEED_CELL,
    'print("the next cell ran")',
    'reply = aggregator_agent.trigger("again")\nawait reply\nreply',
    "%%miniagent tail\ntexts = [str(m) for m in await ctx.message_promises]\nctx.reply(' + '.join(texts))",
    "%%chat tail\nhello",
    "%%chat tail\nworld",
    'print(len(__import__("miniagents_nb.jupyter").jupyter.current_session().chat_history))',
]


def _plain(output: dict[str, Any]) -> str:
    if output["output_type"] == "stream":
        return str(output["text"])
    return str(output.get("data", {}).get("text/plain", ""))


def test_run_all_with_the_seed_sync_facade_then_more_cells() -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in RUN_ALL_CELLS]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=60, allow_errors=False, store_widget_state=True, startup_timeout=60
    )
    client.execute()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, ARTIFACTS / "run_all.ipynb")

    cells = notebook.cells
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1))  # every cell ran
    outputs = ["".join(_plain(output) for output in cell.outputs) for cell in cells]
    assert outputs[1] == "Hello from aggregator\nSub-agent received: Hi there!\n"
    assert outputs[2] == "the next cell ran\n"
    assert outputs[3] == (
        "AGGREGATOR_AGENT · 2 messages · done\n"
        "[AGGREGATOR_AGENT] Hello from aggregator\n"
        "[SUB_AGENT] Sub-agent received: again\n"
        "Agent calls:\n"
        "  AGGREGATOR_AGENT: done, 1 message\n"
        "    SUB_AGENT: done, 1 message"
    )
    assert outputs[4] == ""
    # the display-time form was replaced by the final one while the cell still ran: nbclient stored the final one
    assert outputs[5] == "Chat with TAIL (done)\n\nUSER: hello\n\nTAIL: hello"
    assert outputs[6] == "Chat with TAIL (done)\n\nUSER: world\n\nTAIL: hello + hello + world"
    assert outputs[7] == "4\n"
    # the stored widget state of the %%chat views is their exact final state
    widget_states = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    finals = [
        model["state"]["state"]
        for model in widget_states.values()
        if model["model_name"] == "AnyModel" and model["state"].get("state", {}).get("kind") == "chat"
    ]
    assert {"world", "hello + hello + world"} <= {m["text"] for state in finals for m in state["messages"]}
    assert [state["status"] for state in finals] == ["done", "done"]


# --- one kernel for the interrupt and background tests -----------------------------------------------------------

AGENTS = """\
import asyncio
from miniagents_nb import InteractionContext, MessageTokenAppender, MiniAgents, TextMessage, miniagent
from miniagents_nb.jupyter import current_session, view


async def settled(timeout: float = 10.0) -> list[str]:
    # Wait until no agent call is active (the tracker tells its listeners of every change) or `timeout` passed;
    # returns the aliases of the calls still active, for the test to check.
    tracker = current_session().tracker
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def check(_record: object = None) -> None:
        if not tracker.active_records():
            loop.call_soon_threadsafe(done.set)

    remove = tracker.add_listener(check)
    try:
        check()
        await asyncio.wait_for(done.wait(), timeout)
    except asyncio.TimeoutError:
        pass  # the test's check shows what still runs
    finally:
        remove()
    return [record.alias for record in tracker.active_records()]


@miniagent
async def ticker(ctx: InteractionContext, count: int = 40, delay: float = 0.05) -> None:
    # streams tokens from its own task, the way an LLM agent does
    with MessageTokenAppender(capture_errors=True) as appender:
        ctx.reply(TextMessage.promise(message_token_streamer=appender))
        for index in range(count):
            await asyncio.sleep(delay)
            appender.append(f"t{index} ")


@miniagent
async def boss(ctx: InteractionContext) -> None:
    ctx.reply(ticker.trigger(count=1000))
    await asyncio.sleep(60)
"""


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with loaded_kernel("kernel.log", AGENTS) as running:
        yield running


def _display_id(run: CellRun) -> str:
    for content in run.display_data():
        if "application/vnd.jupyter.widget-view+json" in content["data"]:
            return str(content["transient"]["display_id"])
    raise AssertionError(f"no widget displayed: {run.messages!r}")


def _is_delta_of(message: dict[str, Any], model_id: str) -> bool:
    content = message["content"]
    return bool(
        message["msg_type"] == "comm_msg"
        and content.get("comm_id") == model_id
        and content.get("data", {}).get("method") == "custom"
    )


def test_interrupt_cancels_the_calls_of_the_interrupted_cell(kernel: Kernel) -> None:
    kernel.ok("survivor = ticker.trigger(count=200)")  # another cell's call: an interrupt must leave it alone
    run = kernel.start("reply = boss.trigger()\nv = view(reply, tree=True)\ndisplay(v)\nawait reply")
    run = kernel.wait(run, until=lambda m: m["msg_type"] == "display_data")
    model_id = run.widget_model_id()
    kernel.wait(run, until=lambda m: _is_delta_of(m, model_id))  # streaming has begun
    kernel.km.interrupt_kernel()
    kernel.wait(run)
    assert run.error is not None
    assert run.error["ename"] in {"CancelledError", "KeyboardInterrupt"}

    check = kernel.ok(
        "await v.wait()  # final once the cancelled calls ended\n"
        "print(v.is_final, v.state['status'], sorted(n['status'] for n in v.state['nodes'].values()),\n"
        "      [m['status'] for m in v.state['messages']])\n"
        "print(survivor.producer_ended)\n"
        "%miniagents"
    )
    lines = check.stdout.splitlines()
    assert lines[0] == "True cancelled ['cancelled', 'cancelled'] ['cancelled', 'cancelled']"
    assert lines[1] == "False"  # the other cell's agent still runs
    # (ipykernel 6 charges the background updates of earlier cells' views to this cell too: skip those)
    (status,) = [m["content"] for m in check.of_type("execute_result")]
    assert "Active agent calls: 1" in status["data"]["text/plain"]
    assert kernel.ok("print(1 + 1)").stdout == "2\n"  # later cells work
    assert kernel.ok("%miniagents cancel\nprint(await settled())").stdout == "[]\n"


def test_interrupting_chat_and_the_sync_facade(kernel: Kernel) -> None:
    run = kernel.start("%%chat ticker count=1000\nhello")
    run = kernel.wait(run, until=lambda m: m["msg_type"] == "display_data")
    model_id = run.widget_model_id()
    kernel.wait(run, until=lambda m: _is_delta_of(m, model_id))
    kernel.km.interrupt_kernel()
    kernel.wait(run)
    assert run.error is not None
    assert run.error["ename"] in {"CancelledError", "KeyboardInterrupt"}
    check = kernel.ok("still_active = await settled()\nprint(len(current_session().chat_history), still_active)")
    assert check.stdout == "0 []\n"  # nothing remembered, nothing left running

    run = kernel.start(
        "async def main():\n"
        "    print('main started', flush=True)\n"
        "    await ticker.trigger(count=1000)\n"
        "MiniAgents().run(main())"
    )
    kernel.wait(run, until=lambda m: m["msg_type"] == "stream" and "main started" in m["content"]["text"])
    kernel.km.interrupt_kernel()
    kernel.wait(run)
    assert run.error is not None
    assert run.error["ename"] == "KeyboardInterrupt"
    assert kernel.ok("print('still alive')").stdout == "still alive\n"


def test_a_view_keeps_updating_after_its_cell_returned(kernel: Kernel) -> None:
    run = kernel.ok("reply = ticker.trigger(count=20, delay=0.05)\nv = view(reply)\ndisplay(v)")
    model_id = run.widget_model_id()
    display_id = _display_id(run)
    # the cell is idle; the agent streams for about a second, then the view's final form replaces its display
    later = kernel.drain_until(
        lambda m: m["msg_type"] == "update_display_data" and m["content"]["transient"]["display_id"] == display_id
    )
    deltas = [m for m in later if _is_delta_of(m, model_id)]
    finals = [
        m
        for m in later
        if m["msg_type"] == "comm_msg"
        and m["content"]["comm_id"] == model_id
        and m["content"]["data"].get("method") == "update"
        and "state" in m["content"]["data"]["state"]  # not the live saved form
    ]
    assert len(deltas) >= 3, later
    assert len(finals) == 1
    final_state = finals[0]["content"]["data"]["state"]["state"]
    expected = "".join(f"t{index} " for index in range(20))
    assert final_state["messages"][0]["text"] == expected
    assert final_state["status"] == "done"
    texts = "".join(chunk for delta in deltas for _, chunk in delta["content"]["data"]["content"].get("append", []))
    assert texts == expected  # the deltas carried every token exactly once
    updates = [m for m in later if m["msg_type"] == "update_display_data"]
    assert updates
    assert updates[-1]["content"]["data"]["text/plain"] == (
        f"TICKER · 1 message · done\n[TICKER] {expected}\nAgent calls:\n  TICKER: done, 1 message"
    )
    # the final output is the static form alone: saved, it renders with no kernel (no widget model to miss)
    final_data = updates[-1]["content"]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in final_data
    assert f'<div class="mna-message-text">{expected}</div>' in final_data["text/html"]
    assert (
        kernel.ok(
            "await v.wait()\nprint(v.state['messages'][0]['text'] == reply_text)".replace(
                "reply_text", json.dumps(expected)
            )
        ).stdout
        == "True\n"
    )


def test_no_task_was_destroyed_noise(kernel: Kernel) -> None:
    # every call has ended; then what the collection finds, and the callbacks it schedules (given a moment to run:
    # nothing signals that nothing happened), must not complain
    kernel.ok("import gc\nstill = await settled()\nassert still == [], still\ngc.collect()\nawait asyncio.sleep(0.1)")
    text = kernel.all_text()
    assert "Task was destroyed" not in text
    assert not re.search(r"Exception in callback|Traceback \(most recent call last\)", kernel.kernel_log())
