"""The front-end code of the widgets: one ES module and one stylesheet each, with what they share put in front.

anywidget takes one ES module per widget and there is no build step, so `static/shared.js` (the delta protocol and
the DOM helpers) and `static/shared.css` (the status badges) are prepended to each widget's own file, after them
the parts a widget builds on (`static/timeline.*` for the views).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

__all__ = ["widget_css", "widget_esm"]

_STATIC = Path(__file__).parent / "static"


def _read(name: str) -> str:
    return (_STATIC / name).read_text(encoding="utf-8")


_PARTS = {"views": ("timeline", "saving"), "user_agent": ("saving",), "runs_table": ("saving",)}
"""What a widget's own file builds on besides the shared code (the views draw timelines; both keep a saved form)."""


def widget_esm(name: str) -> str:
    """The ES module of widget `name` (`static/<name>.js` after the shared code and its parts)."""
    return "".join(_read(f"{part}.js") for part in ("shared", *_PARTS.get(name, ()), name))


@cache  # the static forms put it into every final output: read the files once
def widget_css(name: str) -> str:
    """The stylesheet of widget `name` (`static/<name>.css` after the shared rules and its parts)."""
    parts = ("shared", *_PARTS.get(name, ()), name)
    return "".join(_read(f"{part}.css") for part in parts if (_STATIC / f"{part}.css").exists())  # saving.js has none
