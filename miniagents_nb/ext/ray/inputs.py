"""The input of a remote call, streamed: the caller sends each input message as it resolves, the worker hands it
to the remote agent's call as it comes (`ctx.message_promises` sees it then, as for a full-duplex local call).

The caller numbers its `AgentWorker.send_input` calls, because an async actor does not run its method calls in the
order they were sent; `InputFeed` puts them back in order and keeps those that arrive before the call exists. An
input the caller cannot encode, or the worker cannot decode, is an error at its position of the input.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from miniagents_nb.agents import AgentCall
from miniagents_nb.ext.ray.wire import decode_error, decode_value

__all__ = ["InputFeed", "InputFeeds"]


class InputFeed:
    """The input of one remote call: pieces numbered by the caller, given to the call in their order."""

    __slots__ = ("call", "next", "pending")

    def __init__(self) -> None:
        self.call: AgentCall | None = None
        self.next = 0
        self.pending: dict[int, tuple[str, Any]] = {}

    def put(self, number: int, kind: str, data: Any) -> None:
        self.pending[number] = (kind, data)
        self._deliver()

    def attach(self, call: AgentCall) -> None:
        self.call = call
        self._deliver()

    def _deliver(self) -> None:
        call = self.call
        while call is not None and self.next in self.pending:
            kind, data = self.pending.pop(self.next)
            self.next += 1
            if call.is_finished:
                continue
            if kind == "end":
                call.finish()
                continue
            try:
                item = decode_value(data) if kind == "message" else decode_error(data)
            except Exception as error:  # e.g. a message class this worker cannot import
                item = error
            call.send_message(item)


class InputFeeds:
    """The input feeds of a worker's calls, by call key (a late piece of a call that has ended is dropped)."""

    _ENDED_KEPT = 1000

    def __init__(self) -> None:
        self._feeds: dict[str, InputFeed] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()

    def feed(self, key: str) -> InputFeed | None:
        if key in self._ended:
            return None
        return self._feeds.setdefault(key, InputFeed())

    def end(self, key: str) -> None:
        self._feeds.pop(key, None)
        self._ended[key] = None
        if len(self._ended) > self._ENDED_KEPT:
            self._ended.popitem(last=False)
