"""Where the code runs, as far as error messages care: an IPython shell (a notebook kernel) or plain Python.

Errors name the fix in the words of the place the user is in: a notebook user runs `%load_ext miniagents_nb` and
awaits at the top level of a cell, a script writer uses `async with MiniAgents():` inside an async function. The
core never imports IPython: it only looks whether the running program imported it and made a shell.
"""

from __future__ import annotations

import sys

__all__ = ["in_ipython"]


def in_ipython() -> bool:
    """Whether an IPython shell (a Jupyter kernel, the IPython terminal) runs this program.

    Read from `sys.modules` (IPython is never imported here), at the moment an error message is written: so the
    hint follows the shell, and costs nothing on any other path.
    """
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    if not callable(get_ipython):
        return False
    try:
        return get_ipython() is not None
    except Exception:  # a half-imported or unusual IPython: no notebook words then
        return False
