"""`MessagingContext`: the settings message sequences read from the context they are created in."""

from __future__ import annotations

from typing import Any

from miniagents_nb.promising.context import PromisingContext

__all__ = ["MessagingContext"]


class MessagingContext(PromisingContext):
    """A promising context that also says how message sequences deliver failures.

    `MiniAgents` is one. A sequence created under a plain `PromisingContext` uses the defaults (failures raised at
    their position, no tracebacks in messages).
    """

    _context_name = "MessagingContext"

    def __init__(
        self, *, errors_as_messages: bool = False, error_tracebacks_in_messages: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.errors_as_messages = errors_as_messages
        """Sequences deliver failures as `ErrorMessage`s ("<Type>: <message>") instead of raising them."""
        self.error_tracebacks_in_messages = error_tracebacks_in_messages
        """Such `ErrorMessage`s carry the whole traceback."""
