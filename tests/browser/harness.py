"""Browser end-to-end harness: a JupyterLab server in a subprocess, driven by Debian's Chromium through Playwright.

The pieces (wired up as fixtures in ``conftest.py``):

* :func:`find_chromium` locates the system browser (``MINIAGENTS_NB_CHROMIUM`` or ``/usr/bin/chromium``). The
  project never downloads a browser: ``scripts/install-chromium.sh`` installs Debian's ``chromium``.
* :class:`JupyterLabServer` runs ``python -m jupyterlab`` on 127.0.0.1 with a random token, a temporary root
  dir, isolated ``JUPYTER_*``/``IPYTHONDIR`` dirs, quiet lab settings and ``MINIAGENTS_NB_LLM=fake``; its log
  goes to ``tests/artifacts/browser/jupyterlab-server.log``.
* :class:`LabPage` wraps one Playwright page showing JupyterLab: open a notebook, wait for the kernel, Run All
  through the Run menu, read cell outputs, record how a DOM text changes over time, take screenshots. Every
  wait that times out fails the test with the last server log lines, the browser console errors and a
  screenshot path.

Playwright's sync API marks its event loop as running on the main thread while it is started, so
``asyncio.run`` (and pytest-asyncio tests) cannot run until it stops: the fixtures that hold it are
package-scoped and end with the last test of ``tests/browser``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "tests" / "artifacts" / "browser"
INSTALL_HINT = "run `scripts/install-chromium.sh` (as root: apt-get installs Debian's chromium)"

# Flags this machine needs (network closed except for 127.0.0.1). Playwright gives every launch a fresh,
# temporary --user-data-dir itself (it refuses one in `args`).
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
)

# Only the notebook on show: restored or background tabs keep their (hidden) cells in the DOM.
VISIBLE_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"

# Lab settings that keep the UI quiet and every cell in the DOM (no windowed rendering, no news toast).
LAB_SETTING_OVERRIDES: dict[str, Any] = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}

KERNELSPEC: dict[str, str] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def find_chromium() -> Path:
    """The Chromium executable to drive: ``$MINIAGENTS_NB_CHROMIUM`` or ``/usr/bin/chromium``; fails if missing."""
    configured = os.environ.get("MINIAGENTS_NB_CHROMIUM")
    candidate = Path(configured) if configured else Path("/usr/bin/chromium")
    if not (candidate.is_file() and os.access(candidate, os.X_OK)):
        source = "MINIAGENTS_NB_CHROMIUM" if configured else "the default path"
        pytest.fail(
            f"Chromium not found at {candidate} ({source}). The browser tests drive the system Chromium and never "
            f"download one: {INSTALL_HINT}, or point MINIAGENTS_NB_CHROMIUM at a Chromium executable.",
            pytrace=False,
        )
    return candidate


def artifact_name(text: str) -> str:
    """A stable, file-system-safe artifact base name (e.g. from a test's node name)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "artifact"


def notebook_json(cells: Sequence[str | Mapping[str, Any]]) -> dict[str, Any]:
    """An nbformat 4.5 notebook on the ``python3`` kernel.

    A ``str`` is a code cell's source; a string starting with ``"%md\\n"`` is a markdown cell (the prefix is
    dropped); a mapping is taken as a complete cell dict.
    """
    out_cells: list[dict[str, Any]] = []
    for index, cell in enumerate(cells):
        if isinstance(cell, Mapping):
            out_cells.append(dict(cell))
        elif cell.startswith("%md\n"):
            out_cells.append(
                {"cell_type": "markdown", "id": f"cell-{index}", "metadata": {}, "source": cell[len("%md\n") :]}
            )
        else:
            out_cells.append(
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "id": f"cell-{index}",
                    "metadata": {},
                    "outputs": [],
                    "source": cell,
                }
            )
    return {
        "cells": out_cells,
        "metadata": {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _js_regex_flags(pattern: re.Pattern[str]) -> str:
    """The JavaScript RegExp flags matching a Python pattern's IGNORECASE, MULTILINE and DOTALL."""
    flags = {re.IGNORECASE: "i", re.MULTILINE: "m", re.DOTALL: "s"}
    return "".join(letter for flag, letter in flags.items() if pattern.flags & flag)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after ``(comm)``: state, ppid, ...; ``None`` if gone (Linux only)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # "pid (comm) state ppid ...": comm may contain spaces and parentheses, so split after the last ')'.
    return text[text.rfind(")") + 2 :].split()


# A process is (pid, start time in clock ticks since boot): a PID reused by another process does not match.
Process = tuple[int, str]


def _descendants(pid: int) -> list[Process]:
    """Every live descendant of ``pid`` (empty where there is no /proc)."""
    children: dict[int, list[Process]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _proc_stat(int(entry.name))
        if fields and len(fields) > 19 and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append((int(entry.name), fields[19]))
    found: list[Process] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def _alive(process: Process) -> bool:
    fields = _proc_stat(process[0])
    return fields is not None and len(fields) > 19 and fields[0] != "Z" and fields[19] == process[1]


@dataclass
class JupyterLabServer:
    """A JupyterLab server subprocess on 127.0.0.1 (use :meth:`start`; stop with :meth:`stop`)."""

    proc: subprocess.Popen[bytes]
    base_url: str  # "http://127.0.0.1:PORT/"
    token: str
    root_dir: Path
    log_path: Path
    _opener: urllib.request.OpenerDirector = field(
        # Never through a proxy: the server is on the loopback interface.
        default_factory=lambda: urllib.request.build_opener(urllib.request.ProxyHandler({})),
        repr=False,
    )

    @classmethod
    def start(cls, workdir: Path, log_path: Path, *, timeout: float = 60.0) -> JupyterLabServer:
        """Start ``python -m jupyterlab`` with everything under ``workdir``; wait until ``/api/status`` answers."""
        root_dir, config_dir, data_dir, runtime_dir, ipython_dir, settings_dir = (
            workdir / name for name in ("root", "config", "data", "runtime", "ipython", "lab-settings")
        )
        for path in (root_dir, config_dir, data_dir, runtime_dir, ipython_dir, settings_dir):
            path.mkdir(parents=True, exist_ok=True)
        (settings_dir / "overrides.json").write_text(json.dumps(LAB_SETTING_OVERRIDES, indent=2))
        token = secrets.token_hex(16)
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"JUPYTER_TOKEN", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "JUPYTER_PREFER_ENV_PATH"}
        }
        env.update(
            JUPYTER_CONFIG_DIR=str(config_dir),
            JUPYTER_DATA_DIR=str(data_dir),
            JUPYTER_RUNTIME_DIR=str(runtime_dir),
            JUPYTER_PLATFORM_DIRS="1",
            IPYTHONDIR=str(ipython_dir),
            MINIAGENTS_NB_LLM="fake",
            PYDEVD_DISABLE_FILE_VALIDATION="1",
            PYTHONUNBUFFERED="1",
        )
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={_free_port()}",
            f"--ServerApp.root_dir={root_dir}",
            f"--IdentityProvider.token={token}",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            "--LabApp.expose_app_in_browser=True",
            f"--LabApp.app_settings_dir={settings_dir}",
            f"--LabApp.user_settings_dir={config_dir / 'lab' / 'user-settings'}",
            f"--LabApp.workspaces_dir={config_dir / 'lab' / 'workspaces'}",
        ]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                cmd,
                cwd=root_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: Ctrl+C in pytest does not hit it
            )
        server: JupyterLabServer | None = None
        try:
            server = cls._wait_until_ready(proc, token, root_dir, runtime_dir, log_path, timeout)
        finally:
            if server is None:
                _stop_process(proc, _descendants(proc.pid), asked=False)
        return server

    @classmethod
    def _wait_until_ready(
        cls,
        proc: subprocess.Popen[bytes],
        token: str,
        root_dir: Path,
        runtime_dir: Path,
        log_path: Path,
        timeout: float,
    ) -> JupyterLabServer:
        deadline = time.monotonic() + timeout
        info_file = runtime_dir / f"jpserver-{proc.pid}.json"
        server: JupyterLabServer | None = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(
                    f"JupyterLab server exited with code {proc.returncode} during start-up.\n{_log_tail(log_path)}",
                    pytrace=False,
                )
            if server is None and info_file.is_file():
                with contextlib.suppress(ValueError, KeyError):
                    # The server writes the port it actually bound (it moves on if the free port got taken).
                    info = json.loads(info_file.read_text())
                    server = cls(proc, f"http://127.0.0.1:{int(info['port'])}/", token, root_dir, log_path)
            if server is not None:
                with contextlib.suppress(OSError):
                    server.api("GET", "api/status", timeout=2.0)
                    return server
            time.sleep(0.1)
        pytest.fail(
            f"JupyterLab server did not answer on /api/status within {timeout:.0f} s.\n{_log_tail(log_path)}",
            pytrace=False,
        )

    def url(self, path: str, **query: str) -> str:
        """Absolute URL of ``path`` (relative to the server root) with the token in the query."""
        params = "&".join(
            [*(f"{key}={value}" if value else key for key, value in query.items()), f"token={self.token}"]
        )
        return f"{self.base_url}{path.lstrip('/')}?{params}"

    def api(self, method: str, path: str, *, timeout: float = 10.0) -> Any:
        """Call the REST API; returns the decoded JSON body (``None`` when empty)."""
        request = urllib.request.Request(self.url(path), method=method)
        with self._opener.open(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        return _log_tail(self.log_path, lines)

    def shutdown_kernels(self) -> None:
        """Close every session and kernel (kernels outlive the browser page that started them)."""
        with contextlib.suppress(OSError, ValueError):
            for session in self.api("GET", "api/sessions"):
                with contextlib.suppress(OSError):
                    self.api("DELETE", f"api/sessions/{session['id']}")
            for kernel in self.api("GET", "api/kernels"):
                with contextlib.suppress(OSError):
                    self.api("DELETE", f"api/kernels/{kernel['id']}")

    def stop(self) -> None:
        """Shut down kernels and the server; kill whatever of its process tree is left (by PID)."""
        descendants = _descendants(self.proc.pid)  # the kernels, before the server lets go of them
        if self.proc.poll() is None:
            self.shutdown_kernels()
            with contextlib.suppress(OSError):
                self.api("POST", "api/shutdown", timeout=5.0)
        _stop_process(self.proc, descendants, asked=True)


def _stop_process(proc: subprocess.Popen[bytes], descendants: list[Process], *, asked: bool) -> None:
    """Make ``proc`` exit (if it was ``asked`` to stop, give it 5 s first; then SIGTERM, then SIGKILL), then kill
    each of ``descendants`` still alive 5 s later, by PID."""
    steps: list[signal.Signals | None] = (
        [None, signal.SIGTERM, signal.SIGKILL] if asked else [signal.SIGTERM, signal.SIGKILL]
    )
    for sig in steps:
        if proc.poll() is not None:
            break
        if sig is not None:
            proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5.0)
    survivors = [process for process in descendants if _alive(process)]
    deadline = time.monotonic() + 5.0
    while survivors and time.monotonic() < deadline:
        time.sleep(0.1)
        survivors = [process for process in survivors if _alive(process)]
    for pid, _ in survivors:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _log_tail(log_path: Path, lines: int = 40) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError as exc:
        return f"(JupyterLab server log {log_path} unreadable: {exc})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"JupyterLab server log ({log_path}), last {lines} lines:\n{tail}"


