"""The notebook user agent (`NotebookChat`, `notebook_user_agent`): a chat widget as the user's side of `dialog_loop`.

Three levels: the widget itself, driven the way a front end drives it (its comm receives the messages the browser
would send, and what it publishes is replayed like the front end applies it); IPython's own shell with the
extension loaded (one chat per dialog, separate conversations, senders, cancelling); and a real ipykernel through
jupyter_client, where the front end's messages arrive while the cell awaits the dialog (ipykernel 7.4+) and while a
background dialog runs. Ordering is explicit, never a sleep or a polling loop: the tests wait on what the widget
publishes (each comm message wakes the waiter, see `RecordingComm.wait_until`), on events the agents set, on the
dialog's completion, or on the kernel's IOPub messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from IPython.utils.capture import capture_output
from ipywidgets.widgets.widget import _instances as widget_instances

from miniagents_nb import InteractionContext, MiniAgents, miniagent
from miniagents_nb.ext import InMemoryChatHistory, dialog_loop
from miniagents_nb.ext.llms import AssistantMessage, FakeLLMAgent, SystemMessage
from miniagents_nb.jupyter import _kernel_input as kernel_input
from miniagents_nb.jupyter import current_session
from miniagents_nb.jupyter.user_agent import (
    EXIT_NOTICE,
    SCRIPT_END_NOTICE,
    NotebookChat,
    NotebookInputError,
    cell_can_await_input,
    create_notebook_user_agent,
    notebook_user_agent,
)

from .helpers import RecordingComm, comm_of
from .kernel_harness import CellRun, Kernel, loaded_kernel

REPLY_1 = "Hello! Streams arrive one word at a time, like an LLM."
REPLY_2 = "Tell you more?\nHere is a second line."


@contextlib.asynccontextmanager
async def context(**kwargs: Any) -> AsyncIterator[None]:
    """A MiniAgents context that stops every chat when the test fails inside it: a dialog still waiting for input
    would otherwise keep the context from closing until the test times out."""
    async with MiniAgents(**kwargs):
        try:
            yield
        except BaseException:
            for widget in list(widget_instances.values()):
                if isinstance(widget, NotebookChat):
                    widget.stop()
            raise


# --- what the front end sees ---------------------------------------------------------------------------------------


class FrontEnd:
    """Applies what a chat widget published the way user_agent.js does, and sends what the browser would send."""

    def __init__(self, recording: RecordingComm) -> None:
        self.recording = recording
        self.appends: dict[int, list[str]] = {}  # per message: the text after each delta that grew it
        self.sent_turn = -1  # like the widget: one send per input request

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        version = -1
        self.appends = {}
        for msg_type, data in self.recording.published:
            if msg_type == "comm_open":
                state, version = copy.deepcopy(data["state"]["state"]), data["state"]["version"]
            elif msg_type == "comm_msg" and data.get("method") == "update" and "version" in data["state"]:
                if data["state"]["version"] >= version:
                    state, version = copy.deepcopy(data["state"]["state"]), data["state"]["version"]
            elif msg_type == "comm_msg" and data.get("method") == "custom":
                delta = data["content"]
                if delta.get("type") != "delta" or delta["to"] <= version:
                    continue
                assert delta["from"] == version, f"delta from {delta['from']} on top of version {version}"
                for index, message in delta.get("new", []):
                    assert index == len(state["messages"])
                    state["messages"].append(copy.deepcopy(message))
                for index, chunk in delta.get("append", []):
                    state["messages"][index]["text"] += chunk
                    self.appends.setdefault(index, []).append(state["messages"][index]["text"])
                for index, update in delta.get("end", []):
                    state["messages"][index].update(update)
                if "chat" in delta:
                    state["chat"] = delta["chat"]
                state["status"] = delta.get("status", state["status"])
                state["error"] = delta.get("error", state["error"])
                version = delta["to"]
        return state

    def message(self, content: dict[str, Any]) -> None:
        self.recording.receive(content)

    async def until(self, predicate: Callable[[], bool], *, what: str = "the condition") -> None:
        """Wait until `predicate()` holds, checked again whenever the widget publishes (e.g. on `self.state()`)."""
        await self.recording.wait_until(predicate, what=what)

    def my_turn(self) -> bool:
        state = self.state()
        return bool(state["status"] == "waiting" and state["chat"]["turn"] != self.sent_turn)

    async def type_and_send(self, text: str) -> None:
        """Wait until the widget shows a new request for input, then send `text` for it."""
        await self.until(self.my_turn, what=f"the chat to ask before {text!r}")
        self.sent_turn = self.state()["chat"]["turn"]
        self.message({"type": "send", "text": text, "turn": self.sent_turn})


def chat_comms(comms: list[RecordingComm]) -> list[RecordingComm]:
    return [c for c in comms if c.published and c.published[0][1]["state"].get("state", {}).get("kind") == "chat"]


def transcript(*turns: tuple[str, str], status: str = "ended", notice: str | None = None) -> str:
    lines = ["Chat (" + status + ")", "YOU ARE NOW IN A CHAT WITH AN AI ASSISTANT"]
    for sender, text in turns:
        first, *rest = text.split("\n")
        lines += ["", f"{sender}: {first}", *rest]
    if notice:
        lines += ["", f"({notice})"]
    return "\n".join(lines)


def recording_assistant(replies: list[str], token_delay: float = 0.0) -> tuple[Any, list[list[tuple[str, str]]]]:
    """A FakeLLMAgent that answers `replies` in turn and records the (role, content) prompt of each call."""
    prompts: list[list[tuple[str, str]]] = []

    def reply(messages: list[dict[str, Any]]) -> str:
        prompts.append([(m["role"], m["content"]) for m in messages])
        return replies[len(prompts) - 1]

    return FakeLLMAgent.fork(reply_fn=reply, token_delay=token_delay), prompts


# --- the widget, driven like a front end ---------------------------------------------------------------------------


async def test_a_dialog_streams_the_replies_takes_two_inputs_and_ends_on_exit(comms: list[RecordingComm]) -> None:
    assistant, prompts = recording_assistant([REPLY_1, REPLY_2], token_delay=0.03)
    async with context():
        chat = NotebookChat()
        front = FrontEnd(comm_of(comms, chat))
        dialog = dialog_loop.trigger(SystemMessage("Be brief."), user_agent=chat.user_agent, assistant_agent=assistant)
        replies, _ = await asyncio.gather(_await(dialog), _drive(front, ["hi", "tell me more", "exit"]))
        assert replies == ()  # the user ended the dialog: no error, no reply
        await chat.wait()

    expected = transcript(
        ("USER", "hi"),
        ("FAKE_LLM_AGENT", REPLY_1),
        ("USER", "tell me more"),
        ("FAKE_LLM_AGENT", REPLY_2),
        notice=EXIT_NOTICE,
    )
    assert chat.text() == expected
    assert chat.status == "ended"
    assert chat.ended
    assert chat.is_final
    final = front.state()
    assert final == chat.state  # the front end's replay of the deltas ends on the exact final state
    assert [(m["sender"], m["role"], m["status"]) for m in final["messages"]] == [
        ("USER", "user", "done"),
        ("FAKE_LLM_AGENT", "assistant", "done"),
        ("USER", "user", "done"),
        ("FAKE_LLM_AGENT", "assistant", "done"),
    ]  # "exit" is a command, not a message: the transcript says so in its notice
    # streamed: the front end showed each reply growing word by word before its final text
    for index, reply in ((1, REPLY_1), (3, REPLY_2)):
        grown = front.appends[index]
        assert len(grown) >= 2, grown
        assert grown[0] != reply, grown
        assert reply.startswith(grown[0]), grown
        assert grown[-1] == reply
    # the assistant got the conversation so far, the prompt last (dialog_loop's prompt_at_the_end)
    assert prompts == [
        [("user", "hi"), ("system", "Be brief.")],
        [("user", "hi"), ("assistant", REPLY_1), ("user", "tell me more"), ("system", "Be brief.")],
    ]
    history = chat.history
    assert isinstance(history, InMemoryChatHistory)
    assert [(m.role, str(m)) for m in history.messages] == [
        ("user", "hi"),
        ("assistant", REPLY_1),
        ("user", "tell me more"),
        ("assistant", REPLY_2),
    ]
    # the input box knew whose turn it was: one request per user input
    assert final["chat"] == {"turn": 3, "notice": EXIT_NOTICE}


async def _await(awaitable: Any) -> Any:
    return await awaitable


async def _drive(front: FrontEnd, texts: list[str]) -> None:
    for text in texts:
        await front.type_and_send(text)


async def test_blank_input_stale_turns_typing_ahead_and_exit_in_capitals(comms: list[RecordingComm]) -> None:
    working = asyncio.Event()
    release = asyncio.Event()

    @miniagent(alias="SLOW_ECHO")
    async def slow_echo(ctx: InteractionContext) -> None:
        said = [str(m) for m in await ctx.message_promises if m.get("role") == "user"]
        working.set()
        await release.wait()
        ctx.reply(AssistantMessage(content=f"echo {said[-1]}", agent_alias="SLOW_ECHO"))

    async with context():
        chat = NotebookChat()
        front = FrontEnd(comm_of(comms, chat))
        dialog = dialog_loop.trigger(user_agent=chat.user_agent, assistant_agent=slow_echo)
        await front.until(lambda: front.state()["status"] == "waiting")
        front.message({"type": "send", "text": "   \n ", "turn": 1})  # blank: ignored, still asking
        front.message({"type": "send", "text": "from an old turn", "turn": 0})  # stale: dropped
        front.message({"type": "send", "text": "first", "turn": 1})
        front.message({"type": "send", "text": "double enter", "turn": 1})  # the same turn again: dropped
        await working.wait()  # the assistant has the input: the chat is running, not asking
        assert chat.status == "running"
        chat.submit("typed ahead")  # while the assistant works: kept for the next turn
        chat.submit("  ")
        release.set()
        await front.until(lambda: front.state()["status"] == "waiting" and front.state()["chat"]["turn"] == 2)
        front.message({"type": "send", "text": "EXIT", "turn": 2})
        assert await dialog == ()
        await chat.wait()
    assert chat.text() == transcript(
        ("USER", "first"),
        ("SLOW_ECHO", "echo first"),
        ("USER", "typed ahead"),
        ("SLOW_ECHO", "echo typed ahead"),
        notice=EXIT_NOTICE,
    )
    with pytest.raises(NotebookInputError, match="has ended"):
        chat.submit("too late")


async def test_stop_while_the_reply_streams_ends_the_dialog_and_stops_the_stream(comms: list[RecordingComm]) -> None:
    first_token = asyncio.Event()
    pumps: list[asyncio.Task[Any]] = []

    @miniagent(alias="ENDLESS")
    async def endless(ctx: InteractionContext) -> None:
        await ctx.message_promises

        async def stream(_aux: dict[str, Any]) -> AsyncIterator[str]:
            current = asyncio.current_task()
            assert current is not None
            pumps.append(current)
            yield "The beginning"
            first_token.set()
            await asyncio.Event().wait()  # never ends by itself
            yield "never"

        ctx.reply(AssistantMessage.promise(message_token_streamer=stream, agent_alias="ENDLESS"))

    async with context():
        chat = NotebookChat()
        front = FrontEnd(comm_of(comms, chat))
        dialog = dialog_loop.trigger(user_agent=chat.user_agent, assistant_agent=endless)
        await front.type_and_send("go on forever")
        await first_token.wait()
        await front.until(lambda: any(m["text"] == "The beginning" for m in front.state()["messages"]))
        front.message({"type": "stop"})
        assert await dialog == ()  # Stop ends the dialog like "exit"
        await chat.wait()
    assert pumps
    assert pumps[0].done()
    assert chat.status == "ended"
    assert chat.text() == transcript(("USER", "go on forever"), ("ENDLESS", "The beginning\n    (cancelled)"))
    assert front.state() == chat.state


async def test_stop_while_waiting_and_a_script_that_runs_out(comms: list[RecordingComm]) -> None:
    async with context():
        chat = NotebookChat()
        front = FrontEnd(comm_of(comms, chat))
        dialog = dialog_loop.trigger(user_agent=chat.user_agent, assistant_agent=FakeLLMAgent)
        await front.until(lambda: front.state()["status"] == "waiting")
        front.message({"type": "stop"})
        assert await dialog == ()
        assert chat.text() == transcript()

        scripted = NotebookChat(script=["only one", ""])
        await scripted.run(assistant_agent=FakeLLMAgent.fork(replies=["An answer."]))
    assert scripted.text() == transcript(
        ("USER", "only one"), ("FAKE_LLM_AGENT", "An answer."), notice=SCRIPT_END_NOTICE
    )


async def test_failures_show_in_the_chat_and_reach_the_dialog(comms: list[RecordingComm]) -> None:
    @miniagent(alias="BROKEN")
    async def broken(ctx: InteractionContext) -> None:
        ctx.reply(AssistantMessage(content="about to fail", agent_alias="BROKEN"))
        raise ValueError("the model is down")

    async with context(errors_as_messages=False):
        chat = NotebookChat(script=["hi", "never sent"])
        with pytest.raises(ValueError, match="the model is down"):
            await chat.run(assistant_agent=broken)
        await chat.wait()
        assert chat.status == "failed"
        assert chat.text().startswith("Chat (failed: ValueError: the model is down)")
        with pytest.raises(NotebookInputError, match="has ended"):
            chat.start(assistant_agent=broken)
        with pytest.raises(ValueError, match="list of the user's inputs"):
            NotebookChat(script="hi")  # a str is an Iterable[str]: refused at run time
        with pytest.raises(ValueError, match="list of the user's inputs"):
            create_notebook_user_agent(script="hi")
        with pytest.raises(ValueError, match="do not pass `user_agent=`"):
            NotebookChat().start(user_agent=notebook_user_agent)


async def test_static_forms_are_the_deterministic_transcript(comms: list[RecordingComm]) -> None:
    async def run_once() -> dict[str, Any]:
        async with context():
            chat = NotebookChat(script=["<b>hi</b> & bye", "exit"])
            await chat.run(SystemMessage("x"), assistant_agent=FakeLLMAgent.fork(replies=["One\ntwo"], token_delay=0))
            bundle, _ = chat._repr_mimebundle_()
            return bundle

    first, second = await run_once(), await run_once()
    assert {k: v for k, v in first.items() if "widget" not in k} == {
        k: v for k, v in second.items() if "widget" not in k
    }
    assert first["text/plain"] == transcript(
        ("USER", "<b>hi</b> & bye"), ("FAKE_LLM_AGENT", "One\ntwo"), notice=EXIT_NOTICE
    )
    html = first["text/html"]
    assert "&lt;b&gt;hi&lt;/b&gt; &amp; bye" in html
    assert "<b>hi</b>" not in html
    assert not re.search(r"0x[0-9a-f]{6,}|[0-9a-f]{32}", first["text/plain"] + html)
    assert repr(NotebookChat(greeting="")) == "Chat (running)"


async def test_old_kernels_fail_fast_when_the_cell_awaits_but_run_in_the_background(
    comms: list[RecordingComm], monkeypatch: pytest.MonkeyPatch
) -> None:
    running_cell = object()
    fake_shell = SimpleNamespace(kernel=object(), displayhook=SimpleNamespace(exec_result=running_cell))
    monkeypatch.setattr(kernel_input, "kernel_shell", lambda: fake_shell)
    monkeypatch.setattr(kernel_input, "ipykernel_version", lambda: (7, 3))
    assert not cell_can_await_input()

    async with context():
        with pytest.raises(NotebookInputError, match=r"ipykernel 7\.3 .* `NotebookChat\(\)\.start"):
            await NotebookChat().run(assistant_agent=FakeLLMAgent)  # refused before anything starts
        # the agent form finds out when it first waits: the cell that started the dialog is still running
        with pytest.raises(NotebookInputError, match="would wait forever"):
            await dialog_loop.trigger(user_agent=notebook_user_agent, assistant_agent=FakeLLMAgent)
        (failed,) = [c for c in chat_comms(comms) if FrontEnd(c).state()["status"] == "failed"]
        assert "would wait forever" in FrontEnd(failed).state()["error"]
        # scripted chats never wait: they can be awaited on any kernel
        await NotebookChat(script=["exit"]).run(assistant_agent=FakeLLMAgent)
        # the background form works even while that cell still runs
        chat = NotebookChat()
        front = FrontEnd(comm_of(comms, chat))
        chat.start(SystemMessage("Be brief."), assistant_agent=FakeLLMAgent.fork(replies=["Background reply."]))
        await front.type_and_send("hello")
        await front.type_and_send("exit")
        await chat.wait()
        assert chat.task is not None
        assert chat.task.done()
        assert chat.text() == transcript(("USER", "hello"), ("FAKE_LLM_AGENT", "Background reply."), notice=EXIT_NOTICE)
        with pytest.raises(NotebookInputError, match="has ended"):
            chat.start(assistant_agent=FakeLLMAgent)

    monkeypatch.setattr(kernel_input, "ipykernel_version", lambda: (7, 4))
    assert cell_can_await_input()


# --- in IPython's shell, with the extension loaded -----------------------------------------------------------------

SHELL_SETUP = """
import asyncio
from miniagents_nb import miniagent
from miniagents_nb.ext import dialog_loop
from miniagents_nb.ext.llms import FakeLLMAgent, SystemMessage
from miniagents_nb.jupyter import NotebookChat, create_notebook_user_agent, notebook_user_agent

