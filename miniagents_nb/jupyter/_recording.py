"""The notebook's run recording: every cell that starts agent calls leaves a run in a SQLite store.

By default the store is `.miniagents/runs.sqlite` in the kernel's working directory, which JupyterLab, Notebook 7
and VS Code make the notebook's own directory, so each notebook folder keeps its runs beside its notebooks.
`MINIAGENTS_NB_RECORD=0` (or `off`) turns recording off for kernels started with it, `MINIAGENTS_NB_RECORD=PATH`
records elsewhere; `%miniagents record off|on|PATH` changes it in a running kernel.

A run is what one cell execution started: at `pre_run_cell` the cell gets a run request (`RunStore.run_label`,
labelled `In [N]`, with the notebook's path and the cell's id when the front end sends them) that the calls the cell
makes join when they are queued; nothing is written for a cell that starts no call. At `post_run_cell` the run
ends; calls the cell left running (or started from its background tasks) stay in it.

Recording never breaks a cell: a store that cannot be written (a read-only directory, a full disk, a locked or
corrupt file) gives one warning in the cell's output (stderr), says why in `%miniagents`, and recording stops
until `%miniagents record on` (or a new PATH).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from contextvars import Token
from pathlib import Path
from typing import Any

from miniagents_nb.agents import MiniAgents
from miniagents_nb.runs import RunStore
from miniagents_nb.runs.recorder import StoreRecording
from miniagents_nb.runs.run_requests import RunRequest, requested_run

__all__ = ["DEFAULT_STORE", "RECORD_ENV", "NotebookRecording", "execution_count", "notebook_path", "shown_path"]

RECORD_ENV = "MINIAGENTS_NB_RECORD"
DEFAULT_STORE = os.path.join(".miniagents", "runs.sqlite")
"""Relative to the kernel's working directory (the notebook's directory in JupyterLab)."""

_OFF_WORDS = frozenset({"0", "off", "false", "no"})
_ON_WORDS = frozenset({"", "1", "on", "true", "yes"})
_FIRST_FLUSH_S = 5.0
"""The first run written to a store is waited for (once per store), so a store that cannot be written says so
in the cell that tried, not in some later one."""


def _unwritable_reason(path: Path) -> str | None:
    """Why the store file cannot be created there (None when it looks possible; the writer has the last word)."""
    parent = path.parent
    while not parent.exists():
        if parent.parent == parent:
            return f"{parent} does not exist"
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"the directory {parent} is not writable"
    if path.exists() and not os.access(path, os.W_OK):
        return f"the file {path} is read-only"
    return None


class NotebookRecording:
    """Where the session's runs go, and the run of each cell (see the module docstring)."""

    def __init__(self, miniagents: MiniAgents) -> None:
        self.miniagents = miniagents
        self.path: str | None = None
        """The store file of the last `on` (recording or not): what `record on` resumes."""
        self.store: RunStore | None = None
        self.problem: str | None = None
        """Why recording is off although it was asked for (None when it is on, or off on purpose)."""
        self._recording: StoreRecording | None = None
        self._unsubscribe: Any = None
        self._request: RunRequest | None = None
        self._token: Token[RunRequest | None] | None = None
        self._warned: object = None
        self._flushed_once: set[str] = set()

    # --- choosing where ----------------------------------------------------------------------------------------

    @property
    def on(self) -> bool:
        return self._recording is not None and self.store is not None and self.store.recording

    def start(self, environ: Mapping[str, str] | None = None) -> None:
        """The choice a kernel starts with: `MINIAGENTS_NB_RECORD`, else the default store."""
        value = (os.environ if environ is None else environ).get(RECORD_ENV, "").strip()
        if value.lower() in _OFF_WORDS:
            return
        self.set("on" if value.lower() in _ON_WORDS else value)

    def set(self, value: str) -> None:
        """`off`, `on` (the last path, else the default) or a path (`~` expanded; a directory gets runs.sqlite)."""
        word = value.strip()
        if word.lower() in _OFF_WORDS:
            self.close()
            self.problem = None
            return
        if word.lower() in _ON_WORDS:
            path = self.path or os.path.abspath(DEFAULT_STORE)
        else:
            target = Path(word).expanduser()
            if target.is_dir() or word.endswith(("/", os.sep)):
                target = target / "runs.sqlite"
            path = str(target.absolute())
        self._open(path)

    def _open(self, path: str) -> None:
        self.close()
        self.path = path
        self.problem = None
        reason = _unwritable_reason(Path(path))
        if reason is not None:
            self._warn(path, reason)
            return
        try:
            store = RunStore.shared(path)
            if store.fault is not None:
                store.resume()
            recording = store.open_recording(self.miniagents)
        except Exception as error:  # recording must never break the session
            self._warn(path, f"{type(error).__name__}: {error}")
            return
        self.store = store
        self._recording = recording
        self._unsubscribe = self.miniagents.subscribe(recording.observe)
        self.miniagents.recording = recording  # where `context.recording.flush()` and the core look for it

    def close(self) -> None:
        """Stop recording (the current run ends; what was observed is handed to the store)."""
        self._end_cell_run()
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        recording, self._recording = self._recording, None
        if recording is not None:
            if self.miniagents.recording is recording:
                self.miniagents.recording = None
            try:
                recording.close()
            except Exception as error:  # a recorder must never break the agents it recorded
                self.miniagents.log_error_once(error, "THE RUN RECORDER FAILED TO CLOSE ITS RECORDING")
        self.store = None

    # --- faults -----------------------------------------------------------------------------------------------

    def _warn(self, path: str, reason: str) -> None:
        self.problem = f"{path}: {reason}"
        sys.stderr.write(
            f"miniagents_nb: not recording runs to {path} ({reason}). The agents are not affected; "
            "`%miniagents record PATH` records elsewhere, `%miniagents record on` tries again, "
            "`%miniagents record off` stops recording.\n"
        )
        sys.stderr.flush()

    def check(self) -> None:
        """Say once, in the cell's output, that the store stopped writing (a fault in its writer thread)."""
        store = self.store
        if store is None or store.fault is None or store.fault is self._warned:
            return
        self._warned = store.fault
        fault = store.fault
        self.close()
        self._warn(store.path, f"{type(fault).__name__}: {fault}")

    # --- cells -------------------------------------------------------------------------------------------------

    def pre_cell(self, label: str, notebook: str | None, cell: str | None) -> None:
        """The cell's run: the top-level calls it makes join it (a run is written only when one is made)."""
        self._end_cell_run()
        self.check()
        if self.store is None or self._recording is None:
            return
        self._request = self.store.run_label(label, notebook=notebook, cell=cell).request
        self._token = requested_run.set(self._request)

    def post_cell(self) -> None:
        request = self._request
        made_run = request is not None and bool(request.recordings)  # (ending the request forgets it)
        self._end_cell_run()
        store = self.store
        if made_run and store is not None and store.path not in self._flushed_once:
            self._flushed_once.add(store.path)
            store.flush(timeout=_FIRST_FLUSH_S)
        self.check()

    def _end_cell_run(self) -> None:
        request, self._request = self._request, None
        token, self._token = self._token, None
        if token is not None:
            try:
                requested_run.reset(token)
            except ValueError:  # set in another context (a cell that awaited): leave it, the request has ended
                requested_run.set(None)
        if request is not None:
            request.end()

    def flush(self, timeout: float = 30.0) -> None:
        """Make what the cells recorded so far readable (before listing or loading runs)."""
        if self._recording is not None:
            self._recording.flush(timeout)
        self.check()

    def status_line(self) -> str:
        if self.on and self.path is not None:
            return f"Recording: runs to {shown_path(self.path)} (`%miniagents runs` lists them)"
        if self.problem is not None:
            return f"Recording: off ({self.problem}; `%miniagents record on` tries again)"
        return "Recording: off (`%miniagents record on` records runs)"


def shown_path(path: str) -> str:
    """The path relative to the working directory when it is under it (the default reads `.miniagents/...`)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return path if relative.startswith("..") else relative


def execution_count(shell: Any, info: Any) -> int | None:
    """The `In [N]` of the cell starting now. IPython 9 counts a cell that is stored in the history before
    `pre_run_cell`; IPython 8 counts it when it ends. A cell run without history (nbval runs every cell so) has no
    number: None, rather than the number of the last stored cell, which all such cells would share."""
    if info is not None and getattr(info, "store_history", True) is False:
        return None
    count = getattr(shell, "execution_count", None)
    if not isinstance(count, int):
        return None
    import IPython

    if IPython.version_info >= (9,) and getattr(info, "store_history", False) and not getattr(info, "silent", False):
        return count - 1
    return count


def notebook_path(shell: Any) -> str | None:
    """The notebook's path when the front end tells it (JupyterLab and VS Code set `__session__`)."""
    value = getattr(shell, "user_ns", {}).get("__session__") or os.environ.get("JPY_SESSION_NAME")
    return str(value) if value else None