# JavaScript run in the page. These only read the page; none changes JupyterLab's state.

# The notebook on show is loaded (with `expected` cells, unless -1) and its kernel is connected and idle.
# Reads `window.jupyterapp` (the server runs with --LabApp.expose_app_in_browser=True): the toolbar's
# execution indicator alone says "idle" before the session has even started.
_JS_NOTEBOOK_READY = """([panel, expected]) => {
  const widget = window.jupyterapp?.shell.currentWidget;
  if (!widget?.content || !widget.sessionContext || !widget.context?.isReady) return false;
  const kernel = widget.sessionContext.session?.kernel;
  const cells = document.querySelectorAll(panel + ' .jp-Cell').length;
  return widget.sessionContext.isReady && kernel?.status === 'idle' && kernel?.connectionStatus === 'connected'
    && widget.content.widgets.length === cells && (expected < 0 || cells === expected);
}"""

_JS_KERNEL_STATE = """() => {
  const widget = window.jupyterapp?.shell.currentWidget;
  const kernel = widget?.sessionContext?.session?.kernel;
  return {widget: widget?.id ?? null, ready: widget?.sessionContext?.isReady ?? null,
          kernel: kernel?.status ?? null, connection: kernel?.connectionStatus ?? null,
          cells: widget?.content?.widgets?.length ?? null};
}"""

