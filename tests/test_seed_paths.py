"""Every public name of SPEC §3 imports from the path the seeds use (`miniagents` -> `miniagents_nb`)."""

from __future__ import annotations

import importlib

import pytest

from miniagents_nb import MiniAgent, MiniAgents
from miniagents_nb.messages import MessageSequencePromise

SEED_PATHS: list[tuple[str, str]] = [
    # core (all READMEs, the tutorial)
    ("miniagents_nb", "miniagent"),
    ("miniagents_nb", "InteractionContext"),
    ("miniagents_nb", "MiniAgents"),
    ("miniagents_nb", "Message"),
    ("miniagents_nb", "AgentCall"),
    ("miniagents_nb", "MessageSequencePromise"),
    ("miniagents_nb.miniagents", "MiniAgents"),
    ("miniagents_nb.miniagents", "miniagent"),
    ("miniagents_nb.miniagents", "InteractionContext"),
    ("miniagents_nb.miniagents", "Message"),
    ("miniagents_nb.messages", "Message"),
    ("miniagents_nb.promising.sentinels", "AWAIT"),
    ("miniagents_nb.promising.sentinels", "CLEAR"),
    ("miniagents_nb.utils", "as_single_text_promise"),
    ("miniagents_nb.utils", "as_single_promise"),
    ("miniagents_nb.utils", "join_messages"),
    ("miniagents_nb.utils", "split_messages"),
    ("miniagents_nb.utils", "adialog_loop"),
    ("miniagents_nb.utils", "achain_loop"),
    # pre-packaged agents
    ("miniagents_nb.ext", "agent_loop"),
    ("miniagents_nb.ext", "agent_chain"),
    ("miniagents_nb.ext", "dialog_loop"),
    ("miniagents_nb.ext", "markdown_history_agent"),
    ("miniagents_nb.ext", "MarkdownHistoryAgent"),
    ("miniagents_nb.ext", "in_memory_history_agent"),
    ("miniagents_nb.ext", "console_echo_agent"),
    ("miniagents_nb.ext", "console_prompt_agent"),
    ("miniagents_nb.ext", "console_user_agent"),
    ("miniagents_nb.ext", "user_agent"),
    ("miniagents_nb.ext", "join_messages"),
    ("miniagents_nb.ext", "split_messages"),
    ("miniagents_nb.ext", "ChatHistory"),
    ("miniagents_nb.ext", "InMemoryChatHistory"),
    ("miniagents_nb.ext.console_user_agent", "create_console_user_agent"),
    # LLMs (older and newer paths)
    ("miniagents_nb.ext.llm", "UserMessage"),
    ("miniagents_nb.ext.llm", "SystemMessage"),
    ("miniagents_nb.ext.llm", "AssistantMessage"),
    ("miniagents_nb.ext.llm.openai", "openai_agent"),
    ("miniagents_nb.ext.llm.openai", "create_openai_agent"),
    ("miniagents_nb.ext.llm.anthropic", "anthropic_agent"),
    ("miniagents_nb.ext.llms", "OpenAIAgent"),
    ("miniagents_nb.ext.llms", "AnthropicAgent"),
    ("miniagents_nb.ext.llms", "aprepare_dicts_for_openai"),
    ("miniagents_nb.ext.llms", "FakeLLMAgent"),
]


@pytest.mark.parametrize(("module", "name"), SEED_PATHS)
def test_seed_name_imports_from_its_seed_path(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is not None


def test_older_method_and_setting_names_exist() -> None:
    # Their behaviour is pinned in test_agents.py / test_persistence.py; here: they are there under the old names.
    for name in ("inquire", "initiate_inquiry", "trigger", "initiate_call"):
        assert callable(getattr(MiniAgent, name))
    assert callable(MessageSequencePromise.as_single_promise)
    assert MiniAgents(start_everything_asap_by_default=False).start_everything_soon_by_default is False
    assert callable(MiniAgents().on_persist_message)
