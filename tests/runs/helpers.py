"""Agents and checks shared by the run store tests."""

from __future__ import annotations

import asyncio

from miniagents_nb import InteractionContext, MessageTokenAppender, TextMessage, miniagent
from miniagents_nb.runs import RecordedRun, RunStore

__all__ = ["aggregator", "child", "last_run", "streamer"]


@miniagent
async def child(ctx: InteractionContext, i: int) -> None:
    """Replies two strings."""
    ctx.reply(f"c{i}a")
    ctx.reply(f"c{i}b")


@miniagent
async def aggregator(ctx: InteractionContext, count: int = 3) -> None:
    """Asks `count` children and replies with all they say."""
    ctx.reply([child.trigger(ctx.message_promises, i=i) for i in range(count)])


@miniagent
async def streamer(ctx: InteractionContext, tokens: int = 5) -> None:
    """Streams `tokens` one-character tokens through an appender, with a task switch between tokens."""
    with MessageTokenAppender(capture_errors=True) as appender:
        ctx.reply(TextMessage.promise(message_token_streamer=appender, start_soon=False))
        for number in range(tokens):
            await asyncio.sleep(0)
            appender.append(str(number % 10))


def last_run(store: RunStore) -> RecordedRun:
    return store.load(store.runs(limit=1)[0].run_id)
