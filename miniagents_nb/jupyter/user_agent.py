"""The notebook user agent: a chat widget that plays the human's part in `dialog_loop` inside a notebook.

The widget (`NotebookChat`) shows the conversation, both sides, each message labelled by the agent that sent it and
the assistant's reply streaming token by token, with a text box, a Send button and a Stop button under it (Enter
sends, Shift+Enter adds a new line). It does what the console user agent does at a terminal: it shows what the
assistant said while it streams, then waits for the user's text and replies it as a `UserMessage`; "exit" or Stop
ends the dialog with `KeyboardInterrupt` (which `dialog_loop` takes as the normal end); blank input is ignored.

Three ways in::

    # one chat widget per dialog, shown in the cell that starts the dialog
    await dialog_loop.trigger(SystemMessage("Be brief."), user_agent=notebook_user_agent, assistant_agent=llm)

    chat = NotebookChat()                                        # one chat, driven by its own methods
    await chat.run(SystemMessage("Be brief."), assistant_agent=llm)   # the cell awaits the dialog
    chat.start(SystemMessage("Be brief."), assistant_agent=llm)       # the dialog runs in the background

    # scripted input (tutorials under nbval, demos): the same widget, no human needed
    await dialog_loop.trigger(user_agent=create_notebook_user_agent(script=["hi", "exit"]), assistant_agent=llm)
    await NotebookChat(script=["hi", "exit"]).run(assistant_agent=llm)

Which kernels can await the dialog in the cell: the widget's messages reach the kernel as comm messages, and only
ipykernel 7.4+ handles them while a cell is running (ipykernel PR #1565). On older kernels (6.x, 7.0-7.3, which
is what Colab and many VS Code setups run) a cell that awaits the dialog would never see the user's text, so the
dialog must run in the background: `chat.start(...)`, or `dialog_loop.trigger(...)` without `await`. The chat
detects the deadlock (the cell that started the dialog is still running when the chat first waits for input) and
fails at once with `NotebookInputError` instead of hanging; `cell_can_await_input()` tells which case applies.
Scripted chats never wait, so they can be awaited on every kernel.

Each chat keeps its own conversation (`chat.history`), so two dialogs in one notebook do not see each other's
messages even though the notebook shares one `MiniAgents` context; a `history_agent=` given to `dialog_loop`
replaces it, as with the console user agent.

The same goes for a dialog run by the sync facade (`MiniAgents().run(main())` in a cell blocks the cell on every
kernel): the chat refuses to wait there too.

Which chat a turn belongs to: `notebook_user_agent` finds the call that runs the dialog (its nearest caller that is
not part of the user agent: `dialog_loop`, `agent_loop` or a loop of one's own) and keeps one chat per such call,
made and shown in the cell at the dialog's first turn; two dialogs running at once get two chats.

The static `text/plain` / `text/html` forms give the transcript deterministically (no ids, no timings): they are
what nbval compares, and when the chat ends while its cell still runs (an awaited dialog), every output showing it
is replaced by the final transcript. The live widget reuses the views' machinery (`views.LiveView`): coalesced
deltas, at most `max_updates_per_second` front-end messages, an exact final state. Headless runs (nbclient,
nbval) record only what happens while the displaying cell runs, so a tutorial awaits a scripted dialog.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import threading
from collections import deque
from collections.abc import Coroutine, Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

from miniagents_nb.agents import InteractionContext, MiniAgent, miniagent
from miniagents_nb.errors import InvalidArgumentsError, MiniAgentsError
from miniagents_nb.ext.agents._per_context import per_context
from miniagents_nb.ext.agents.aggregator_agents import agent_chain
from miniagents_nb.ext.agents.console_agents import EXIT_COMMAND, GREETING
from miniagents_nb.ext.agents.history_agents import ChatHistory, InMemoryChatHistory
from miniagents_nb.ext.agents.misc_agents import dialog_loop, user_agent
from miniagents_nb.ext.llms.messages import UserMessage
from miniagents_nb.jupyter._session import current_session
from miniagents_nb.jupyter._streams import Cursor, cancel_stream, original_promise
from miniagents_nb.jupyter._tracker import CallTracker
from miniagents_nb.jupyter.views import (
    _FOLLOWERS,
    DEFAULT_MAX_UPDATES_PER_SECOND,
    LiveView,
    _Slot,
    _ViewModel,
    _Waker,
)
from miniagents_nb.messages import Message, MessagePromise, error_to_text

__all__ = [
    "INPUT_PLACEHOLDER",
    "SCRIPT_END_NOTICE",
    "NotebookChat",
    "NotebookInputError",
    "cell_can_await_input",
    "create_notebook_user_agent",
    "notebook_chat_history_agent",
    "notebook_input_agent",
    "notebook_user_agent",
]

INPUT_PLACEHOLDER = 'Type a message. Enter sends, Shift+Enter adds a new line; "exit" or Stop ends the chat.'
SCRIPT_END_NOTICE = "The script has no more inputs: the chat ends."

_STATIC = Path(__file__).parent / "static"
# One ES module per widget and no build step: the shared delta protocol is put in front of the widget's own code.
_ESM = (_STATIC / "delta_protocol.js").read_text(encoding="utf-8") + (_STATIC / "user_agent.js").read_text(
    encoding="utf-8"
)
_CSS = (_STATIC / "user_agent.css").read_text(encoding="utf-8")

RUNNING, WAITING, ENDED, FAILED, CANCELLED = "running", "waiting", "ended", "failed", "cancelled"
_FINAL = frozenset({ENDED, FAILED, CANCELLED})

_T = TypeVar("_T")


class NotebookInputError(MiniAgentsError, RuntimeError):
    """The chat cannot take the user's input: the kernel would hold the widget's messages back until the cell
    that waits for them ends (ipykernel < 7.4), the chat has ended, or it is serving a dialog already."""


# --- which kernel, which cell ----------------------------------------------------------------------------------


def _ipykernel_version() -> tuple[int, int] | None:
    try:
        match = re.match(r"(\d+)\.(\d+)", version("ipykernel"))
    except PackageNotFoundError:
        return None
    return (int(match.group(1)), int(match.group(2))) if match else None


def _kernel_shell() -> Any:
    """The IPython shell when it runs in a kernel (None in plain Python and in a terminal IPython)."""
    from IPython import get_ipython

    shell = get_ipython()
    return shell if getattr(shell, "kernel", None) is not None else None


def cell_can_await_input() -> bool:
    """Whether a cell may await a dialog that waits for the chat's input: True on ipykernel 7.4+ (it handles widget
    messages while a cell runs) and outside a kernel; False on older kernels, where the dialog must run in the
    background (`chat.start(...)`, or `dialog_loop.trigger(...)` without `await`)."""
    if _kernel_shell() is None:
        return True
    found = _ipykernel_version()
    return found is None or found >= (7, 4)


def _running_cell() -> Any:
    """The execution result of the cell whose code runs now in the kernel (None between cells): IPython hands it
    to the display hook for exactly the time the cell's code runs, awaits included."""
    shell = _kernel_shell()
    if shell is None:
        return None
    return getattr(getattr(shell, "displayhook", None), "exec_result", None)


