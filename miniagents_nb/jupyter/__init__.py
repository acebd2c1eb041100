"""The notebook layer: `%load_ext miniagents_nb`, live views of agents at work, and the `%%miniagent` magics.

After `%load_ext miniagents_nb`:

* one notebook-wide `MiniAgents` context is active on the kernel's loop: `await agent.trigger(...)` works in any
  cell with no `async with`, and agents keep running in the background between cells;
* the seeds' `MiniAgents().run(main())` works in a cell (on a worker thread's loop) and "Run All" goes on;
* displaying a `MessageSequencePromise`, `MessagePromise` or `Message` shows a live view; `show(obj, ...)` picks
  the options;
* `%%miniagent NAME`, `%%chat AGENT` and `%miniagents` are available (see `miniagents_nb.jupyter.magics`);
* interrupting the kernel cancels the agent calls of the interrupted cell, which ends with one line that counts them;
  re-running a cell whose earlier run still goes on marks that run superseded and cancels it (`%miniagents rerun
  keep` keeps it); errors speak of cells, `await` and `%load_ext` (see `miniagents_nb.jupyter._session`).

This package imports IPython, ipywidgets and anywidget; the core never imports it (only
`miniagents_nb.load_ipython_extension` does, lazily).
"""

from __future__ import annotations

from typing import Any

from miniagents_nb.jupyter._session import NotebookSession, current_session
from miniagents_nb.jupyter.user_agent import NotebookChat, create_notebook_user_agent, notebook_user_agent
from miniagents_nb.jupyter.views import (
    DEFAULT_MAX_UPDATES_PER_SECOND,
    AgentTreeView,
    LiveView,
    SequenceView,
    TokenStreamView,
    make_view,
)

__all__ = [
    "DEFAULT_MAX_UPDATES_PER_SECOND",
    "AgentTreeView",
    "LiveView",
    "NotebookChat",
    "NotebookSession",
    "SequenceView",
    "TokenStreamView",
    "create_notebook_user_agent",
    "current_session",
    "load_ipython_extension",
    "notebook_user_agent",
    "show",
    "unload_ipython_extension",
    "view",
]


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext miniagents_nb`: activate the notebook-wide context, the views and the magics (once)."""
    if current_session(ipython) is not None:
        return
    NotebookSession(ipython).load()


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext miniagents_nb`: cancel what still runs and undo the load."""
    session = current_session(ipython)
    if session is not None:
        session.unload()


def view(
    obj: Any,
    *,
    tree: bool | None = None,
    messages: bool = True,
    timeline: bool = False,
    max_updates_per_second: float | None = None,
) -> LiveView:
    """The live view of `obj` (a `MessageSequencePromise`, `MessagePromise` or `Message`), not displayed yet.

    `tree=None` shows the agent call tree under a sequence when the notebook layer recorded the call that produced
    it; `tree=True` asks for it (the extension must be loaded); `messages=False` shows the tree alone.
    `timeline=True` adds the timeline of those calls: one lane per call, queued → started → ended, with ticks
    where tokens and messages arrived (the tree has a button that shows it too).
    """
    session = current_session()
    if max_updates_per_second is None:
        max_updates_per_second = session.max_updates_per_second if session else DEFAULT_MAX_UPDATES_PER_SECOND
    return make_view(
        obj,
        tree=tree,
        messages=messages,
        timeline=timeline,
        tracker=session.tracker if session is not None else None,
        max_updates_per_second=max_updates_per_second,
    )


def show(
    obj: Any,
    *,
    tree: bool | None = None,
    messages: bool = True,
    timeline: bool = False,
    max_updates_per_second: float | None = None,
) -> None:
    """Display the live view of `obj` in the current cell (see `view()` for the options).

    It returns None, like `display()`, so that a `show(...)` on a cell's last line is not displayed twice; use
    `view(...)` to keep a handle on the widget.
    """
    view(
        obj, tree=tree, messages=messages, timeline=timeline, max_updates_per_second=max_updates_per_second
    )._ipython_display_()
