"""Seed-era module of helpers around message sequences and agent traces (`miniagents.utils` in the seeds).

The helpers live with what they work on (`miniagents_nb.messages` for joining and splitting messages,
`miniagents_nb.ext` for the dialog loops); this module keeps the seeds' import path working, and holds the trace
helpers used by logging.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from miniagents_nb.agents import AgentDefinition, MiniAgents, display_trace, get_current_agent_trace
from miniagents_nb.compat import lazy_attributes
from miniagents_nb.messages import as_single_promise, as_single_text_promise, join_messages, split_messages
from miniagents_nb.promising.context import current_context_or_none

__all__ = [  # noqa: F822 - achain_loop and adialog_loop are served by `__getattr__`
    "MiniAgentsLogFormatter",
    "achain_loop",
    "adialog_loop",
    "as_single_promise",
    "as_single_text_promise",
    "display_agent_trace",
    "get_current_agent_trace",
    "join_messages",
    "split_messages",
]

__getattr__ = lazy_attributes(
    __name__,
    {
        "achain_loop": "miniagents_nb.ext.agents.aggregator_agents.achain_loop",
        "adialog_loop": "miniagents_nb.ext.agents.aggregator_agents.adialog_loop",
    },
)


def display_agent_trace(agent_trace: Iterable[AgentDefinition] | None = None) -> str:
    """`INNER <- OUTER` for the given (or the current) agent trace."""
    return display_trace(list(get_current_agent_trace() if agent_trace is None else agent_trace))


class MiniAgentsLogFormatter(logging.Formatter):
    """A log formatter that hides this package's own frames from tracebacks and appends the agent trace.

    The user's frames are what explains a failure; the library's frames in between are noise. `reduce_tracebacks`
    None (the default) follows the active `MiniAgents(log_reduced_tracebacks=...)`, which is True unless set.
    """

    def __init__(
        self,
        *args: Any,
        packages_to_exclude: Iterable[Path] | None = None,
        include_agent_trace: bool = True,
        reduce_tracebacks: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if packages_to_exclude is None:
            packages_to_exclude = [Path(__file__).parent]
        self.packages_to_exclude = [str(Path(path).resolve()) for path in packages_to_exclude]
        self.include_agent_trace = include_agent_trace
        self.reduce_tracebacks = reduce_tracebacks

    def _reduces(self) -> bool:
        if self.reduce_tracebacks is not None:
            return self.reduce_tracebacks
        context = current_context_or_none()
        return context.log_reduced_tracebacks if isinstance(context, MiniAgents) else True

    def formatException(self, ei: Any) -> str:
        _, error, tb = ei
        frames = traceback.extract_tb(tb)
        if self._reduces():
            kept = [frame for frame in frames[:-1] if not self._excluded(frame.filename)] + list(frames[-1:])
        else:
            kept = list(frames)
        text = "Traceback (most recent call last):\n" + "".join(traceback.format_list(kept))
        text += "".join(traceback.format_exception_only(type(error), error)).rstrip("\n")
        if len(kept) < len(frames):
            text += (
                "\n\nATTENTION! Some parts of the traceback above are omitted (frames of miniagents_nb itself). "
                "Use `MiniAgents(log_reduced_tracebacks=False)` to see the full traceback."
            )
        if self.include_agent_trace:
            trace = get_current_agent_trace()
            if trace:
                text += f"\nAgent trace:\n{display_trace(trace)}\n---\n"
        return text

    def _excluded(self, filename: str) -> bool:
        return any(filename.startswith(package) for package in self.packages_to_exclude)