def _deadlock_message(blocked_by_sync_cell: bool = False) -> str:
    if blocked_by_sync_cell:
        return (
            "This dialog runs inside a cell that blocks until it ends (`MiniAgents().run(...)` runs it on a worker "
            "thread), and a kernel hands the chat widget's messages to Python only between cells or while a cell "
            "awaits, so it would wait forever for the user's text. Await the dialog at the top level of the cell "
            "instead (`await dialog_loop.trigger(...)`, no `MiniAgents().run`), or start it in the background "
            "with `NotebookChat().start(<prompt>, assistant_agent=...)`."
        )
    found = _ipykernel_version()
    kernel = "ipykernel " + ".".join(map(str, found)) if found else "This kernel"
    return (
        f"{kernel} hands the chat widget's messages to Python only after the running cell ends, and this cell "
        "waits for the dialog, so it would wait forever for the user's text. Run the dialog in the background "
        "instead: `NotebookChat().start(<prompt>, assistant_agent=...)`, or `dialog_loop.trigger(..., "
        "user_agent=notebook_user_agent)` without `await` (the cell returns at once and the chat keeps working); "
        "or upgrade to ipykernel>=7.4, where a cell can await the dialog."
    )


# --- the chat's state ---------------------------------------------------------------------------------------------


class _Entry(_Slot):
    """One message of the transcript: a view slot that also knows whose side it is on."""

    __slots__ = ("role",)

    def __init__(self, cursor: Cursor | None, sender: str | None, role: str) -> None:
        super().__init__(cursor, sender)
        self.role = role

    def as_state(self) -> dict[str, Any]:
        state = super().as_state()
        state["role"] = self.role
        return state


