"""A real ipykernel driven through jupyter_client, recording every IOPub message (for the kernel-level tests).

The kernel runs the interpreter of the test run (`sys.executable`), so the same tests check whichever ipykernel
is installed next to it. Its stdout/stderr go to a file: asyncio's "Task was destroyed but it is pending" would
land there (or on IOPub's stderr stream, which is recorded too).
"""

from __future__ import annotations

import os
import queue
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "jupyter"
"""Where the kernels' logs go (gitignored; a failing test points at its log)."""


@dataclass
class CellRun:
    """What one execute request produced (messages whose parent is that request)."""

    msg_id: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] in types]

    @property
    def stdout(self) -> str:
        return "".join(m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == "stdout")

    @property
    def stderr(self) -> str:
        return "".join(m["content"]["text"] for m in self.of_type("stream") if m["content"]["name"] == "stderr")

    @property
    def error(self) -> dict[str, Any] | None:
        errors = self.of_type("error")
        return errors[0]["content"] if errors else None

    def display_data(self) -> list[dict[str, Any]]:
        return [m["content"] for m in self.of_type("display_data", "execute_result", "update_display_data")]

    def widget_model_id(self) -> str:
        """The model id of the first widget the cell displayed."""
        for content in self.display_data():
            widget = content["data"].get("application/vnd.jupyter.widget-view+json")
            if widget:
                return str(widget["model_id"])
        raise AssertionError(f"no widget displayed: {self.messages!r}")


class Kernel:
    """One kernel; `execute` runs a cell and returns its `CellRun` once the kernel is idle again."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1", MINIAGENTS_NB_LLM="fake")
        env.pop("PYTEST_CURRENT_TEST", None)
        self.km = KernelManager(kernel_name="python3")
        spec = self.km.kernel_spec
        assert spec is not None, "no python3 kernelspec: install ipykernel"
        spec.argv[0] = sys.executable  # this interpreter, whatever the installed kernelspec says
        self.km.start_kernel(stdout=self._log, stderr=self._log, env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.all_messages: list[tuple[float, dict[str, Any]]] = []

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)  # the tests read the logs before
        self._log.close()

    def kernel_log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def next_message(self, timeout: float) -> dict[str, Any] | None:
        """The next IOPub message (of any cell), recorded in `all_messages`; None when none came within `timeout`."""
        try:
            message: dict[str, Any] = self.kc.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            return None
        self.all_messages.append((time.monotonic(), message))
        return message

    def start(self, code: str, *, cell_id: str | None = None, store_history: bool = True) -> CellRun:
        """Send a cell without waiting for it; `cell_id` is the notebook cell's id, sent as JupyterLab sends it (in
        the request's metadata), so that the kernel knows a re-run of the same cell; `store_history=False` is how
        nbval sends its cells."""
        if cell_id is None:
            return CellRun(self.kc.execute(code, store_history=store_history))
        content = {
            "code": code,
            "silent": False,
            "store_history": store_history,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        message = self.kc.session.msg("execute_request", content, metadata={"cellId": cell_id})
        self.kc.shell_channel.send(message)
        return CellRun(str(message["header"]["msg_id"]))

    def _read_until(
        self, keep: Callable[[dict[str, Any]], bool], stop: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> list[dict[str, Any]]:
        """Read IOPub messages, keeping those `keep` accepts, up to and including the first kept one `stop` accepts."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{what} in {timeout} s; got {got!r}")
            message = self.next_message(remaining)
            if message is None or not keep(message):
                continue
            got.append(message)
            if stop(message):
                return got

    def wait(
        self, run: CellRun, *, timeout: float = 30.0, until: Callable[[dict[str, Any]], bool] | None = None
    ) -> CellRun:
        """Read IOPub until the cell is idle (or until `until(message)` holds for one of its messages)."""

        def ends(message: dict[str, Any]) -> bool:
            if until is not None and until(message):
                return True
            return bool(message["msg_type"] == "status" and message["content"]["execution_state"] == "idle")

        run.messages.extend(
            self._read_until(
                lambda message: message["parent_header"].get("msg_id") == run.msg_id,
                ends,
                timeout,
                f"cell {run.msg_id} did not finish (earlier messages: {run.messages!r})",
            )
        )
        return run

    def execute(
        self, code: str, *, timeout: float = 30.0, cell_id: str | None = None, store_history: bool = True
    ) -> CellRun:
        return self.wait(self.start(code, cell_id=cell_id, store_history=store_history), timeout=timeout)

    def ok(
        self, code: str, *, timeout: float = 30.0, cell_id: str | None = None, store_history: bool = True
    ) -> CellRun:
        run = self.execute(code, timeout=timeout, cell_id=cell_id, store_history=store_history)
        assert run.error is None, f"{run.error['ename']}: {run.error['evalue']}\n" + "\n".join(run.error["traceback"])
        return run

    def drain_until(self, until: Callable[[dict[str, Any]], bool], *, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Read every message, whatever cell it belongs to (updates from background tasks), up to and including the
        first one for which `until(message)` holds."""
        return self._read_until(lambda message: True, until, timeout, "no awaited message")

    def all_text(self) -> str:
        """Every stream text seen on IOPub plus the kernel's own stdout/stderr."""
        streams = "".join(m["content"]["text"] for _, m in self.all_messages if m["msg_type"] == "stream")
        return streams + self.kernel_log()


@contextmanager
def loaded_kernel(log_name: str, *setup_cells: str) -> Iterator[Kernel]:
    """A kernel with `%load_ext miniagents_nb` and `setup_cells` run (each must succeed), closed afterwards; its log
    is `ARTIFACTS / log_name`. The module-scoped `kernel` fixtures of the kernel tests are made of it."""
    running = Kernel(ARTIFACTS / log_name)
    try:
        running.ok("%load_ext miniagents_nb")
        for cell in setup_cells:
            running.ok(cell)
        yield running
    finally:
        running.close()
