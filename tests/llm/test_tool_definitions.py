"""Tools from Python: functions (sync, async) and agents become tools with a name, a description, per-parameter
descriptions from the docstring, and a strict JSON schema; bad definitions fail at definition."""

from __future__ import annotations

import enum
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from miniagents_nb import InteractionContext, miniagent
from miniagents_nb.errors import MiniAgentsError
from miniagents_nb.ext.llms import (
    FakeLLMAgent,
    Tool,
    ToolArgumentsError,
    ToolCall,
    ToolDefinitionError,
    as_tool,
    tool,
)
from miniagents_nb.ext.llms.tool_schema import parse_docstring


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Place(BaseModel):
    city: str
    country: str | None = None


async def forecast(place: Place, unit: Unit, days: int = 3, detail: Literal["short", "long"] | None = None) -> str:
    """Forecast the weather of a place.

    Use it for questions about the coming days.

    Args:
        place: Where.
        unit: Which temperature unit
            to answer in.
        days (int): How many days ahead.

    Returns:
        The forecast as text.
    """
    return f"{place.city}: sunny for {days} days in {unit.value}"


def test_a_function_becomes_a_tool_with_a_strict_schema_and_docstring_descriptions() -> None:
    made = tool(forecast)
    assert (made.name, made.sequential, made.strict, made.timeout) == ("forecast", False, True, None)
    assert made.description == "Forecast the weather of a place. Use it for questions about the coming days."
    place = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    assert made.parameters == {
        "$defs": {"Place": place, "Unit": {"enum": ["celsius", "fahrenheit"], "type": "string"}},
        "type": "object",
        "properties": {
            "place": {**place, "description": "Where."},
            "unit": {
                "enum": ["celsius", "fahrenheit"],
                "type": "string",
                "description": "Which temperature unit to answer in.",
            },
            "days": {"type": "integer", "default": 3, "description": "How many days ahead."},
            "detail": {"anyOf": [{"enum": ["short", "long"], "type": "string"}, {"type": "null"}]},
        },
        "required": ["place", "unit", "days", "detail"],
        "additionalProperties": False,
    }


def test_a_non_strict_tool_keeps_optional_parameters_optional() -> None:
    made = tool(strict=False, name="weather", description="  The   weather. ")(forecast)
    assert (made.name, made.description, made.strict) == ("weather", "The weather.", False)
    assert made.parameters["required"] == ["place", "unit"]
    assert made.parameters["properties"]["detail"]["default"] is None


def test_arguments_are_validated_into_python_values() -> None:
    made = tool(forecast)
    arguments = made.validate_arguments('{"place": {"city": "Oslo", "country": null}, "unit": "celsius", "days": 2}')
    assert arguments == {"place": Place(city="Oslo"), "unit": Unit.CELSIUS, "days": 2, "detail": None}
    with pytest.raises(ToolArgumentsError) as raised:
        made.validate_arguments('{"place": {"city": "Oslo"}, "unit": "kelvin", "extra": 1}')
    assert raised.value.tool_name == "forecast"
    text = str(raised.value)
    assert "unit: Input should be 'celsius' or 'fahrenheit'" in text
    assert "extra: Extra inputs are not permitted" in text
    assert "Call it again" in text
    with pytest.raises(ToolArgumentsError, match="Invalid JSON"):
        made.validate_arguments('{"place": ')


async def test_a_tool_stays_callable_as_its_function() -> None:
    made = tool(forecast)
    assert await made(Place(city="Rome"), Unit.FAHRENHEIT, days=1) == "Rome: sunny for 1 days in fahrenheit"

    @tool(sequential=True, timeout=2.5)
    def add(a: int, b: int = 1) -> int:
        """Add two numbers."""
        return a + b

    assert isinstance(add, Tool)
    assert (add(2, 3), add.sequential, add.timeout, add.description) == (5, True, 2.5, "Add two numbers.")
    assert add.parameters["properties"] == {"a": {"type": "integer"}, "b": {"type": "integer", "default": 1}}


