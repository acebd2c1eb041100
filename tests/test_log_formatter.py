"""`MiniAgentsLogFormatter` hides the library's own frames unless `MiniAgents(log_reduced_tracebacks=False)`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

import miniagents_nb
from miniagents_nb import InteractionContext, MiniAgents, miniagent
from miniagents_nb.utils import MiniAgentsLogFormatter

PACKAGE_DIR = str(Path(miniagents_nb.__file__).resolve().parent)


class _Texts(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.texts: list[str] = []
        self.setFormatter(MiniAgentsLogFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))


@miniagent
async def faulty(ctx: InteractionContext) -> None:
    raise ValueError("boom")


async def _logged_traceback(*, log_reduced_tracebacks: bool = True) -> str:
    logger = logging.Logger("test_log_formatter", level=logging.DEBUG)
    handler = _Texts()
    logger.addHandler(handler)
    async with MiniAgents(logger=logger, log_reduced_tracebacks=log_reduced_tracebacks):
        with pytest.raises(ValueError, match="boom"):
            await faulty.trigger()
    assert len(handler.texts) == 1, handler.texts
    return handler.texts[0]


def _library_frames(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip().startswith(f'File "{PACKAGE_DIR}')]


async def test_library_frames_are_hidden_by_default() -> None:
    text = await _logged_traceback()
    assert "ValueError: boom" in text
    assert "ATTENTION! Some parts of the traceback above are omitted" in text
    assert "log_reduced_tracebacks=False" in text
    assert _library_frames(text) == []


async def test_log_reduced_tracebacks_false_shows_the_full_traceback() -> None:
    text = await _logged_traceback(log_reduced_tracebacks=False)
    assert "ValueError: boom" in text
    assert "ATTENTION!" not in text
    assert _library_frames(text), text


def test_an_explicit_formatter_setting_wins_over_the_context() -> None:
    try:
        raise ValueError("outside")
    except ValueError:
        info = sys.exc_info()
    full = MiniAgentsLogFormatter(reduce_tracebacks=False, packages_to_exclude=[Path(__file__).parent])
    reduced = MiniAgentsLogFormatter(reduce_tracebacks=True, packages_to_exclude=[Path(__file__).parent])
    assert "test_log_formatter.py" in full.formatException(info)
    assert "ValueError: outside" in reduced.formatException(info)
