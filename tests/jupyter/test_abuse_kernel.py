"""The notebook layer under abuse, in a real ipykernel: objects whose `str()` raises (an exception class, a message
whose `content_template` names a missing field) must not break the call tracker, the views' followers or the
cell hooks; every view still ends and shows the failure, and the next cell runs normally."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .kernel_harness import Kernel

pytestmark = pytest.mark.timeout(120)

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "jupyter"

SETUP = """\
import asyncio
from miniagents_nb import InteractionContext, TextMessage, miniagent
from miniagents_nb.jupyter import current_session, view


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class Templated(TextMessage):
    content_template: str = "{missing}"


@miniagent
async def unprintable_failure(ctx: InteractionContext) -> None:
    raise Unprintable()


@miniagent
async def templated(ctx: InteractionContext) -> None:
    ctx.reply(Templated(content="x"))
"""


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    running = Kernel(ARTIFACTS / "abuse_kernel.log")
    try:
        running.ok("%load_ext miniagents_nb")
        running.ok(SETUP)
        yield running
    finally:
        running.close()


def test_a_failure_whose_str_raises_ends_the_call_as_failed(kernel: Kernel) -> None:
    run = kernel.ok(
        "reply = unprintable_failure.trigger()\n"
        "v = view(reply, tree=True)\n"
        "display(v)\n"
        "try:\n"
        "    await reply\n"
        "except Unprintable:\n"
        "    print('raised')\n"
        "await asyncio.wait_for(v.wait(), 20)\n"
        "(node,) = v.state['nodes'].values()\n"
        "print(v.state['status'], node['status'])\n"
        "print(node['error'])\n"
        "print([r.alias for r in current_session().tracker.active_records()])"
    )
    assert "AN OBSERVER FAILED" not in run.stderr, run.stderr
    assert run.stdout.splitlines() == [
        "raised",
        "failed failed",
        "Unprintable: <Unprintable that cannot be shown as text: its str() raised RuntimeError: no text for you>",
        "[]",
    ]
    status = kernel.ok("%miniagents").display_data()[-1]["data"]["text/plain"]
    assert "Active agent calls: 0" in status
    assert "Failed agent calls: 1 (latest: UNPRINTABLE_FAILURE: Unprintable: <Unprintable" in status


def test_a_message_whose_str_raises_ends_its_view_as_failed(kernel: Kernel) -> None:
    run = kernel.ok(
        "reply = templated.trigger()\n"
        "v = view(reply)\n"
        "display(v)\n"
        "await reply\n"
        "await asyncio.wait_for(v.wait(), 20)\n"
        "(message,) = v.state['messages']\n"
        "print(v.is_final, message['status'])\n"
        "print(message['error'])\n"
        "single = view(Templated(content='y'))\n"
        "print(single.is_final, single.state['status'], single.state['error'])"
    )
    assert run.stderr == ""  # (the post_run_cell hook did not fail)
    assert run.stdout.splitlines() == [
        "True failed",
        "KeyError: 'missing'",
        "True failed KeyError: 'missing'",
    ]
    displayed = [content["data"]["text/plain"] for content in run.display_data()]
    assert displayed[-1].startswith("TEMPLATED · 1 message · done\n[TEMPLATED] <Templated that cannot be shown as text")
    assert kernel.ok("print(1 + 1)").stdout == "2\n"
