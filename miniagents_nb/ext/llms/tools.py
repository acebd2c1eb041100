"""Python functions and agents as LLM tools: `@tool`, `Tool`, `ToolSet`, and `ToolCall` (what a model asks for).

A tool is defined once, and everything a definition can get wrong (a parameter without a type hint, a type with no
JSON schema, a bad or duplicate name) fails right there with a `ToolDefinitionError`, not when a model first calls
it. Every execution of a tool is an agent call (`Tool.agent`, whose alias is the tool's name) made by the LLM call,
so the notebook views, the run store and `errors_as_messages` see tools the way they see any agent.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, overload

from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

from miniagents_nb.agents import InteractionContext, MiniAgent
from miniagents_nb.ext.llms.messages import ToolResultMessage
from miniagents_nb.ext.llms.tool_errors import ToolArgumentsError, ToolDefinitionError, ToolTimeoutError
from miniagents_nb.ext.llms.tool_schema import (
    ToolParameter,
    arguments_model,
    check_tool_name,
    parse_docstring,
    signature_parameters,
    strict_json_schema,
)
from miniagents_nb.messages import Message, MessageType
from miniagents_nb.promising.ext.frozen import Frozen

__all__ = ["Tool", "ToolCall", "ToolSet", "as_tool", "make_tool_set", "tool"]

AGENT_REQUEST_PARAMETER = "request"
"""The argument that becomes the input message of an agent used as a tool (its keyword parameters are the rest)."""


class ToolCall(Frozen):
    """A tool call a model makes: `ToolCall("get_weather", {"city": "Paris"})`. A `FakeLLMAgent` reply (in
    `replies=` or from `reply_fn`) may be one, or a list of strings and `ToolCall`s; `arguments` may also be a string
    of raw JSON (even invalid JSON, to script a model's mistake); `id` is made up when not given."""

    name: str
    arguments: Any = None
    id: str | None = None

    def __init__(self, name: str, arguments: Any = None, id: str | None = None, **fields: Any) -> None:
        super().__init__(name=name, arguments=arguments, id=id, **fields)


def _result_message(value: Any, tool_name: str) -> Message:
    if isinstance(value, Message):
        return value
    text = value if isinstance(value, str) else to_json(value).decode()
    return ToolResultMessage(content=text, tool_name=tool_name)


async def _execute(ctx: InteractionContext, *, tool: Tool) -> None:
    """The agent behind every tool: its input is the model's `ToolCallMessage`, its replies the tool's result."""
    messages = await ctx.message_promises
    text = str(getattr(messages[0], "content", "") or "") if messages else ""
    arguments = tool.validate_arguments(text)
    ctx.reply(await tool.arun(arguments))


class Tool:
    """A tool a model can call: `name`, `description`, `parameters` (the JSON schema of the arguments, strict
    unless `strict=False`), `sequential` (runs alone, never beside the turn's other tools), `timeout` (seconds).

    Build one with `@tool` or `as_tool(...)`. A tool made from a function is still that function (`tool(...)` calls
    it). `agent` is the MiniAgent that executes the tool: the LLM loop calls it once per tool call.
    """

    def __init__(
        self,
        target: Callable[..., Any] | MiniAgent,
        *,
        name: str | None = None,
        description: str | None = None,
        sequential: bool = False,
        strict: bool = True,
        timeout: float | None = None,
    ) -> None:
        if isinstance(target, Tool):
            raise ToolDefinitionError(f"{target!r} is a tool already: use it as is (or build from its function).")
        if timeout is not None and timeout <= 0:
            raise ToolDefinitionError(f"A tool's timeout is a number of seconds > 0, got {timeout!r}.")
        self.target = target
        self.sequential = sequential
        self.strict = strict
        self.timeout = timeout
        if isinstance(target, MiniAgent):
            self.name, self.description, parameters = _agent_definition(target, name)
        elif callable(target):
            self.name, self.description, parameters = _function_definition(target, name)
        else:
            raise ToolDefinitionError(
                f"A tool is made from a function or a MiniAgent, got {type(target).__name__}: decorate a function "
                "with @tool, or pass an agent."
            )
        if description is not None:
            self.description = " ".join(description.split())
        self.arguments_model: type[BaseModel] = arguments_model(f"{self.name}_arguments", parameters)
        self.parameters: dict[str, Any] = strict_json_schema(self.arguments_model.model_json_schema(), strict=strict)
        self.agent = MiniAgent(
            _execute, alias=self.name, description=self.description, non_freezable_kwargs={"tool": self}
        )
        self._is_coroutine = not isinstance(target, MiniAgent) and _is_async(target)
        self.__doc__ = self.description
        self.__name__ = self.name

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function the tool was made from, as if it were not a tool."""
        if isinstance(self.target, MiniAgent):
            return self.target.trigger(*args, **kwargs)
        return self.target(*args, **kwargs)

    def validate_arguments(self, arguments_json: str) -> dict[str, Any]:
        """The keyword arguments for the tool from the model's JSON, or a `ToolArgumentsError` that tells the model
        what was wrong (it goes back to the model so that it can call the tool again)."""
        try:
            validated = self.arguments_model.model_validate_json(arguments_json.strip() or "{}")
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in item['loc']) or 'arguments'}: {item['msg']}"
                for item in error.errors(include_url=False)
            )
            raise ToolArgumentsError(
                f"The arguments for tool {self.name} do not fit its schema ({problems}). Call it again with "
                "arguments that match the schema.",
                tool_name=self.name,
            ) from None
        return {field: getattr(validated, field) for field in type(validated).model_fields}

    async def arun(self, arguments: dict[str, Any]) -> MessageType:
        """Run the tool with validated arguments and return what it replies (honouring `timeout`)."""
        work = self._arun(arguments)
        if self.timeout is None:
            return await work
        try:
            return await asyncio.wait_for(work, self.timeout)
        except asyncio.TimeoutError:
            raise ToolTimeoutError(
                f"Tool {self.name} did not finish within its timeout of {self.timeout} s: make it faster, or "
                "raise the timeout with @tool(timeout=...)."
            ) from None

    async def _arun(self, arguments: dict[str, Any]) -> MessageType:
        target = self.target
        if isinstance(target, MiniAgent):
            request = arguments.pop(AGENT_REQUEST_PARAMETER)
            kwargs: dict[str, Any] = {
                key: value.model_dump(mode="json") if isinstance(value, BaseModel) else value
                for key, value in arguments.items()
            }
            return await target.trigger(request, **kwargs)
        if self._is_coroutine:
            value = await target(**arguments)
        else:  # a worker thread: a blocking function does not hold the event loop (and runs beside other tools)
            value = await asyncio.to_thread(target, **arguments)
        return _result_message(value, self.name)


def _is_async(target: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(getattr(target, "__call__", None))  # noqa: B004


def _function_definition(function: Callable[..., Any], name: str | None) -> tuple[str, str, list[ToolParameter]]:
    function_name = getattr(function, "__name__", type(function).__name__)
    tool_name = check_tool_name(name if name is not None else function_name, f"Function {function_name}")
    description, descriptions = parse_docstring(inspect.getdoc(function))
    what = f"tool {tool_name} (function {function_name})"
    return tool_name, description, signature_parameters(function, what, descriptions=descriptions)


def _agent_definition(agent: MiniAgent, name: str | None) -> tuple[str, str, list[ToolParameter]]:
    tool_name = check_tool_name(name if name is not None else agent.alias.lower(), f"Agent {agent.alias}")
    func = agent.wrapped_func_or_class
    doc = inspect.getdoc(func)
    docstring_text, descriptions = parse_docstring(doc)
    description = agent.description or ""
    if doc and description == " ".join(doc.split()).replace("{AGENT_ALIAS}", agent.alias):
        # the agent's description is its whole docstring: the model reads the text before the sections (the
        # parameters' descriptions go into the schema, Returns / Raises are for programmers)
        description = docstring_text.replace("{AGENT_ALIAS}", agent.alias)
    request = ToolParameter(
        AGENT_REQUEST_PARAMETER,
        str,
        inspect.Parameter.empty,
        descriptions.get(AGENT_REQUEST_PARAMETER) or f"The message to send to {agent.alias}.",
    )
    parameters = [request]
    if inspect.isfunction(func):  # `async def agent(ctx, *, keyword: type, ...)`: the keywords not frozen yet
        frozen = set(agent.frozen_kwargs) | set(agent.non_freezable_kwargs)
        what = f"tool {tool_name} (agent {agent.alias})"
        signature = signature_parameters(func, what, skip_first=True, descriptions=descriptions)
        parameters += [parameter for parameter in signature if parameter.name not in frozen]
    return tool_name, description, parameters


@overload
def tool(target: Callable[..., Any] | MiniAgent, /) -> Tool: ...
@overload
def tool(
    target: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    sequential: bool = False,
    strict: bool = True,
    timeout: float | None = None,
) -> Callable[[Callable[..., Any] | MiniAgent], Tool]: ...
def tool(
    target: Callable[..., Any] | MiniAgent | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    sequential: bool = False,
    strict: bool = True,
    timeout: float | None = None,
) -> Tool | Callable[[Callable[..., Any] | MiniAgent], Tool]:
    """Make a function (sync or async, with type hints) or a MiniAgent a tool; bare (`@tool`) or with options:
    `name`, `description` (else the docstring's text before its sections; per-parameter descriptions come from its
    `Args:` section), `sequential=True` (run alone), `strict=False` (a schema without strict-mode rules), `timeout`
    (seconds)."""
    options = {"name": name, "description": description, "sequential": sequential, "strict": strict}

    def make(definition: Callable[..., Any] | MiniAgent) -> Tool:
        return Tool(definition, timeout=timeout, **options)  # type: ignore[arg-type]

    return make if target is None else make(target)


def as_tool(value: Tool | Callable[..., Any] | MiniAgent) -> Tool:
    """`value` as a tool (a `Tool` as is)."""
    return value if isinstance(value, Tool) else Tool(value)


class ToolSet(tuple[Tool, ...]):
    """The tools of an LLM call, with unique names (`by_name`)."""

    by_name: Mapping[str, Tool]

    def __new__(cls, tools: Iterable[Tool]) -> ToolSet:
        made = super().__new__(cls, tools)
        by_name: dict[str, Tool] = {}
        for item in made:
            if item.name in by_name:
                raise ToolDefinitionError(
                    f"Two tools are named {item.name!r}: a model calls tools by name, so give one of them another "
                    "name with @tool(name=...)."
                )
            by_name[item.name] = item
        made.by_name = by_name
        return made


def make_tool_set(tools: Iterable[Any]) -> ToolSet:
    """The tools given to `trigger(tools=[...])` / `fork(tools=[...])` (functions, agents, tools) as a `ToolSet`."""
    if isinstance(tools, ToolSet):
        return tools
    if isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Iterable):
        raise ToolDefinitionError(f"tools= takes a list of functions, agents or tools, got {type(tools).__name__}.")
    return ToolSet(as_tool(item) for item in tools)