_JS_CODE_CELL_PROMPTS = """(panel) => [...document.querySelectorAll(panel + ' .jp-CodeCell')]
    .map(cell => (cell.querySelector('.jp-InputArea-prompt')?.textContent ?? '').trim())"""

# Marks every code cell's prompt that shows "[*]" from now on, so "all done" cannot be mistaken for the
# execution counts a notebook had before Run All.
_JS_WATCH_RUNNING = """(panel) => {
  const seen = new WeakSet();
  const mark = () => {
    for (const prompt of document.querySelectorAll(panel + ' .jp-CodeCell .jp-InputArea-prompt')) {
      if (prompt.textContent.includes('*')) seen.add(prompt);
    }
  };
  window.__mnaRunWatch?.observer.disconnect();
  const observer = new MutationObserver(mark);
  observer.observe(document.body, {subtree: true, childList: true, characterData: true});
  mark();
  window.__mnaRunWatch = {seen, observer};
}"""

# Run All has settled: every code cell went through "[*]" since _JS_WATCH_RUNNING, none is queued or running
# now, and the kernel is idle. Cells after an error are aborted and show "[ ]" again.
_JS_RUN_ALL_SETTLED = """(panel) => {
  const watch = window.__mnaRunWatch;
  const prompts = [...document.querySelectorAll(panel + ' .jp-CodeCell .jp-InputArea-prompt')];
  const indicator = document.querySelector(panel + ' .jp-Notebook-ExecutionIndicator');
  const done = prompts.length > 0 && prompts.every(p => watch.seen.has(p) && !p.textContent.includes('*'))
    && (!indicator || indicator.getAttribute('data-status') === 'idle');
  if (done) watch.observer.disconnect();
  return done;
}"""

