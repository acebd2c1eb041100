"""Sentinel values of the promise engine.

`AWAIT` and `CLEAR` are importable from here too, because the seeds import them from this path; they are
`agent_chain`'s markers and live with it (`miniagents_nb.ext`), so this module serves them by name on first access
(see `miniagents_nb.compat`) and the engine never imports the agents.
"""

from __future__ import annotations

from typing import Final, NoReturn

from miniagents_nb.compat import lazy_attributes

__all__ = ["AWAIT", "CLEAR", "END_OF_QUEUE", "END_OF_UNORDERED_QUEUE", "FAILED", "NO_VALUE", "Sentinel"]  # noqa: F822


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

__getattr__ = lazy_attributes(
    __name__,
    {
        "AWAIT": "miniagents_nb.ext.agents.aggregator_agents.AWAIT",
        "CLEAR": "miniagents_nb.ext.agents.aggregator_agents.CLEAR",
    },
)
