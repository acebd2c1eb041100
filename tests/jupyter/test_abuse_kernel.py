"""The notebook layer under abuse, in a real ipykernel: objects whose `str()` raises (an exception class, a message
whose `content_template` names a missing field) must not break the call tracker, the views' followers or the
cell hooks; every view still ends and shows the failure, and the next cell runs normally. The sync facade asked to
wait for a reply that only the (waiting) kernel loop can produce fails at once instead of deadlocking."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .kernel_harness import Kernel, loaded_kernel

pytestmark = pytest.mark.timeout(120)


SETUP = """\
import asyncio
from miniagents_nb import InteractionContext, MessageTokenAppender, MiniAgents, TextMessage, miniagent
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


@miniagent
async def ticker(ctx: InteractionContext, count: int = 40, delay: float = 0.05) -> None:
    with MessageTokenAppender(capture_errors=True) as appender:
        ctx.reply(TextMessage.promise(message_token_streamer=appender))
        for index in range(count):
            await asyncio.sleep(delay)
            appender.append(f"t{index} ")
"""


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with loaded_kernel("abuse_kernel.log", SETUP) as running:
        yield running


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


def test_a_message_of_bytes_that_are_not_text_ends_its_view_as_failed(kernel: Kernel) -> None:
    run = kernel.ok(
        "from miniagents_nb import Message\n"
        "try:\n"
        "    undecodable = Message(data=b'\\xff\\xfe')\n"
        "except Exception as error:  # (refusing such bytes at construction is fine too)\n"
        "    print('refused', type(error).__name__)\n"
        "else:\n"
        "    v = view(undecodable)\n"
        "    print(v.is_final, v.state['status'], v.state['error'].split(':')[0])"
    )
    # freezing refuses bytes it could never hash or show (NotFreezableError names the field)
    assert run.stdout in {
        "True failed PydanticSerializationError\n",
        "refused MessageTypeError\n",
        "refused NotFreezableError\n",
    }, run.stdout
    assert run.stderr == ""


def test_the_sync_facade_refuses_at_once_to_wait_for_a_reply_streaming_on_the_kernel_loop(kernel: Kernel) -> None:
    kernel.ok("early = ticker.trigger(count=2000, delay=0.01)")  # streams on the kernel's loop for 20 s
    for waiting in ("await early", "[m async for m in early]", "await early.as_single_text_promise()"):
        run = kernel.execute(
            f"async def main():\n    return {waiting}\n"
            "try:\n    MiniAgents().run(main())\nexcept Exception as error:\n    print(type(error).__name__, error)",
            timeout=15,  # (it used to wait until interrupted)
        )
        assert run.error is None, run.error
        assert run.stdout.startswith("ForeignLoopError This promise is produced on the event loop of another"), (
            waiting,
            run.stdout,
        )
        assert "can never be awaited here: `await` it in a cell of its own" in run.stdout
    # what already ended is given, and the reply the facade refused goes on streaming on the kernel loop
    run = kernel.ok(
        "done = ticker.trigger(count=2, delay=0)\nawait done\n"
        "async def main():\n    return [str(m) for m in await done]\n"
        "print(MiniAgents().run(main()))\n"
        "print(early.producer_ended)\n"
        "early_texts = [str(m) for m in await MiniAgents().arun(ticker.trigger(count=3, delay=0))]\n"
        "print(early_texts)"
    )
    assert run.stdout.splitlines() == ["['t0 t1 ']", "False", "['t0 t1 t2 ']"]
    assert kernel.ok("%miniagents cancel\nprint('ok')").stdout.endswith("ok\n")


LIVE_OBJECTS = """\
import gc
from miniagents_nb.jupyter._tracker import CallRecord
from miniagents_nb.promising import StreamedPromise


def engine_objects() -> tuple[int, int]:
    # what a finished view must not keep alive: promises (with their token pieces) and call records (the run
    # recorder holds what it has not written yet: let it write first)
    current_session().recording.flush()
    gc.collect()
    objects = gc.get_objects()
    return sum(isinstance(o, StreamedPromise) for o in objects), sum(isinstance(o, CallRecord) for o in objects)
"""

SHOWN_AND_DROPPED = """\
reply = ticker.trigger(count=2000, delay=0)
v = view(reply, tree=True)
display(v)
_ = await reply
await v.wait()
del v, reply, _
"""


def test_finished_views_let_go_of_the_engine(kernel: Kernel) -> None:
    kernel.ok(LIVE_OBJECTS)
    for _ in range(2):
        kernel.ok(SHOWN_AND_DROPPED)
    kernel.ok("%%chat ticker count=200 delay=0\nhi")
    # (a collection hands unreachable async generators to the loop to close: count once it ran, in the next cell)
    kernel.ok("gc.collect()")
    before = kernel.ok("print(engine_objects())").stdout
    for _ in range(4):
        kernel.ok(SHOWN_AND_DROPPED)
        kernel.ok("%%chat ticker count=200 delay=0\nhi")
    kernel.ok("gc.collect()")
    after = kernel.ok("print(engine_objects())").stdout
    assert after == before  # the session plateaus: nothing grows with the number of finished views
    # a finished view still shows (and saves) its final state
    run = kernel.ok(
        "reply = ticker.trigger(count=3, delay=0)\nv = view(reply, tree=True)\ndisplay(v)\n_ = await reply\n"
        "await v.wait()\nimport weakref\nref = weakref.ref(reply)\ndel reply, _\ngc.collect()\n"
        "print(ref() is None, v.state['messages'][0]['text'], v.state['status'])\nprint(v.text())"
    )
    assert run.stdout.splitlines() == [
        "True t0 t1 t2  done",
        "TICKER · 1 message · done",
        "[TICKER] t0 t1 t2 ",
        "Agent calls:",
        "  TICKER: done, 1 message",
    ]


IOPUB_LIMIT_PER_SECOND = 1000  # jupyter_server's default `iopub_msg_rate_limit`, over `rate_limit_window` = 3 s
UNCOUNTED = {"status", "comm_open", "execute_input"}  # what jupyter_server does not count


def _most_in_a_window(stamps: list[float], seconds: float) -> int:
    most, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamps[start] < stamp - seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_many_views_ending_together_stay_under_the_iopub_limit(kernel: Kernel) -> None:
    kernel.ok(
        "GATE = asyncio.Event()\n"
        "@miniagent\nasync def gated(ctx):\n    await GATE.wait()\n    ctx.reply('done')\n"
        "GATED_VIEWS = []"
    )
    for _ in range(12):  # 1,200 views in the background, all waiting (displayed 100 a cell)
        kernel.ok("for _ in range(100):\n    v = view(gated.trigger())\n    display(v)\n    GATED_VIEWS.append(v)")
    first = len(kernel.all_messages)
    kernel.ok("GATE.set()")  # they all end together, and every view sends its final state
    finals = kernel.ok(
        "await asyncio.wait_for(asyncio.gather(*(v.wait() for v in GATED_VIEWS)), 100)\n"
        "print(sum(v.is_final and v.state['status'] == 'done' for v in GATED_VIEWS))",
        timeout=110,
    )
    assert finals.stdout == "1200\n"
    counted = sorted(
        message["header"]["date"].timestamp()
        for _, message in kernel.all_messages[first:]
        if message["msg_type"] not in UNCOUNTED
    )
    assert len(counted) >= 2400  # each view's final state and its display update
    assert _most_in_a_window(counted, 3.0) <= 3 * IOPUB_LIMIT_PER_SECOND // 2  # half the limit: room for the cells
    assert _most_in_a_window(counted, 1.0) <= IOPUB_LIMIT_PER_SECOND // 2
