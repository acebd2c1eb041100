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

The static `text/plain` / `text/html` forms (see `_render.py`) show the state at display time. When the view
reaches its final state, every output that displays it is replaced (`update_display_data`) by the final forms, so
a notebook saved from JupyterLab stores the final transcript. Headless runs (nbclient, nbval) record that
replacement only when it happens while the displaying cell still runs, i.e. when the cell awaits the stream (as
`%%chat` does, or `await reply` later in the same cell); the notebook layer checks for finished views at the end
of every cell so that this never depends on task scheduling. A stream that ends after its cell finished keeps the
display-time form in headless runs (on ipykernel 7; ipykernel 6 charges the update to a later cell).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import uuid
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from miniagents_nb.errors import InvalidArgumentsError, MessageTypeError
from miniagents_nb.jupyter._ipython import display, update_display
from miniagents_nb.jupyter._render import preview, render_html, render_text
from miniagents_nb.jupyter._streams import Cursor, message_text, piece_text, stream_finished, stream_pieces
from miniagents_nb.jupyter._tracker import CallRecord, CallTracker, current_cell
from miniagents_nb.messages import Message, MessagePromise, MessageSequencePromise, error_to_text

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
]

DEFAULT_MAX_UPDATES_PER_SECOND = 20.0

ALL_VIEWS_MAX_UPDATES_PER_SECOND = 200.0
"""Shared by every view that is following at the same time, so that many views at once stay far below
jupyter_server's IOPub limit (1000 messages per second, which drops messages silently when exceeded)."""

_STATIC = Path(__file__).parent / "static"
# One ES module per widget and no build step: the shared delta protocol is put in front of the widget's own code.
_ESM = (_STATIC / "delta_protocol.js").read_text(encoding="utf-8") + (_STATIC / "views.js").read_text(encoding="utf-8")
_CSS = (_STATIC / "views.css").read_text(encoding="utf-8")

# Followers are referenced here until they end: the loop keeps tasks only weakly, and a follower whose streams and
# view are no longer referenced anywhere else must still finish instead of being garbage-collected while pending.
_FOLLOWERS: set[asyncio.Task[None]] = set()


def _error_status(error: BaseException) -> str:
    return "cancelled" if isinstance(error, asyncio.CancelledError) else "failed"


def _error_text(error: BaseException) -> str | None:
    return None if isinstance(error, asyncio.CancelledError) else error_to_text(error)


class _Waker:
    """Wakes a follower from any thread (call events may come from the sync facade's worker thread)."""

    __slots__ = ("_future", "_loop", "_thread", "pending")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop
        self._thread = threading.get_ident()
        self._future: asyncio.Future[None] | None = None
        self.pending = False

    def wake(self) -> None:
        if threading.get_ident() == self._thread or self._loop is None:
            self._set()
            return
        with contextlib.suppress(RuntimeError):  # that loop is closed: its follower is gone
            self._loop.call_soon_threadsafe(self._set)

    def _set(self) -> None:
        self.pending = True
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    def waiter(self) -> asyncio.Future[None] | None:
        """A future done at the next wake-up; None when one is pending already (do not wait then)."""
        if self.pending or self._loop is None:
            return None
        if self._future is None or self._future.done():
            self._future = self._loop.create_future()
        return self._future


class _Slot:
    """One message of a view: where its stream is, the text so far, who sent it."""

    __slots__ = ("cursor", "error", "final_sent", "parts", "sender", "status")

    def __init__(self, cursor: Cursor | None, sender: str | None) -> None:
        self.cursor = cursor
        self.sender = sender
        self.parts: list[str] = []
        self.status = "streaming"
        self.error: str | None = None
        self.final_sent = False

    def as_state(self) -> dict[str, Any]:
        return {"sender": self.sender, "text": "".join(self.parts), "status": self.status, "error": self.error}


