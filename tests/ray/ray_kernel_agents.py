"""The agent of `test_ray_kernel.py`: a module that the test's Jupyter kernel imports and that the Ray workers the
kernel starts import too (the kernel puts this directory on their PYTHONPATH), as a user's module of agents would be.

Its gate is a `ray_test_agents.Signal` actor, named, so that the worker finds it by the name the call was given.
"""

from __future__ import annotations

import asyncio

import ray

from miniagents_nb import InteractionContext, miniagent
from miniagents_nb.messages import MessageTokenAppender, TextMessage

FIRST_TOKEN = "first token from the worker "


@miniagent
async def gated_streamer(ctx: InteractionContext, gate_name: str) -> None:
    """Streams a first token, says it started, then waits at its gate (which the test never opens) until it is
    cancelled, and says so; it would reply a last token and say it finished if the gate opened."""
    gate = ray.get_actor(gate_name)
    with MessageTokenAppender() as tokens:
        ctx.reply(TextMessage.promise(message_token_streamer=tokens))
        try:  # (everything after the first token is in here: a cancel that comes after it is seen below)
            tokens.append(FIRST_TOKEN)
            await gate.set.remote("started")
            await gate.wait.remote("gate")
        except asyncio.CancelledError:
            await gate.set.remote("cancelled in the worker")
            raise
        tokens.append("after the gate")
    await gate.set.remote("finished")
