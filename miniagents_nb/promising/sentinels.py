"""Sentinel values of the promise engine, and the chain markers `AWAIT` / `CLEAR`."""

from __future__ import annotations

from typing import Final, NoReturn

__all__ = ["AWAIT", "CLEAR", "END_OF_QUEUE", "END_OF_UNORDERED_QUEUE", "FAILED", "NO_VALUE", "Sentinel"]


class Sentinel:
    """A unique marker compared with `is`; truth-testing one is a bug, so it raises."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __bool__(self) -> NoReturn:
        raise RuntimeError(f"Sentinel {self._name} must not be used in a boolean expression; compare it with `is`.")

    def __repr__(self) -> str:
        return self._name


NO_VALUE: Final = Sentinel("NO_VALUE")
"""An argument that was not given: inherit the context's default."""
FAILED: Final = Sentinel("FAILED")
END_OF_QUEUE: Final = Sentinel("END_OF_QUEUE")
END_OF_UNORDERED_QUEUE: Final = Sentinel("END_OF_UNORDERED_QUEUE")

# Plain strings on purpose (as upstream): they are written inside `agents=[...]` lists next to agents.
AWAIT: Final = "AWAIT"
"""In `agent_chain` / `agent_loop`: wait until the sequence so far is complete before the next agent starts."""
CLEAR: Final = "CLEAR"
"""In `agent_chain` / `agent_loop`: drop the messages so far; the next agent starts with no input."""
