"""Make a kernel interrupt reach a cell at once, even while the kernel's loop waits with nothing to do.

ipykernel turns SIGINT into the cancellation of the running cell from a Python signal handler. Python runs such a
handler only when the main thread runs Python code again; the signal itself may be delivered to another thread
(ZeroMQ's), so a loop asleep in `select()` (a cell awaiting an agent that waits for an LLM's first token, or sleeps)
does not wake: the interrupt takes effect only when the next timer or socket event comes, maybe a minute later.
`signal.set_wakeup_fd` is Python's answer: the C-level handler writes the signal number to a socket the loop
watches, so the loop wakes and the Python handler runs. Nothing is installed where someone set a wakeup fd already
(an asyncio loop with signal handlers of its own), outside the main thread, or without a running loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable

__all__ = ["wake_loop_on_signals"]


def _nothing() -> None:
    pass


def wake_loop_on_signals() -> Callable[[], None]:
    """Install the wakeup socket on the running loop; returns what undoes it."""
    if threading.current_thread() is not threading.main_thread():
        return _nothing
    try:
        loop = asyncio.get_running_loop()  # a kernel's cell code runs inside its loop
    except RuntimeError:
        return _nothing
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    try:
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    except (ValueError, OSError):
        reader.close()
        writer.close()
        return _nothing
    if previous != -1:  # somebody wakes on signals already: leave theirs in place
        signal.set_wakeup_fd(previous)
        reader.close()
        writer.close()
        return _nothing

    def drain() -> None:
        with contextlib.suppress(OSError):
            while reader.recv(4096):
                pass

    loop.add_reader(reader.fileno(), drain)

    def undo() -> None:
        with contextlib.suppress(ValueError, OSError):
            current = signal.set_wakeup_fd(-1)
            if current not in (writer.fileno(), -1):
                signal.set_wakeup_fd(current)  # someone replaced ours meanwhile: theirs stays
        with contextlib.suppress(Exception):
            loop.remove_reader(reader.fileno())
        reader.close()
        writer.close()

    return undo
