"""The file-writing agents and untrusted file names (issue 17): a NUL character, `..`, absolute paths and names an
LLM made up are refused with the agents' own errors, before anything is opened; a `folder=` keeps a name inside it.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from miniagents_nb import MiniAgents
from miniagents_nb.ext import HistoryFileError, MarkdownChatHistory, OutputFileError, file_output_agent
from miniagents_nb.ext.agents.history_agents import MarkdownHistoryAgent
from miniagents_nb.ext.agents.llm_logger_agents import llm_log_file_name
from miniagents_nb.ext.llms import FakeLLMAgent


@pytest.fixture
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.parametrize("name", ["out\0.txt", "\0", ""], ids=["nul-inside", "nul-only", "empty"])
async def test_file_output_agent_refuses_nul_and_empty_names_with_its_own_error(in_tmp_dir: Path, name: str) -> None:
    async with MiniAgents():
        replies = file_output_agent.trigger(["one"], file=name)
        with pytest.raises(OutputFileError, match="refuses the file name") as caught:
            await replies
    assert isinstance(caught.value, OSError)  # not Python's bare "embedded null byte" ValueError
    assert files_under(in_tmp_dir) == []


@pytest.mark.parametrize(
    "name", ["../escaped.txt", "inner/../../escaped.txt", "/tmp/absolute.txt"], ids=["dotdot", "nested", "absolute"]
)
async def test_a_folder_keeps_untrusted_names_inside_it(in_tmp_dir: Path, name: str) -> None:
    box = in_tmp_dir / "box"
    async with MiniAgents():
        replies = file_output_agent.trigger(["one"], file=name, folder=str(box))
        with pytest.raises(OutputFileError, match="resolves outside the folder"):
            await replies
    assert files_under(in_tmp_dir) == []
    assert not (in_tmp_dir.parent / "escaped.txt").exists()


async def test_a_name_inside_the_folder_is_written_there(in_tmp_dir: Path) -> None:
    async with MiniAgents():
        replies = await file_output_agent.trigger(["one", "two"], file="sub/../answer.md", folder="box")
    assert [str(message) for message in replies] == ["one", "two"]
    assert (in_tmp_dir / "box" / "answer.md").read_text(encoding="utf-8") == "one\n\ntwo"


async def test_the_markdown_history_refuses_a_nul_in_its_file_name(in_tmp_dir: Path) -> None:
    with pytest.raises(HistoryFileError, match="contains a NUL character"):
        MarkdownChatHistory("chat\0.md")
    async with MiniAgents():
        with pytest.raises(HistoryFileError, match="contains a NUL character"):
            await MarkdownHistoryAgent.trigger("hello", history_md_file="CHAT\0.md")
    assert files_under(in_tmp_dir) == []


@pytest.mark.parametrize(
    "model",
    ["../../etc/passwd", "/abs/model", "a\0b", "..", "x" * 5000, "C:\\evil\x1b[2J"],
    ids=["dotdot", "absolute", "nul", "dots-only", "very-long", "windows-and-escape"],
)
def test_llm_log_names_never_leave_the_log_folder(model: str) -> None:
    name = llm_log_file_name(model, datetime(2026, 1, 2, 3, 4, 5, 6))
    assert os.sep not in name
    assert "/" not in name
    assert "\\" not in name
    assert "\0" not in name
    assert ".." not in name.removesuffix(".md")
    assert len(name.encode()) < 200
    assert name.startswith("20260102_030405__000006__")


async def test_an_llm_log_for_a_hostile_model_name_lands_in_the_log_folder(in_tmp_dir: Path) -> None:
    async with MiniAgents(llm_logger_agent=True):
        await FakeLLMAgent.trigger("hi", model="../../outside\0/" + "m" * 400)
    (log,) = [name for name in files_under(in_tmp_dir) if name.endswith(".md")]
    assert Path(log).parent == Path("llm_logs")
