"""State that belongs to one `MiniAgents` context, never to a module.

Upstream MiniAgents kept the default chat history in a module-level list, so every context (and every test in a
process) shared one conversation. Pre-packaged agents keep such state on the context object instead: two contexts
never see each other's state, and it goes away with its context.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from miniagents_nb.promising.context import PromisingContext

__all__ = ["per_context"]

_T = TypeVar("_T")


def per_context(context: PromisingContext, key: Hashable, factory: Callable[[], _T]) -> _T:
    """The value stored under `key` in `context`, made by `factory()` the first time it is asked for."""
    store = context.extension_state
    try:
        return store[key]  # type: ignore[no-any-return]
    except KeyError:
        value = store[key] = factory()
        return value