prompts = []
def reply(messages):
    prompts.append([m["role"] for m in messages])
    return f"reply {len(prompts)}"
llm = FakeLLMAgent.fork(reply_fn=reply)

@miniagent
async def plain(ctx):
    await ctx.message_promises
    ctx.reply("a plain string reply")
"""


def ok(shell: Any, code: str) -> list[str]:
    """Run a cell; returns the text/plain of what it displayed (display-time forms and their updates, in order)."""
    with capture_output() as captured:
        result = shell.run_cell(code)
    assert result.success, (result.error_before_exec, result.error_in_exec, captured.stdout, captured.stderr)
    return [output.data["text/plain"] for output in captured.outputs if "text/plain" in output.data]


def test_each_dialog_gets_its_own_chat_and_conversation(shell: Any) -> None:
    ok(shell, SHELL_SETUP)
    first = ok(
        shell,
        "await dialog_loop.trigger(SystemMessage('Be brief.'), "
        "user_agent=create_notebook_user_agent(script=['hi', 'and you?', 'exit']), assistant_agent=llm)",
    )
    second = ok(
        shell,
        "await dialog_loop.trigger(SystemMessage('Be brief.'), "
        "user_agent=create_notebook_user_agent(script=['again', 'exit']), assistant_agent=llm)",
    )
    # each dialog showed its chat at its start, then replaced it by its final transcript when it ended
    assert first == [
        transcript(status="running"),
        transcript(
            ("USER", "hi"),
            ("FAKE_LLM_AGENT", "reply 1"),
            ("USER", "and you?"),
            ("FAKE_LLM_AGENT", "reply 2"),
            notice=EXIT_NOTICE,
        ),
    ]
    assert second[1] == transcript(("USER", "again"), ("FAKE_LLM_AGENT", "reply 3"), notice=EXIT_NOTICE)
    # the second dialog's assistant saw only its own chat, although the notebook shares one MiniAgents context
    assert shell.user_ns["prompts"] == [
        ["user", "system"],
        ["user", "assistant", "user", "system"],
        ["user", "system"],
    ]
    # a reply without an alias of its own is labelled by the agent that sent it (the notebook layer knows)
    plain = ok(
        shell,
        "await dialog_loop.trigger(user_agent=create_notebook_user_agent(script=['x', 'exit']), assistant_agent=plain)",
    )
    assert plain[1] == transcript(("USER", "x"), ("PLAIN", "a plain string reply"), notice=EXIT_NOTICE)


def front_end_in(shell: Any, comms: list[RecordingComm]) -> None:
    """`front_end(widget)` in the shell's namespace: the `FrontEnd` of a widget made there (cells wait on it)."""
    shell.user_ns["front_end"] = lambda widget: FrontEnd(comm_of(comms, widget))