class _ChatModel(_ViewModel):
    """A view model whose messages are added over time (both sides of the chat) and that ends when the chat does.

    The deltas are the views' (`new`, `append`, `end`, `status`, `error`) plus `chat` (the input turn and the
    notice), so the front end applies them with the same version rules.
    """

    def __init__(
        self, *, title: str, greeting: str, placeholder: str, user_label: str, tracker: CallTracker | None
    ) -> None:
        super().__init__(
            kind="chat",
            title=title,
            sequence=None,
            message=None,
            tracker=tracker,
            show_messages=True,
            show_tree=False,
        )
        self.status = RUNNING
        self._sent_status = (RUNNING, None)
        self.greeting = greeting
        self.placeholder = placeholder
        self.user_label = user_label
        self.turn = 0
        """How many times the chat has asked for input: a front end's send names the turn it answers."""
        self.notice: str | None = None
        self.ended = False
        self._announced = 0
        self._sent_chat = self.chat_fields()

    def chat_fields(self) -> dict[str, Any]:
        return {"turn": self.turn, "notice": self.notice}

    def add_incoming(self, promise: MessagePromise) -> None:
        known = promise.known_beforehand
        role = str(known.get("role") or _class_role(promise) or "assistant")
        alias = known.get("agent_alias")
        if not alias and self.tracker is not None:
            record = self.tracker.sender_of(promise)
            alias = record.alias if record is not None else None
        self.slots.append(_Entry(Cursor(promise), str(alias or role).upper(), role))

    def add_user(self, text: str) -> None:
        entry = _Entry(None, self.user_label, "user")
        entry.parts.append(text)
        entry.status = "done"
        self.slots.append(entry)

    def collect(self) -> dict[str, Any] | None:
        delta: dict[str, Any] = {}
        if self._announced < len(self.slots):
            delta["new"] = [[index, self.slots[index].as_state()] for index in range(self._announced, len(self.slots))]
            self._announced = len(self.slots)
        self._collect_slot_text(delta)
        chat = self.chat_fields()
        if chat != self._sent_chat:
            delta["chat"] = chat
            self._sent_chat = chat
        if delta or self._sent_status != (self.status, self.error):
            delta["status"] = self.status
            delta["error"] = self.error
            self._sent_status = (self.status, self.error)
            return delta
        return None

    def finished(self) -> bool:
        return self.ended and all(slot.final_sent for slot in self.slots)

    def snapshot(self) -> dict[str, Any]:
        state = super().snapshot()
        state.update(
            greeting=self.greeting,
            placeholder=self.placeholder,
            chat=self.chat_fields(),
        )
        return state


def _class_role(promise: MessagePromise) -> str | None:
    fields = getattr(promise.message_class, "model_fields", None)
    field = fields.get("role") if isinstance(fields, dict) else None
    default = getattr(field, "default", None)
    return default if isinstance(default, str) else None


# --- the static forms ----------------------------------------------------------------------------------------------

_STATUS_WORDS = {
    RUNNING: "running",
    WAITING: "waiting for the user",
    ENDED: "ended",
    FAILED: "failed",
    CANCELLED: "cancelled",
}


def _status_phrase(state: dict[str, Any]) -> str:
    word = _STATUS_WORDS.get(state["status"], state["status"])
    return f"{word}: {state['error']}" if state["status"] == FAILED and state.get("error") else word


