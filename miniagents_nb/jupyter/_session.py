"""The notebook session: one notebook-wide `MiniAgents` context on the kernel's loop, and everything around it.

`%load_ext miniagents_nb` creates the session in the sync context of the load, so the context variable it sets is
the kernel's own and every later cell sees it (a value set inside a cell that awaits would be lost with the cell's
task: ipykernel#749). The session is never finalized through `ContextVar.reset` from another cell; unloading
cancels what still runs and deactivates without touching tokens of foreign contexts.

Around the context: the call tracker (senders, call trees, per-cell calls), the cell hooks (`pre_run_cell` charges
new calls to the cell and deals with an earlier run of the same cell that still goes on; `post_run_cell` sends
finished views' final state), the sync facade runner, the rich displays and the magics.

Errors in notebook words (what the session changes in how IPython reports things):

* An interrupt ends the cell with one line, `interrupted: 3 agent calls cancelled`: the calls the cell started are
  cancelled and counted, and the traceback through this package's frames (where the await happened to be) is not
  shown: it says nothing about the user's code. A cell that started no agent call keeps IPython's traceback.
* An agent's failure is reported by the view that shows it and by the exception its `await` raises, not a third
  time by the core's error log: while the session is loaded, the `miniagents_nb` logger has a `NullHandler`, so
  Python's last-resort handler (plain stderr, library frames and all) stays quiet. Logging that the user configured
  (`logging.basicConfig()`, a handler on `miniagents_nb`) still receives every record, and `%miniagents` counts
  the failures and names the latest, so one that nobody awaited or viewed is not lost.
* Re-running a cell while calls of its earlier run still go on (in the background, after that run returned) marks
  those calls superseded (their views say so) and, by default, cancels them; `%miniagents rerun keep` lets them run.
  A cell is known by the id its front end sends (JupyterLab, Notebook 7 and VS Code do; without one nothing is
  guessed).
  Cancel is the default because the re-run replaced the cell's output: whatever the earlier run still produces
  would be paid for (LLM tokens) and never seen. Either way one line in the new run's output says what happened.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from miniagents_nb.agents import MiniAgents
from miniagents_nb.errors import RunStoreError
from miniagents_nb.jupyter._chat_cell import chat_cell_views
from miniagents_nb.jupyter._recorded_view import RecordedRunView
from miniagents_nb.jupyter._recording import (
    DEFAULT_STORE,
    NotebookRecording,
    execution_count,
    notebook_path,
    shown_path,
)
from miniagents_nb.jupyter._runs_table import RunsTable
from miniagents_nb.jupyter._runs_widget import RunsTableWidget
from miniagents_nb.jupyter._tracker import CallRecord, CallTracker, current_cell
from miniagents_nb.jupyter._wakeup import wake_loop_on_signals
from miniagents_nb.jupyter.magics import MiniAgentsMagics, chat_transformer
from miniagents_nb.jupyter.views import DEFAULT_MAX_UPDATES_PER_SECOND, LiveView, make_view, refresh_live_views
from miniagents_nb.messages import Message, MessagePromise, MessageSequencePromise
from miniagents_nb.promising import context as promising_context
from miniagents_nb.promising.worker_thread import run_in_worker_thread
from miniagents_nb.runs import RecordedRun, RunStore

__all__ = ["NotebookSession", "current_session"]

_SESSION_ATTR = "_miniagents_nb_session"
_DISPLAYED_TYPES: tuple[type, ...] = (MessageSequencePromise, MessagePromise, Message)
_MAGIC_NAMES = (("cell", "miniagent"), ("cell", "chat"), ("line", "miniagents"))
_INTERRUPTS = (KeyboardInterrupt, asyncio.CancelledError)
_CELL_KEYS_KEPT = 1000  # cells remembered for re-runs (the oldest are forgotten first)


def _display_recorded(run: RecordedRun) -> None:
    """A `RecordedRun` as the last value of a cell: the reply view's static forms (the core's text otherwise)."""
    from IPython.display import display

    display(RecordedRunView(run)._repr_mimebundle_(), raw=True)


def current_session(shell: Any = None) -> NotebookSession | None:
    """The session of the running IPython shell, if the extension is loaded."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    session = getattr(shell, _SESSION_ATTR, None)
    return session if isinstance(session, NotebookSession) else None


