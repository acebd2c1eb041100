"""One test per fault of tinysmith 0.9.1 listed in reference/tinysmith.md (§5 "known issues", with the
orchestrator consequences of §2.8), named `test_fault_<number>_<what is fixed>` after that list's numbering."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from miniagents_nb.ext.llms import LLMRateLimitError
from miniagents_nb.orchestration import (
    Agent,
    CustomAPIAdapter,
    ErrorRecord,
    ListMemory,
    Module,
    Orchestrator,
    OrchestratorSetupError,
    PromptEngineer,
    State,
    UnknownAgentError,
    UserMessage,
    signal_error,
)
from miniagents_nb.orchestration.strategies import (
    build_planner_reviewer_executor,
    build_reflexion,
    build_single_agent,
)

from .helpers import ScriptedLLM, turns
from .test_strategies import done, feedback, plan, progress, submit

REPO_ROOT = Path(__file__).resolve().parents[2]


def solo(
    pe: PromptEngineer, script: ScriptedLLM, *, modules: list[Module] | None = None, **limits: Any
) -> Orchestrator:
    """One agent called "solo"; every turn is an environment step."""

    def transition(obs: str | None, state: State) -> None:
        state.set_agent_name("solo")
        state.set_is_envstep(True)

    return Orchestrator([Agent("solo", pe, script.adapter(), modules)], transition, State(**limits))


class AppendOnlyPE(PromptEngineer):
    """The README's style: append a user prompt every turn, return the reply."""

    def render_prompt(self, obs: Any, history: Any, state: Any) -> None:
        history.append(UserMessage(content=f"obs: {obs}"))

    def process_response(self, obs: Any, response: str, history: Any, state: Any) -> str | None:
        return response


# --- §5.2 packaging and API ---------------------------------------------------------------------------------------

_IMPORT_WITHOUT_HEAVY_DEPENDENCIES = """
    import json, sys

    BLOCKED = {"jinja2", "torch", "transformers", "numpy", "distance", "openai", "anthropic", "mistralai", "groq"}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    import miniagents_nb.orchestration
    import miniagents_nb.orchestration.strategies
    from miniagents_nb.orchestration import ListMemory, SummaryMemory
    print(json.dumps(sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)))
"""


def test_fault_01_strategies_and_memories_import_without_jinja2_torch_or_llm_sdks() -> None:
    """tinysmith's strategies needed the undeclared jinja2 and even `ListMemory` needed torch."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_IMPORT_WITHOUT_HEAVY_DEPENDENCIES)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
    assert proc.stderr == ""


def test_fault_02_max_steps_is_enforced_by_the_orchestrator() -> None:
    from miniagents_nb.orchestration import MaxStepsReachedError

    script = ScriptedLLM(["a", "b"])
    orchestrator = solo(AppendOnlyPE(), script, max_steps=2)
    assert [orchestrator.forward("1"), orchestrator.forward("2")] == ["a", "b"]
    with pytest.raises(MaxStepsReachedError):
        orchestrator.forward("3")


def test_fault_03_max_errors_has_a_default_and_reset_keeps_the_limits() -> None:
    """tinysmith's `get_max_errors()` asserted, so `reset()` without a state broke the next step."""
    assert State().get_max_errors() == 3
    script = ScriptedLLM(["a", "b"])
    orchestrator = solo(AppendOnlyPE(), script, max_errors=5, max_steps=4)
    orchestrator.forward("1")
    orchestrator.reset()
    assert (orchestrator.state.get_max_errors(), orchestrator.state.get_max_steps()) == (5, 4)
    assert orchestrator.forward("2") == "b"


def test_fault_04a_history_alternates_with_the_models_replies() -> None:
    """tinysmith's histories grew with user prompts only: the model never saw what it had answered."""
    script = ScriptedLLM(["a", "b", "c"])
    orchestrator = solo(AppendOnlyPE(), script)
    for obs in ("1", "2", "3"):
        orchestrator.forward(obs)
    assert script.roles[-1] == ["user", "assistant", "user", "assistant", "user"]
    assert [content for _, content in script.calls[-1]] == ["obs: 1", "a", "obs: 2", "b", "obs: 3"]


def test_fault_04b_reset_empties_the_history_and_max_history_messages_bounds_it() -> None:
    script = ScriptedLLM(["a", "b", "c", "d"])
    orchestrator = solo(AppendOnlyPE(), script)
    orchestrator.forward("1")
    orchestrator.reset()
    orchestrator.forward("2")
    assert script.calls[-1] == [("user", "obs: 2")]
    orchestrator.agents[0].max_history_messages = 3
    orchestrator.forward("3")
    orchestrator.forward("4")
    assert script.calls[-1] == [("user", "obs: 3"), ("assistant", "c"), ("user", "obs: 4")]
    assert [m.content for m in orchestrator.agents[0].history] == ["obs: 4", "d"]


