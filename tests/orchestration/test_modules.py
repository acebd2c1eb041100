"""Memory modules record each (action, observation) pair once, from the state, and forget on reset."""

from __future__ import annotations

from miniagents_nb import MiniAgents
from miniagents_nb.orchestration import ListMemory, Module, State, SummaryMemory
from miniagents_nb.orchestration.modules import EMPTY_OUTPUT_NOTE, describe_output
from miniagents_nb.orchestration.strategies import build_single_agent

from .helpers import ScriptedLLM


def _after_action(state: State, action: str, observation: str | None) -> None:
    """What the orchestrator does between steps: the action goes out, the next observation comes in."""
    state._finish_step(action)
    state._begin_step(observation, None)


def test_describe_output_substitutes_empty_and_long_output() -> None:
    assert describe_output("") == EMPTY_OUTPUT_NOTE
    assert describe_output(None) == EMPTY_OUTPUT_NOTE
    assert describe_output("one two") == "one two"
    assert describe_output("w " * 11, max_words=10).startswith("(the output was too long to keep: 11 words")


def test_list_memory_records_each_step_once_and_publishes_markdown() -> None:
    memory = ListMemory("list_memory")
    state = State()
    state._begin_step("", None)
    memory.preprocessing("", state)
    assert state.get("list_memory") == {"memory": "", "entries": []}
    _after_action(state, "ls", "notes.txt")
    memory.preprocessing("notes.txt", state)
    memory.preprocessing(None, state)  # a later hop of the same step: nothing new
    _after_action(state, "touch x", "")
    memory.preprocessing(None, state)  # the first hop to run it may get obs=None: the state still knows the pair
    assert state.get("list_memory")["entries"] == [["ls", "notes.txt"], ["touch x", EMPTY_OUTPUT_NOTE]]
    assert state.get("list_memory")["memory"] == f"```\n$ ls\nnotes.txt\n```\n```\n$ touch x\n{EMPTY_OUTPUT_NOTE}\n```"


def test_list_memory_keeps_the_last_maxlen_pairs() -> None:
    memory = ListMemory("m", maxlen=1)
    state = State()
    for action in ("a", "b"):
        _after_action(state, action, action.upper())
        memory.preprocessing(None, state)
    assert state.get("m")["entries"] == [["b", "B"]]


def test_module_defaults_are_no_ops() -> None:
    module = Module("noop")
    state = State()
    module.preprocessing(None, state)
    module.postprocessing("reply", state)
    module.reset()
    assert state.keys() == []
    assert repr(module) == "Module(name='noop')"


def test_summary_memory_folds_each_step_into_the_summary_with_one_llm_call() -> None:
    script = ScriptedLLM(["Listed the files: readme.txt.", "readme.txt says the flag is hidden."])
    memory = SummaryMemory("summary", script.adapter())
    state = State()

    async def main() -> None:
        await memory.apreprocessing("", state)  # first step: nothing to fold in yet
        assert state.get("summary") == {"memory": ""}
        _after_action(state, "ls", "readme.txt")
        await memory.apreprocessing("readme.txt", state)
        await memory.apreprocessing(None, state)  # later hop of the same step: no call
        _after_action(state, "cat readme.txt", "The flag is hidden.")
        await memory.apreprocessing(None, state)

    MiniAgents().run(main())
    assert len(script.calls) == 2
    assert script.calls[0][0][1].endswith("Notes so far:\n(none yet)")
    assert script.calls[1][0][1].endswith("Notes so far:\nListed the files: readme.txt.")
    assert script.calls[1][1] == ("user", "$ cat readme.txt\nThe flag is hidden.")
    assert state.get("summary") == {"memory": "readme.txt says the flag is hidden."}
    memory.reset()
    assert memory.summary == ""


def test_summary_memory_llm_counts_in_the_orchestrators_token_usage() -> None:
    agent_script, memory_script = ScriptedLLM(["Command: ls", "Command: pwd"]), ScriptedLLM(["notes"])
    orchestrator = build_single_agent(agent_script.adapter(), "task")
    orchestrator.agents[0].modules.append(SummaryMemory("summary", memory_script.adapter()))
    orchestrator.forward("")
    orchestrator.forward("readme.txt")
    expected = {
        key: agent_script.expected_usage()[key] + memory_script.expected_usage()[key]
        for key in ("prompt_tokens", "completion_tokens", "total_tokens")
    }
    assert orchestrator.token_usage == expected
