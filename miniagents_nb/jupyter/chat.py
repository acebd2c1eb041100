"""`NotebookChat`: the chat widget that plays the user's side of a dialog (see `user_agent` for the agents that
make one per dialog, and for which kernels can await a dialog in the cell)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from miniagents_nb.agents import InteractionContext, MiniAgent, miniagent
from miniagents_nb.errors import InvalidArgumentsError, MiniAgentsError
from miniagents_nb.ext.agents.console_agents import EXIT_COMMAND, GREETING
from miniagents_nb.ext.agents.history_agents import ChatHistory, InMemoryChatHistory
from miniagents_nb.ext.agents.misc_agents import dialog_loop, user_agent
from miniagents_nb.ext.llms.messages import UserMessage
from miniagents_nb.jupyter._chat_model import (
    CANCELLED,
    ENDED,
    FAILED,
    RUNNING,
    WAITING,
    ChatModel,
    render_chat_html,
    render_chat_text,
)
from miniagents_nb.jupyter._follower import Waker, start_follower
from miniagents_nb.jupyter._kernel_input import cell_can_await_input, deadlock_message, running_cell
from miniagents_nb.jupyter._session import current_session
from miniagents_nb.jupyter._static import widget_css, widget_esm
from miniagents_nb.jupyter._streams import cancel_stream, original_promise
from miniagents_nb.jupyter.views import DEFAULT_MAX_UPDATES_PER_SECOND, LiveView
from miniagents_nb.messages import Message, MessagePromise
from miniagents_nb.messages.safe_text import safe_error_text

__all__ = [
    "EXIT_NOTICE",
    "INPUT_PLACEHOLDER",
    "SCRIPT_END_NOTICE",
    "NotebookChat",
    "NotebookInputError",
    "chat_input_agent",
]

INPUT_PLACEHOLDER = 'Type a message. Enter sends, Shift+Enter adds a new line; "exit" or Stop ends the chat.'
SCRIPT_END_NOTICE = "The script has no more inputs: the chat ends."
EXIT_NOTICE = f'You typed "{EXIT_COMMAND}": the chat ends.'

_ESM = widget_esm("user_agent")
_CSS = widget_css("user_agent")

_T = TypeVar("_T")


class NotebookInputError(MiniAgentsError, RuntimeError):
    """The chat cannot take the user's input: the kernel would hold the widget's messages back until the cell
    that waits for them ends (ipykernel < 7.4), the chat has ended, or it is serving a dialog already."""


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
        self._origin = running_cell()
        self.history: ChatHistory = InMemoryChatHistory()
        """This chat's conversation (what `user_agent` records and hands to the assistant)."""
        self._chat = ChatModel(
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
                input_agent=chat_input_agent.fork(non_freezable_kwargs={"chat": self}),
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
        if self._script is None and not cell_can_await_input() and running_cell() is not None:
            raise NotebookInputError(deadlock_message())
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
            self._end(FAILED, safe_error_text(error))
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
            if text.strip().lower() == EXIT_COMMAND:  # a command, not a message: neither shown nor recorded
                self._chat.notice = EXIT_NOTICE
                raise KeyboardInterrupt
            self._chat.add_user(text)
            self._waker.wake()
            return text

    async def _await_input(self) -> str | None:
        if not self._background and self._origin is not None and running_cell() is self._origin:
            # The cell that started the dialog still runs: its end is what would let the widget's messages in.
            if threading.current_thread() is not threading.main_thread():
                raise NotebookInputError(deadlock_message(blocked_by_sync_cell=True))
            if not cell_can_await_input():
                raise NotebookInputError(deadlock_message())
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
                if not any(other.call is ctx.call for other in calls):
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
        self._waker = Waker(loop)
        self._task = start_follower(loop, self._follow())

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


@miniagent(alias="NOTEBOOK_INPUT_AGENT")
async def chat_input_agent(ctx: InteractionContext, chat: NotebookChat) -> None:
    """The input agent of one given chat (what `chat.user_agent` uses): show the input as it streams, pass it on,
    then reply the user's text."""
    await chat._aserve_turn(ctx)
