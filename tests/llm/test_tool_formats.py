"""Each provider's shape of `tool_choice` and `parallel_tool_calls`, for every form the loop accepts."""

from __future__ import annotations

from typing import Any

import pytest

from miniagents_nb.ext.llms import tool
from miniagents_nb.ext.llms.tool_formats import anthropic_tool_request, openai_tool_request


@tool
def search(query: str) -> str:
    """Search the web."""
    return query


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        (None, None, {}),
        ("auto", None, {"tool_choice": "auto"}),
        ("required", False, {"tool_choice": "required", "parallel_tool_calls": False}),
        ("none", True, {"tool_choice": "none", "parallel_tool_calls": True}),
        ("search", None, {"tool_choice": {"type": "function", "function": {"name": "search"}}}),
        (
            {"type": "function", "function": {"name": "search"}},
            None,
            {"tool_choice": {"type": "function", "function": {"name": "search"}}},
        ),
    ],
)
def test_openai_tool_choice(tool_choice: Any, parallel: bool | None, expected: dict[str, Any]) -> None:
    request = openai_tool_request([search], tool_choice, parallel)
    assert request.pop("tools")[0]["function"]["name"] == "search"
    assert request == expected


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        (None, None, None),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("auto", True, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
        ("search", None, {"type": "tool", "name": "search"}),
        ({"type": "any"}, False, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
def test_anthropic_tool_choice(tool_choice: Any, parallel: bool | None, expected: dict[str, Any] | None) -> None:
    request = anthropic_tool_request([search], tool_choice, parallel)
    assert request["tools"] == [
        {
            "name": "search",
            "description": "Search the web.",
            "input_schema": {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
                "additionalProperties": False,
            },
        }
    ]
    assert request.get("tool_choice") == expected
