"""Packaging invariants: import hygiene, the optional-dependency boundary, the public surface, the error tree.

Every import check runs in a fresh interpreter (``sys.executable``, cwd = the repository root, stdin from
/dev/null), so nothing that the test process already imported can hide a missing import or a side effect.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "miniagents_nb"
PACKAGE_DIR = REPO_ROOT / PACKAGE

# Third-party packages that the core must never import (SPEC §2: "importable without IPython, ipywidgets or
# any LLM SDK"). prompt_toolkit is here because upstream MiniAgents opens a prompt session at import time.
BLOCKED_TOP_LEVEL = (
    "IPython",
    "ipykernel",
    "ipywidgets",
    "anywidget",
    "traitlets",
    "openai",
    "anthropic",
    "prompt_toolkit",
)

# The core, with the module paths of docs/design-decisions.md. `miniagents_nb.promising` is walked in full.
CORE_MODULES = (
    "miniagents_nb",
    "miniagents_nb.promising",
    "miniagents_nb.errors",
    "miniagents_nb.messages",
    "miniagents_nb.miniagents",
    "miniagents_nb.utils",
    "miniagents_nb.ext",
)
# Core modules by design (message roles, "no SDK imported"), checked too once they exist.
CORE_MODULES_IF_PRESENT = (
    "miniagents_nb.ext.llm",
    "miniagents_nb.ext.llms",
)

# Import names behind each extra. A module that needs an extra is skipped only when one of these is missing.
EXTRA_IMPORT_NAMES = {
    "jupyter": ("IPython", "ipykernel", "ipywidgets", "anywidget", "nest_asyncio2"),
    "openai": ("openai",),
    "anthropic": ("anthropic",),
}

SUBPROCESS_TIMEOUT = 50  # seconds; below the per-test pytest timeout so a hang reports its output


def _package_modules() -> list[str]:
    """List every module under `miniagents_nb/` by walking the source tree with pkgutil, importing nothing."""

    def walk(path: Path, prefix: str) -> list[str]:
        found: list[str] = []
        for info in pkgutil.iter_modules([str(path)]):
            name = f"{prefix}.{info.name}"
            found.append(name)
            if info.ispkg:
                found.extend(walk(path / info.name, name))
        return found

    if not (PACKAGE_DIR / "__init__.py").is_file():
        return []
    return [PACKAGE, *sorted(walk(PACKAGE_DIR, PACKAGE))]


def _extra_needed(module: str) -> str | None:
    """Name the extra that `module` needs, judging by its dotted path (`miniagents_nb.jupyter*`, `*openai*`, ...)."""
    parts = module.split(".")[1:]
    if parts and parts[0].startswith("jupyter"):
        return "jupyter"
    for extra in ("openai", "anthropic"):
        if any(extra in part for part in parts):
            return extra
    return None


def _missing_extra(module: str) -> str | None:
    """Return the extra that `module` needs and that is not installed, or None."""
    extra = _extra_needed(module)
    if extra is None:
        return None
    if all(importlib.util.find_spec(name) is not None for name in EXTRA_IMPORT_NAMES[extra]):
        return None
    return extra


def _run_child(script: str, args: dict[str, Any], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run `script` in a fresh interpreter; it writes its JSON report to the path given as argv[1]."""
    report = tmp_path / "report.json"
    env = {**os.environ, "MINIAGENTS_NB_LLM": "fake"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), str(report), json.dumps(args)],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    data = json.loads(report.read_text()) if report.exists() else None
    return proc, data