# The error outputs of the notebook on show, from its model: [{cell, ename, evalue}].
_JS_CELL_ERRORS = """() => {
  const widgets = window.jupyterapp?.shell.currentWidget?.content?.widgets ?? [];
  return widgets.flatMap((cell, index) => cell.model.type !== 'code' ? [] : cell.model.outputs.toJSON()
    .filter(output => output.output_type === 'error')
    .map(output => ({cell: index, ename: output.ename, evalue: output.evalue})));
}"""

_JS_START_RECORDER = """([key, selector]) => {
  const recorders = (window.__mnaRecorders ??= {});
  recorders[key]?.observer.disconnect();
  const start = performance.now();
  const seen = [];
  const check = () => {
    const el = document.querySelector(selector);
    const text = el === null ? null : el.textContent;
    if (text !== null && (seen.length === 0 || seen[seen.length - 1].text !== text)) {
      seen.push({text, ms: Math.round(performance.now() - start)});
    }
  };
  const observer = new MutationObserver(check);
  observer.observe(document.body, {subtree: true, childList: true, characterData: true});
  check();
  recorders[key] = {seen, observer};
}"""


@dataclass
class TextRecorder:
    """Every distinct ``textContent`` that the first element matching a selector showed, in order.

    A MutationObserver in the page samples the text on every DOM change, so it sees each rendered value, even
    ones that stay up for a few milliseconds.
    """

    lab: LabPage
    key: str
    selector: str

    def samples(self) -> list[tuple[str, int]]:
        """``(text, milliseconds since the recorder started)`` for each change seen so far."""
        raw = self.lab.page.evaluate("(key) => window.__mnaRecorders[key].seen", self.key)
        return [(item["text"], int(item["ms"])) for item in raw]

    def texts(self) -> list[str]:
        return [text for text, _ in self.samples()]

    def wait_for(self, text: str, *, timeout: float = 15.0) -> list[str]:
        """Wait until the element shows exactly ``text``; returns every text seen up to then."""
        self.lab.wait_for_js(
            "([key, text]) => { const s = window.__mnaRecorders[key].seen; return s.length > 0 && "
            "s[s.length - 1].text === text; }",
            [self.key, text],
            timeout=timeout,
            what=f"{self.selector!r} to show {text!r} (texts seen: {{texts}})",
            texts=self.texts,
        )
        return self.texts()

    def stop(self) -> list[str]:
        self.lab.page.evaluate("(key) => window.__mnaRecorders[key].observer.disconnect()", self.key)
        return self.texts()