class _ViewModel:
    """The state of a view and how it changes; no widget here, so it is testable and measurable alone."""

    def __init__(
        self,
        *,
        kind: str,
        title: str,
        sequence: MessageSequencePromise | None,
        message: MessagePromise | Message | None,
        tracker: CallTracker | None,
        show_messages: bool,
        show_tree: bool,
    ) -> None:
        self.kind = kind
        self.title = title
        self.tracker = tracker
        self.show_messages = show_messages
        self.show_tree = show_tree
        self.status = "streaming"
        self.error: str | None = None
        self.slots: list[_Slot] = []
        self._sent_status: tuple[str, str | None] = (self.status, None)
        self._sequence_cursor = Cursor(sequence) if sequence is not None else None
        self._keep: list[Any] = [sequence, message]  # what the view shows stays alive while the view does
        # the tree
        self.roots: list[CallRecord] = []
        self._root_keys: set[tuple[int, int]] = set()
        self.tree_dirty = False
        self._sent_nodes: dict[str, dict[str, Any]] = {}
        self._sent_roots: list[str] = []
        if show_tree and tracker is not None and sequence is not None:
            record = tracker.record_of_sequence(sequence)
            if record is not None:
                self._add_root(record)
        if message is not None:
            self._add_message(message)
            if isinstance(message, Message):
                self.status = "done"

    # --- building --------------------------------------------------------------------------------------------

    def _sender_record(self, promise: MessagePromise) -> CallRecord | None:
        return self.tracker.sender_of(promise) if self.tracker is not None else None

    def _add_root(self, record: CallRecord) -> None:
        if record.key not in self._root_keys:
            self._root_keys.add(record.key)
            self.roots.append(record)
            self.tree_dirty = True

    def _add_message(self, item: MessagePromise | Message) -> _Slot:
        if isinstance(item, Message):
            slot = _Slot(None, None)
            slot.parts.append(message_text(item))
            slot.status = "done"
            self.slots.append(slot)
            return slot
        record = self._sender_record(item)
        slot = _Slot(Cursor(item), record.alias if record is not None else None)
        self.slots.append(slot)
        if record is not None and self.show_tree and self._sequence_cursor is not None and not self._in_tree(record):
            self._add_root(record.root())
        return slot

    def _in_tree(self, record: CallRecord) -> bool:
        current: CallRecord | None = record
        while current is not None:
            if current.key in self._root_keys:
                return True
            current = current.caller
        return False

    def concerns(self, record: CallRecord) -> bool:
        """Whether a change to this call record shows in this view."""
        return self.show_tree and self._in_tree(record)

    # --- following ---------------------------------------------------------------------------------------------

    def collect(self) -> dict[str, Any] | None:
        """Take everything that arrived since the last call; returns the delta ops (None when nothing changed)."""
        delta: dict[str, Any] = {}
        cursor = self._sequence_cursor
        if cursor is not None:
            new_messages: list[list[Any]] = []
            for piece in cursor.take():
                if isinstance(piece, MessagePromise):
                    slot = self._add_message(piece)
                else:  # an exception at its position in the sequence
                    slot = _Slot(None, None)
                    slot.status = _error_status(piece)
                    slot.error = _error_text(piece)
                    slot.final_sent = True
                    self.slots.append(slot)
                    if self.status == "streaming" or self.status == "failed" and slot.status == "cancelled":
                        self.status, self.error = slot.status, slot.error
                new_messages.append([len(self.slots) - 1, slot.as_state()])
            if new_messages:
                delta["new"] = new_messages
        self._collect_slot_text(delta)
        if cursor is not None and cursor.finished and self.status == "streaming":
            self.status = "done"
        elif cursor is None and self.slots and self.slots[0].final_sent and self.status == "streaming":
            self.status, self.error = self.slots[0].status, self.slots[0].error
        if self.show_tree and (self.tree_dirty or self._tree_has_live_previews()):
            self.tree_dirty = False
            nodes, roots = self._tree_changes()
            if nodes:
                delta["nodes"] = nodes
            if roots is not None:
                delta["roots"] = roots
        if delta or self._sent_status != (self.status, self.error):
            delta["status"] = self.status
            delta["error"] = self.error
            self._sent_status = (self.status, self.error)
            return delta
        return None

    @staticmethod
    def _take_text(slot: _Slot, cursor: Cursor) -> str:
        pieces = cursor.take()
        if not pieces:
            return ""
        texts: list[str] = []
        for piece in pieces:
            if isinstance(piece, BaseException):
                slot.status = _error_status(piece)
                slot.error = _error_text(piece)
            else:
                texts.append(piece_text(piece))
        chunk = "".join(texts)
        if chunk:
            slot.parts.append(chunk)
        return chunk

    def _collect_slot_text(self, delta: dict[str, Any]) -> None:
        """Put the text each streaming message gained (`append`) and the messages that ended (`end`) into `delta`."""
        appended: list[list[Any]] = []
        ended: list[list[Any]] = []
        for index, slot in enumerate(self.slots):
            if slot.final_sent:
                continue
            cursor = slot.cursor
            if cursor is None:  # a whole message (or the user's text), shown as it is
                slot.final_sent = True
                continue
            chunk = self._take_text(slot, cursor)
            if chunk:
                appended.append([index, chunk])
            if cursor.finished:
                ended.append([index, self._finish_slot(slot, cursor)])
        if appended:
            delta["append"] = appended
        if ended:
            delta["end"] = ended

    @staticmethod
    def _finish_slot(slot: _Slot, cursor: Cursor) -> dict[str, Any]:
        """The exact final form of a message: its resolved text (it may differ from the tokens, e.g. a template)."""
        slot.final_sent = True
        result, error = cursor.result()
        update: dict[str, Any] = {}
        if error is not None:
            slot.status, slot.error = _error_status(error), _error_text(error)
        elif slot.status == "streaming":
            slot.status = "done"
            text = message_text(result)
            if text != "".join(slot.parts):
                slot.parts = [text]
                update["text"] = text
        update["status"] = slot.status
        update["error"] = slot.error
        return update

    def waiters(self) -> list[asyncio.Future[None]]:
        """Futures done when any stream of this view has something new."""
        futures: list[asyncio.Future[None]] = []
        if self._sequence_cursor is not None and (future := self._sequence_cursor.waiter()) is not None:
            futures.append(future)
        for slot in self.slots:
            if not slot.final_sent and slot.cursor is not None and (future := slot.cursor.waiter()) is not None:
                futures.append(future)
        return futures

    def finished(self) -> bool:
        """Whether nothing the view shows can change any more."""
        if self._sequence_cursor is not None and not self._sequence_cursor.finished:
            return False
        if any(not slot.final_sent for slot in self.slots):
            return False
        if self.show_tree:
            if self.tree_dirty:
                return False
            if any(not record.ended for root in self.roots for record in root.walk()):
                return False
        return True

    def producers_ended(self) -> bool:
        """Whether every stream has ended (what is left to take goes out with the final state, without delay)."""
        if self._sequence_cursor is not None and not self._sequence_cursor.producer_ended:
            return False
        if any(slot.cursor is not None and not slot.cursor.producer_ended for slot in self.slots):
            return False
        return not self.show_tree or all(record.ended for root in self.roots for record in root.walk())

    def needs_polling(self) -> bool:
        """Tree previews of messages that are not in the sequence stream without waking anyone: poll them."""
        return self.show_tree and self._tree_has_live_previews()

    # --- the tree ----------------------------------------------------------------------------------------------

    def _tree_has_live_previews(self) -> bool:
        return any(
            not stream_finished(promise)
            for root in self.roots
            for record in root.walk()
            for promise in record.live_messages()
        )

    def _node_state(self, record: CallRecord) -> dict[str, Any]:
        previews = []
        for promise in record.live_messages():
            pieces = stream_pieces(promise)
            if stream_finished(promise):
                result, error = Cursor(promise).result()
                text = message_text(result) if error is None else _joined_text(pieces)
            else:
                text = _joined_text(pieces, limit=200)
            previews.append(preview(text))
        elapsed = record.elapsed()
        return {
            "id": record.label,
            "alias": record.alias,
            "status": record.status,
            "error": record.error,
            "children": [child.label for child in record.children],
            "messages": previews,
            "message_count": len(record.messages),
            "elapsed": None if elapsed is None else round(elapsed, 3),
        }

    def _tree_changes(self) -> tuple[list[dict[str, Any]], list[str] | None]:
        changed: list[dict[str, Any]] = []
        for root in self.roots:
            for record in root.walk():
                node = self._node_state(record)
                sent = self._sent_nodes.get(record.label)
                if sent is None or _node_differs(sent, node):
                    self._sent_nodes[record.label] = node
                    changed.append(node)
        roots = [root.label for root in self.roots]
        if roots != self._sent_roots:
            self._sent_roots = roots
            return changed, roots
        return changed, None

    # --- the whole state -------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The full state: the synced traits, and what the static forms are made of."""
        nodes: dict[str, dict[str, Any]] = {}
        if self.show_tree:
            for root in self.roots:
                for record in root.walk():
                    node = self._sent_nodes.get(record.label) or self._node_state(record)
                    nodes[record.label] = node
        return {
            "kind": self.kind,
            "title": self.title,
            "status": self.status,
            "error": self.error,
            "show_messages": self.show_messages,
            "show_tree": self.show_tree,
            "messages": [slot.as_state() for slot in self.slots],
            "nodes": nodes,
            "roots": [root.label for root in self.roots],
        }


