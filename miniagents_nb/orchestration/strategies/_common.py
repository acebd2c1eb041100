"""Prompt pieces and state lookups shared by the built-in strategies."""

from __future__ import annotations

from typing import Any

from miniagents_nb.orchestration.errors import OrchestratorSetupError
from miniagents_nb.orchestration.state import State

__all__ = ["SHELL_RULES", "SUBMIT_BY_COMMAND", "TASK_KEYS", "knowledge_section", "memory_text", "task_text"]

TASK_KEYS = ("task", "challenge_description")
"""Where the strategies look for the task: our key first, then tinysmith's."""

SHELL_RULES = """\
How the environment works:
- Every command you give is run in a bash shell as root, in the directory that holds the task's files, and you
  are shown what it printed. Commands must not wait for input: no editors, pagers or interactive programs.
- Python 3 is available; packages can be installed with `apt install -y <name>` or `pip install <name>`.
- To change a file, use a non-interactive tool such as `sed -i` or a shell redirection."""

SUBMIT_BY_COMMAND = "\n- As soon as you know the answer, run `submit <answer>`; the episode ends when it is right."
"""The last rule for strategies whose every reply is a command."""


def task_text(state: State) -> str:
    """The task the caller seeded on the state (`task`, or tinysmith's `challenge_description`)."""
    for key in TASK_KEYS:
        value = state.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise OrchestratorSetupError(
        "The strategy needs a task description: seed it with `state.set('task', '...')` before the first step."
    )


def memory_text(state: State, key: str) -> str:
    """What the module published as `state[key]["memory"]`, or "" when there is nothing (yet)."""
    published: Any = state.get(key)
    if isinstance(published, dict):
        memory = published.get("memory")
        if isinstance(memory, str):
            return memory.strip()
    return ""


def knowledge_section(state: State) -> str:
    """Documents a retrieval module published as `state["knowledgebase"]["knowledge"]`, as a prompt section."""
    published: Any = state.get("knowledgebase")
    documents = published.get("knowledge") if isinstance(published, dict) else None
    if not documents:
        return ""
    lines = "\n".join(f"- {document}" for document in documents)
    return f"\n\nReference material that may help:\n{lines}"