def render_chat_text(state: dict[str, Any]) -> str:
    """The `text/plain` transcript: it reads like the console user agent's session."""
    lines = [f"{state['title']} ({_status_phrase(state)})"]
    if state.get("greeting"):
        lines.append(state["greeting"])
    for message in state["messages"]:
        text_lines = message["text"].split("\n")
        lines.append("")
        lines.append(f"{message['sender']}: {text_lines[0]}")
        lines.extend(text_lines[1:])
        if message["status"] == "failed" and message.get("error"):
            lines.append(f"    ({message['error']})")
        elif message["status"] == "cancelled":
            lines.append("    (cancelled)")
    notice = state.get("chat", {}).get("notice")
    if notice:
        lines.extend(["", f"({notice})"])
    return "\n".join(lines)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def render_chat_html(state: dict[str, Any]) -> str:
    """The `text/html` transcript (inline styles only: nbconvert and GitHub drop stylesheets)."""
    parts = [
        '<div class="mna-chat-fallback">',
        f"<div><b>{_esc(state['title'])}</b> ({_esc(_status_phrase(state))})</div>",
    ]
    if state.get("greeting"):
        parts.append(f'<div style="opacity:0.7">{_esc(state["greeting"])}</div>')
    for message in state["messages"]:
        extra = ""
        if message["status"] == "failed" and message.get("error"):
            extra = f'<div style="color:#d32f2f">{_esc(message["error"])}</div>'
        elif message["status"] == "cancelled":
            extra = '<div style="color:#d32f2f">cancelled</div>'
        parts.append(
            f'<div class="mna-chat-fb-message" data-role="{_esc(message["role"])}" style="margin-top:4px">'
            f"<b>{_esc(message['sender'])}</b>"
            f'<pre style="white-space:pre-wrap;margin:0">{_esc(message["text"])}</pre>{extra}</div>'
        )
    notice = state.get("chat", {}).get("notice")
    if notice:
        parts.append(f"<div><i>{_esc(notice)}</i></div>")
    parts.append("</div>")
    return "".join(parts)


# --- the widget ----------------------------------------------------------------------------------------------------