def _joined_text(pieces: list[Any], limit: int | None = None) -> str:
    texts: list[str] = []
    size = 0
    for piece in pieces:
        if isinstance(piece, BaseException):
            continue
        text = piece_text(piece)
        texts.append(text)
        size += len(text)
        if limit is not None and size >= limit:
            break
    return "".join(texts)


def _node_differs(sent: dict[str, Any], node: dict[str, Any]) -> bool:
    """Elapsed time alone is not a change worth a message: the front end counts it up by itself."""
    for key, value in node.items():
        if key == "elapsed":
            if (sent[key] is None) != (value is None):
                return True
        elif sent[key] != value:
            return True
    return False


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

    def __init__(self, model: _ViewModel, *, max_updates_per_second: float = DEFAULT_MAX_UPDATES_PER_SECOND) -> None:
        if not max_updates_per_second > 0:
            raise InvalidArgumentsError(
                f"max_updates_per_second must be positive, got {max_updates_per_second!r}: try 20."
            )
        self._model = model
        self._interval = 1.0 / max_updates_per_second
        self._last_sent = -math.inf
        self._display_ids: list[str] = []
        self._display_cells: set[int | None] = set()
        """The cells that displayed this view: only their own end brings it up to date (see `refresh_live_views`)."""
        self._version = 0
        self._final = False
        self._closed = False
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
        self._waker = _Waker(loop)
        self._unsubscribe: Callable[[], None] | None = None
        if model.tracker is not None and model.show_tree:
            self._unsubscribe = model.tracker.add_listener(self._on_record_changed)
        self._task: asyncio.Task[None] | None = None
        self.on_msg(self._on_front_end_message)
        _register_live_view(self)
        if model.finished():  # the state it was created with is final already: nothing more to send
            self._final = True
            self._stop_following()
        elif loop is not None:
            self._task = loop.create_task(self._follow())
            _FOLLOWERS.add(self._task)
            self._task.add_done_callback(_FOLLOWERS.discard)

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
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_await_task(task), task.get_loop()))
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

    def _on_front_end_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """A front end that missed deltas (it rendered without `initialize`) asks for the whole state once."""
        if isinstance(content, dict) and content.get("type") == "resync" and not self._final and not self._closed:
            with self.hold_sync():
                self.state = self._model.snapshot()
                self.version = self._version
            self.updates_sent += 1

    def _poll(self) -> None:
        delta = self._model.collect()
        if delta is not None:
            self._send_delta(delta)
        if self._model.finished():
            self._finish()

    def _send_delta(self, delta: dict[str, Any]) -> None:
        # The version counts deltas; the synced trait gets it only with the final state (one message, not two).
        delta["type"] = "delta"
        delta["from"] = self._version
        self._version += 1
        delta["to"] = self._version
        self.send(delta)
        self.updates_sent += 1
        if self._loop is not None:
            self._last_sent = self._loop.time()

    async def _follow(self) -> None:
        assert self._loop is not None
        loop = self._loop
        try:
            while not self._final and not self._closed:
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
                interval = max(self._interval, len(_FOLLOWERS) / ALL_VIEWS_MAX_UPDATES_PER_SECOND)
                delay = self._last_sent + interval - loop.time()
                if delay > 0 and not self._model.producers_ended():
                    await asyncio.sleep(delay)  # coalesce: everything that arrives meanwhile goes in one update
        finally:
            if not self._final and not self._closed:
                # Cancelled (the kernel shuts down, or the sync facade's loop ends): show exactly what is known.
                with contextlib.suppress(Exception):
                    self._model.collect()
                    self._finish(force=True)

    def _finish(self, force: bool = False) -> None:
        if self._final:
            return
        self._final = True
        snapshot = self._model.snapshot()
        self._version += 1
        with self.hold_sync():
            self.state = snapshot
            self.version = self._version
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
        if task is not None and not task.done() and not _is_current_task(task):
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
        """The static text/html form of a snapshot."""
        return render_html(snapshot)

    def _bundle(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        bundle: dict[str, Any] = {
            "text/plain": self._render_text(snapshot),
            "text/html": self._render_html(snapshot),
        }
        if self._model_id is not None and not self._closed:
            bundle["application/vnd.jupyter.widget-view+json"] = {
                "version_major": 2,
                "version_minor": 1,
                "model_id": self._model_id,
            }
        return bundle

    def _current_bundle(self) -> dict[str, Any]:
        if not self._final and not self._closed:
            self._poll()
        return self._bundle(self._model.snapshot())

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


async def _await_task(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(task)


def _is_current_task(task: asyncio.Task[None]) -> bool:
    try:
        return asyncio.current_task() is task
    except RuntimeError:  # no running loop in this thread
        return False


class SequenceView(LiveView):
    """The flattened message sequence as it arrives, each message streaming, labelled by its sender; with
    `tree=True` also the live tree of the agent calls behind it."""

    def __init__(
        self,
        sequence: MessageSequencePromise,
        *,
        tree: bool = False,
        messages: bool = True,
        tracker: CallTracker | None = None,
        max_updates_per_second: float = DEFAULT_MAX_UPDATES_PER_SECOND,
    ) -> None:
        model = _ViewModel(
            kind="sequence",
            title="MessageSequencePromise",
            sequence=sequence,
            message=None,
            tracker=tracker,
            show_messages=messages,
            show_tree=tree,
        )
        super().__init__(model, max_updates_per_second=max_updates_per_second)


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
        if isinstance(message, Message):
            title = type(message).__name__
        else:
            title = "MessagePromise"
        model = _ViewModel(
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
    tracker: CallTracker | None = None,
    max_updates_per_second: float = DEFAULT_MAX_UPDATES_PER_SECOND,
) -> LiveView:
    """The view that fits `obj`; `tree=None` shows the call tree when `obj` is a known agent reply sequence."""
    if isinstance(obj, MessageSequencePromise):
        if tree is None:
            tree = tracker is not None and tracker.record_of_sequence(obj) is not None
        if not messages and not tree:
            raise InvalidArgumentsError(
                "A view with `messages=False` and `tree=False` would show nothing: keep one of them."
            )
        if tree and tracker is None:
            raise InvalidArgumentsError(
                "Agent trees need the notebook layer, which records the agent calls: run `%load_ext miniagents_nb` "
                "before triggering the agents, or pass `tree=False`."
            )
        if messages:
            return SequenceView(obj, tree=tree, tracker=tracker, max_updates_per_second=max_updates_per_second)
        return AgentTreeView(obj, tracker=tracker, max_updates_per_second=max_updates_per_second)
    if isinstance(obj, (MessagePromise, Message)):
        if tree:
            raise InvalidArgumentsError(
                "`tree=True` applies to message sequences; a single message is shown as its token stream."
            )
        if not messages:
            raise InvalidArgumentsError("A message view always shows the message: drop `messages=False`.")
        return TokenStreamView(obj, tracker=tracker, max_updates_per_second=max_updates_per_second)
    raise MessageTypeError(
        f"Cannot show a {type(obj).__name__}: show() takes a MessageSequencePromise (e.g. `agent.trigger(...)`), "
        "a MessagePromise or a Message."
    )


_LIVE_VIEWS: weakref.WeakSet[LiveView] = weakref.WeakSet()


def _register_live_view(view: LiveView) -> None:
    _LIVE_VIEWS.add(view)


def refresh_live_views(cell: int | None = None) -> None:
    """Bring the views that cell `cell` displayed up to date now (called at the end of each cell).

    A stream that ended while the cell ran gets its final state sent before the cell's reply, so headless runs
    record it whatever order the tasks happened to run in. Views displayed by earlier cells are left to their own
    follower: an update sent now would carry this cell's header, and nbclient would rewrite the earlier cell's
    saved output with a final form that nbval (which ignores display updates) never sees. Views with no event loop
    to follow them (a plain IPython shell) are refreshed at every cell end.
    """
    me = threading.get_ident()
    for view in list(_LIVE_VIEWS):
        if view._final or view._closed or view._thread != me:
            continue
        if view._loop is not None and cell not in view._display_cells:
            continue
        view.refresh()
