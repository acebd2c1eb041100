"""Text of objects that may refuse to be text: for the observers that show and record what agents do.

An agent's exception, a message or a token is user code: its `__str__` can raise (a `content_template` naming a
missing field, an exception class whose `__str__` is broken). Whatever shows or records it (the notebook's views
and call tracker, the run store) must go on and say what happened, never die at that `str()` and leave a call
"running" or a view "streaming" for ever.
"""

from __future__ import annotations

import traceback
from typing import Any

__all__ = ["safe_error_text", "safe_str"]


def _describe_failure(obj: Any, failure: BaseException) -> str:
    try:
        why = f"{type(failure).__name__}: {failure}"
    except Exception:  # the failure is as broken as the object
        why = type(failure).__name__
    return f"<{type(obj).__name__} that cannot be shown as text: its str() raised {why}>"


def safe_str(obj: Any) -> str:
    """`str(obj)`, or a description of why it has none when its `__str__` raises (never raises itself)."""
    if type(obj) is str:
        return obj
    try:
        return str(obj)
    except Exception as failure:
        return _describe_failure(obj, failure)


def safe_error_text(error: BaseException, with_traceback: bool = False) -> str:
    """`"<Type>: <message>"` (with the traceback on request) even when the exception's `__str__` raises."""
    if with_traceback:
        try:
            return "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip("\n")
        except Exception:  # (`traceback` copes with a broken `__str__`; this is for stranger objects)
            return safe_error_text(error)
    return f"{type(error).__name__}: {safe_str(error)}"