def test_a_background_chat_is_cancelled_with_the_calls_of_the_notebook(shell: Any, comms: list[RecordingComm]) -> None:
    ok(shell, SHELL_SETUP)
    front_end_in(shell, comms)
    ok(
        shell,
        "chat = NotebookChat()\nawait asyncio.sleep(0)  # (a terminal IPython runs the loop in async cells only)\n"
        "chat.start(assistant_agent=llm)",
    )
    ok(shell, "await front_end(chat).until(lambda: chat.status == 'waiting')")
    assert shell.user_ns["chat"].status == "waiting"
    ok(shell, "%miniagents cancel")
    ok(shell, "await asyncio.wait([chat.task], timeout=10)")  # the dialog ends (cancelled: wait() would raise)
    chat = shell.user_ns["chat"]
    assert chat.status == "cancelled"
    assert chat.task.cancelled()
    assert chat.text() == transcript(status="cancelled")


def test_stop_cancels_the_llm_call_that_still_streams(shell: Any, comms: list[RecordingComm]) -> None:
    ok(shell, SHELL_SETUP)
    front_end_in(shell, comms)
    ok(
        shell,
        "slow = FakeLLMAgent.fork(replies=['one two three four five six seven eight'], token_delay=0.2)\n"
        "chat = NotebookChat()\n"
        "await asyncio.sleep(0)\n"
        "chat.start(assistant_agent=slow)\n"
        "front = front_end(chat)\n"
        "await front.until(lambda: chat.status == 'waiting')\n"
        "chat.submit('go')\n"
        "await front.until(lambda: len(front.state()['messages']) == 2 and front.state()['messages'][1]['text'])\n"
        "chat.stop()\n"
        "await chat.wait()",
    )
    chat = shell.user_ns["chat"]
    assert chat.status == "ended"
    reply = chat.state["messages"][1]
    assert (reply["sender"], reply["status"]) == ("FAKE_LLM_AGENT", "cancelled")
    assert "one two three four five six seven eight".startswith(reply["text"])
    assert chat.task.exception() is None  # Stop ends the dialog cleanly
    session = current_session(shell)
    assert session is not None
    assert session.tracker.active_records() == []  # the LLM call stopped generating