def test_fault_04c_list_memory_reset_clears_the_transcript() -> None:
    memory = ListMemory()
    state = State()
    state._finish_step("ls")
    state._begin_step("file", None)
    memory.preprocessing(None, state)
    assert memory.entries
    memory.reset()
    assert list(memory.entries) == []
    assert memory.render() == ""


def test_fault_05_a_parse_error_never_sends_an_empty_action_and_the_next_observation_is_rendered() -> None:
    """tinysmith's single agent returned '' to the environment and re-prompted on the next step, where the new
    observation was never shown."""
    script = ScriptedLLM(["I think we should list files.", "Command: ls -la", "Command: cat readme.txt"])
    orchestrator = build_single_agent(script.adapter(), "Find the flag.")
    assert orchestrator.forward("") == "ls -la"  # retried inside the same step
    assert turns(orchestrator) == [("single_agent", 1, False), ("single_agent", 2, True)]
    assert script.calls[1][-1][1].startswith("I could not use your reply: the reply has no `Command:` line.")
    assert orchestrator.state.error.is_error is False  # nothing carries over to the next step
    assert orchestrator.forward("readme.txt") == "cat readme.txt"
    assert "$ ls -la\nreadme.txt" in script.calls[2][-1][1]


def test_fault_06_parse_errors_tell_the_model_what_exactly_is_wrong() -> None:
    """tinysmith's JSON helpers swallowed every error: every failure looked like a missing key."""
    script = ScriptedLLM(['{"plan": ["a",, "b"]}', '{"steps": ["a"]}', plan("look around")])
    orchestrator = build_planner_reviewer_executor(script.adapter(), "task")
    orchestrator.register_transition(lambda obs, state: state.set_agent_name("planner"))
    orchestrator.state.max_turns_per_step = 3
    with pytest.raises(Exception, match="3 agent turns"):
        orchestrator.forward("")
    assert "the JSON object in the reply is invalid: Expecting value" in script.calls[1][-1][1]
    assert 'the JSON object lacks "plan"' in script.calls[2][-1][1]


def test_fault_07_agent_names_are_unique_and_unknown_names_are_explained() -> None:
    script = ScriptedLLM([])
    orchestrator = solo(AppendOnlyPE(), script)
    with pytest.raises(OrchestratorSetupError, match="already registered"):
        orchestrator.register_agent(Agent("solo", AppendOnlyPE(), script.adapter()))
    orchestrator.register_transition(lambda obs, state: state.set_agent_name("nobody"))
    with pytest.raises(UnknownAgentError, match="'nobody'.*registered: 'solo'") as caught:
        orchestrator.forward("x")
    assert isinstance(caught.value, LookupError)


def test_fault_08_module_postprocessing_only_sees_accepted_replies() -> None:
    """tinysmith's "skip postprocessing on error" guard could never skip."""
    seen: list[str] = []

    class Recorder(Module):
        def postprocessing(self, response: str, state: State) -> None:
            seen.append(response)

    class PickyPE(AppendOnlyPE):
        def process_response(self, obs: Any, response: str, history: Any, state: Any) -> str | None:
            if response == "bad":
                signal_error(state, "bad reply", "Say good.")
                return None
            return response

    orchestrator = solo(PickyPE(), ScriptedLLM(["bad", "good"]), modules=[Recorder("recorder")])
    assert orchestrator.forward("x") == "good"
    assert seen == ["good"]


def test_fault_09_an_environment_step_without_an_action_is_retried_not_sent() -> None:
    """The README's prompt engineer returns None; on an environment step that would reach the environment."""

    class SilentOncePE(AppendOnlyPE):
        def process_response(self, obs: Any, response: str, history: Any, state: Any) -> str | None:
            return None if response == "hmm" else response

    script = ScriptedLLM(["hmm", "   ", "echo done"])
    orchestrator = solo(SilentOncePE(), script)
    assert orchestrator.forward("x") == "echo done"
    assert turns(orchestrator) == [("solo", 1, False), ("solo", 2, False), ("solo", 3, True)]
    assert "did not contain an action" in script.calls[1][-1][1]


# --- §5.3 LLM adapters --------------------------------------------------------------------------------------------


