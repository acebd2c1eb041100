"""The errors of running agents on Ray (`miniagents_nb.ext.ray`), and how a remote failure comes back.

A remote exception cannot travel as itself (its class may not exist on this side, and pickling notebook classes is
what the wire format avoids), so it comes back as a `RemoteAgentError` whose class carries the original type's
*name* (and, for Python's built-in exceptions, the original type as a second base): `except ValueError` still
catches a remote `ValueError`, and `errors_as_messages` reads "ValueError: boom" as it would for a local call.
"""

from __future__ import annotations

from typing import Any

from miniagents_nb.errors import MiniAgentsError

__all__ = [
    "RayAgentError",
    "RayAgentImportError",
    "RayConnectionError",
    "RayDependencyError",
    "RayResourcesError",
    "RayWorkerDiedError",
    "RemoteAgentError",
    "WireFormatError",
    "remote_error_class",
]


class RayAgentError(MiniAgentsError):
    """Running an agent on Ray went wrong (not the agent itself: see `RemoteAgentError` for that)."""


class RayDependencyError(RayAgentError, ImportError):
    """The `ray` package is not installed: `pip install "miniagents-nb[ray]"`."""


class RayConnectionError(RayAgentError, ConnectionError):
    """The Ray cluster at the given address (`address=` or `MINIAGENTS_NB_RAY_ADDRESS`) cannot be reached."""


class RayAgentImportError(RayAgentError, ImportError):
    """The agent cannot be named by an import path a Ray worker can follow (e.g. it was defined in a notebook)."""


class WireFormatError(RayAgentError, TypeError):
    """A message or argument cannot cross the wire: its class cannot be imported on the other side, or a value is
    not JSON data, a message or a frozen model."""


class RayResourcesError(RayAgentError):
    """The actors of a `ray_agent` cannot start: each asks for more CPUs (or other resources) than the cluster has,
    or than it has free for `start_timeout` seconds (other pools' actors hold them until `pool.close()`)."""


class RayWorkerDiedError(RayAgentError):
    """The Ray worker (actor) running a call died mid-stream; the call fails where its stream stopped."""


class RemoteAgentError(RayAgentError):
    """What the remote agent raised: its type name (the class name of this error), message and traceback text."""

    remote_type_name: str = "RemoteAgentError"
    remote_module: str = ""

    def __init__(self, text: str = "", traceback_text: str = "") -> None:
        super().__init__(text)
        self.text = text
        self.traceback_text = traceback_text

    def __str__(self) -> str:  # a remote KeyError's message is its text, not the repr of its text
        return self.text

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.remote_module, self.remote_type_name, self.text, self.traceback_text))


_CLASSES: dict[tuple[str, str], type[RemoteAgentError]] = {}
_UNSAFE_BUILTINS = frozenset(
    {"BaseException", "Exception", "KeyboardInterrupt", "SystemExit", "GeneratorExit", "CancelledError"}
)


def remote_error_class(module: str, type_name: str) -> type[RemoteAgentError]:
    """The `RemoteAgentError` subclass named `type_name` (one per name; a built-in exception type is a base too)."""
    key = (module, type_name)
    cls = _CLASSES.get(key)
    if cls is not None:
        return cls
    bases: tuple[type, ...] = (RemoteAgentError,)
    if module == "builtins" and type_name not in _UNSAFE_BUILTINS and type_name.isidentifier():
        import builtins

        original = getattr(builtins, type_name, None)
        if isinstance(original, type) and issubclass(original, Exception):
            try:
                type(type_name, (RemoteAgentError, original), {})("probe")
            except TypeError:  # a built-in whose layout or constructor does not mix (e.g. UnicodeDecodeError)
                pass
            else:
                bases = (RemoteAgentError, original)
    name = type_name if type_name.isidentifier() else "RemoteAgentError"
    made = type(
        name,
        bases,
        {"remote_type_name": type_name, "remote_module": module, "__module__": __name__, "__qualname__": name},
    )
    _CLASSES[key] = made
    return made


def _rebuild(module: str, type_name: str, text: str, traceback_text: str) -> RemoteAgentError:
    return remote_error_class(module, type_name)(text, traceback_text)
