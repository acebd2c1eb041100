"""Live views of message sequences, agent call trees and token streams (anywidget on ipywidgets).

How a view stays cheap however fast the tokens come:

* One background task per view follows every stream the view shows (the sequence, each of its messages, the call
  records of its tree) by looking at their shared piece buffers, and sleeps on all of them at once. There is no
  task and no wake-up per token.
* Updates are coalesced: at most `max_updates_per_second` (default 20) front-end messages per view, each carrying
  only what changed since the previous one (new messages, appended text chunks, changed tree nodes) as an
  anywidget custom message. Versions on every delta let the front end apply them exactly once, in order.
* When everything the view shows has ended, one last update sets the synced traits to the exact final state
  (so a re-render, nbclient's stored widget state and the static fallbacks are exact), and the follower stops.

The static `text/plain` / `text/html` forms (`_render.py`) show the state at display time. When the view is final,
every output that displays it is replaced (`update_display_data`) by the final static forms alone, without the
widget, so a saved notebook renders with no kernel (JupyterLab after a reload, nbconvert, GitHub); a view forced to
end (its kernel shuts down mid-stream) marks what had not ended `incomplete`. Headless runs (nbclient, nbval)
record that replacement only while the displaying cell still runs; the notebook layer checks for finished views at
the end of every cell so that this never depends on task scheduling (docs/notebook.md, "Saved notebooks").
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import uuid
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from miniagents_nb.errors import InvalidArgumentsError, MessageTypeError
from miniagents_nb.jupyter import _follower as follower
from miniagents_nb.jupyter._ipython import display, update_display
from miniagents_nb.jupyter._live_views import refresh_live_views, register_live_view
from miniagents_nb.jupyter._render import mark_incomplete, render_html, render_text
from miniagents_nb.jupyter._saved_form import SAVED_FORM_INTERVAL, saved_form
from miniagents_nb.jupyter._static import widget_css, widget_esm
from miniagents_nb.jupyter._tracker import CallRecord, CallTracker, current_cell
from miniagents_nb.jupyter._view_model import ViewModel
from miniagents_nb.messages import Message, MessagePromise, MessageSequencePromise

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ALL_VIEWS_MAX_UPDATES_PER_SECOND",
    "DEFAULT_MAX_UPDATES_PER_SECOND",
    "AgentTreeView",
    "LiveView",
    "SequenceView",
    "TokenStreamView",
    "make_view",
    "refresh_live_views",
]

DEFAULT_MAX_UPDATES_PER_SECOND = 20.0

ALL_VIEWS_MAX_UPDATES_PER_SECOND = 200.0
"""Shared by every view that is following at the same time, so that many views at once stay far below
jupyter_server's IOPub limit (1000 messages per second, which drops messages silently when exceeded)."""

_ESM = widget_esm("views")
_CSS = widget_css("views")


