"""File names the file-writing agents refuse before opening anything, and the optional folder they must stay in.

A name may come from untrusted text (an LLM's answer, a tool argument): a NUL character makes Python's `open` raise
a bare `ValueError` deep in the agent, and `..` or an absolute path could write anywhere. The agents check the name
first and refuse it with their own error. With a `folder=`, a name that resolves outside that folder (absolute, `..`,
a symlink out) is refused too; without one, a relative or absolute path the program itself chose is its own call.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["path_problem"]


def path_problem(file: str | Path, folder: str | Path | None = None) -> str | None:
    """What is wrong with `file` as the name of a file to write (None when nothing is), inside `folder` if given."""
    name = str(file)
    if not name:
        return "is empty"
    if "\0" in name:
        return "contains a NUL character"
    if folder is not None:
        if "\0" in str(folder):
            return "names a folder that contains a NUL character"
        base = Path(folder).resolve()
        target = (base / file).resolve()
        if target != base and base not in target.parents:
            return f"resolves outside the folder {str(folder)!r} (absolute paths and `..` may not leave it)"
    return None
