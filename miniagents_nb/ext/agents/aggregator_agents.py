"""Agents that compose other agents: `agent_chain` and `agent_loop`, and their chain markers `AWAIT` / `CLEAR`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from miniagents_nb.agents import InteractionContext, MiniAgent, miniagent
from miniagents_nb.errors import InvalidArgumentsError
from miniagents_nb.messages import MessageSequencePromise

__all__ = ["AWAIT", "CLEAR", "achain_loop", "adialog_loop", "agent_chain", "agent_loop"]

AWAIT: Final = "AWAIT"
"""A chain step: wait until everything so far is complete, then hand it on as one finished sequence."""
CLEAR: Final = "CLEAR"
"""A chain step: drop everything so far (the next agent starts with no input)."""

ChainStep = MiniAgent | str | None


def _check_steps(agents: Iterable[ChainStep]) -> tuple[ChainStep, ...]:
    steps = tuple(agents)
    for step in steps:
        if step is not None and step not in (AWAIT, CLEAR) and not isinstance(step, MiniAgent):
            raise InvalidArgumentsError(
                f"Unexpected chain step {step!r}: use agents, None (skipped), AWAIT or CLEAR (from miniagents_nb.ext)."
            )
    return steps


async def _achain(messages: Any, steps: tuple[ChainStep, ...]) -> Any:
    """Pipe `messages` through the steps; returns what the last step produced (a sequence, a tuple or None)."""
    for step in steps:
        if step is None:
            continue
        if step == AWAIT:
            if isinstance(messages, MessageSequencePromise):
                messages = await messages
        elif step == CLEAR:
            messages = None
        else:
            assert isinstance(step, MiniAgent)
            messages = step.trigger(messages)
    return messages


@miniagent
async def agent_chain(ctx: InteractionContext, agents: Iterable[ChainStep]) -> None:
    """Pipe this agent's input through `agents` in order (`AWAIT` waits for the sequence so far, `CLEAR` drops it)."""
    result = await _achain(ctx.message_promises, _check_steps(agents))
    if result is not None:
        ctx.reply(result)


@miniagent
async def agent_loop(
    ctx: InteractionContext, agents: Iterable[ChainStep], raise_keyboard_interrupt: bool = True
) -> None:
    """Run `agents` as a chain forever, each round's output feeding the next round, until KeyboardInterrupt.

    The chain needs at least one `AWAIT` (or it would start rounds without end) and at least one agent.
    """
    steps = _check_steps(agents)
    if AWAIT not in steps or not any(isinstance(step, MiniAgent) for step in steps):
        raise InvalidArgumentsError(
            "There should be at least one 'AWAIT' sentinel in the list of agents in order for the loop not to "
            "schedule the agents infinitely without actually running them, and at least one agent."
        )
    messages: Any = ctx.message_promises
    try:
        while True:
            # No waiting for the round's output here: the next round gets it while it still streams (the user
            # agent shows the reply token by token); the `AWAIT` inside the chain paces the rounds.
            messages = await _achain(messages, steps)
    except KeyboardInterrupt:
        if raise_keyboard_interrupt:
            raise


async def achain_loop(
    agents: Iterable[MiniAgent | str | None], initial_input: Any = None, raise_keyboard_interrupt: bool = True
) -> None:
    """The earliest README's function form of `agent_loop`: run the chain of agents until KeyboardInterrupt."""
    await agent_loop.trigger(initial_input, agents=list(agents), raise_keyboard_interrupt=raise_keyboard_interrupt)


async def adialog_loop(
    user_agent: MiniAgent, assistant_agent: MiniAgent, initial_input: Any = None, raise_keyboard_interrupt: bool = True
) -> None:
    """The earliest README's dialog loop: the user speaks, the assistant answers, and again, until interrupted."""
    await achain_loop([user_agent, AWAIT, assistant_agent], initial_input, raise_keyboard_interrupt)
