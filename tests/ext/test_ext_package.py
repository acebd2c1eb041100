"""The public surface of `miniagents_nb.ext`: names, module paths of the seeds, errors, and import hygiene."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import miniagents_nb.ext as ext
from miniagents_nb import MiniAgent
from miniagents_nb.errors import MiniAgentsError

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_all_is_sorted_unique_and_resolves() -> None:
    names = list(ext.__all__)
    assert len(names) == len(set(names))
    assert names == sorted(names, key=str.casefold)
    assert [name for name in names if not hasattr(ext, name)] == []
    assert set(names) <= set(dir(ext))


def test_the_names_of_every_seed_are_exported() -> None:
    seed_names = {
        # README v1/v2 and the spec
        "markdown_history_agent", "in_memory_history_agent", "console_echo_agent", "console_prompt_agent",
        "user_agent", "dialog_loop", "agent_loop", "agent_chain", "join_messages", "split_messages", "AWAIT", "CLEAR",
        # upstream 0.0.35
        "console_input_agent", "console_output_agent", "console_user_agent", "file_output_agent", "MarkdownHistoryAgent",
        "markdown_llm_logger_agent", "prompt_agent",
        # the earliest README
        "ChatHistory", "InMemoryChatHistory", "create_console_user_agent",
    }  # fmt: skip
    assert seed_names <= set(ext.__all__)
    agents = seed_names - {"AWAIT", "CLEAR", "join_messages", "split_messages", "ChatHistory", "InMemoryChatHistory",
                           "create_console_user_agent"}  # fmt: skip
    assert {name for name in agents if not isinstance(getattr(ext, name), MiniAgent)} == set()


def test_console_user_agent_is_the_agent_even_after_its_module_is_imported() -> None:
    """`miniagents_nb.ext.console_user_agent` is both a module (earliest README) and an agent (newer READMEs)."""
    module = importlib.import_module("miniagents_nb.ext.console_user_agent")
    from miniagents_nb.ext import console_user_agent
    from miniagents_nb.ext.console_user_agent import InMemoryChatHistory, create_console_user_agent

    assert isinstance(console_user_agent, MiniAgent)
    assert ext.console_user_agent is console_user_agent
    assert module.create_console_user_agent is create_console_user_agent is ext.create_console_user_agent
    assert InMemoryChatHistory is ext.InMemoryChatHistory


def test_upstream_module_paths() -> None:
    from miniagents_nb.ext.agents.history_agents import MarkdownHistoryAgent, in_memory_history_agent
    from miniagents_nb.ext.agents.misc_agents import console_input_agent, console_output_agent, dialog_loop, user_agent

    assert MarkdownHistoryAgent is ext.MarkdownHistoryAgent
    assert in_memory_history_agent is ext.in_memory_history_agent
    assert (console_input_agent, console_output_agent) == (ext.console_input_agent, ext.console_output_agent)
    assert (dialog_loop, user_agent) == (ext.dialog_loop, ext.user_agent)


def test_file_errors_belong_to_the_error_tree_and_are_os_errors() -> None:
    for error_class in (ext.HistoryFileError, ext.OutputFileError):
        assert issubclass(error_class, MiniAgentsError)
        assert issubclass(error_class, OSError)


_IMPORT_REPORT = """
import json, sys
import miniagents_nb.ext
import miniagents_nb.ext.console_user_agent
from miniagents_nb.ext import console_user_agent
from miniagents_nb.ext.console_user_agent import create_console_user_agent
report = {
    "prompt_toolkit_modules": sorted(name for name in sys.modules if name.split(".")[0] == "prompt_toolkit"),
    "console_user_agent": type(console_user_agent).__name__,
}
print(json.dumps(report), file=sys.stderr)
"""


def test_importing_ext_has_no_side_effects() -> None:
    """No output, no prompt session (prompt_toolkit is not even imported), with stdin closed as in CI."""
    env = {**os.environ, "TERM": "xterm", "MINIAGENTS_NB_LLM": "fake"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, "-c", _IMPORT_REPORT],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=40,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == ""
    assert json.loads(completed.stderr) == {"prompt_toolkit_modules": [], "console_user_agent": "MiniAgent"}
