"""Helpers for the notebook layer tests: recording comms and a replay of the front end's delta protocol."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Callable
from typing import Any

from comm.base_comm import BaseComm

from miniagents_nb.jupyter._view_model import ViewModel


class RecordingComm(BaseComm):
    """A comm that keeps what it publishes (``comm_open``, ``comm_msg``, ``comm_close``); tests wait on what it
    publishes with `wait_until` and send it what a browser would send with `receive`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []
        self._waiters: list[asyncio.Future[None]] = []
        super().__init__(*args, **kwargs)

    def publish_msg(
        self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any
    ) -> None:
        self.published.append((msg_type, copy.deepcopy(data or {})))
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:  # (a view may publish from another thread: wake each waiter on its own loop)
            if not waiter.done():
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                    waiter.get_loop().call_soon_threadsafe(_resolve, waiter)

    async def wait_until(
        self, predicate: Callable[[], bool], *, timeout: float = 10.0, what: str = "the condition"
    ) -> None:
        """Wait until `predicate()` holds, checking it again each time this comm publishes something: for conditions
        on what the front end received, or on state that a view publishes when it changes (e.g. a chat's status)."""

        async def wait() -> None:
            while not predicate():
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                await waiter

        try:
            await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None

    def receive(self, content: dict[str, Any]) -> None:
        """Deliver a custom message from the front end, as the kernel does when the browser sends one."""
        self.handle_msg(
            {"content": {"comm_id": self.comm_id, "data": {"method": "custom", "content": content}}, "buffers": []}
        )

    def custom_messages(self) -> list[dict[str, Any]]:
        return [
            data["content"]
            for msg_type, data in self.published
            if msg_type == "comm_msg" and data.get("method") == "custom"
        ]

    def state_updates(self) -> list[dict[str, Any]]:
        """The trait updates that carry the view's `state` (the live saved form goes on its own in between)."""
        return [data["state"] for data in self._trait_updates() if "state" in data["state"]]

    def saved_forms(self) -> list[dict[str, Any]]:
        """Each `saved_form` the widget published (see `jupyter/_saved_form.py`)."""
        return [data["state"]["saved_form"] for data in self._trait_updates() if "saved_form" in data["state"]]

    def _trait_updates(self) -> list[dict[str, Any]]:
        return [data for msg_type, data in self.published if msg_type == "comm_msg" and data.get("method") == "update"]

    def front_end_messages(self) -> int:
        """Messages after the comm was opened that carry what the view shows (deltas and states): what the view's
        update rate caps. The live saved form goes out on its own, at most once every `SAVED_FORM_INTERVAL`."""
        return sum(
            1
            for msg_type, data in self.published
            if msg_type == "comm_msg" and not (data.get("method") == "update" and set(data["state"]) == {"saved_form"})
        )


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def comm_of(comms: list[RecordingComm], widget: Any) -> RecordingComm:
    return next(c for c in comms if c.comm_id == widget.comm.comm_id)


def replay(initial: dict[str, Any], deltas: list[dict[str, Any]]) -> dict[str, Any]:
    """The state the front end shows after the deltas (each applied exactly once, in version order)."""
    state = copy.deepcopy(initial)
    version = 0
    for delta in deltas:
        assert delta["type"] == "delta"
        assert delta["from"] == version, f"delta from {delta['from']} after version {version}"
        for index, message in delta.get("new", []):
            assert index == len(state["messages"])
            state["messages"].append(copy.deepcopy(message))
        for index, chunk in delta.get("append", []):
            state["messages"][index]["text"] += chunk
        for index, update in delta.get("end", []):
            state["messages"][index].update(update)
        for node in delta.get("nodes", []):
            state["nodes"][node["id"]] = node
        if "roots" in delta:
            state["roots"] = delta["roots"]
        if "clock" in delta:
            state["clock"] = delta["clock"]
        state["status"] = delta.get("status", state["status"])
        state["error"] = delta.get("error", state["error"])
        version = delta["to"]
    return state


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    """A state without the running times (the only part that legitimately differs between sends: the front end
    counts them up by itself, and the final state has them exact)."""
    result = copy.deepcopy(state)
    if result.get("clock") is not None:
        result["clock"] = "set"
    for node in result["nodes"].values():
        for key in ("elapsed", "total"):
            node[key] = None if node[key] is None else "set"
    return result


def tree_view_model(reply: Any, tracker: Any, title: str) -> ViewModel:
    """A `ViewModel` of `reply` showing its messages and its call tree (what `show(reply, tree=True)` builds)."""
    return ViewModel(
        kind="sequence",
        title=title,
        sequence=reply,
        message=None,
        tracker=tracker,
        show_messages=True,
        show_tree=True,
    )