class NotebookChat(LiveView):
    """A chat widget that is the user's side of a dialog: `chat.user_agent` goes where a console user agent would.

    `script` makes it a scripted chat: each time the dialog asks, the next item is "typed" (blank ones skipped,
    "exit" ends the chat), and when the script runs out the chat ends as a console does at the end of its input.
    A scripted chat never waits, so it runs the same on every kernel and under nbval.
    """

    _esm = _ESM
    _css = _CSS

    def __init__(
        self,
        script: Iterable[str] | None = None,
        *,
        greeting: str = GREETING,
        placeholder: str = INPUT_PLACEHOLDER,
        user_label: str = "USER",
        title: str = "Chat",
        max_updates_per_second: float | None = None,
    ) -> None:
        if isinstance(script, str):
            raise InvalidArgumentsError(
                f"`script` is a list of the user's inputs, got the string {script!r}: pass [{script!r}]."
            )
        session = current_session()
        if max_updates_per_second is None:
            max_updates_per_second = (
                session.max_updates_per_second if session is not None else DEFAULT_MAX_UPDATES_PER_SECOND
            )
        self._script: deque[str] | None = None if script is None else deque(str(item) for item in script)
        self._inbox: deque[str] = deque()
        self._waiter: asyncio.Future[str | None] | None = None
        self._stop_waiter: asyncio.Future[None] | None = None
        self._stop_requested = False
        self._serving = False
        self._background = False
        self._dialog_task: asyncio.Task[None] | None = None
        self._bound_user_agent: MiniAgent | None = None
        self._origin = _running_cell()
        self.history: ChatHistory = InMemoryChatHistory()
        """This chat's conversation (what `user_agent` records and hands to the assistant)."""
        self._chat = _ChatModel(
            title=title,
            greeting=greeting,
            placeholder=placeholder,
            user_label=user_label,
            tracker=session.tracker if session is not None else None,
        )
        super().__init__(self._chat, max_updates_per_second=max_updates_per_second)

    # --- public ----------------------------------------------------------------------------------------------

    @property
    def user_agent(self) -> MiniAgent:
        """The user agent of this chat, for `dialog_loop(user_agent=...)` and the like (a `user_agent` fork)."""
        if self._bound_user_agent is None:
            self._bound_user_agent = user_agent.fork(
                alias="NOTEBOOK_USER_AGENT",
                output_agent=None,
                input_agent=notebook_input_agent.fork(non_freezable_kwargs={"chat": self}),
                history_agent=self.history.history_agent,
            )
        return self._bound_user_agent

    @property
    def status(self) -> str:
        """One of "running", "waiting" (for the user), "ended" (exit, Stop, end of the script), "failed",
        "cancelled"."""
        return self._chat.status

    @property
    def ended(self) -> bool:
        """Whether the chat is over (it takes no more input)."""
        return self._chat.ended

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The background dialog started by `start()` (None before)."""
        return self._dialog_task

    def submit(self, text: str) -> None:
        """Send `text` as the user, as if typed and sent in the widget (blank text is ignored, as in the widget);
        text sent while the dialog is not asking waits for its turn."""
        if self._chat.ended:
            raise NotebookInputError("This chat has ended: it takes no more input. Start a new NotebookChat.")
        self._deliver(str(text))

    def stop(self) -> None:
        """End the dialog as the Stop button does (a reply still streaming is cancelled where possible)."""
        self._request_stop()

    def start(self, messages: Any = None, *, dialog: MiniAgent | None = None, **dialog_kwargs: Any) -> None:
        """Show the chat in this cell and run `dialog` (default `dialog_loop`) with it as the user agent in the
        background: the cell returns at once and the chat keeps working. This is the way on every ipykernel (the
        only way before 7.4). `messages` and `dialog_kwargs` go to the dialog (the prompt, `assistant_agent=`,
        ...); `await chat.wait()` waits for the end and raises the dialog's failure."""
        self._check_can_serve()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise NotebookInputError(
                "chat.start() runs the dialog on the running event loop, and there is none here (a notebook cell "
                "has one): use `await chat.run(...)` instead."
            ) from None
        reply = self._trigger(messages, dialog, dialog_kwargs)
        self._background = True
        self._serving = True
        self._display_once()
        task = asyncio.ensure_future(self._arun_dialog(reply))
        self._dialog_task = task
        task.add_done_callback(_consume_outcome)  # the chat shows a failure; never "exception was never retrieved"

    async def run(self, messages: Any = None, *, dialog: MiniAgent | None = None, **dialog_kwargs: Any) -> None:
        """Show the chat in this cell and run `dialog` (default `dialog_loop`) with it as the user agent until the
        dialog ends; the cell stays busy meanwhile. Needs ipykernel 7.4+ unless the chat is scripted (see
        `cell_can_await_input`); elsewhere use `start()`."""
        self._check_can_serve()
        if self._script is None and not cell_can_await_input() and _running_cell() is not None:
            raise NotebookInputError(_deadlock_message())
        reply = self._trigger(messages, dialog, dialog_kwargs)
        self._serving = True
        self._display_once()
        await self._arun_dialog(reply)

    async def wait(self) -> None:
        """Wait until the chat shows its final state and its background dialog (if any) ended; that dialog's
        failure is raised here."""
        await super().wait()
        task = self._dialog_task
        if task is not None:
            await asyncio.shield(task)

    def close(self) -> None:
        """End the chat (its dialog ends as with Stop) and close the widget."""
        if "_unsubscribe" not in self.__dict__:
            return  # the constructor refused its arguments: there is no widget (ipywidgets' __del__ still calls this)
        self._request_stop()
        super().close()

    # --- the dialog ------------------------------------------------------------------------------------------------

    def _check_can_serve(self) -> None:
        if self._chat.ended:
            raise NotebookInputError("This chat has ended: start a new NotebookChat for another dialog.")
        if self._dialog_task is not None or self._serving:
            raise NotebookInputError("This chat serves a dialog already: start a new NotebookChat for another one.")

    def _trigger(self, messages: Any, dialog: MiniAgent | None, dialog_kwargs: dict[str, Any]) -> Any:
        if "user_agent" in dialog_kwargs:
            raise InvalidArgumentsError("The chat is the dialog's user agent: do not pass `user_agent=` as well.")
        return (dialog if dialog is not None else dialog_loop).trigger(
            messages, user_agent=self.user_agent, **dialog_kwargs
        )

    @staticmethod
    async def _arun_dialog(reply: Any) -> None:
        await reply

    def _display_once(self) -> None:
        if not self._display_ids and _ipython_shell() is not None:
            self._ipython_display_()

    async def _aserve_turn(self, ctx: InteractionContext) -> None:
        """One turn of the dialog: show the incoming messages as they stream, then get the user's text."""
        if self._chat.ended:
            raise NotebookInputError("This chat has ended: start a new NotebookChat for another dialog.")
        self._serving = True
        self._ensure_following()
        self._set_status(RUNNING)
        try:
            inputs = await self._until_stopped(ctx, self._areceive(ctx))
            ctx.reply(inputs)
            text = await self._aask()
        except KeyboardInterrupt:
            self._end(ENDED)
            raise
        except asyncio.CancelledError:
            self._end(CANCELLED)
            raise
        except BaseException as error:
            self._end(FAILED, error_to_text(error))
            raise
        self._set_status(RUNNING)
        ctx.reply(UserMessage(content=text))

    async def _areceive(self, ctx: InteractionContext) -> tuple[Message, ...]:
        async for promise in ctx.message_promises:
            self._chat.add_incoming(promise)
            self._waker.wake()
        return await ctx.message_promises

    async def _until_stopped(self, ctx: InteractionContext, work: Coroutine[Any, Any, _T]) -> _T:
        """`work`, unless Stop comes first: then what still streams is cancelled and KeyboardInterrupt is raised."""
        if self._stop_requested:
            work.close()
            raise KeyboardInterrupt
        task = asyncio.ensure_future(work)
        racers: set[asyncio.Future[Any]] = {task, self._stop_future()}
        try:
            await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
        if task.done() and not task.cancelled():
            return task.result()
        self._cancel_incoming(ctx)
        raise KeyboardInterrupt

    async def _aask(self) -> str:
        while True:
            if self._stop_requested:
                raise KeyboardInterrupt
            if self._script is not None:
                if not self._script:
                    self._chat.notice = SCRIPT_END_NOTICE
                    raise KeyboardInterrupt
                text: str | None = self._script.popleft()
            elif self._inbox:
                text = self._inbox.popleft()
            else:
                text = await self._await_input()
            if text is None:  # Stop
                raise KeyboardInterrupt
            if not text.strip():
                continue
            self._chat.add_user(text)
            self._waker.wake()
            if text.strip().lower() == EXIT_COMMAND:
                raise KeyboardInterrupt
            return text

    async def _await_input(self) -> str | None:
        if not self._background and self._origin is not None and _running_cell() is self._origin:
            # The cell that started the dialog still runs: its end is what would let the widget's messages in.
            if threading.current_thread() is not threading.main_thread():
                raise NotebookInputError(_deadlock_message(blocked_by_sync_cell=True))
            if not cell_can_await_input():
                raise NotebookInputError(_deadlock_message())
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._waiter = future
        self._chat.turn += 1
        self._set_status(WAITING)
        try:
            return await future
        finally:
            self._waiter = None

    def _stop_future(self) -> asyncio.Future[None]:
        if self._stop_waiter is None:
            self._stop_waiter = asyncio.get_running_loop().create_future()
            if self._stop_requested:
                self._stop_waiter.set_result(None)
        return self._stop_waiter

    def _cancel_incoming(self, ctx: InteractionContext) -> None:
        """Stop the replies that still stream: through the agent calls behind them when the notebook layer knows
        them (the LLM stops generating), else the streams that a task of their own pumps. A sender that is running
        this very turn (a loop passing on its own reply) is left alone: cancelling it would cancel the dialog."""
        tracker = self._chat.tracker
        for slot in self._chat.slots:
            cursor = slot.cursor
            if cursor is None or cursor.producer_ended or not isinstance(cursor.promise, MessagePromise):
                continue
            record = tracker.sender_of(cursor.promise) if tracker is not None else None
            if tracker is not None and record is not None:
                calls = record.walk()
                if not any(other.call is ctx._call for other in calls):
                    tracker.cancel(calls)
            else:
                cancel_stream(original_promise(cursor.promise))

    # --- input from the front end and from the methods ----------------------------------------------------------

    def _deliver(self, text: str) -> None:
        if not text.strip():
            return  # blank input is ignored, as at the console
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(text)
            self._waiter = None
        else:
            self._inbox.append(text)

    def _request_stop(self) -> None:
        if self._chat.ended or self._stop_requested:
            return
        self._stop_requested = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        stop = self._stop_waiter
        if stop is not None and not stop.done():
            stop.set_result(None)
        if not self._serving:  # no dialog is using the chat: it simply ends
            self._end(ENDED)

    def _on_front_end_message(self, widget: Any, content: Any, buffers: Any) -> None:
        """`{"type": "send", "text", "turn"}` answers the input request `turn` (a send for another turn, e.g. a
        double click, is dropped); `{"type": "stop"}` is the Stop button; the rest is the views' protocol."""
        if not isinstance(content, dict) or content.get("type") not in ("send", "stop"):
            super()._on_front_end_message(widget, content, buffers)
            return
        if threading.get_ident() != self._thread and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # that loop is closed: the chat is gone with it
                self._loop.call_soon_threadsafe(self._handle_front_end, dict(content))
            return
        self._handle_front_end(content)

    def _handle_front_end(self, content: dict[str, Any]) -> None:
        if self._chat.ended:
            return
        if content["type"] == "stop":
            self._request_stop()
            return
        if content.get("turn") != self._chat.turn or self._waiter is None:
            return
        self._deliver(str(content.get("text", "")))

    # --- state -----------------------------------------------------------------------------------------------------

    def _set_status(self, status: str) -> None:
        if not self._chat.ended and self._chat.status != status:
            self._chat.status = status
            self._waker.wake()

    def _end(self, status: str, error: str | None = None) -> None:
        chat = self._chat
        if chat.ended:
            return
        chat.ended = True
        chat.status = status
        chat.error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.cancel()
        self._waker.wake()
        self.refresh()  # the final state goes out now when nothing streams any more (awaited cells record it)

    def _ensure_following(self) -> None:
        """A chat made where no loop ran (plain Python) starts following when its dialog first uses it."""
        if self._loop is not None or self._final or self._closed:
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._thread = threading.get_ident()
        self._waker = _Waker(loop)
        self._task = loop.create_task(self._follow())
        _FOLLOWERS.add(self._task)
        self._task.add_done_callback(_FOLLOWERS.discard)

    # --- display -----------------------------------------------------------------------------------------------

    def _render_text(self, snapshot: dict[str, Any]) -> str:
        return render_chat_text(snapshot)

    def _render_html(self, snapshot: dict[str, Any]) -> str:
        return render_chat_html(snapshot)