def test_a_dialog_under_the_blocking_sync_facade_fails_fast(shell: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # as in a kernel: a shell with a kernel, whose sync cells run `MiniAgents().run` on a worker thread
    monkeypatch.setattr(
        kernel_input, "kernel_shell", lambda: SimpleNamespace(kernel=object(), displayhook=shell.displayhook)
    )
    ok(shell, SHELL_SETUP)
    with capture_output():
        result = shell.run_cell(
            "from miniagents_nb import MiniAgents\n"
            "async def main():\n"
            "    await dialog_loop.trigger(user_agent=notebook_user_agent, assistant_agent=llm)\n"
            "await asyncio.sleep(0)  # (a terminal IPython runs its loop in async cells only; a kernel always does)\n"
            "MiniAgents().run(main())"
        )
    assert isinstance(result.error_in_exec, NotebookInputError), result.error_in_exec
    assert "`MiniAgents().run(...)` runs it on a worker thread" in str(result.error_in_exec)


# --- a real kernel, messages sent the way JupyterLab sends them -----------------------------------------------------

KERNEL_SETUP = f"""
from miniagents_nb.ext import dialog_loop
from miniagents_nb.ext.llms import FakeLLMAgent, SystemMessage
from miniagents_nb.jupyter import NotebookChat, notebook_user_agent
llm = FakeLLMAgent.fork(replies=[{REPLY_1!r}, {REPLY_2!r}], token_delay=0.02)
background_llm = FakeLLMAgent.fork(replies=[{REPLY_1!r}], token_delay=0.02)
"""


class ChatWatcher:
    """Reads IOPub: the chat widgets' state (what a front end would show) and the messages of one cell run."""

    def __init__(self, kernel: Kernel, run: CellRun | None = None) -> None:
        self.kernel = kernel
        self.run = run
        self.idle = False
        self.states: dict[str, dict[str, Any]] = {}  # comm id -> status, turn, streamed texts, final state
        self.model_id: str | None = None

    def _take(self, message: dict[str, Any]) -> None:
        content = message["content"]
        if self.run is not None and message["parent_header"].get("msg_id") == self.run.msg_id:
            self.run.messages.append(message)
            if message["msg_type"] == "status" and content["execution_state"] == "idle":
                self.idle = True
        if message["msg_type"] == "comm_open" and content["data"]["state"].get("state", {}).get("kind") == "chat":
            self.model_id = content["comm_id"]
            self.states[content["comm_id"]] = {"status": "running", "turn": 0, "grown": [], "final": None}
        elif message["msg_type"] == "comm_msg" and content["comm_id"] in self.states:
            watched = self.states[content["comm_id"]]
            data = content["data"]
            if data.get("method") == "custom" and data["content"].get("type") == "delta":
                delta = data["content"]
                watched["status"] = delta.get("status", watched["status"])
                watched["turn"] = delta.get("chat", {}).get("turn", watched["turn"])
                watched["grown"].extend(chunk for _, chunk in delta.get("append", []))
            elif data.get("method") == "update" and "state" in data["state"]:
                watched["final"] = data["state"]["state"]
                watched["status"] = watched["final"]["status"]

    def until(self, predicate: Callable[[], bool], *, timeout: float = 20.0, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}: {self.states}")
            message = self.kernel.next_message(remaining)
            if message is not None:
                self._take(message)

    def chat(self) -> dict[str, Any]:
        assert self.model_id is not None
        return self.states[self.model_id]

    def send(self, text: str, turn: int) -> None:
        self.until(
            lambda: self.model_id is not None and self.chat()["status"] == "waiting" and self.chat()["turn"] == turn,
            what=f"turn {turn}",
        )
        message = self.kernel.kc.session.msg(
            "comm_msg",
            {
                "comm_id": self.model_id,
                "data": {"method": "custom", "content": {"type": "send", "text": text, "turn": turn}},
            },
        )
        self.kernel.kc.shell_channel.send(message)


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with loaded_kernel("user_agent_kernel.log", KERNEL_SETUP) as running:
        yield running


@pytest.mark.timeout(90)
@pytest.mark.skipif(
    (kernel_input.ipykernel_version() or (0, 0)) < (7, 4),
    reason="only ipykernel 7.4+ handles widget messages while a cell runs",
)
def test_a_kernel_cell_awaits_the_dialog_while_the_front_end_sends(kernel: Kernel) -> None:
    run = kernel.start(
        "await dialog_loop.trigger(SystemMessage('Be brief.'), user_agent=notebook_user_agent, assistant_agent=llm)\n"
        "print('dialog over')"
    )
    watcher = ChatWatcher(kernel, run)
    watcher.send("hi", 1)
    watcher.send("tell me more", 2)  # (waiting for turn 2 means the first reply streamed in meanwhile)
    assert not watcher.idle  # the cell was busy all along
    watcher.send("exit", 3)
    watcher.until(lambda: watcher.idle, what="the cell to end")
    assert run.error is None, run.error
    assert run.stdout == "dialog over\n"
    chat = watcher.chat()
    grown = "".join(chat["grown"])
    assert grown == REPLY_1 + REPLY_2  # every token reached the front end once, as deltas
    expected = transcript(
        ("USER", "hi"),
        ("FAKE_LLM_AGENT", REPLY_1),
        ("USER", "tell me more"),
        ("FAKE_LLM_AGENT", REPLY_2),
        notice=EXIT_NOTICE,
    )
    assert chat["final"] is not None
    assert chat["final"]["status"] == "ended"
    # the output of the cell was replaced by the final transcript while the cell still ran (what nbclient keeps)
    updates = [m["content"] for m in run.of_type("update_display_data")]
    assert updates
    assert updates[-1]["data"]["text/plain"] == expected


@pytest.mark.timeout(90)
def test_a_kernel_background_dialog_takes_input_while_the_kernel_is_idle(kernel: Kernel) -> None:
    run = kernel.start("chat = NotebookChat()\nchat.start(SystemMessage('Be brief.'), assistant_agent=background_llm)")
    watcher = ChatWatcher(kernel, run)
    watcher.until(lambda: watcher.idle, what="the cell to return at once")
    watcher.send("hi", 1)
    watcher.send("exit", 2)
    watcher.until(lambda: watcher.model_id is not None and watcher.chat()["final"] is not None, what="the end")
    check = kernel.ok("await chat.wait()\nprint(chat.text())\nprint([m.role for m in chat.history.messages])")
    # "exit" ended the chat: it is neither a message of the transcript nor of the conversation
    assert check.stdout == (
        transcript(("USER", "hi"), ("FAKE_LLM_AGENT", REPLY_1), notice=EXIT_NOTICE) + "\n['user', 'assistant']\n"
    )

    # the agent form without `await`: the chat shows up at the dialog's first turn, after the cell returned
    run = kernel.start("dialog = dialog_loop.trigger(user_agent=notebook_user_agent, assistant_agent=background_llm)")
    watcher = ChatWatcher(kernel, run)
    watcher.until(lambda: watcher.idle, what="the cell to return at once")
    watcher.send("again", 1)
    watcher.send("exit", 2)
    watcher.until(lambda: watcher.chat()["final"] is not None, what="the end")
    assert kernel.ok("print(await dialog)").stdout == "()\n"
    assert "".join(watcher.chat()["grown"]) == REPLY_1
    assert "Task was destroyed" not in kernel.all_text()


def test_the_notebook_user_agent_is_reachable_from_ext_without_ext_importing_ipython() -> None:
    import subprocess
    import sys

    import miniagents_nb.ext
    from miniagents_nb.jupyter import notebook_user_agent

    assert miniagents_nb.ext.notebook_user_agent is notebook_user_agent
    code = "import sys, miniagents_nb.ext; print('IPython' in sys.modules, 'anywidget' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False False"