def test_fault_10_only_context_errors_retry_and_the_retry_drops_the_observation() -> None:
    """tinysmith mapped every HTTP 400 to MaxContextError (with a literal `{e}` in its message)."""
    from miniagents_nb.ext.llms import LLMBadRequestError

    too_long = LLMBadRequestError("HTTP 400: maximum context length is 10 tokens", provider="openai", status=400)
    script = ScriptedLLM([too_long, "ok"])
    orchestrator = solo(AppendOnlyPE(), script)
    assert orchestrator.forward("a huge observation") == "ok"
    assert script.calls[0] == [("user", "obs: a huge observation")]
    assert script.calls[1][0] == ("user", "obs: None")  # re-rendered without the observation
    assert script.calls[1][-1][1].startswith("The output of the last command was too long")
    (error,) = [record for record in orchestrator.timeline if isinstance(record, ErrorRecord)]
    assert "maximum context length is 10 tokens" in error.log_message
    assert "{e}" not in error.log_message


def test_fault_11a_rate_limits_surface_at_once_without_a_blocking_sleep() -> None:
    limited = LLMRateLimitError("HTTP 429: slow down", provider="openai", status=429, retry_after=60)
    orchestrator = solo(AppendOnlyPE(), ScriptedLLM([limited]))
    with pytest.raises(LLMRateLimitError, match="slow down"):
        orchestrator.forward("x")


def test_fault_11b_custom_adapter_needs_no_api_key() -> None:
    adapter = CustomAPIAdapter("http://localhost:8000/v1", "local-model", 0.5, 1, {})
    assert adapter._connection() == ({"base_url": "http://localhost:8000/v1"}, {"api_key": "not-needed"})


# --- §5.4 strategies ----------------------------------------------------------------------------------------------


def test_fault_12a_running_out_of_plan_goes_back_to_the_planner() -> None:
    """tinysmith raised IndexError when the last subtask was done and the reviewer accepted."""
    script = ScriptedLLM(
        [
            plan("list files"),
            feedback(),
            progress("ls"),
            done("nothing interesting", "only readme.txt"),
            plan("read readme.txt"),  # a new plan from what was learned
            feedback(),
            progress("cat readme.txt"),
        ]
    )
    orchestrator = build_planner_reviewer_executor(script.adapter(), "Find the flag.")
    assert orchestrator.forward("") == "ls"
    assert orchestrator.forward("readme.txt") == "cat readme.txt"
    assert [agent for agent, _, _ in turns(orchestrator)][3:] == ["executor", "planner", "reviewer", "executor"]
    replan_prompt = script.calls[4][0][1]
    assert "Every subtask of the previous plan is finished" in replan_prompt
    assert "1. list files: nothing interesting" in replan_prompt


def test_fault_12b_reviewer_feedback_as_plain_strings_works() -> None:
    script = ScriptedLLM([plan("a"), feedback("too vague"), plan("a, precisely"), feedback(), progress("ls")])
    orchestrator = build_planner_reviewer_executor(script.adapter(), "task", max_rejects=3)
    assert orchestrator.forward("") == "ls"
    assert "- general: too vague" in script.calls[2][0][1]


def test_fault_12c_the_executor_budget_keeps_the_last_output_and_never_closes_a_subtask_silently() -> None:
    """tinysmith injected "max steps" without rendering (the last output was lost), let one more command
    through, then forced `done` without removing the subtask from the plan."""
    script = ScriptedLLM(
        [
            plan("explore", "submit"),
            feedback(),
            progress("ls"),
            progress("cat readme.txt"),
            progress("ls -a"),  # over the budget: rejected
            done("the readme says the flag is hidden", "flag is hidden"),
            feedback(),
            submit("x"),
        ]
    )
    orchestrator = build_planner_reviewer_executor(script.adapter(), "task", executor_max_steps=2)
    assert orchestrator.forward("") == "ls"
    assert orchestrator.forward("readme.txt") == "cat readme.txt"
    assert orchestrator.forward("The flag is hidden.") == "submit x"
    budget_prompt = script.calls[4][-1][1]
    assert "$ cat readme.txt\nThe flag is hidden." in budget_prompt  # the last output is shown
    assert "You have used all 2 commands of this subtask" in budget_prompt
    assert "all 2 commands of this subtask are used" in script.calls[5][-1][1]
    assert orchestrator.state.get("planner")["plan"] == ["submit"]  # the explored subtask left the plan
    assert orchestrator.state.get("task_list")[0]["subtask"] == "explore"