class LiveView(anywidget.AnyWidget):
    """Base of the views: follows its streams on the loop it was created on and keeps the front end current."""

    _esm = _ESM
    _css = _CSS

    state = traitlets.Dict().tag(sync=True)
    """The full state (exact once the view is final; during streaming the front end adds the deltas to it)."""
    version = traitlets.Int(0).tag(sync=True)
    """The number of deltas `state` includes (the front end applies the delta from v on top of version v)."""
    uid = traitlets.Unicode("").tag(sync=True)
    """A random id for the front end's per-model registry (widget state only: never in the static forms)."""
    saved_form = traitlets.Dict().tag(sync=True)  # what a notebook saved while live keeps: see _saved_form.py

    def __init__(self, model: ViewModel, *, max_updates_per_second: float = DEFAULT_MAX_UPDATES_PER_SECOND) -> None:
        if not max_updates_per_second > 0:
            raise InvalidArgumentsError(
                f"max_updates_per_second must be positive, got {max_updates_per_second!r}: try 20."
            )
        self._model = model
        self._interval = 1.0 / max_updates_per_second
        self._last_sent = -math.inf
        self._saved_form_due = 0.0
        self._display_ids: list[str] = []
        self._display_cells: set[int | None] = set()
        """The cells that displayed this view: only their own end brings it up to date (see `refresh_live_views`)."""
        self._version = 0
        self._final = False
        self._closed = False
        self._forced_snapshot: dict[str, Any] | None = None
        """The final state of a view forced to end (see `mark_incomplete`): displayed as it was sent."""
        self.updates_sent = 0
        """Front-end messages sent after the widget was created (deltas and the final state)."""
        model.collect()
        super().__init__(state=model.snapshot(), version=0, uid=uuid.uuid4().hex)
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # no loop here (a plain IPython shell between awaits): refreshed at cell ends
            loop = None
        self._loop = loop
        self._thread = threading.get_ident()
        self._waker = follower.Waker(loop)
        self._unsubscribe: Callable[[], None] | None = None
        if model.tracker is not None and model.follows_calls:
            self._unsubscribe = model.tracker.add_listener(self._on_record_changed)
        self._task: asyncio.Task[None] | None = None
        self.on_msg(self._on_front_end_message)
        register_live_view(self)
        if model.finished():  # the state it was created with is final already: nothing more to send
            self._final = True
            self._stop_following()
            model.release()
        elif loop is not None:
            self._task = follower.start_follower(loop, self._follow())

    # --- public ----------------------------------------------------------------------------------------------

    @property
    def is_final(self) -> bool:
        """Whether the view shows its final state (nothing it shows can change any more)."""
        return self._final

    async def wait(self) -> None:
        """Wait until the view shows its final state (cancelling this wait does not stop the view)."""
        task = self._task
        if task is None or task.done():
            return
        try:
            if task.get_loop() is asyncio.get_running_loop():
                await asyncio.shield(task)
            else:
                await asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(follower.await_follower(task), task.get_loop())
                )
        except asyncio.CancelledError:
            if not (task.cancelled() and (self._final or self._closed)):
                raise
            # the follower was stopped because the view became final elsewhere (end of a cell) or was closed

    def refresh(self) -> None:
        """Send what changed now (and the final state if everything ended); the follower normally does this."""
        if self._final or self._closed:
            return
        self._poll()

    def close(self) -> None:
        """Stop following and close the widget."""
        if "_unsubscribe" not in self.__dict__:  # the constructor refused its arguments: nothing to stop
            super().close()
            return
        self._closed = True
        self._stop_following()
        super().close()

    def text(self) -> str:
        """The static `text/plain` form of the current state."""
        return self._render_text(self._model.snapshot())

    # --- following -----------------------------------------------------------------------------------------------

    def _on_record_changed(self, record: CallRecord) -> None:
        if self._model.concerns(record):
            self._model.tree_dirty = True
            self._waker.wake()
        elif self._waker.pausing:  # maybe the sender of a message that arrived but is not in the tree yet
            self._waker.wake()

    def _on_front_end_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """A front end that missed deltas (it rendered without `initialize`) asks for the whole state once; a user
        who opens a call of the tree asks for its details."""
        if isinstance(content, dict) and content.get("type") == "details" and isinstance(content.get("id"), str):
            self.send({"type": "details", "id": content["id"], "details": self._model.details(content["id"])})
            return
        if isinstance(content, dict) and content.get("type") == "resync" and not self._final and not self._closed:
            with self.hold_sync():
                self.state = self._model.snapshot()
                self.version = self._version
            self.updates_sent += 1

    def _poll(self) -> None:
        delta = self._model.collect()
        finished = self._model.finished()
        if delta is not None:
            self._send_delta(delta, saved_form_due=not finished)  # (a final view's saved form is empty)
        if finished:
            self._finish()

    def messages_due(self) -> int:
        """At most how many front-end messages the next poll sends: a delta and maybe the live saved form, or a last
        delta, the final state and one display update per display (what the shared `follower.BUDGET` books)."""
        if self._model.producers_ended():
            return 2 + len(self._display_ids)
        return 2 if self._loop is not None and self._loop.time() >= self._saved_form_due else 1

    def _send_delta(self, delta: dict[str, Any], saved_form_due: bool = True) -> None:
        # The version counts deltas; the synced trait gets it only with the final state (one message, not two).
        delta["type"] = "delta"
        delta["from"] = self._version
        self._version += 1
        delta["to"] = self._version
        self.send(delta)
        self.updates_sent += 1
        if self._loop is not None:
            self._last_sent = self._loop.time()
            if saved_form_due and self._last_sent >= self._saved_form_due:
                self._saved_form_due, self.saved_form = self._last_sent + SAVED_FORM_INTERVAL, saved_form(self)

    async def _follow(self) -> None:
        assert self._loop is not None
        try:
            while not self._final and not self._closed:
                # every view's messages together stay under the front end's rate limit, final states included
                if not await follower.wait_for_budget(self.messages_due, lambda: self._final or self._closed):
                    break
                self._poll()
                if self._final or self._closed:
                    break
                waiters = self._model.waiters()
                waker = self._waker.waiter()
                timeout = self._interval if self._model.needs_polling() else None
                if waker is not None:
                    waiters.append(waker)
                    if waiters:
                        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                self._waker.pending = False
                interval = max(self._interval, len(follower.FOLLOWERS) / ALL_VIEWS_MAX_UPDATES_PER_SECOND)
                await follower.coalescing_pause(
                    self._waker, self._last_sent + interval, self._model.producers_ended, self._model.end_waiters
                )
        finally:
            if not self._final and not self._closed:
                # Cancelled (the kernel shuts down, or the sync facade's loop ends), or failed: show exactly what is
                # known, and end (a view that says "streaming" for ever is worse than one marked incomplete).
                with contextlib.suppress(Exception):
                    self._model.collect()
                with contextlib.suppress(Exception):
                    self._finish(force=True)

    def _finish(self, force: bool = False) -> None:
        if self._final:
            return
        self._final = True
        self._model.release()  # (what it followed is not needed any more: see `ViewModel.release`)
        snapshot = self._model.snapshot()
        if force:  # what had not ended never will: say so rather than show it running in a saved notebook
            snapshot = mark_incomplete(snapshot)
            self._forced_snapshot = snapshot
        self._version += 1
        with self.hold_sync():
            self.state = snapshot
            self.version = self._version
            self.saved_form = {}
        self.updates_sent += 1
        self._stop_following()
        bundle = self._bundle(snapshot)
        for display_id in self._display_ids:
            update_display(bundle, raw=True, display_id=display_id)

    def _stop_following(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        task = self._task
        if task is not None and not task.done() and not follower.is_current_task(task):
            if threading.get_ident() == self._thread:
                task.cancel()
            else:
                with contextlib.suppress(RuntimeError):
                    task.get_loop().call_soon_threadsafe(task.cancel)

    # --- display ---------------------------------------------------------------------------------------------

    def _render_text(self, snapshot: dict[str, Any]) -> str:
        """The static text/plain form of a snapshot (subclasses with other state override both renderers)."""
        return render_text(snapshot)

    def _render_html(self, snapshot: dict[str, Any]) -> str:
        """The static text/html form of a snapshot (a final one holds the calls' details)."""
        return render_html(snapshot, self._model.all_details() if self._final and self._model.show_tree else None)

    def _bundle(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        bundle: dict[str, Any] = {
            "text/plain": self._render_text(snapshot),
            "text/html": self._render_html(snapshot),
        }
        if self._model_id is not None and not self._closed and not self._final:
            # Only while it can still change: a final view's output is the static form alone, so that a saved
            # notebook shows it without a kernel (JupyterLab renders the widget type first, and a saved notebook
            # has no widget model: "model not found").
            bundle["application/vnd.jupyter.widget-view+json"] = {
                "version_major": 2,
                "version_minor": 1,
                "model_id": self._model_id,
            }
        return bundle

    def _current_bundle(self) -> dict[str, Any]:
        if not self._final and not self._closed:
            self._poll()
        return self._bundle(self._forced_snapshot or self._model.snapshot())

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._current_bundle(), {}

    def _ipython_display_(self) -> None:
        """Display with an id, so that the final state can replace the display-time fallback."""
        display_id = uuid.uuid4().hex
        self._display_ids.append(display_id)
        self._display_cells.add(current_cell.get())
        display(self._current_bundle(), raw=True, display_id=display_id)

    def __repr__(self) -> str:
        return self.text().split("\n", 1)[0]


class SequenceView(LiveView):
    """The flattened message sequence as it arrives, each message streaming, labelled by its sender; with
    `tree=True` also the live tree of the agent calls behind it, with `timeline=True` their timeline."""

    def __init__(
        self,
        sequence: MessageSequencePromise,
        *,
        tree: bool = False,
        messages: bool = True,
        timeline: bool = False,
        tracker: CallTracker | None = None,
        max_updates_per_second: float = DEFAULT_MAX_UPDATES_PER_SECOND,
    ) -> None:
        model = ViewModel(
            kind="sequence",
            title=_sequence_title(sequence, tracker),
            sequence=sequence,
            message=None,
            tracker=tracker,
            show_messages=messages,
            show_tree=tree,
            show_timeline=timeline,
        )
        super().__init__(model, max_updates_per_second=max_updates_per_second)


def _sequence_title(sequence: MessageSequencePromise, tracker: CallTracker | None) -> str:
    """The header's name for a sequence, in users' words: the agent whose replies it is, or just "Replies"."""
    record = tracker.record_of_sequence(sequence) if tracker is not None else None
    return record.alias if record is not None else "Replies"


class AgentTreeView(SequenceView):
    """Only the live tree of agent calls behind a sequence (who triggered whom, status, time, messages, errors)."""

    def __init__(
        self,
        sequence: MessageSequencePromise,
        *,
        tracker: CallTracker | None = None,
        max_updates_per_second: float = DEFAULT_MAX_UPDATES_PER_SECOND,
    ) -> None:
        super().__init__(
            sequence, tree=True, messages=False, tracker=tracker, max_updates_per_second=max_updates_per_second
        )


class TokenStreamView(LiveView):
    """One message promise streaming its tokens (or a whole message)."""

    def __init__(
        self,
        message: MessagePromise | Message,
        *,
        tracker: CallTracker | None = None,
        max_updates_per_second: float = DEFAULT_MAX_UPDATES_PER_SECOND,
    ) -> None:
        title = type(message).__name__ if isinstance(message, Message) else "Message"
        model = ViewModel(
            kind="message",
            title=title,
            sequence=None,
            message=message,
            tracker=tracker,
            show_messages=True,
            show_tree=False,
        )
        super().__init__(model, max_updates_per_second=max_updates_per_second)


def make_view(
    obj: Any,
    *,
    tree: bool | None = None,
    messages: bool = True,
    timeline: bool = False,
    tracker: CallTracker | None = None,
    max_updates_per_second: float = DEFAULT_MAX_UPDATES_PER_SECOND,
) -> LiveView:
    """The view that fits `obj`; `tree=None` shows the call tree when `obj` is a known agent reply sequence."""
    if isinstance(obj, MessageSequencePromise):
        if tree is None:
            tree = tracker is not None and tracker.record_of_sequence(obj) is not None
        if not messages and not tree and not timeline:
            raise InvalidArgumentsError(
                "A view with `messages=False`, `tree=False` and no timeline would show nothing: keep one of them."
            )
        if (tree or timeline) and tracker is None:
            raise InvalidArgumentsError(
                f"{'Agent trees' if tree else 'Timelines'} need the notebook layer, which records the agent calls: "
                "run `%load_ext miniagents_nb` before triggering the agents"
                + (", or pass `tree=False`." if tree else ".")
            )
        if messages or timeline:
            return SequenceView(
                obj,
                tree=tree,
                messages=messages,
                timeline=timeline,
                tracker=tracker,
                max_updates_per_second=max_updates_per_second,
            )
        return AgentTreeView(obj, tracker=tracker, max_updates_per_second=max_updates_per_second)
    if isinstance(obj, (MessagePromise, Message)):
        if tree or timeline:
            raise InvalidArgumentsError(
                f"`{'tree' if tree else 'timeline'}=True` applies to message sequences (e.g. `agent.trigger(...)`); "
                "a single message is shown as its token stream."
            )
        if not messages:
            raise InvalidArgumentsError("A message view always shows the message: drop `messages=False`.")
        return TokenStreamView(obj, tracker=tracker, max_updates_per_second=max_updates_per_second)
    raise MessageTypeError(
        f"Cannot show a {type(obj).__name__}: show() takes a MessageSequencePromise (e.g. `agent.trigger(...)`), "
        "a MessagePromise or a Message."
    )