def test_an_agent_becomes_a_tool_of_its_request_and_keyword_parameters() -> None:
    @miniagent(alias="RESEARCHER", topic_hint="frozen, so not a tool argument")
    async def researcher(ctx: InteractionContext, depth: int, topic_hint: str, style: str = "plain") -> None:
        """Researches a question.

        Args:
            request: The question to research.
            depth: How many sources to read.
        """
        ctx.reply("done")

    made = as_tool(researcher)
    assert made.name == "researcher"
    # the docstring's Args section is in the schema (below), not repeated in the description the model reads
    assert researcher.description == (
        "Researches a question. Args: request: The question to research. depth: How many sources to read."
    )
    assert made.description == "Researches a question."
    assert made.parameters == {
        "type": "object",
        "properties": {
            "request": {"type": "string", "description": "The question to research."},
            "depth": {"type": "integer", "description": "How many sources to read."},
            "style": {"type": "string", "default": "plain"},
        },
        "required": ["request", "depth", "style"],
        "additionalProperties": False,
    }
    assert as_tool(made) is made


def test_docstring_sections_and_sphinx_parameters() -> None:
    assert parse_docstring("Do it.\n\n:param x: The x.\n:param int y: The y\n    continued.\n:returns: z") == (
        "Do it.",
        {"x": "The x.", "y": "The y continued."},
    )
    assert parse_docstring(None) == ("", {})


class NotASchemaType:
    pass


def no_hint(city):  # type: ignore[no-untyped-def]
    return city


def any_hint(city: Any) -> str:
    return str(city)


def unsupported(thing: NotASchemaType) -> str:
    return ""


def star_args(*cities: str) -> str:
    return ""


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (lambda: tool(no_hint), "Parameter `city` of tool no_hint (function no_hint) has no type hint"),
        (lambda: tool(any_hint), "is typed `Any`, which tells the model nothing"),
        (
            lambda: tool(unsupported),
            "Parameter `thing` of tool unsupported (function unsupported) has a type with no JSON schema",
        ),
        (lambda: tool(star_args), "takes *cities"),
        (lambda: tool(name="bad name!")(forecast), "a tool name is 1 to 64 letters, digits"),
        (lambda: tool(timeout=0)(forecast), "timeout is a number of seconds > 0"),
        (lambda: Tool(42), "made from a function or a MiniAgent, got int"),  # type: ignore[arg-type]
        (lambda: FakeLLMAgent.fork(tools=[forecast, star_args]), "takes *cities"),
        (
            lambda: FakeLLMAgent.trigger("hi", tools=[forecast, tool(name="forecast")(add_one)]),
            "Two tools are named 'forecast'",
        ),
        (lambda: FakeLLMAgent.fork(tools="forecast"), "tools= takes a list of functions, agents or tools, got str"),
    ],
)
def test_bad_definitions_fail_at_definition(definition: Any, expected: str) -> None:
    with pytest.raises(ToolDefinitionError) as raised:
        definition()
    assert expected in str(raised.value)
    assert isinstance(raised.value, (MiniAgentsError, ValueError))


def add_one(value: int) -> int:
    return value + 1


def test_tool_calls_are_frozen_values() -> None:
    call = ToolCall("forecast", {"place": {"city": "Oslo"}})
    assert (call.name, call.arguments.place.city, call.id) == ("forecast", "Oslo", None)
    assert ToolCall("forecast", '{"broken"', id="c1").arguments == '{"broken"'
    assert call.hash_key == ToolCall("forecast", {"place": {"city": "Oslo"}}).hash_key


def test_an_agent_tool_keeps_a_description_given_to_the_agent() -> None:
    @miniagent(description="Writes a short poem about {AGENT_ALIAS}'s topic. Args: none of these are parsed.")
    async def poet(ctx: InteractionContext) -> None:
        """Writes poems.

        Args:
            request: The topic.
        """
        ctx.reply("a poem")

    @miniagent
    async def summarizer(ctx: InteractionContext) -> None:
        """{AGENT_ALIAS} sums a text up in one line.

        Returns:
            One line.
        """
        ctx.reply("a line")

    made = as_tool(poet)
    assert made.description == "Writes a short poem about POET's topic. Args: none of these are parsed."
    assert made.parameters["properties"]["request"]["description"] == "The topic."
    assert as_tool(summarizer).description == "SUMMARIZER sums a text up in one line."
    assert as_tool(poet.fork(description="Another poet.")).description == "Another poet."
