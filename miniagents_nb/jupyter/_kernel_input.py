"""Whether the running cell can wait for a widget's input, and what to say when it cannot.

A widget's messages reach the kernel as comm messages, and only ipykernel 7.4+ handles them while a cell is running
(ipykernel PR #1565). A cell that awaits the user's text on an older kernel would wait forever, so the chat asks
here first and fails with the message below instead of hanging.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = ["cell_can_await_input", "deadlock_message", "ipykernel_version", "kernel_shell", "running_cell"]


def ipykernel_version() -> tuple[int, int] | None:
    try:
        match = re.match(r"(\d+)\.(\d+)", version("ipykernel"))
    except PackageNotFoundError:
        return None
    return (int(match.group(1)), int(match.group(2))) if match else None


def kernel_shell() -> Any:
    """The IPython shell when it runs in a kernel (None in plain Python and in a terminal IPython)."""
    from IPython import get_ipython

    shell = get_ipython()
    return shell if getattr(shell, "kernel", None) is not None else None


def cell_can_await_input() -> bool:
    """Whether a cell may await a dialog that waits for the chat's input: True on ipykernel 7.4+ (it handles widget
    messages while a cell runs) and outside a kernel; False on older kernels, where the dialog must run in the
    background (`chat.start(...)`, or `dialog_loop.trigger(...)` without `await`)."""
    if kernel_shell() is None:
        return True
    found = ipykernel_version()
    return found is None or found >= (7, 4)


def running_cell() -> Any:
    """The execution result of the cell whose code runs now in the kernel (None between cells): IPython hands it
    to the display hook for exactly the time the cell's code runs, awaits included."""
    shell = kernel_shell()
    if shell is None:
        return None
    return getattr(getattr(shell, "displayhook", None), "exec_result", None)


def deadlock_message(blocked_by_sync_cell: bool = False) -> str:
    if blocked_by_sync_cell:
        return (
            "This dialog runs inside a cell that blocks until it ends (`MiniAgents().run(...)` runs it on a worker "
            "thread), and a kernel hands the chat widget's messages to Python only between cells or while a cell "
            "awaits, so it would wait forever for the user's text. Await the dialog at the top level of the cell "
            "instead (`await dialog_loop.trigger(...)`, no `MiniAgents().run`), or start it in the background "
            "with `NotebookChat().start(<prompt>, assistant_agent=...)`."
        )
    found = ipykernel_version()
    kernel = "ipykernel " + ".".join(map(str, found)) if found else "This kernel"
    return (
        f"{kernel} hands the chat widget's messages to Python only after the running cell ends, and this cell "
        "waits for the dialog, so it would wait forever for the user's text. Run the dialog in the background "
        "instead: `NotebookChat().start(<prompt>, assistant_agent=...)`, or `dialog_loop.trigger(..., "
        "user_agent=notebook_user_agent)` without `await` (the cell returns at once and the chat keeps working); "
        "or upgrade to ipykernel>=7.4, where a cell can await the dialog."
    )
