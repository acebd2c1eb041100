"""What crosses the wire between the kernel and a Ray worker: JSON data, never pickled user classes.

A message (or any frozen model) travels as `{"$frozen": "package.module:ClassName", "fields": {...}}` and is rebuilt
on the other side by importing that class, so both sides hold the same class and the same `hash_key`. A class the
other side cannot import (defined in a notebook's `__main__`, or inside a function) fails with a `WireFormatError`
naming it. Failures travel as their type name, module, message and traceback text (`RemoteAgentError` on the
other side). Agents travel as the import path of their function plus their alias and frozen arguments.
"""

from __future__ import annotations

import importlib
import os
import socket
import traceback
from collections.abc import Mapping
from typing import Any

from miniagents_nb.agents import MiniAgent
from miniagents_nb.ext.ray import errors as ray_errors
from miniagents_nb.ext.ray.errors import RayAgentImportError, RemoteAgentError, WireFormatError, remote_error_class
from miniagents_nb.promising.ext.frozen import Frozen, to_json_compatible

__all__ = [
    "FROZEN_TAG",
    "agent_spec",
    "class_path",
    "decode_error",
    "decode_value",
    "encode_error",
    "encode_value",
    "import_path",
    "resolve_agent",
]

FROZEN_TAG = "$frozen"
"""The key that marks an encoded frozen model (a message or `Frozen` data)."""

_JSON_SCALARS = (str, int, float, bool, type(None))


def class_path(cls: type) -> str:
    """`package.module:QualName`, checked to be importable by another process (not `__main__`, not a local class)."""
    module, qualname = cls.__module__, cls.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        where = "in the notebook (or script) itself" if module == "__main__" else "inside a function"
        raise WireFormatError(
            f"The class {qualname} is defined {where}, so a Ray worker cannot import it: define it at the top "
            "level of a module the workers can import (a .py file, shipped with `runtime_env={'working_dir': ...}` "
            "or installed)."
        )
    return f"{module}:{qualname}"


def import_path(path: str) -> Any:
    """The object at `package.module:Qual.Name`; `WireFormatError` naming it when this process cannot import it."""
    module_name, _, qualname = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise WireFormatError(
            f"Cannot import {path} in process {os.getpid()} on {socket.gethostname()} ({type(error).__name__}: "
            f"{error}): make the module importable "
            "where the agent runs (install it, or ship it with `runtime_env={'working_dir': ...}` or "
            "`{'py_modules': [...]}`)."
        ) from None
    return target


def encode_value(value: Any) -> Any:
    """JSON data for a frozen value: messages and models tagged with their class, tuples as lists."""
    if type(value) in _JSON_SCALARS:
        return value
    if isinstance(value, Frozen):
        return {
            FROZEN_TAG: class_path(type(value)),
            "fields": {name: encode_value(item) for name, item in value.as_kwargs().items()},
        }
    if isinstance(value, (tuple, list, frozenset)):
        return [encode_value(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): encode_value(item) for key, item in value.items()}
    try:
        return to_json_compatible(value)
    except Exception:
        raise WireFormatError(
            f"A {type(value).__name__} cannot cross to a Ray worker: pass JSON data, messages or frozen models."
        ) from None


def decode_value(data: Any) -> Any:
    """The value `encode_value` encoded (its classes imported here)."""
    if type(data) in _JSON_SCALARS:
        return data
    if isinstance(data, list):
        return tuple(decode_value(item) for item in data)
    if isinstance(data, dict):
        path = data.get(FROZEN_TAG)
        if isinstance(path, str):
            cls = import_path(path)
            if not (isinstance(cls, type) and issubclass(cls, Frozen)):
                raise WireFormatError(f"{path} is not a message or frozen model class, so it cannot be rebuilt.")
            fields = {name: decode_value(item) for name, item in data["fields"].items()}
            return cls(**fields)
        return {key: decode_value(item) for key, item in data.items()}
    return data


# --- failures ------------------------------------------------------------------------------------------------------


def encode_error(error: BaseException) -> dict[str, str]:
    """Type name, module, message and traceback text of a failure (a failure that came back keeps its own)."""
    if isinstance(error, RemoteAgentError):
        return {
            "type": error.remote_type_name,
            "module": error.remote_module,
            "text": error.text,
            "traceback": error.traceback_text,
        }
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip("\n")
    return {"type": type(error).__name__, "module": type(error).__module__, "text": str(error), "traceback": text}


def decode_error(data: Mapping[str, str]) -> BaseException:
    """This package's own Ray errors as themselves; anything else as a `RemoteAgentError` of the same type name."""
    type_name, module, text = data["type"], data["module"], data["text"]
    if module == ray_errors.__name__:
        own = getattr(ray_errors, type_name, None)
        if isinstance(own, type) and issubclass(own, ray_errors.RayAgentError) and own is not RemoteAgentError:
            return own(text)
    error = remote_error_class(module, type_name)(text, data.get("traceback", ""))
    if error.traceback_text and hasattr(error, "add_note"):  # Python 3.11+: tracebacks show where it was raised
        error.add_note(f"Raised in the Ray worker:\n{error.traceback_text}")
    return error


# --- agents --------------------------------------------------------------------------------------------------------


def agent_spec(agent: MiniAgent | str) -> dict[str, Any]:
    """How a worker finds the agent: the import path of its function, its alias and its frozen arguments."""
    if isinstance(agent, str):
        if ":" not in agent:
            raise RayAgentImportError(f"{agent!r} is not an import path: write it as 'package.module:agent_name'.")
        target = import_path(agent)
        agent = target if isinstance(target, MiniAgent) else MiniAgent(target)
    if not isinstance(agent, MiniAgent):
        raise RayAgentImportError(f"ray_agent() needs a MiniAgent or an import path, got {type(agent).__name__}.")
    if agent.non_freezable_kwargs:
        names = ", ".join(sorted(agent.non_freezable_kwargs))
        raise RayAgentImportError(
            f"Agent {agent.alias} has non-freezable arguments ({names}), which cannot cross to a Ray worker: "
            "pass JSON data, messages or frozen models, or build those objects inside the agent."
        )
    func = agent.wrapped_func_or_class
    path = f"{func.__module__}:{func.__qualname__}"
    try:
        found = import_path(path)
    except WireFormatError:
        found = None
    if func.__module__ == "__main__" or not (
        found is func or (isinstance(found, MiniAgent) and found.wrapped_func_or_class is func)
    ):
        raise RayAgentImportError(
            f"Agent {agent.alias} cannot be imported by a Ray worker (its function is {path}): define it at the top "
            "level of a module (a .py file next to the notebook, shipped with `runtime_env={'working_dir': '.'}`, "
            "or an installed package) and pass it, or its path 'package.module:name', to ray_agent()."
        )
    return {
        "path": path,
        "alias": agent.alias,
        "description": agent.description,
        "kwargs": {name: encode_value(value) for name, value in agent.frozen_kwargs.items()},
    }


def resolve_agent(spec: Mapping[str, Any]) -> MiniAgent:
    """The agent `agent_spec` described, rebuilt in this process."""
    target = import_path(spec["path"])
    base = target if isinstance(target, MiniAgent) else MiniAgent(target)
    kwargs = {name: decode_value(value) for name, value in spec["kwargs"].items()}
    return base.fork(alias=spec["alias"], **kwargs)