class NotebookSession:
    """Everything `%load_ext miniagents_nb` sets up, and takes down again on unload."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.miniagents = MiniAgents()
        self.tracker = CallTracker(self.miniagents)
        self.recording = NotebookRecording(self.miniagents)
        """Where the runs of the cells are recorded (`%miniagents record`, `MINIAGENTS_NB_RECORD`)."""
        self.chat_history: list[Message] = []
        self.max_updates_per_second = DEFAULT_MAX_UPDATES_PER_SECOND
        self._cell = 0
        self.rerun_policy = "cancel"
        """What re-running a cell does to the calls its earlier run left going: "cancel" (default) or "keep"."""
        self._runs_by_cell: dict[str, int] = {}
        self._showing_interrupt: list[str] | None = None
        """While an interrupt is shown: its traceback lines ([] for IPython's own)."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._undo: list[Callable[[], None]] = []

    # --- load / unload -------------------------------------------------------------------------------------------

    def load(self) -> None:
        shell = self.shell
        self.miniagents.activate()
        self._undo.append(self._deactivate)
        unsubscribe = self.miniagents.subscribe(self.tracker)
        self._undo.append(unsubscribe)
        self.recording.start()
        self._undo.append(self.recording.close)

        self._undo.append(promising_context.install_blocking_runner(run_in_worker_thread))

        logger = self.miniagents.logger
        quiet = logging.NullHandler()  # the view and the `await` report an agent's failure (see the module docstring)
        logger.addHandler(quiet)
        self._undo.append(lambda: logger.removeHandler(quiet))

        previous_custom = (shell.custom_exceptions, getattr(shell, "CustomTB", None))
        shell.set_custom_exc(_INTERRUPTS, self._show_interrupt)
        self._undo.append(lambda: _restore_custom_exc(shell, *previous_custom))

        self._undo.append(wake_loop_on_signals())  # an interrupt must stop a cell whose loop waits idle

        shell.events.register("pre_run_cell", self._pre_run_cell)
        shell.events.register("post_run_cell", self._post_run_cell)
        self._undo.append(lambda: shell.events.unregister("pre_run_cell", self._pre_run_cell))
        self._undo.append(lambda: shell.events.unregister("post_run_cell", self._post_run_cell))

        formatter = shell.display_formatter.ipython_display_formatter
        for cls in _DISPLAYED_TYPES:
            previous = formatter.for_type(cls, self._display)
            self._undo.append(functools.partial(_restore_formatter, formatter, cls, previous))
        previous = formatter.for_type(RecordedRun, _display_recorded)
        self._undo.append(functools.partial(_restore_formatter, formatter, RecordedRun, previous))

        magics = MiniAgentsMagics(shell, self)
        shell.register_magics(magics)
        self._undo.append(lambda: _unregister_magics(shell, magics))

        shell.input_transformers_cleanup.append(chat_transformer)
        self._undo.append(lambda: _remove(shell.input_transformers_cleanup, chat_transformer))

        setattr(shell, _SESSION_ATTR, self)
        self._undo.append(lambda: _delattr(shell, _SESSION_ATTR))

    def unload(self) -> None:
        """Cancel every agent still running, then undo the load in reverse order."""
        self.cancel_all()
        for task in list(self.miniagents.child_tasks) + list(self._tasks):
            task.cancel()
        self.tracker.abandon()  # (it stops observing below: the calls' end events would never reach it)
        while self._undo:
            self._undo.pop()()

    def _deactivate(self) -> None:
        # The core resets its token when it can and, from another context copy, restores the parent instead.
        self.miniagents.deactivate()

    # --- cells ---------------------------------------------------------------------------------------------------

    def _pre_run_cell(self, info: Any = None) -> None:
        self._cell += 1
        current_cell.set(self._cell)
        self.tracker.reset_cancel_counts()
        if promising_context.current_context_or_none() is None:
            # The context variable was lost (the extension was loaded in a cell that awaited): set it again for
            # this cell. A context the user activated on purpose is left alone.
            self.miniagents.make_current_here()
        key = _cell_key(info)
        count = execution_count(self.shell, info)
        self.recording.pre_cell(
            f"In [{count}]" if count is not None else f"cell {self._cell}",
            notebook_path(self.shell),
            key if key is not None else (None if count is None else str(count)),
        )
        if key is not None:
            earlier = self._runs_by_cell.pop(key, None)
            self._runs_by_cell[key] = self._cell
            if len(self._runs_by_cell) > _CELL_KEYS_KEPT:
                del self._runs_by_cell[next(iter(self._runs_by_cell))]
            if earlier is not None:
                self._supersede(earlier)

    def _supersede(self, earlier_cell: int) -> None:
        """The cell runs again: mark what its earlier run left going, cancel it (unless "keep"), and say so."""
        records = self.tracker.records_of_cell(earlier_cell)
        if not records:
            return
        roots = {id(root): root for root in (record.root() for record in records)}
        # its top-level calls too, ended or not: the views of that run are the views of those calls
        self.tracker.mark_superseded([*roots.values(), *records])
        if self.rerun_policy == "keep":
            running = sum(1 for record in records if not record.ended)
            line = (
                f"superseded: {_calls(running)} of this cell's earlier run kept running "
                "(`%miniagents cancel` stops all calls)"
            )
        else:
            line = (
                f"superseded: {_calls(self.tracker.cancel(records))} of this cell's earlier run cancelled "
                "(`%miniagents rerun keep` keeps such runs)"
            )
        sys.stderr.write(line + "\n")  # the new run's output (the earlier one was cleared)
        sys.stderr.flush()

    def _post_run_cell(self, result: Any = None) -> None:
        error = getattr(result, "error_in_exec", None)
        if isinstance(error, _INTERRUPTS):  # (done already when `_show_interrupt` ran; cancelling twice is a no-op)
            self.tracker.cancel(self.tracker.records_of_cell(self._cell))
        refresh_live_views(self._cell)
        self.recording.post_cell()

    def _show_interrupt(
        self, shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: int | None = None
    ) -> list[str] | None:
        """IPython's handler of a `KeyboardInterrupt` / `CancelledError` that ended a cell: cancel the cell's calls,
        then show one line (or IPython's own traceback, for a cell that started no agent call)."""
        if self._showing_interrupt is not None:  # IPython 8's `showtraceback` asks the custom handler for the text
            return self._showing_interrupt or shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset)
        cell = self._cell
        self.tracker.cancel(self.tracker.records_of_cell(cell))
        count = self.tracker.cancelled_in_cell(cell)
        try:
            if count == 0:
                self._showing_interrupt = []
                shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
            else:
                line = f"interrupted: {_calls(count)} cancelled"
                self._showing_interrupt = [line]
                shown = KeyboardInterrupt(line)
                shown._render_traceback_ = lambda: [line]  # type: ignore[attr-defined]  # IPython 9's hook
                shell.showtraceback((KeyboardInterrupt, shown, None))
        finally:
            self._showing_interrupt = None
        return None

    # --- displays, tasks, cancelling ---------------------------------------------------------------------------

    def view(self, obj: Any, *, tree: bool | None = None, messages: bool = True) -> LiveView:
        return make_view(
            obj, tree=tree, messages=messages, tracker=self.tracker, max_updates_per_second=self.max_updates_per_second
        )

    def _display(self, obj: Any) -> None:
        self.view(obj)._ipython_display_()

    def keep_task(self, task: asyncio.Task[Any]) -> None:
        """Hold a background task until it ends (the loop holds tasks weakly)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_all(self) -> int:
        """Cancel every running agent call and every message still streaming from one."""
        return self.tracker.cancel(self.tracker.live_records())

    # --- %%chat --------------------------------------------------------------------------------------------------

    async def chat(self, agent: Any, text: str, kwargs: dict[str, Any], new: bool, tree: bool) -> None:
        """Send `text` (after the conversation so far) to `agent`, show the reply live, remember the exchange."""
        __tracebackhide__ = True
        from miniagents_nb.ext.llms import UserMessage

        if new:
            self.chat_history.clear()
        user_message = UserMessage(content=text)
        reply = agent.trigger([*self.chat_history, user_message], **kwargs)
        record = self.tracker.record_of_sequence(reply)
        views = chat_cell_views(
            agent.alias,
            text,
            reply,
            tree=tree,
            tracker=self.tracker,
            max_updates_per_second=self.max_updates_per_second,
        )
        for view in views:
            view._ipython_display_()
        try:
            replies = await reply
            for view in views:
                await view.wait()
        except asyncio.CancelledError:
            if record is not None:
                self.tracker.cancel(record.walk())
            raise
        self.chat_history.extend([user_message, *replies])

    # --- %miniagents record / runs / run --------------------------------------------------------------------------

    def record(self, value: str | None) -> str:
        """`off`, `on` or a PATH (None: just say where runs go)."""
        if value is not None:
            self.recording.set(value)
        return self.recording.status_line()

    def _reading_store(self) -> RunStore:
        self.recording.flush()
        return self.recording.store or RunStore.shared(self.recording.path or os.path.abspath(DEFAULT_STORE))

    def runs_table(self, limit: int | None) -> RunsTable | RunsTableWidget:
        """The table of the recent runs: a widget whose ids open each run below it, static when there is none."""
        store = self._reading_store()
        where = shown_path(store.path)
        try:
            summaries = store.runs(limit=limit)
        except RunStoreError:
            if os.path.exists(store.path):
                raise
            summaries = []  # nothing recorded there yet
        table = RunsTable(summaries, where)
        if not summaries:
            return table
        return RunsTableWidget(table, lambda run_id: RecordedRunView(store.load(run_id)))

    def recorded_run(self, run_id: int, *, tree: bool = True, timeline: bool = False) -> RecordedRunView:
        return RecordedRunView(self._reading_store().load(run_id), tree=tree, timeline=timeline)

    # --- %miniagents ---------------------------------------------------------------------------------------------

    def status_text(self) -> str:
        ma = self.miniagents
        lines = [
            f"miniagents_nb notebook layer (ipykernel {_version_of('ipykernel')}, IPython {_version_of('ipython')}, "
            f"Python {sys.version.split()[0]})",
            "Context: one notebook-wide MiniAgents"
            f" (errors_as_messages={ma.errors_as_messages},"
            f" start_everything_soon_by_default={ma.start_everything_soon_by_default})",
            "Sync facade: MiniAgents().run(...) in a cell runs on a worker thread's loop",
            f"Views: at most {self.max_updates_per_second:g} front-end updates per second each",
            f"Chat: {len(self.chat_history)} message{'s' if len(self.chat_history) != 1 else ''} in the conversation",
        ]
        lines.append(self.recording.status_line())
        if self.rerun_policy != "cancel":  # (the default goes unsaid: `%miniagents rerun` tells it)
            lines.append(
                "Re-running a cell keeps the calls its earlier run left going (`%miniagents rerun cancel` to cancel)"
            )
        active = self.tracker.live_records()
        lines.append(f"Agent calls since the extension was loaded: {self.tracker.calls_seen}")
        if self.tracker.failures_seen:  # a failure nobody awaited or viewed is reported nowhere else
            lines.append(f"Failed agent calls: {self.tracker.failures_seen} (latest: {self.tracker.last_failure})")
        lines.append(f"Active agent calls: {len(active)}")
        lines.extend(f"  {_describe(record)}" for record in active)
        return "\n".join(lines)


def _calls(count: int) -> str:
    return f"{count} agent call{'' if count == 1 else 's'}"


def _cell_key(info: Any) -> str | None:
    """What identifies a notebook cell across its runs: the id the front end sends (JupyterLab, Notebook 7, VS Code).

    Nothing is guessed without it (a console, nbclient and papermill send none): two cells with the same source
    are not one cell, and cancelling a run that was not superseded would lose work the user is waiting for.
    """
    cell_id = getattr(info, "cell_id", None)
    return str(cell_id) if cell_id else None


def _restore_custom_exc(shell: Any, exceptions: tuple[type[BaseException], ...], handler: Any) -> None:
    shell.custom_exceptions = exceptions
    if handler is not None:
        shell.CustomTB = handler


def _describe(record: CallRecord) -> str:
    parts = [
        f"#{record.label} {record.alias}",
        record.status + (" (its messages still stream)" if record.ended else ""),
    ]
    elapsed = record.elapsed()
    if elapsed is not None:
        parts.append(f"{elapsed:.1f} s")
    if record.caller is not None:
        parts.append(f"called by #{record.caller.label}")
    elif record.cell is not None:
        parts.append(f"started in cell run {record.cell}")
    return ", ".join(parts)


def _version_of(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "?"


def _restore_formatter(formatter: Any, cls: type, previous: Any) -> None:
    if previous is None:
        formatter.pop(cls, None)
    else:
        formatter.for_type(cls, previous)


def _unregister_magics(shell: Any, magics: MiniAgentsMagics) -> None:
    registry = shell.magics_manager.magics
    for kind, name in _MAGIC_NAMES:
        bound = registry[kind].get(name)
        if getattr(bound, "__self__", None) is magics:
            del registry[kind][name]
    shell.magics_manager.registry.pop(type(magics).__name__, None)


def _remove(items: list[Any], item: Any) -> None:
    if item in items:
        items.remove(item)


def _delattr(obj: Any, name: str) -> None:
    if hasattr(obj, name):
        delattr(obj, name)
