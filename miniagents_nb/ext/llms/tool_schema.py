"""From a Python signature to what a model reads about a tool: the description and the JSON schema of its arguments.

The schema is pydantic's (so pydantic models, enums, `Literal`, optionals and lists all work), made *strict* the way
OpenAI's strict mode wants it and every provider accepts: each object forbids extra properties and lists all its
properties as required (an optional parameter is then a nullable one the model must give), a `$ref` with sibling
keywords is inlined, and the `title`s pydantic adds are left out (they only cost the model tokens).
"""

from __future__ import annotations

import copy
import inspect
import re
import typing
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PydanticUserError, TypeAdapter, create_model

from miniagents_nb.ext.llms.tool_errors import ToolDefinitionError

__all__ = [
    "TOOL_NAME_PATTERN",
    "ToolParameter",
    "arguments_model",
    "check_tool_name",
    "parse_docstring",
    "signature_parameters",
    "strict_json_schema",
]

TOOL_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""What OpenAI and Anthropic accept as a tool name."""

_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Returns?|Yields?|Raises|Examples?|Notes?|"
    r"Attributes|See Also|Warnings?|Todo)\s*:\s*$",
    re.IGNORECASE,
)
_ARGUMENT_SECTIONS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
_ARGUMENT_LINE = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


def _squash(lines: Iterable[str]) -> str:
    return " ".join(" ".join(lines).split())


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(the description, {parameter: its description}) from a Google-style (`Args:`) or Sphinx (`:param x:`)
    docstring; the other sections (Returns, Raises, ...) are left out: they are for programmers, not the model."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    description: list[str] = []
    parameters: dict[str, list[str]] = {}
    section: str | None = None
    current: list[str] | None = None
    base_indent: int | None = None
    for line in lines:
        stripped = line.strip()
        header = _SECTION.match(stripped)
        if header and len(line) - len(line.lstrip()) == 0:
            section, current, base_indent = header.group(1).lower(), None, None
            continue
        sphinx = _SPHINX_PARAM.match(stripped)
        if sphinx:
            section = "sphinx"
            current = parameters.setdefault(sphinx.group(1), [])
            current.append(sphinx.group(2))
            continue
        if section is None:
            description.append(stripped)
        elif section in _ARGUMENT_SECTIONS:
            indent = len(line) - len(line.lstrip())
            if stripped and (base_indent is None or indent <= base_indent):
                match = _ARGUMENT_LINE.match(stripped)
                if match:
                    base_indent = indent
                    current = parameters.setdefault(match.group(1), [])
                    current.append(match.group(2))
                    continue
            if current is not None and stripped:
                current.append(stripped)
        elif section == "sphinx" and current is not None and stripped and not stripped.startswith(":"):
            current.append(stripped)
    return _squash(description), {name: _squash(text) for name, text in parameters.items()}


def check_tool_name(name: str, what: str) -> str:
    if not TOOL_NAME_PATTERN.match(name):
        raise ToolDefinitionError(
            f"{what} cannot be a tool named {name!r}: a tool name is 1 to 64 letters, digits, '_' or '-'. "
            "Give another one with @tool(name=...)."
        )
    return name


class ToolParameter:
    """One parameter of a tool: its name, type hint, default (`inspect.Parameter.empty` when required) and the
    description the model reads."""

    __slots__ = ("annotation", "default", "description", "name")

    def __init__(self, name: str, annotation: Any, default: Any, description: str | None) -> None:
        self.name = name
        self.annotation = annotation
        self.default = default
        self.description = description


def signature_parameters(
    function: Callable[..., Any], what: str, *, skip_first: bool = False, descriptions: dict[str, str]
) -> list[ToolParameter]:
    """The parameters of `function` with their resolved type hints (string annotations included); every parameter
    must have a hint, and `*args` / `**kwargs` have no place in a schema."""
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception as error:  # NameError for a hint naming something not importable where the function lives
        raise ToolDefinitionError(
            f"The type hints of {what} cannot be resolved ({type(error).__name__}: {error}): define the types they "
            "name at module level."
        ) from error
    parameters = list(inspect.signature(function).parameters.values())
    if skip_first:
        parameters = parameters[1:]
    result = []
    for parameter in parameters:
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"{what} takes *{parameter.name}: a tool's arguments are named, so list them as parameters."
            )
        if parameter.name not in hints:
            raise ToolDefinitionError(
                f"Parameter `{parameter.name}` of {what} has no type hint: a tool's arguments are described to the "
                f"model by their types, so annotate it (e.g. `{parameter.name}: str`)."
            )
        annotation = hints[parameter.name]
        if annotation is Any or annotation is object:
            raise ToolDefinitionError(
                f"Parameter `{parameter.name}` of {what} is typed `{getattr(annotation, '__name__', annotation)}`, "
                "which tells the model nothing: give it a concrete type (str, int, a pydantic model, ...)."
            )
        if parameter.name.startswith("_"):
            raise ToolDefinitionError(
                f"Parameter `{parameter.name}` of {what} starts with '_': pydantic (and so a tool schema) has no "
                "such fields. Rename it."
            )
        try:
            TypeAdapter(annotation).json_schema()
        except (PydanticUserError, TypeError, ValueError) as error:
            raise ToolDefinitionError(
                f"Parameter `{parameter.name}` of {what} has a type with no JSON schema ({annotation!r}): use str, "
                f"numbers, bool, enums, Literal, lists, dicts or pydantic models. ({type(error).__name__}: {error})"
            ) from error
        result.append(ToolParameter(parameter.name, annotation, parameter.default, descriptions.get(parameter.name)))
    return result


def arguments_model(model_name: str, parameters: list[ToolParameter]) -> type[BaseModel]:
    """The pydantic model of a tool's arguments (extra arguments are refused)."""
    fields: dict[str, Any] = {}
    for parameter in parameters:
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[parameter.name] = (parameter.annotation, Field(default, description=parameter.description))
    return create_model(model_name, __config__=ConfigDict(extra="forbid", use_enum_values=False), **fields)


def strict_json_schema(schema: dict[str, Any], *, strict: bool) -> dict[str, Any]:
    """`schema` without titles, `$ref`s with siblings inlined, objects closed (`additionalProperties: false`); when
    `strict`, every property required and `default: null` dropped (see the module docstring)."""
    definitions = schema.get("$defs", {})

    def resolve(reference: str) -> dict[str, Any]:
        name = reference.rsplit("/", 1)[-1]
        return copy.deepcopy(definitions[name])

    def walk(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if "$ref" in node and len(node) > 1:
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            return walk({**resolve(node["$ref"]), **siblings})
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "title" and isinstance(value, str):
                continue
            if key in ("properties", "$defs"):
                out[key] = {name: walk(item) for name, item in value.items()}
            elif key in ("anyOf", "allOf", "oneOf", "prefixItems"):
                out[key] = [walk(item) for item in value]
            elif key in ("items", "additionalProperties", "not"):
                out[key] = walk(value)
            else:
                out[key] = value
        if out.get("type") == "object" and "properties" in out:
            out["additionalProperties"] = False
            if strict:
                out["required"] = list(out["properties"])
        if strict and "default" in out and out["default"] is None:
            del out["default"]
        return out

    result: dict[str, Any] = walk(schema)
    result.setdefault("properties", {})
    result.setdefault("type", "object")
    if strict:
        result.setdefault("required", [])
    return result