def test_fault_12d_missing_max_rejects_does_not_mean_endless_rejections() -> None:
    script = ScriptedLLM([plan("a"), feedback({"step 1": "no"}), plan("b"), feedback({"step 1": "no"}), progress("ls")])
    orchestrator = build_planner_reviewer_executor(script.adapter(), "task")
    orchestrator.state.delete("reviewer")
    assert orchestrator.forward("") == "ls"
    assert orchestrator.state.get("reviewer")["max_rejects"] == 1


def test_fault_12e_a_rejected_submission_goes_back_to_the_executor() -> None:
    """After `submit`, tinysmith's next step failed with "invalid executor status"."""
    script = ScriptedLLM([plan("guess"), feedback(), submit("wrong"), progress("ls -a")])
    orchestrator = build_planner_reviewer_executor(script.adapter(), "task")
    assert orchestrator.forward("") == "submit wrong"
    assert orchestrator.forward("Wrong answer. Keep looking.") == "ls -a"
    assert "$ submit wrong\nWrong answer. Keep looking." in script.calls[-1][-1][1]


def test_fault_13a_a_failure_reported_by_the_environment_triggers_reflection() -> None:
    """tinysmith read `error_occurred` but nothing set it; a negative reward now counts too."""
    script = ScriptedLLM(["Command: submit guess", "New plan: look first.", "Command: ls"])
    orchestrator = build_reflexion(script.adapter(), "task")
    assert orchestrator.forward("") == "submit guess"
    assert orchestrator.forward("Wrong answer.", -1.0) == "ls"
    assert [agent for agent, _, _ in turns(orchestrator)] == ["actor", "reflector", "actor"]
    assert "the environment reported a failure" in script.calls[1][-1][1]


def test_fault_13b_the_near_duplicate_count_restarts_after_a_reflection() -> None:
    commands = ["cat a1", "cat a2", "cat a3", "cat a4"]
    script = ScriptedLLM(
        [f"Command: {command}" for command in commands]
        + ["New plan: stop guessing names.", "Command: cat a5", "Command: cat a6"]
    )
    orchestrator = build_reflexion(script.adapter(), "task")
    for obs in ["", "x", "x", "x", "x", "x"]:
        orchestrator.forward(obs)
    agents = [agent for agent, _, _ in turns(orchestrator)]
    assert agents == ["actor"] * 4 + ["reflector"] + ["actor"] * 2  # no second reflection right away
    assert orchestrator.state.get("evaluation")["num_similar"] == 1


def test_fault_13c_reflections_reach_the_actor_without_a_long_term_memory_module() -> None:
    script = ScriptedLLM(["Command: ls", "Command: ls", "New plan: read readme.txt.", "Command: cat readme.txt"])
    orchestrator = build_reflexion(script.adapter(), "task")
    for obs in ["", "readme.txt", "readme.txt"]:
        orchestrator.forward(obs)
    assert "New plan: read readme.txt." in script.calls[-1][0][1]


def test_fault_13d_the_transcript_keeps_the_observation_of_a_step_with_a_reflection() -> None:
    """tinysmith's actor ran with obs=None after the reflector, so its list memory lost that observation."""
    script = ScriptedLLM(["Command: ls", "Command: ls", "New plan: cat it.", "Command: cat readme.txt"])
    orchestrator = build_reflexion(script.adapter(), "task")
    for obs in ["", "readme.txt", "readme.txt"]:
        orchestrator.forward(obs)
    actor_prompt = script.calls[-1][-1][1]
    assert actor_prompt.count("$ ls\nreadme.txt") == 2
    assert orchestrator.state.get("reflexion_trajectory")["entries"] == [["ls", "readme.txt"], ["ls", "readme.txt"]]


def test_fault_13e_rejected_replies_do_not_skip_steps_and_max_steps_is_optional() -> None:
    """tinysmith's `current_step` jumped on a rejected reply (1, 2, 4, 5) and its evaluator needed max_steps."""
    script = ScriptedLLM(["no command", "Command: ls", "Command: pwd", "Command: cat x"])
    orchestrator = build_reflexion(script.adapter(), "task")
    for obs in ["", "readme.txt", "/ctf"]:
        orchestrator.forward(obs)
    assert orchestrator.state.env_steps == 3
    assert orchestrator.state.max_steps is None


def test_fault_13f_one_action_left_triggers_a_reflection() -> None:
    script = ScriptedLLM(["Command: ls", "New plan: submit what you have.", "Command: submit x"])
    orchestrator = build_reflexion(script.adapter(), "task", max_steps=2)
    orchestrator.forward("")
    assert orchestrator.forward("readme.txt") == "submit x"
    assert "only one action is left" in script.calls[1][-1][1]
