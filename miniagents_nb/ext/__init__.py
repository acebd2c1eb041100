"""Pre-packaged agents: dialog loops, chains, user input and output, history, loggers.

Importing this package has no side effects: no prompt session is created, nothing is printed, and prompt_toolkit
is imported only when a user is first asked for input on a terminal.
"""

from __future__ import annotations

# The module `miniagents_nb.ext.console_user_agent` (the earliest README's path) is imported *before* the agent of
# the same name is bound below: importing a submodule binds its name on the package, and doing it first means the
# package attribute `console_user_agent` ends up being the agent, and stays so (a module is bound only when it is
# first imported). `from miniagents_nb.ext.console_user_agent import create_console_user_agent` still works.
import miniagents_nb.ext.console_user_agent as _console_user_agent_module
from miniagents_nb.compat import lazy_attributes
from miniagents_nb.ext.agents import misc_agents as _misc_agents
from miniagents_nb.ext.agents.aggregator_agents import AWAIT, CLEAR, agent_chain, agent_loop
from miniagents_nb.ext.agents.console_agents import (
    console_echo_agent,
    console_input_agent,
    console_output_agent,
    console_prompt_agent,
)
from miniagents_nb.ext.agents.history_agents import (
    ChatHistory,
    HistoryFileError,
    InMemoryChatHistory,
    MarkdownChatHistory,
    MarkdownHistoryAgent,
    chat_history_agent,
    in_memory_history_agent,
    markdown_history_agent,
)
from miniagents_nb.ext.agents.misc_agents import (
    OutputFileError,
    dialog_loop,
    file_output_agent,
    prompt_agent,
    user_agent,
)
from miniagents_nb.messages import join_messages, split_messages

create_console_user_agent = _console_user_agent_module.create_console_user_agent
console_user_agent = _misc_agents.console_user_agent

__all__ = [
    "agent_chain",
    "agent_loop",
    "AWAIT",
    "chat_history_agent",
    "ChatHistory",
    "CLEAR",
    "console_echo_agent",
    "console_input_agent",
    "console_output_agent",
    "console_prompt_agent",
    "console_user_agent",
    "create_console_user_agent",
    "dialog_loop",
    "file_output_agent",
    "HistoryFileError",
    "in_memory_history_agent",
    "InMemoryChatHistory",
    "join_messages",
    "markdown_history_agent",
    "markdown_llm_logger_agent",
    "MarkdownChatHistory",
    "MarkdownHistoryAgent",
    "OutputFileError",
    "prompt_agent",
    "split_messages",
    "user_agent",
]


__getattr__ = lazy_attributes(
    __name__,
    {
        # Imported on first use: the LLM logger needs the LLM layer's message kinds.
        "markdown_llm_logger_agent": "miniagents_nb.ext.agents.llm_logger_agents.markdown_llm_logger_agent",
        # A seed-era path (see `miniagents_nb.compat`): the notebook user agent needs IPython and anywidget, so it is
        # never imported by `import miniagents_nb.ext` (and is left out of `__all__`, as is `from ... import *`).
        "notebook_user_agent": "miniagents_nb.jupyter.notebook_user_agent",
    },
)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
