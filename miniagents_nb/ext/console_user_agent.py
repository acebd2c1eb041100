"""The earliest README's console user agent: `create_console_user_agent(chat_history=InMemoryChatHistory())`.

Import from this module with `from miniagents_nb.ext.console_user_agent import create_console_user_agent`:
`miniagents_nb.ext.console_user_agent` as an attribute of the package is the agent `console_user_agent` itself.
"""

from __future__ import annotations

from typing import Any, TextIO

from miniagents_nb.agents import MiniAgent
from miniagents_nb.ext.agents.console_agents import console_input_agent, console_output_agent
from miniagents_nb.ext.agents.history_agents import ChatHistory, InMemoryChatHistory, MarkdownChatHistory
from miniagents_nb.ext.agents.misc_agents import console_user_agent

__all__ = ["ChatHistory", "InMemoryChatHistory", "MarkdownChatHistory", "create_console_user_agent"]


def create_console_user_agent(
    chat_history: ChatHistory | None = None,
    *,
    alias: str | None = None,
    colors: bool | None = None,
    use_prompt_toolkit: bool | None = None,
    input_stream: TextIO | None = None,
    output_stream: TextIO | None = None,
    **console_input_kwargs: Any,
) -> MiniAgent:
    """A console user agent that keeps the conversation in `chat_history` (by default: in memory, per context).

    `colors`, `use_prompt_toolkit` and the streams configure the console agents (see `console_agents`); other
    keyword arguments (`greeting=`, `user_prompt=`, ...) go to the input agent.
    """
    streams = {"input_stream": input_stream, "output_stream": output_stream}
    output_agent = console_output_agent.fork(colors=colors, non_freezable_kwargs={"output_stream": output_stream})
    input_agent = console_input_agent.fork(
        colors=colors, use_prompt_toolkit=use_prompt_toolkit, non_freezable_kwargs=streams, **console_input_kwargs
    )
    options: dict[str, Any] = {"output_agent": output_agent, "input_agent": input_agent}
    if chat_history is not None:
        options["history_agent"] = chat_history.history_agent
    return console_user_agent.fork(alias=alias, **options)
