"""The state of a live view and how it changes, with no widget in it (so it is testable and measurable alone).

A `ViewModel` holds one `Slot` per message it shows and, for tree views, the call records it follows. `collect()`
takes what arrived since the last call from the streams' cursors and returns only the changes (the delta ops the
front end applies: `new`, `append`, `end`, `nodes`, `roots`, `status`, `error`); `snapshot()` is the whole state
the synced traits and the static forms are made of.
"""

from __future__ import annotations

import asyncio
from typing import Any

from miniagents_nb.jupyter._call_times import CallTimes
from miniagents_nb.jupyter._details import call_details
from miniagents_nb.jupyter._images import image_state
from miniagents_nb.jupyter._slots import Slot
from miniagents_nb.jupyter._streams import Cursor, live_text, message_text_or_error, stream_finished
from miniagents_nb.jupyter._tracker import CallRecord, CallTracker
from miniagents_nb.jupyter._tree_model import node_differs, node_state, tool_arguments_streaming
from miniagents_nb.messages import Message, MessagePromise, MessageSequencePromise

__all__ = ["Slot", "ViewModel"]  # Slot: re-exported for _chat_model


class ViewModel:
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
        show_timeline: bool = False,
    ) -> None:
        self.kind = kind
        self.title = title
        self.tracker = tracker
        self.show_messages = show_messages
        self.show_tree = show_tree
        self.show_timeline = show_timeline
        self.follows_calls = show_tree or show_timeline
        """Whether the view follows the calls behind its sequence (for the tree, the timeline or both)."""
        self.status = "streaming"
        self.error: str | None = None
        self.slots: list[Slot] = []
        self._sent_status: tuple[str, str | None] = (self.status, None)
        self._sequence_cursor = Cursor(sequence) if sequence is not None else None
        # cursors made for messages that arrived but were not taken yet (a pause waits for their end), by id
        self._early_cursors: dict[int, Cursor] = {}
        self._keep: list[Any] = [sequence, message]  # what the view shows stays alive while the view does
        # the tree
        self.roots: list[CallRecord] = []
        self._root_keys: set[tuple[int, int]] = set()
        self.tree_dirty = False
        self._sent_nodes: dict[str, dict[str, Any]] = {}
        self._sent_roots: list[str] = []
        self._times = CallTimes()
        self._listed: set[int] = set()
        """`id()`s of the messages the list shows (kept alive by their slots): the tree only refers to them."""
        self._previews_were_live = False
        self._own_record = tracker.record_of_sequence(sequence) if tracker is not None and sequence else None
        """The call whose reply the view shows (tells whether a re-run of its cell superseded it)."""
        self._sent_superseded = False
        self._released: tuple[dict[str, Any], dict[str, dict[str, Any]]] | None = None
        """The final state and details, once `release()` dropped everything else."""
        if self.follows_calls and self._own_record is not None:
            self._add_root(self._own_record)
        if message is not None:
            slot = self._add_message(message)
            if isinstance(message, Message):
                self.status, self.error = slot.status, slot.error

    # --- building --------------------------------------------------------------------------------------------

    def _sender_record(self, promise: MessagePromise) -> CallRecord | None:
        return self.tracker.sender_of(promise) if self.tracker is not None else None

    def _add_root(self, record: CallRecord) -> None:
        if record.key not in self._root_keys:
            self._root_keys.add(record.key)
            self.roots.append(record)
            self.tree_dirty = True

    def _add_message(self, item: MessagePromise | Message) -> Slot:
        if isinstance(item, Message):
            slot = Slot(None, None)
            text, error = message_text_or_error(item)
            slot.parts.append(live_text(text))
            slot.image = image_state(item)
            slot.status, slot.error = ("done", None) if error is None else ("failed", error)
            self.slots.append(slot)
            return slot
        record = self._sender_record(item)
        cursor = self._early_cursors.pop(id(item), None) or Cursor(item)
        slot = Slot(cursor, record.alias if record is not None else None)
        self._listed.add(id(item))
        self.slots.append(slot)
        if (
            record is not None
            and self.follows_calls
            and self._sequence_cursor is not None
            and not self._in_tree(record)
        ):
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
        return self.follows_calls and self._in_tree(record)

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
                    slot = Slot(None, None)
                    slot.fail(piece)
                    slot.final_sent = True
                    self.slots.append(slot)
                    if self.status == "streaming" or self.status == "failed" and slot.status == "cancelled":
                        self.status, self.error = slot.status, slot.error
                new_messages.append([len(self.slots) - 1, slot.as_state()])
            if new_messages:
                delta["new"] = new_messages
        self._collect_slot_text(delta)
        if (
            cursor is not None
            and cursor.finished
            and self.status == "streaming"
            and all(slot.final_sent for slot in self.slots)
        ):
            # done once its messages are, too: an LLM replies its one message promise at once (the sequence ends)
            # and streams the tokens into it afterwards
            self.status = "done"
        elif cursor is None and self.slots and self.slots[0].final_sent and self.status == "streaming":
            self.status, self.error = self.slots[0].status, self.slots[0].error
        live_previews = self.follows_calls and self._tree_has_live_previews()
        if self.follows_calls and (self.tree_dirty or live_previews or self._previews_were_live):
            # once more after the last stream ended: its last ticks and the calls' totals are known only then
            self._previews_were_live = live_previews
            self.tree_dirty = False
            nodes, roots = self._tree_changes()
            if nodes:
                delta["nodes"] = nodes
            if roots is not None:
                delta["roots"] = roots
            delta["clock"] = self.clock()
        if self.status == "done" and self._was_cancelled():
            self.status = "cancelled"  # its reply ended normally, but cut short (e.g. by a capturing appender)
        superseded = self.superseded
        if superseded != self._sent_superseded:
            delta["superseded"] = self._sent_superseded = superseded
        if delta or self._sent_status != (self.status, self.error):
            delta["status"] = self.status
            delta["error"] = self.error
            self._sent_status = (self.status, self.error)
            return delta
        return None

    def _was_cancelled(self) -> bool:
        own = self._own_record
        return (own is not None and own.status == "cancelled") or any(slot.status == "cancelled" for slot in self.slots)

    @property
    def superseded(self) -> bool:
        """Whether the cell that started what the view shows ran again while it was still going."""
        own = self._own_record
        return (own is not None and own.superseded) or any(root.superseded for root in self.roots)

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
            chunk = slot.take_text(cursor)
            if chunk:
                appended.append([index, chunk])
            if cursor.finished:
                update = slot.finish(cursor)
                suffix = update.pop("suffix", None)
                if suffix:  # the final text extends what was shown (a capped message): send only the rest
                    appended.append([index, suffix])
                ended.append([index, update])
        if appended:
            delta["append"] = appended
        if ended:
            delta["end"] = ended

    def waiters(self) -> list[asyncio.Future[None]]:
        """Futures done when any stream of this view has something new."""
        futures: list[asyncio.Future[None]] = []
        if self._sequence_cursor is not None and (future := self._sequence_cursor.waiter()) is not None:
            futures.append(future)
        for slot in self.slots:
            if not slot.final_sent and slot.cursor is not None and (future := slot.cursor.waiter()) is not None:
                futures.append(future)
        return futures

    def end_waiters(self) -> list[asyncio.Future[None]]:
        """Futures done when a stream of this view ends (not at its pieces): what cuts a coalescing pause short."""
        futures: list[asyncio.Future[None]] = []
        if self._sequence_cursor is not None and (future := self._sequence_cursor.end_waiter()) is not None:
            futures.append(future)
        for slot in self.slots:
            if not slot.final_sent and slot.cursor is not None and (future := slot.cursor.end_waiter()) is not None:
                futures.append(future)
        if cursor := self._sequence_cursor:
            for piece in cursor.peek()[cursor.position :]:
                if isinstance(piece, MessagePromise):
                    early = self._early_cursors.get(id(piece))
                    if early is None:
                        early = self._early_cursors[id(piece)] = Cursor(piece)
                    if (future := early.end_waiter()) is not None:
                        futures.append(future)
        return futures

    def finished(self) -> bool:
        """Whether nothing the view shows can change any more."""
        if self._sequence_cursor is not None and not self._sequence_cursor.finished:
            return False
        if any(not slot.final_sent for slot in self.slots):
            return False
        if self.follows_calls:
            if self.tree_dirty:
                return False
            if any(not record.ended for root in self.roots for record in root.walk()):
                return False
        return True

    def producers_ended(self) -> bool:
        """Whether every stream has ended (what is left to take goes out with the final state, without delay)."""
        cursor = self._sequence_cursor
        if cursor is not None:
            if not cursor.producer_ended:
                return False
            for piece in cursor.peek()[cursor.position :]:  # arrived, not taken yet: not in the slots or the tree
                if isinstance(piece, MessagePromise) and not self._message_ended(piece):
                    return False
        if any(slot.cursor is not None and not slot.cursor.producer_ended for slot in self.slots):
            return False
        return not self.follows_calls or all(record.ended for root in self.roots for record in root.walk())

    def _message_ended(self, promise: MessagePromise) -> bool:
        if not stream_finished(promise):
            return False
        record = self._sender_record(promise) if self.follows_calls else None
        return record is None or all(call.ended for call in record.root().walk())

    def needs_polling(self) -> bool:
        """Tree previews of messages that are not in the sequence stream without waking anyone: poll them."""
        return self.follows_calls and self._tree_has_live_previews()

    # --- the tree ----------------------------------------------------------------------------------------------

    def _tree_has_live_previews(self) -> bool:
        for root in self.roots:
            for record in root.walk():
                if any(not stream_finished(promise) for promise in record.live_messages()):
                    return True
                if record.status == "queued" and tool_arguments_streaming(record):
                    return True  # the model is writing a tool call's arguments: the node shows them filling in
        return False

    def _node_state(self, record: CallRecord) -> dict[str, Any]:
        return node_state(record, self._times, self.roots, self._listed if self.show_messages else None)

    def _tree_changes(self) -> tuple[list[dict[str, Any]], list[str] | None]:
        self._times.sample(self.roots)
        changed: list[dict[str, Any]] = []
        for root in self.roots:
            for record in root.walk():
                node = self._node_state(record)
                sent = self._sent_nodes.get(record.label)
                if sent is None or node_differs(sent, node):
                    self._sent_nodes[record.label] = node
                    changed.append(node)
        roots = [root.label for root in self.roots]
        if roots != self._sent_roots:
            self._sent_roots = roots
            return changed, roots
        return changed, None

    def details(self, label: str) -> dict[str, Any] | None:
        """The details of one call of the view, built now (None for a call the view does not show)."""
        if self._released is not None:
            return self._released[1].get(label)
        for root in self.roots:
            for record in root.walk():
                if record.label == label:
                    return call_details(record, self._sent_nodes.get(label) or self._node_state(record))
        return None

    def all_details(self) -> dict[str, dict[str, Any]]:
        """The details of every call of the view (for the final static form)."""
        if self._released is not None:
            return self._released[1]
        return {
            record.label: call_details(record, self._sent_nodes.get(record.label) or self._node_state(record))
            for root in self.roots
            for record in root.walk()
        }

    def clock(self) -> float | None:
        """Seconds on the timeline's clock now (see `CallTimes.clock`)."""
        return self._times.clock(self.roots)

    # --- the whole state -------------------------------------------------------------------------------------

    def release(self) -> None:
        """Once the view is final: keep its final state and the calls' details, and let go of every stream, promise,
        token piece and call record it followed. A displayed widget lives as long as the kernel (ipywidgets keeps it
        for its front end), so a long session keeps only what its finished views show, not the engine behind them.
        """
        if self._released is not None:
            return
        details = self.all_details() if self.follows_calls else {}
        self._released = (self.snapshot(), details)
        self.tracker = None
        self.slots = []
        self._sequence_cursor = None
        self._early_cursors = {}
        self._keep = []
        self.roots = []
        self._root_keys = set()
        self._own_record = None
        self._sent_nodes = {}
        self._times = CallTimes()
        self._listed = set()

    def snapshot(self) -> dict[str, Any]:
        """The full state: the synced traits, and what the static forms are made of."""
        if self._released is not None:
            return dict(self._released[0])
        nodes: dict[str, dict[str, Any]] = {}
        if self.follows_calls:
            for root in self.roots:
                for record in root.walk():
                    node = self._sent_nodes.get(record.label) or self._node_state(record)
                    nodes[record.label] = node
        return {
            "kind": self.kind,
            "title": self.title,
            "status": self.status,
            "error": self.error,
            "superseded": self.superseded,
            "show_messages": self.show_messages,
            "show_tree": self.show_tree,
            "show_timeline": self.show_timeline,
            "clock": self.clock(),
            "messages": [slot.as_state() for slot in self.slots],
            "nodes": nodes,
            "roots": [root.label for root in self.roots],
        }
