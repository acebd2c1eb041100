"""Agents for `bench/ray_scaling.py`: a module the Ray workers import (the script puts `bench/` on their path)."""

from __future__ import annotations

from miniagents_nb import InteractionContext, miniagent
from miniagents_nb.messages import MessageTokenAppender, TextMessage


def burn(n: int) -> int:
    """Pure-Python CPU work (no I/O, holds the GIL): about 0.5 s for n = 4_000_000 on the bench machine."""
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003
    return total


@miniagent
async def cpu_agent(ctx: InteractionContext, n: int) -> None:
    """A CPU-bound tool agent: replies the result of `burn(n)`."""
    ctx.reply(str(burn(n)))


@miniagent
async def echo_agent(ctx: InteractionContext) -> None:
    """The cheapest agent: replies one short message (per-call overhead)."""
    ctx.reply("ok")


@miniagent
async def token_agent(ctx: InteractionContext, tokens: int) -> None:
    """Streams one message of `tokens` one-character tokens (per-token overhead)."""
    with MessageTokenAppender() as appender:
        ctx.reply(TextMessage.promise(message_token_streamer=appender))
        for _ in range(tokens):
            appender.append("x")
