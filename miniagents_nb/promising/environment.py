"""Where the code runs: an IPython shell (a notebook kernel) or plain Python (for error words and the sync facade).

Errors name the fix in the words of the place the user is in: a notebook user runs `%load_ext miniagents_nb` and
awaits at the top level of a cell, a script writer uses `async with MiniAgents():` inside an async function. The
core never imports IPython: it only looks whether the running program imported it and made a shell.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["in_ipython", "in_ipython_kernel"]


def in_ipython() -> bool:
    """Whether an IPython shell (a Jupyter kernel, the IPython terminal) runs this program.

    Read from `sys.modules` (IPython is never imported here), at the moment an error message is written: so the
    hint follows the shell, and costs nothing on any other path.
    """
    return _shell() is not None


def in_ipython_kernel() -> bool:
    """Whether this program is a Jupyter kernel's IPython shell (ipykernel's shell has a `kernel`; a terminal or an
    embedded `InteractiveShell` has none), found without importing IPython, like `in_ipython`."""
    shell = _shell()
    try:
        return shell is not None and getattr(shell, "kernel", None) is not None
    except Exception:  # an unusual shell: not a kernel then
        return False


def _shell() -> Any:
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    if not callable(get_ipython):
        return None
    try:
        return get_ipython()
    except Exception:  # a half-imported or unusual IPython: no notebook words then
        return None
