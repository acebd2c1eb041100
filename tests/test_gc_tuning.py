"""The collector's first threshold is raised while a context is active, and restored after (see gc_tuning)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from miniagents_nb import MiniAgents, miniagent
from miniagents_nb.promising import PromisingContext
from miniagents_nb.promising.gc_tuning import GEN0_THRESHOLD, GEN1_THRESHOLD, TUNE_GC_ENV

DEFAULT = (700, 10, 10)


@pytest.fixture(autouse=True)
def default_thresholds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(TUNE_GC_ENV, raising=False)
    saved = gc.get_threshold()
    gc.set_threshold(*DEFAULT)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


@miniagent
async def echo(ctx: object, text: str) -> None:
    ctx.reply(text)  # type: ignore[attr-defined]


async def test_an_active_context_raises_the_first_threshold_and_restores_it_on_exit() -> None:
    async with MiniAgents():
        assert gc.get_threshold() == (GEN0_THRESHOLD, GEN1_THRESHOLD or 10, 10)
        assert [m.content for m in await echo.trigger(text="hi")] == ["hi"]
    assert gc.get_threshold() == DEFAULT


async def test_nested_contexts_keep_it_raised_until_the_last_one_ends() -> None:
    async with MiniAgents():
        async with PromisingContext():
            assert gc.get_threshold()[0] == GEN0_THRESHOLD
        assert gc.get_threshold()[0] == GEN0_THRESHOLD
    assert gc.get_threshold() == DEFAULT


async def test_opting_out_leaves_the_collector_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    async with MiniAgents(tune_gc=False) as context:
        assert not context.tune_gc
        assert gc.get_threshold() == DEFAULT
    monkeypatch.setenv(TUNE_GC_ENV, "0")
    async with MiniAgents():
        assert gc.get_threshold() == DEFAULT
    async with MiniAgents(tune_gc=True):  # the argument wins over the environment
        assert gc.get_threshold()[0] == GEN0_THRESHOLD
    assert gc.get_threshold() == DEFAULT


async def test_thresholds_someone_else_set_meanwhile_are_kept() -> None:
    async with MiniAgents():
        gc.set_threshold(5000, 5, 5)
    assert gc.get_threshold() == (5000, 5, 5)


async def test_a_higher_or_disabled_threshold_is_never_lowered() -> None:
    gc.set_threshold(100_000, 500, 10)
    async with MiniAgents():
        assert gc.get_threshold()[:2] == (100_000, 500)
    gc.set_threshold(0, 10, 10)  # automatic collection off
    async with MiniAgents():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold() == (0, 10, 10)


def test_a_context_activated_and_deactivated_by_hand_restores_too() -> None:
    context = MiniAgents()
    context.activate()
    try:
        assert gc.get_threshold()[0] == GEN0_THRESHOLD
    finally:
        context.deactivate()
    assert gc.get_threshold() == DEFAULT
    context.deactivate()  # a second deactivation releases nothing more
    assert gc.get_threshold() == DEFAULT
