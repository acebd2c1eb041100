"""The LLM modules import (and the fake LLM runs) with the `openai` and `anthropic` SDKs unimportable; the real
agents then fail at their message with an error naming the extra. Checked in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
    import asyncio
    import importlib
    import json
    import sys

    BLOCKED = {"openai", "anthropic"}


    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None


    sys.meta_path.insert(0, Blocker())
    modules = [
        "miniagents_nb.ext.llms",
        "miniagents_nb.ext.llms.openai",
        "miniagents_nb.ext.llms.anthropic",
        "miniagents_nb.ext.llms.fake",
        "miniagents_nb.ext.llm",
        "miniagents_nb.ext.llm.openai",
        "miniagents_nb.ext.llm.anthropic",
        "miniagents_nb.ext.agents.llm_logger_agents",
    ]
    for name in modules:
        importlib.import_module(name)

    from miniagents_nb import MiniAgents
    from miniagents_nb.ext.llms import FakeLLMAgent, LLMDependencyError, OpenAIAgent, AnthropicAgent


    async def main():
        fake = str((await FakeLLMAgent.trigger("offline works"))[0])
        errors = []
        for agent in (OpenAIAgent, AnthropicAgent):
            try:
                await agent.trigger("x", model="m")
            except LLMDependencyError as error:
                errors.append(error.message)
        return fake, errors


    fake, errors = MiniAgents().run(main())
    leaked = sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED)
    with open(sys.argv[1], "w") as report:
        json.dump({"fake": fake, "errors": errors, "leaked": leaked}, report)
"""


def test_llm_modules_import_and_the_fake_runs_without_the_sdks(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), str(report)],
        cwd=REPO_ROOT,
        env={key: value for key, value in os.environ.items() if key != "MINIAGENTS_NB_LLM"},  # the switch off
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(report.read_text())
    assert data["leaked"] == []
    assert data["fake"] == "offline works"
    assert len(data["errors"]) == 2
    assert "miniagents-nb[openai]" in data["errors"][0]
    assert "miniagents-nb[anthropic]" in data["errors"][1]
