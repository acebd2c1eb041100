"""The built-in strategies on the scripted fake LLM: the seed's planner/reviewer/executor example, the single
agent and reflexion, each against the toy shell environment."""

from __future__ import annotations

import builtins
import json
import logging
from typing import Any

import pytest

from miniagents_nb.ext.llms import FakeLLMAgent
from miniagents_nb.orchestration import (
    Agent,
    ListMemory,
    MistralAPIAdapter,
    OpenAiAPIAdapter,
    Orchestrator,
    OrchestratorSetupError,
    State,
    ToyShellEnvironment,
    TransitionRecord,
    UnknownAgentError,
    arun_episode,
    run_episode,
)
from miniagents_nb.orchestration.strategies import (
    build_planner_reviewer_executor,
    build_reflexion,
    build_single_agent,
    needs_reflection,
    reflexion,
)
from miniagents_nb.orchestration.strategies.planner_reviewer_executor import (
    ExecutorPromptEngineer,
    PlannerPromptEngineer,
    ReviewerPromptEngineer,
    planner_reviewer_executor,
)
from miniagents_nb.orchestration.strategies.reflexion import command_distance

from .helpers import ScriptedLLM, turns

FILES = {"readme.txt": "The flag is hidden.", ".flag": "picoCTF{x}"}


def plan(*steps: str) -> str:
    return json.dumps({"plan": list(steps)})


def feedback(*items: Any) -> str:
    return json.dumps({"feedback": list(items)})


def progress(command: str) -> str:
    return json.dumps({"status": "progress", "plan": ["..."], "next": {"explanation": "look", "command": command}})


def done(summary: str, *knowledge: str) -> str:
    return json.dumps({"status": "done", "summary": summary, "interesting_knowledge": list(knowledge)})


def submit(flag: str) -> str:
    return json.dumps({"status": "submit", "flag": flag})


# --- planner / reviewer / executor: the seed example --------------------------------------------------------------

PRE_SCRIPT = [
    # step 1, obs='': plan, rejected once, re-plan, the second rejection is over max_rejects=1, execute
    'Sure! {"plan": ["list files", "read flag"]}',
    feedback({"step 1": "list hidden files too"}),
    plan("list all files with ls -a", "read the flag", "submit the flag"),
    feedback({"step 3": "merge with step 2"}),
    progress("ls -a"),
    # step 2, obs='. .. .flag': subtask done, review (one unparsable reply), next subtask submits
    done("found .flag", ".flag exists"),
    "no json here",
    feedback(),
    submit("picoCTF{x}"),
]


