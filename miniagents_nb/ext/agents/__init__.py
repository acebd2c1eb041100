"""Pre-packaged agents, by theme: one module each (`miniagents_nb.ext` re-exports the agents themselves)."""

from __future__ import annotations

__all__: list[str] = []