def _describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit code {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"


_CORE_WITHOUT_EXTRAS = """
    import json
    import sys

    args = json.loads(sys.argv[2])
    BLOCKED = frozenset(args["blocked"])


    class _Blocker:
        # Any import of a blocked top-level package (or of its submodules) fails as if it were not installed.
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by test_packaging)", name=name)
            return None


    sys.meta_path.insert(0, _Blocker())

    import importlib
    import importlib.util
    import pkgutil

    imported = []
    for name in args["core"]:
        importlib.import_module(name)
        imported.append(name)
    for name in args["if_present"]:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
            imported.append(name)


    def _reraise(name):
        raise


    promising = sys.modules["miniagents_nb.promising"]
    for info in pkgutil.walk_packages(promising.__path__, "miniagents_nb.promising.", onerror=_reraise):
        importlib.import_module(info.name)
        imported.append(info.name)

    leaked = sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED)
    with open(sys.argv[1], "w") as report:
        json.dump({"imported": imported, "leaked": leaked}, report)
"""


def test_core_imports_without_jupyter_or_llm_sdks(tmp_path: Path) -> None:
    """The core imports with IPython, widgets, LLM SDKs and prompt_toolkit unimportable, and pulls none of them in."""
    proc, report = _run_child(
        _CORE_WITHOUT_EXTRAS,
        {"blocked": BLOCKED_TOP_LEVEL, "core": CORE_MODULES, "if_present": CORE_MODULES_IF_PRESENT},
        tmp_path,
    )
    assert proc.returncode == 0, _describe(proc)
    assert report is not None, _describe(proc)
    assert "miniagents_nb.promising.sentinels" in report["imported"], report["imported"]
    assert report["leaked"] == [], f"the core imported optional packages: {report['leaked']}"


_IMPORT_HAS_NO_SIDE_EFFECTS = """
    import asyncio
    import asyncio.base_events
    import json
    import socket
    import sys
    import threading

    loops_created = []
    network_calls = []

    _loop_init = asyncio.base_events.BaseEventLoop.__init__


    def _counting_loop_init(self, *args, **kwargs):
        loops_created.append(type(self).__name__)
        _loop_init(self, *args, **kwargs)


    asyncio.base_events.BaseEventLoop.__init__ = _counting_loop_init


    def _no_network(what):
        def guard(*args, **kwargs):
            network_calls.append(what)
            raise OSError(f"network access during import ({what}) is not allowed")

        return guard


    socket.socket.connect = _no_network("socket.connect")
    socket.socket.connect_ex = _no_network("socket.connect_ex")
    socket.getaddrinfo = _no_network("socket.getaddrinfo")
    socket.create_connection = _no_network("socket.create_connection")

    threads_before = threading.active_count()
    module = json.loads(sys.argv[2])["module"]
    __import__(module)
    threads_after = threading.active_count()

    try:
        running_loop = asyncio.get_running_loop() is not None
    except RuntimeError:
        running_loop = False

    with open(sys.argv[1], "w") as report:
        json.dump(
            {
                "threads_before": threads_before,
                "threads_after": threads_after,
                "thread_names": [thread.name for thread in threading.enumerate()],
                "loops_created": loops_created,
                "running_loop": running_loop,
                "network_calls": network_calls,
            },
            report,
        )
"""


def test_package_has_modules() -> None:
    """The source tree has a `miniagents_nb` package with the core modules (guards the walk below)."""
    modules = _package_modules()
    assert PACKAGE in modules, f"no importable package at {PACKAGE_DIR}"
    missing = [name for name in CORE_MODULES if name not in modules]
    assert missing == [], f"core modules missing from the source tree: {missing}"


@pytest.mark.parametrize("module", _package_modules())
def test_import_has_no_side_effects(module: str, tmp_path: Path) -> None:
    """Importing the module prints nothing, starts no thread, creates no event loop and uses no network."""
    extra = _missing_extra(module)
    if extra is not None:
        pytest.skip(f"{module} needs the [{extra}] extra, which is not installed")
    proc, report = _run_child(_IMPORT_HAS_NO_SIDE_EFFECTS, {"module": module}, tmp_path)
    assert proc.returncode == 0, _describe(proc)
    assert report is not None, _describe(proc)
    assert (proc.stdout, proc.stderr) == ("", ""), f"importing {module} wrote output:\n{_describe(proc)}"
    assert report["threads_after"] == report["threads_before"], f"threads after import: {report['thread_names']}"
    assert report["loops_created"] == [], f"importing {module} created event loops: {report['loops_created']}"
    assert not report["running_loop"]
    assert report["network_calls"] == [], f"importing {module} tried the network: {report['network_calls']}"


def test_py_typed_marker() -> None:
    """`miniagents_nb/py.typed` exists, in the source tree and where the package is imported from."""
    assert (PACKAGE_DIR / "py.typed").is_file()
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None, f"{PACKAGE} is not importable; run `pip install -e .`"
    assert spec.origin is not None
    assert (Path(spec.origin).parent / "py.typed").is_file()


def test_all_is_sorted_unique_and_resolves() -> None:
    """`miniagents_nb.__all__` is sorted case-insensitively, has no duplicates, and every name in it exists."""
    package = importlib.import_module(PACKAGE)
    names = list(package.__all__)
    assert names, "__all__ is empty"
    assert all(isinstance(name, str) for name in names)
    assert len(names) == len(set(names)), f"duplicates in __all__: {sorted({n for n in names if names.count(n) > 1})}"
    assert names == sorted(names, key=str.casefold), (
        f"__all__ is not sorted; expected {sorted(names, key=str.casefold)}"
    )
    missing = [name for name in names if not hasattr(package, name)]
    assert missing == [], f"names in __all__ that the module does not define: {missing}"


def _classes_defined_in(module: Any) -> list[type]:
    return [obj for obj in vars(module).values() if inspect.isclass(obj) and obj.__module__ == module.__name__]


def test_errors_share_one_root() -> None:
    """Every exception class in `miniagents_nb.errors` (defined there or re-exported from the package) is a
    `MiniAgentsError`, and `MiniAgentsError` is an `Exception`."""
    errors = importlib.import_module(f"{PACKAGE}.errors")
    root = errors.MiniAgentsError
    assert issubclass(root, Exception)
    ours = [
        obj
        for obj in vars(errors).values()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__.startswith(PACKAGE)
    ]
    assert root in ours
    outside = [cls.__qualname__ for cls in ours if not issubclass(cls, root)]
    assert outside == [], f"exception classes in {errors.__name__} that are not MiniAgentsError: {outside}"
    # The promising layer's own error module belongs to the same tree.
    promising_errors = importlib.import_module(f"{PACKAGE}.promising.errors")
    outside = [
        cls.__qualname__
        for cls in _classes_defined_in(promising_errors)
        if issubclass(cls, BaseException) and not issubclass(cls, root)
    ]
    assert outside == [], f"exception classes in {promising_errors.__name__} that are not MiniAgentsError: {outside}"


_BASE_EXCEPTION_SUBCLASSES = """
    import importlib
    import inspect
    import json
    import sys

    offenders = []
    for name in json.loads(sys.argv[2])["modules"]:
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and obj.__module__ == name
                and issubclass(obj, BaseException)
                and not issubclass(obj, Exception)
            ):
                offenders.append(f"{name}.{obj.__qualname__}")
    with open(sys.argv[1], "w") as report:
        json.dump({"offenders": offenders}, report)
"""


def test_no_class_inherits_base_exception_without_exception(tmp_path: Path) -> None:
    """No class in the package derives from BaseException without deriving from Exception (SPEC §3, "Errors")."""
    modules = [name for name in _package_modules() if _missing_extra(name) is None]
    assert modules, f"no importable package at {PACKAGE_DIR}"
    proc, report = _run_child(_BASE_EXCEPTION_SUBCLASSES, {"modules": modules}, tmp_path)
    assert proc.returncode == 0, _describe(proc)
    assert report is not None, _describe(proc)
    assert report["offenders"] == []
