"""Extensions of the promise engine that are not promises themselves (immutable models)."""

from __future__ import annotations

__all__: list[str] = []
