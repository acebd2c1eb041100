"""The views still following their streams, so that the end of a cell can bring the ones it displayed up to date.

Held weakly: a view the user dropped is not kept alive here, and a final one leaves the set (it has nothing more to
send). The chat widget and the views register through `register_live_view`.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any, Protocol

from miniagents_nb.jupyter._follower import BUDGET


class LiveView(Protocol):
    """What this module needs of a view (`views.LiveView`; a protocol, so that there is no import cycle)."""

    _final: bool
    _closed: bool
    _thread: int
    _loop: Any
    _display_cells: set[int | None]

    def refresh(self) -> None: ...

    def messages_due(self) -> int: ...

    def _finish(self, force: bool = False) -> None: ...


__all__ = ["LiveView", "refresh_live_views", "register_live_view", "unregister_live_view"]

_LIVE_VIEWS: weakref.WeakSet[LiveView] = weakref.WeakSet()


def register_live_view(view: LiveView) -> None:
    _LIVE_VIEWS.add(view)


def unregister_live_view(view: LiveView) -> None:
    _LIVE_VIEWS.discard(view)


def refresh_live_views(cell: int | None = None) -> None:
    """Bring the views that cell `cell` displayed up to date now (called at the end of each cell).

    A stream that ended while the cell ran gets its final state sent before the cell's reply, so headless runs
    record it whatever order the tasks happened to run in. Views displayed by earlier cells are left to their own
    follower: an update sent now would carry this cell's header, and nbclient would rewrite the earlier cell's
    saved output with a final form that nbval (which ignores display updates) never sees. Views with no event loop
    to follow them (a plain IPython shell) are refreshed at every cell end. All of it within the messages budget
    of every view together (`follower.BUDGET`): beyond it, a view is left to its follower, which waits its turn.
    """
    me = threading.get_ident()
    for view in list(_LIVE_VIEWS):
        if view._final or view._closed or view._thread != me:
            continue
        if view._loop is not None and cell not in view._display_cells:
            continue
        if not BUDGET.try_take(view.messages_due()):  # (too many at once for the front end: its follower sends it)
            continue
        try:
            view.refresh()
        except Exception:  # one broken view must not fail the cell (this runs in IPython's post_run_cell hook)
            with contextlib.suppress(Exception):
                view._finish(force=True)
