"""IPython entry points the notebook layer uses, typed in one place.

IPython's magic decorators and display functions are unannotated, which mypy's strict mode rejects at every use
(and an untyped decorator would make the decorated magic untyped). The wrappers here give them precise types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from IPython import display as _display
from IPython.core import magic as _magic
from IPython.core import magic_arguments as _magic_arguments

__all__ = [
    "argument",
    "cell_magic",
    "display",
    "line_magic",
    "magic_arguments",
    "parse_argstring",
    "update_display",
]

_F = TypeVar("_F", bound=Callable[..., Any])


class Decorator(Protocol):
    """A decorator that returns the function it decorates (with its type)."""

    def __call__(self, func: _F, /) -> _F: ...


_untyped: Any = (_magic, _magic_arguments, _display)


def argument(*args: Any, **kwargs: Any) -> Decorator:
    """`IPython.core.magic_arguments.argument`: an argparse argument of a magic."""
    return cast(Decorator, _untyped[1].argument(*args, **kwargs))


def magic_arguments() -> Decorator:
    """`IPython.core.magic_arguments.magic_arguments`: collect the `argument`s below it (and `%%name?` help)."""
    return cast(Decorator, _untyped[1].magic_arguments())


def parse_argstring(magic_func: Callable[..., Any], argstring: str) -> Any:
    """Parse a magic's line; a usage error raises IPython's `UsageError`."""
    return _untyped[1].parse_argstring(magic_func, argstring)


def cell_magic(func: _F, /) -> _F:
    """`IPython.core.magic.cell_magic` used bare, in a `@magics_class`."""
    return cast(_F, _untyped[0].cell_magic(func))


def line_magic(func: _F, /) -> _F:
    """`IPython.core.magic.line_magic` used bare, in a `@magics_class`."""
    return cast(_F, _untyped[0].line_magic(func))


def display(*objs: Any, **kwargs: Any) -> Any:
    """`IPython.display.display`."""
    return _untyped[2].display(*objs, **kwargs)


def update_display(obj: Any, *, display_id: str, **kwargs: Any) -> None:
    """`IPython.display.update_display`."""
    _untyped[2].update_display(obj, display_id=display_id, **kwargs)
