"""Agents that put a conversation together: the user agent, the dialog loop, prompts around an agent, file output.

The console agents live in `console_agents` and are re-exported here (upstream's module path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from miniagents_nb.agents import InteractionContext, MiniAgent, miniagent
from miniagents_nb.errors import InvalidArgumentsError, MiniAgentsError
from miniagents_nb.ext.agents.aggregator_agents import AWAIT, agent_chain
from miniagents_nb.ext.agents.console_agents import (
    console_echo_agent,
    console_input_agent,
    console_output_agent,
    console_prompt_agent,
)
from miniagents_nb.ext.agents.file_paths import path_problem
from miniagents_nb.ext.agents.history_agents import in_memory_history_agent
from miniagents_nb.messages import MessageSequencePromise, as_single_text_promise

__all__ = [
    "OutputFileError",
    "console_echo_agent",
    "console_input_agent",
    "console_output_agent",
    "console_prompt_agent",
    "console_user_agent",
    "dialog_loop",
    "file_output_agent",
    "prompt_agent",
    "user_agent",
]


class OutputFileError(MiniAgentsError, OSError):
    """`file_output_agent` could not write its file; `path` names it. Also an `OSError`."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path

    def __str__(self) -> str:
        return str(self.args[0])


def _open_for_writing(path: Path) -> TextIO:
    """Open `path` for writing, creating its folder (local writes of streamed text are short: no thread needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("w", encoding="utf-8")


@miniagent
async def file_output_agent(ctx: InteractionContext, file: str, folder: str | None = None, **kwargs: Any) -> None:
    """Pass the input on, and write it to `file` (overwritten) as one text, streamed token by token.

    With `folder=`, `file` is taken inside it and may not leave it (give a folder when the name comes from untrusted
    text); a name with a NUL character is always refused. `kwargs` go to `as_single_text_promise` (`delimiter=`,
    `strip_leading_newlines=`, ...).
    """
    ctx.reply(ctx.message_promises)
    problem = path_problem(file, folder)
    if problem is not None:
        raise OutputFileError(
            f"file_output_agent refuses the file name {file!r}: it {problem}. Choose another `file=`; the messages "
            "themselves were passed on.",
            Path(file.replace("\0", "")),
        )
    path = Path(file) if folder is None else Path(folder) / file
    try:
        with _open_for_writing(path) as output:
            async for token in as_single_text_promise(ctx.message_promises, **kwargs):
                output.write(str(token))
                output.flush()
    except (OSError, ValueError) as error:  # ValueError: a name the platform refuses
        raise OutputFileError(
            f"Cannot write to {str(path)!r} ({getattr(error, 'strerror', None) or error}): choose a writable `file=` for "
            "file_output_agent. The messages themselves were passed on.",
            path,
        ) from error


@miniagent
async def prompt_agent(
    ctx: InteractionContext,
    target_agent: MiniAgent,
    prompt_prefix: Any = (),
    prompt_suffix: Any = (),
    **target_kwargs: Any,
) -> None:
    """Call `target_agent` with `prompt_prefix`, then this agent's input, then `prompt_suffix`; reply its replies.

    It puts fixed instructions (a system prompt) around whatever a chain hands to an assistant.
    """
    ctx.reply(target_agent.trigger([prompt_prefix, ctx.message_promises, prompt_suffix], **target_kwargs))


@miniagent
async def user_agent(
    ctx: InteractionContext,
    output_agent: MiniAgent | None = None,
    input_agent: MiniAgent | None = None,
    history_agent: MiniAgent | None = in_memory_history_agent,
) -> None:
    """Show the input to the user (`output_agent`), get the user's answer (`input_agent`), record both
    (`history_agent`) and reply the whole conversation so far, ready for an assistant.

    Any of the three may be None (skipped); the default history lives in memory, one per `MiniAgents` context.
    """
    steps = [output_agent, input_agent, None if history_agent is None else history_agent.fork(return_full_history=True)]
    ctx.reply(agent_chain.trigger(ctx.message_promises, agents=steps))


console_user_agent = user_agent.fork(
    alias="CONSOLE_USER_AGENT", output_agent=console_output_agent, input_agent=console_input_agent
)
"""The user at the console: the assistant's reply streams to stdout and the user's answer is read from stdin."""


def _is_user_agent(agent: MiniAgent) -> bool:
    return agent.wrapped_func_or_class is user_agent.wrapped_func_or_class


@miniagent
async def dialog_loop(
    ctx: InteractionContext,
    user_agent: MiniAgent | None = console_user_agent,
    assistant_agent: MiniAgent | None = None,
    history_agent: MiniAgent | None = None,
    prompt_at_the_end: bool = True,
) -> None:
    """Let the user and the assistant take turns until the user quits ("exit", Ctrl+C, end of input).

    This agent's own input is the prompt (e.g. a `SystemMessage`): the assistant gets it after the conversation
    (`prompt_at_the_end`) or before it, every turn. `history_agent` keeps the conversation: a pre-packaged user
    agent (`user_agent` and its forks, like `console_user_agent`) is forked to use it; any other user agent has the
    history agent put right after it, recording what it replies and handing the whole history to the assistant.
    Without `history_agent`, the user agent keeps its own history. Ending the loop is not an error: it replies
    nothing and returns. The assistant's reply reaches the user agent while it streams (see `_aturns`).
    """
    prompt = await ctx.message_promises
    if prompt and assistant_agent is not None:
        if prompt_at_the_end:
            assistant_agent = prompt_agent.fork(target_agent=assistant_agent, prompt_suffix=prompt)
        else:
            assistant_agent = prompt_agent.fork(target_agent=assistant_agent, prompt_prefix=prompt)
    history_step = None
    if history_agent is not None:
        if user_agent is not None and _is_user_agent(user_agent):
            user_agent = user_agent.fork(history_agent=history_agent)
        else:
            history_step = history_agent.fork(return_full_history=True)
    if user_agent is None and assistant_agent is None:
        raise InvalidArgumentsError("dialog_loop needs a `user_agent` or an `assistant_agent` (or both) to talk.")
    await _aturns([user_agent, history_step, AWAIT, assistant_agent])


async def _aturns(steps: list[MiniAgent | str | None]) -> None:
    """Run the turns of a dialog until KeyboardInterrupt.

    Unlike `agent_loop`, a turn does not wait for the assistant's reply to be complete before the next turn starts:
    the user agent of the next turn is what shows that reply, so it must get it while it streams. The reply is
    still waited for (its failures included) at the `AWAIT` after the user agent.
    """
    messages: Any = None
    try:
        while True:
            for step in steps:
                if step is None:
                    continue
                if step == AWAIT:
                    if isinstance(messages, MessageSequencePromise):
                        messages = await messages
                else:
                    assert isinstance(step, MiniAgent)
                    messages = step.trigger(messages)
    except KeyboardInterrupt:
        pass  # the user quit: the dialog is over, which is not an error