def _consume_outcome(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


def _ipython_shell() -> Any:
    from IPython import get_ipython

    return get_ipython()


# --- which chat a turn belongs to ----------------------------------------------------------------------------------

_CHATS_KEY = "notebook_chats"


def _chat_store(ctx: InteractionContext) -> dict[int | None, tuple[InteractionContext | None, NotebookChat]]:
    store: dict[int | None, tuple[InteractionContext | None, NotebookChat]] = per_context(
        ctx.miniagents, _CHATS_KEY, dict
    )
    return store


def _dialog_of(ctx: InteractionContext) -> InteractionContext | None:
    """The call that runs the dialog (`dialog_loop`, `agent_loop`, a loop of one's own): the nearest caller that
    is not part of the user agent itself; None when the user agent was triggered from a cell."""
    parent = ctx.parent
    while parent is not None and parent.this_agent.wrapped_func_or_class in _USER_AGENT_PARTS:
        parent = parent.parent
    return parent


def _find_chat(ctx: InteractionContext) -> NotebookChat | None:
    dialog = _dialog_of(ctx)
    found = _chat_store(ctx).get(None if dialog is None else id(dialog))
    return found[1] if found is not None and found[0] is dialog else None


def _chat_for_turn(ctx: InteractionContext, script: tuple[str, ...] | None, options: dict[str, Any]) -> NotebookChat:
    """The chat of this turn's dialog; the first turn of a dialog makes one and shows it in the cell."""
    dialog = _dialog_of(ctx)
    store = _chat_store(ctx)
    key = None if dialog is None else id(dialog)
    found = store.get(key)
    if found is not None and found[0] is dialog and not found[1].ended:
        return found[1]
    for other, (_, chat) in list(store.items()):  # ended dialogs are forgotten (their widgets stay on show)
        if chat.ended:
            del store[other]
    chat = NotebookChat(script, **options)
    store[key] = (dialog, chat)  # the dialog's context is held with it, so its id is not reused meanwhile
    chat._display_once()
    return chat


class _DialogChatHistory(ChatHistory):
    """The conversation of the chat of a dialog, found when first used: by then the input agent of the turn has
    made the chat (whatever order the two agents started in)."""

    def __init__(self, ctx: InteractionContext) -> None:
        self._ctx = ctx
        self._history: ChatHistory | None = None

    def _resolved(self) -> ChatHistory:
        if self._history is None:
            chat = _find_chat(self._ctx)
            self._history = chat.history if chat is not None else InMemoryChatHistory()
        return self._history

    async def aload_chat_history(self) -> tuple[Message, ...]:
        return await self._resolved().aload_chat_history()

    async def astore_message(self, message: Message) -> None:
        await self._resolved().astore_message(message)


# --- the agents ----------------------------------------------------------------------------------------------------


@miniagent(alias="NOTEBOOK_INPUT_AGENT")
async def notebook_input_agent(
    ctx: InteractionContext,
    script: tuple[str, ...] | None = None,
    greeting: str = GREETING,
    placeholder: str = INPUT_PLACEHOLDER,
    user_label: str = "USER",
    chat: NotebookChat | None = None,
) -> None:
    """Show the input in the dialog's chat widget as it streams, pass it on, then reply the user's text as a
    `UserMessage`; "exit", Stop or the end of `script` raise KeyboardInterrupt (the end of the dialog).

    Without `chat` (a non-freezable argument), each dialog gets a chat of its own, made and shown in the cell at
    its first turn; `script` then scripts every such chat.
    """
    if chat is None:
        options = {"greeting": greeting, "placeholder": placeholder, "user_label": user_label}
        chat = _chat_for_turn(ctx, script, options)
    elif script is not None:
        raise InvalidArgumentsError("A chat given to notebook_input_agent has its own script: pass `script=` to it.")
    await chat._aserve_turn(ctx)


@miniagent(alias="NOTEBOOK_CHAT_HISTORY_AGENT")
async def notebook_chat_history_agent(ctx: InteractionContext, return_full_history: bool = False) -> None:
    """Record the input in the conversation of the dialog's chat, then pass it on or reply the whole of it."""
    history = _DialogChatHistory(ctx)
    ctx.reply(history.history_agent.trigger(ctx.message_promises, return_full_history=return_full_history))


_USER_AGENT_PARTS = frozenset(
    agent.wrapped_func_or_class
    for agent in (user_agent, agent_chain, notebook_input_agent, notebook_chat_history_agent)
)

notebook_user_agent = user_agent.fork(
    alias="NOTEBOOK_USER_AGENT",
    output_agent=None,
    input_agent=notebook_input_agent,
    history_agent=notebook_chat_history_agent,
)
"""The user in a notebook: each dialog gets a chat widget in the cell that starts it (see the module docstring)."""


def create_notebook_user_agent(
    script: Iterable[str] | None = None,
    *,
    chat_history: ChatHistory | None = None,
    alias: str | None = None,
    greeting: str = GREETING,
    placeholder: str = INPUT_PLACEHOLDER,
    user_label: str = "USER",
) -> MiniAgent:
    """A notebook user agent with options: `script` (the inputs of a scripted chat, typed one per turn), the
    conversation kept in `chat_history` instead of each chat's own, the greeting and labels of its widgets."""
    if isinstance(script, str):
        raise InvalidArgumentsError(
            f"`script` is a list of the user's inputs, got the string {script!r}: pass [{script!r}]."
        )
    input_agent = notebook_input_agent.fork(
        script=None if script is None else tuple(str(item) for item in script),
        greeting=greeting,
        placeholder=placeholder,
        user_label=user_label,
    )
    options: dict[str, Any] = {"input_agent": input_agent}
    if chat_history is not None:
        options["history_agent"] = chat_history.history_agent
    return notebook_user_agent.fork(alias=alias, **options)