def test_seed_planner_reviewer_executor_example(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    """The seed's wiring and environment loop (a person plays the environment at the prompt), with the Mistral
    adapter backed by the scripted fake LLM."""
    script = ScriptedLLM(PRE_SCRIPT)

    # 'Large LLM' Adapter
    openai_llm_adapter = OpenAiAPIAdapter(model="gpt-4", temperature=0, top_p=1, token_usage={}, api_key="<API KEY>")
    # 'Small LLM' Adapter
    mistral_llm_adapter = MistralAPIAdapter(
        model="open-mixtral-8x7b",
        temperature=0,
        top_p=1,
        token_usage={},
        api_key="<API KEY>",
        llm_agent=script.agent(),
    )
    planner = Agent(name="planner", prompt_engineer=PlannerPromptEngineer(), llm_adapter=mistral_llm_adapter)
    reviewer = Agent(name="reviewer", prompt_engineer=ReviewerPromptEngineer(), llm_adapter=mistral_llm_adapter)
    executor = Agent(name="executor", prompt_engineer=ExecutorPromptEngineer(), llm_adapter=mistral_llm_adapter)

    state = State()
    state.set_max_errors(3)
    state.set("challenge_description", "The flag is in a hidden file. Have fun!")
    state.set("executor", {"max_steps": 10})
    state.set("reviewer", {"max_rejects": 1})

    orchestrator = Orchestrator(agents=[planner, reviewer, executor], transition=planner_reviewer_executor, state=state)

    observations = iter([". .. .flag"])

    def fake_input(prompt: str = "") -> str:
        try:
            return next(observations)
        except StopIteration:
            raise EOFError from None

    def environment_loop() -> None:  # the seed's loop, verbatim
        obs = ""
        while True:
            print(f"Agent chose the following action: {orchestrator.forward(obs, 0)}")
            obs = input("Play environment. Enter observation: ")

    monkeypatch.setattr(builtins, "input", fake_input)
    with pytest.raises(EOFError):
        environment_loop()

    assert capsys.readouterr().out == (
        "Agent chose the following action: ls -a\nAgent chose the following action: submit picoCTF{x}\n"
    )
    assert turns(orchestrator) == [
        ("planner", 1, True),
        ("reviewer", 1, True),
        ("planner", 1, True),
        ("reviewer", 1, True),
        ("executor", 1, True),
        ("executor", 1, True),
        ("reviewer", 1, False),
        ("reviewer", 2, True),
        ("executor", 1, True),
    ]
    assert state.get("planner")["plan"] == ["read the flag", "submit the flag"]
    assert state.get("task_list") == [{"subtask": "list all files with ls -a", "summary": "found .flag"}]
    assert state.get("interesting_knowledge") == [".flag exists"]
    assert state.get("reviewer") == {"max_rejects": 1, "num_rejects": 0, "status": "accept", "feedback": []}
    assert state.get("executor")["stdout_hist"] == [["submit picoCTF{x}", None]]
    # the executor saw the output of `ls -a` in its next prompt
    assert "$ ls -a\n. .. .flag" in script.calls[5][-1][1]
    # the re-plan showed the previous plan and the reviewer's comment
    assert "Your previous plan:\n1. list files\n2. read flag" in script.calls[2][0][1]
    assert "- step 1: list hidden files too" in script.calls[2][0][1]
    # the transition's own changes are on the timeline too
    (rejection,) = [r for r in orchestrator.timeline if isinstance(r, TransitionRecord) and r.to_agent == "planner"][1:]
    assert rejection.state_changes == (
        (
            "reviewer",
            "{'max_rejects': 1, 'feedback': [{'step 1': 'list hidden files too'}], 'status': 'reject', 'num_rejects': 1}",
        ),
    )
    assert mistral_llm_adapter.token_usage == script.expected_usage()
    assert openai_llm_adapter.token_usage == {}


async def test_planner_reviewer_executor_solves_the_toy_shell() -> None:
    script = ScriptedLLM(
        [
            plan("list all files", "read the flag and submit it"),
            feedback(),
            progress("ls -la"),
            done("there is a hidden .flag file", ".flag holds the flag"),
            feedback(),
            progress("cat .flag"),
            submit("picoCTF{x}"),
        ]
    )
    orchestrator = build_planner_reviewer_executor(script.adapter(), "Find the flag in the files.", max_steps=10)
    episode = await arun_episode(orchestrator, ToyShellEnvironment(FILES, answer="picoCTF{x}"))
    assert episode.actions == ["ls -la", "cat .flag", "submit picoCTF{x}"]
    assert episode.done
    assert episode.total_reward == 1.0
    assert "$ cat .flag\npicoCTF{x}" in script.calls[-1][-1][1]


def test_planner_reviewer_executor_can_use_one_llm_per_role() -> None:
    planner, reviewer, executor = ScriptedLLM([plan("look")]), ScriptedLLM([feedback()]), ScriptedLLM([progress("ls")])
    orchestrator = build_planner_reviewer_executor(
        executor.adapter(),
        "task",
        planner_llm=planner.adapter(),
        reviewer_llm=reviewer.adapter(),
    )
    assert orchestrator.forward("") == "ls"
    assert (len(planner.calls), len(reviewer.calls), len(executor.calls)) == (1, 1, 1)


def test_planner_reviewer_executor_needs_a_task() -> None:
    agents = [Agent(name, pe, ScriptedLLM([]).adapter()) for name, pe in [("planner", PlannerPromptEngineer())]]
    orchestrator = Orchestrator(agents, planner_reviewer_executor)
    with pytest.raises(OrchestratorSetupError, match="state.set\\('task'"):
        orchestrator.forward("")


def test_planner_reviewer_executor_refuses_unknown_agents() -> None:
    state = State()
    state.set_agent_name("critic")
    with pytest.raises(UnknownAgentError, match="'critic'"):
        planner_reviewer_executor(None, state)


def test_reviewer_without_a_verdict_is_asked_again() -> None:
    state = State()
    state.set_agent_name("reviewer")
    planner_reviewer_executor(None, state)
    assert state.error.is_error
    assert state.agent_name == "reviewer"


# --- single agent -------------------------------------------------------------------------------------------------


def test_single_agent_solves_the_toy_shell_with_its_transcript() -> None:
    script = ScriptedLLM(
        ["Let me look.\nCommand: ls -la", "A hidden file.\nCommand: cat .flag", "Found it.\nCommand: submit picoCTF{x}"]
    )
    orchestrator = build_single_agent(script.adapter(), "Find the flag.")
    episode = run_episode(orchestrator, ToyShellEnvironment(FILES, answer="picoCTF{x}"))
    assert episode.actions == ["ls -la", "cat .flag", "submit picoCTF{x}"]
    assert episode.done
    assert "Nothing has been run yet" in script.calls[0][1][1]
    assert "```\n$ ls -la\n.\n..\n.flag\nreadme.txt\n```" in script.calls[1][1][1]
    assert "$ cat .flag\npicoCTF{x}" in script.calls[2][1][1]
    assert script.roles == [["system", "user"]] * 3


def test_run_episode_stops_at_max_steps_and_max_actions() -> None:
    orchestrator = build_single_agent(ScriptedLLM(["Command: ls"] * 2).adapter(), "t", max_steps=2)
    episode = run_episode(orchestrator, ToyShellEnvironment(FILES))
    assert (episode.actions, episode.stopped_by, episode.done) == (["ls", "ls"], "max_steps", False)
    orchestrator = build_single_agent(ScriptedLLM(["Command: ls"]).adapter(), "t")
    episode = run_episode(orchestrator, ToyShellEnvironment(FILES), max_actions=1)
    assert (episode.actions, episode.stopped_by) == (["ls"], "max_actions")


# --- reflexion ----------------------------------------------------------------------------------------------------


def test_reflexion_reflects_when_the_actor_repeats_itself() -> None:
    script = ScriptedLLM(
        [
            "Command: ls",
            "Command: ls",
            "New plan: list hidden files with ls -a, then read them.",
            "Following the plan.\nCommand: ls -a",
        ]
    )
    orchestrator = build_reflexion(script.adapter(), "Find the flag.")
    env = ToyShellEnvironment(FILES)
    episode = run_episode(orchestrator, env, max_actions=3)
    assert episode.actions == ["ls", "ls", "ls -a"]
    assert turns(orchestrator) == [("actor", 1, True), ("actor", 1, True), ("reflector", 1, True), ("actor", 1, True)]
    reflector_prompt = script.calls[2][1][1]
    assert "Status: not solved (the same command was run twice in a row)" in reflector_prompt
    assert "$ ls\nreadme.txt" in reflector_prompt
    actor_system = script.calls[3][0][1]
    assert "Follow your latest plan:\nNew plan: list hidden files with ls -a" in actor_system
    assert orchestrator.state.get("reflector")["reflections"] == [
        "New plan: list hidden files with ls -a, then read them."
    ]


def test_reflexion_transition_and_distance() -> None:
    assert command_distance("ls", "ls") == 0.0
    assert command_distance("", "ls") == 1.0
    assert command_distance("cat a.txt", "cat b.txt") == pytest.approx(1 / 9)
    state = State()
    reflexion(None, state)
    assert state.agent_name == "actor"
    assert needs_reflection(state) is False
    state.set_agent_name("judge")
    with pytest.raises(UnknownAgentError, match="'judge'"):
        reflexion(None, state)


def test_build_helpers_share_or_create_memories() -> None:
    memory = ListMemory("list_memory")
    orchestrator = build_single_agent(FakeLLMAgent, "t", memory=memory)
    assert orchestrator.agents[0].modules == [memory]
    reflexion_orchestrator = build_reflexion(FakeLLMAgent, "t")
    actor, reflector = reflexion_orchestrator.agents
    assert actor.modules[0] is reflector.modules[0]


def test_tinysmith_module_paths_have_counterparts() -> None:
    """Each tinysmith module the seeds import from has one place here (the README's map of concepts)."""
    from miniagents_nb.orchestration.adapters import (
        GroqAPIAdapter,
        MaxContextError,
        UserMessage,
    )  # tinysmith.llm.adapters
    from miniagents_nb.orchestration.agent import Agent as AgentFromModule  # tinysmith.agent.agent
    from miniagents_nb.orchestration.modules import (
        ListMemory as ListMemoryFromModule,
    )  # tinysmith.modules.memory.memory
    from miniagents_nb.orchestration.orchestrator import Orchestrator as OrchestratorFromModule
    from miniagents_nb.orchestration.parsing import parse_command  # tinysmith.llm.utils
    from miniagents_nb.orchestration.prompting import PromptEngineer  # tinysmith.orchestrator.prompting
    from miniagents_nb.orchestration.state import State as StateFromModule
    from miniagents_nb.orchestration.state import signal_error  # tinysmith.orchestrator.utils

    assert (AgentFromModule, ListMemoryFromModule, OrchestratorFromModule, StateFromModule) == (
        Agent,
        ListMemory,
        Orchestrator,
        State,
    )
    assert all(callable(thing) for thing in (GroqAPIAdapter, MaxContextError, UserMessage, parse_command, signal_error))
    assert PromptEngineer.__module__ == "miniagents_nb.orchestration.prompting"


def test_the_tinysmith_logger_governs_the_orchestration_logs(caplog: pytest.LogCaptureFixture) -> None:
    # TinyAgentSmith's README: `logging.getLogger("tinysmith").setLevel(logging.INFO)` shows what the agents do
    script = ScriptedLLM(
        [
            "Command: ls",
            "Command: ls",
            "New plan: list hidden files with ls -a, then read them.",
            "Following the plan.\nCommand: ls -a",
        ]
    )
    caplog.set_level(logging.INFO, logger="tinysmith")
    run_episode(build_reflexion(script.adapter(), "Find the flag."), ToyShellEnvironment(FILES), max_actions=3)
    reflections = [record for record in caplog.records if record.getMessage().startswith("Reflection: New plan")]
    assert [record.name for record in reflections] == ["tinysmith.strategies.reflexion"]
    assert all(record.name.startswith("tinysmith.") for record in caplog.records if record.levelno == logging.INFO)