@dataclass
class LabPage:
    """One browser page on the JupyterLab server, with helpers for notebooks, cell outputs and screenshots.

    Cell indexes count every cell (markdown too), in notebook order, in the notebook on show.
    """

    page: Page
    server: JupyterLabServer
    test_name: str
    console: list[str] = field(default_factory=list)  # browser console errors/warnings and page errors
    _recorders: int = 0

    # -- notebooks --------------------------------------------------------------------------------------

    def open_notebook(
        self,
        notebook: Path | Sequence[str | Mapping[str, Any]] | Mapping[str, Any],
        name: str | None = None,
        *,
        timeout: float = 30.0,
    ) -> str:
        """Put a notebook in the server root, open it at ``/lab/tree/<name>`` and wait for an idle kernel.

        ``notebook`` is an ``.ipynb`` path (copied), a notebook dict, or a list of cells for
        :func:`notebook_json`. ``name`` defaults to the file name, else ``<test name>.ipynb``. Returns the name.
        """
        if isinstance(notebook, Path):
            name = name or notebook.name
            shutil.copyfile(notebook, self.server.root_dir / name)
        else:
            name = name or f"{artifact_name(self.test_name)}.ipynb"
            content = dict(notebook) if isinstance(notebook, Mapping) else notebook_json(notebook)
            (self.server.root_dir / name).write_text(json.dumps(content, indent=1))
        # `reset` drops the tabs a workspace would restore.
        self.page.goto(self.server.url(f"lab/tree/{quote(name)}", reset=""), wait_until="domcontentloaded")
        expected = len(json.loads((self.server.root_dir / name).read_text()).get("cells", []))
        self.wait_for_kernel_idle(expected_cells=expected, timeout=timeout)
        return name

    def wait_for_kernel_idle(self, *, expected_cells: int = -1, timeout: float = 30.0) -> None:
        """Wait until the notebook on show is loaded (with ``expected_cells`` cells, unless -1) and its kernel is
        connected and idle."""
        self.wait_for_js(
            _JS_NOTEBOOK_READY,
            [VISIBLE_PANEL, expected_cells],
            timeout=timeout,
            what="the notebook to load and its kernel to be idle (state: {texts})",
            texts=lambda: self.page.evaluate(_JS_KERNEL_STATE),
        )

    def run_all(self, *, timeout: float = 30.0, allow_errors: bool = False) -> None:
        """Run All Cells through the Run menu, then wait until every code cell ran and the kernel is idle.

        Fails if a cell raised (JupyterLab then skips the cells after it), unless ``allow_errors``. Background
        tasks started by the cells may still be running when this returns.
        """
        self.page.evaluate(_JS_WATCH_RUNNING, VISIBLE_PANEL)
        self.click(self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")), what="the Run menu")
        self.click(
            self.page.locator(".lm-Menu .lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")),
            what="Run > Run All Cells",
        )
        self.wait_for_js(
            _JS_RUN_ALL_SETTLED,
            VISIBLE_PANEL,
            timeout=timeout,
            what="Run All to finish (code cell prompts: {texts})",
            texts=self.prompts,
        )
        if allow_errors:
            return
        errors = self.cell_errors()
        if errors:
            raised = "; ".join(f"cell {index} raised {ename}: {evalue}" for index, ename, evalue in errors)
            self.fail(f"Run All: {raised}\n(cell output:\n{self.cell_output_text(errors[0][0])})")
        prompts = self.prompts()
        if not all(re.fullmatch(r"\[\d+\]:", prompt) for prompt in prompts):
            self.fail(f"Run All left code cells unexecuted: prompts {prompts}")

    def execute_command(self, command: str, args: Mapping[str, Any] | None = None) -> Any:
        """Run a JupyterLab command by id (e.g. ``"kernelmenu:interrupt"``) and return its result."""
        return self.page.evaluate(
            "([command, args]) => window.jupyterapp.commands.execute(command, args)", [command, dict(args or {})]
        )

    def interrupt_kernel(self) -> None:
        self.execute_command("kernelmenu:interrupt")

    def save_notebook(self) -> None:
        """Save the open notebook and wait until JupyterLab has written it (its model is no longer dirty)."""
        self.execute_command("docmanager:save")
        self.wait_for_js(
            "() => !window.jupyterapp.shell.currentWidget.context.model.dirty",
            None,
            timeout=15,
            what="the notebook to be saved",
            texts=lambda: "",
        )

    def use_theme(self, theme: str) -> None:
        """Switch to JupyterLab's "dark" or "light" theme and wait until the page has applied it."""
        dark = {"dark": True, "light": False}[theme]
        self.execute_command("apputils:change-theme", {"theme": "JupyterLab Dark" if dark else "JupyterLab Light"})
        self.wait_for_js(
            f"() => document.body.dataset.jpThemeLight === '{str(not dark).lower()}'"
            " && !document.querySelector('#jupyterlab-splash')",
            None,
            timeout=30,
            what=f"the {theme} theme (body data: {{texts}})",
            texts=lambda: self.page.evaluate("() => ({...document.body.dataset})"),
        )

    # -- reading the DOM ----------------------------------------------------------------------------------

    def cell(self, index: int) -> Locator:
        return self.page.locator(f"{VISIBLE_PANEL} .jp-Cell").nth(index)

    def cell_count(self) -> int:
        return self.page.locator(f"{VISIBLE_PANEL} .jp-Cell").count()

    def prompts(self) -> list[str]:
        """The input prompts of the code cells, e.g. ``["[1]:", "[*]:", "[ ]:"]``."""
        result: list[str] = self.page.evaluate(_JS_CODE_CELL_PROMPTS, VISIBLE_PANEL)
        return result

    def cell_errors(self) -> list[tuple[int, str, str]]:
        """``(cell index, ename, evalue)`` of every error output in the notebook on show."""
        return [(e["cell"], e["ename"], e["evalue"]) for e in self.page.evaluate(_JS_CELL_ERRORS)]

    def cell_output_text(self, index: int) -> str:
        """The visible text of a cell's whole output area (``""`` when it has none)."""
        area = self.cell(index).locator(".jp-Cell-outputArea")
        return area.inner_text() if area.count() else ""

    def cell_outputs(self, index: int) -> list[str]:
        """The visible text of each top-level output of a cell (nested Output widgets are not split out)."""
        outputs = self.cell(index).locator(".jp-Cell-outputArea > .jp-OutputArea-child .jp-OutputArea-output")
        return [outputs.nth(i).inner_text() for i in range(outputs.count())]

    def cell_output_html(self, index: int) -> str:
        area = self.cell(index).locator(".jp-Cell-outputArea")
        return area.inner_html() if area.count() else ""

    def texts(self, selector: str) -> list[str]:
        """``textContent`` of every element matching ``selector`` inside the notebook on show."""
        result: list[str] = self.page.evaluate(
            "(sel) => [...document.querySelectorAll(sel)].map(e => e.textContent)", f"{VISIBLE_PANEL} {selector}"
        )
        return result

    def wait_for_text(self, selector: str, text: str | re.Pattern[str], *, timeout: float = 15.0) -> str:
        """Wait until an element matching ``selector`` (in the notebook on show) has ``text`` (substring or
        regex); returns that element's text."""
        pattern = text if isinstance(text, re.Pattern) else re.compile(re.escape(text))
        full = f"{VISIBLE_PANEL} {selector}"
        self.wait_for_js(
            "([sel, source, flags]) => [...document.querySelectorAll(sel)]"
            ".some(e => new RegExp(source, flags).test(e.textContent))",
            [full, pattern.pattern, _js_regex_flags(pattern)],
            timeout=timeout,
            what=f"{selector!r} to contain {pattern.pattern!r} (texts now: {{texts}})",
            texts=lambda: self.texts(selector),
        )
        return next(t for t in self.texts(selector) if pattern.search(t))

    def record_texts(self, selector: str) -> TextRecorder:
        """Start recording each text the first ``selector`` match (in the notebook on show) shows."""
        self._recorders += 1
        recorder = TextRecorder(self, f"r{self._recorders}", f"{VISIBLE_PANEL} {selector}")
        self.page.evaluate(_JS_START_RECORDER, [recorder.key, recorder.selector])
        return recorder

    # -- waiting, failing, screenshots --------------------------------------------------------------------

    def click(self, locator: Locator, *, what: str, timeout: float = 15.0) -> None:
        """Click ``locator``; on timeout fail with ``what`` and the diagnostics."""
        try:
            locator.click(timeout=timeout * 1000)
        except PlaywrightTimeoutError:
            pass
        else:
            return
        self.fail(f"timed out after {timeout:.0f} s trying to click {what}")

    def wait_for_selector(self, selector: str, *, timeout: float, what: str) -> None:
        """Wait until ``selector`` matches a visible element; on timeout fail with ``what`` and the diagnostics."""
        try:
            self.page.wait_for_selector(selector, timeout=timeout * 1000)
        except PlaywrightTimeoutError:
            pass
        else:
            return
        self.fail(f"timed out after {timeout:.0f} s waiting for {what} (selector {selector!r})")

    def wait_for_js(
        self,
        expression: str,
        arg: Any,
        *,
        timeout: float,
        what: str,
        texts: Callable[[], object] | None = None,
    ) -> None:
        """Wait until a JS function of ``arg`` returns truthy (checked every 25 ms); on timeout fail with
        ``what``, where ``{texts}`` is replaced by ``texts()`` at that moment."""
        try:
            self.page.wait_for_function(expression, arg=arg, timeout=timeout * 1000, polling=25)
        except PlaywrightTimeoutError:
            pass
        else:
            return
        detail = what
        if texts is not None and "{texts}" in what:
            try:
                detail = what.replace("{texts}", repr(texts()))
            except PlaywrightError as exc:
                detail = what.replace("{texts}", f"<unreadable: {exc}>")
        self.fail(f"timed out after {timeout:.0f} s waiting for {detail}")

    def screenshot(self, name: str, *, cell: int | None = None, output_only: bool = False) -> Path:
        """Save ``tests/artifacts/browser/<name>.png`` and return its path: the page (the viewport), or one
        cell when ``cell`` is given, or only that cell's output area with ``output_only=True``.

        A cell taller than the viewport is cut at the notebook's edge: prefer ``output_only`` for widgets.
        """
        path = ARTIFACTS_DIR / f"{artifact_name(name)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if cell is None:
            self.page.screenshot(path=path)
        elif output_only:
            self.cell(cell).locator(".jp-Cell-outputArea").screenshot(path=path)
        else:
            self.cell(cell).screenshot(path=path)
        return path

    def diagnostics(self, screenshot_name: str) -> str:
        """A screenshot path, open dialogs, browser console errors and the server log tail, for a message."""
        parts: list[str] = []
        try:
            parts.append(f"screenshot: {self.screenshot(screenshot_name)}")
            dialogs = self.page.locator(".jp-Dialog")
            if dialogs.count():
                parts.append(f"open dialog: {dialogs.first.inner_text()!r}")
        except PlaywrightError as exc:
            parts.append(f"(no screenshot: {exc})")
        if self.console:
            parts.append("browser console (last 15):\n" + "\n".join(self.console[-15:]))
        parts.append(self.server.log_tail(30))
        return "\n".join(parts)

    def fail(self, message: str) -> NoReturn:
        """Fail the test with ``message`` plus :meth:`diagnostics` (screenshot ``<test name>-failure.png``)."""
        pytest.fail(f"{message}\n{self.diagnostics(f'{self.test_name}-failure')}", pytrace=False)
