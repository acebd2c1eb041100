"""The orchestrator on the seed's coin-flip / poet strategy, driven by the scripted fake LLM.

The prompt engineers and the transition below are the seed's (tinysmith README), with `tinysmith` imports replaced
by `miniagents_nb.orchestration`; only the LLM is the fake one, scripted per test.
"""

from __future__ import annotations

import asyncio
import builtins
import re
import threading
from typing import Any

import pytest

from miniagents_nb import InteractionContext, Message, MiniAgents
from miniagents_nb.errors import RunningEventLoopError
from miniagents_nb.ext.llms import FakeLLMAgent
from miniagents_nb.orchestration import (
    ActionMessage,
    Agent,
    GroqAPIAdapter,
    MaxStepsReachedError,
    ObservationMessage,
    OrchestrationError,
    Orchestrator,
    OrchestratorSetupError,
    PromptEngineer,
    State,
    StepRecord,
    TooManyErrorsError,
    TooManyTurnsError,
    TransitionRecord,
    TurnResult,
    UnknownAgentError,
    UserMessage,
    signal_error,
)
from miniagents_nb.promising.context import install_blocking_runner

from .helpers import ScriptedLLM, turns

# --- the seed's strategy ------------------------------------------------------------------------------------------


class CoinflipPE(PromptEngineer):
    def render_prompt(self, obs, hist, state):  # type: ignore[no-untyped-def]
        prompt = 'Flip a coin. Answer only with "heads" or "tails".'
        hist.append(UserMessage(prompt))

    def process_response(self, obs, res, hist, state):  # type: ignore[no-untyped-def]
        if ("heads" in res.lower() and "tails" in res.lower()) or (
            "heads" not in res.lower() and "tails" not in res.lower()
        ):
            signal_error(state, "Invalid flip.", "Invalid response. Please answer either heads or tails.")
            return ""

        coinflip_agent_state = state.get("coinflip") if state.get("coinflip") else {}
        if "heads" in res.lower():
            coinflip_agent_state["flip"] = "heads"
        else:
            coinflip_agent_state["flip"] = "tails"
        state.set("coinflip", coinflip_agent_state)

    def reset(self):  # type: ignore[no-untyped-def]
        pass


class PoetPE(PromptEngineer):
    def render_prompt(self, obs, hist, state):  # type: ignore[no-untyped-def]
        coinflip_agent_state = state.get("coinflip")

        prompt = (
            "Your output will be interpretet by a bash shell. "
            + "Use the echo command to print your output. "
            + "Print a happy poem about randomness."
            + f"Include the coinflip result: {coinflip_agent_state['flip']}."
        )
        hist.append(UserMessage(prompt))

    def process_response(self, obs, res, hist, state):  # type: ignore[no-untyped-def]
        return res

    def reset(self):  # type: ignore[no-untyped-def]
        pass


def transition(obs: Any, state: Any) -> None:
    if state.get_agent_name() == "init":
        state.set_agent_name("coinflip_agent")
    elif state.get_agent_name() == "coinflip_agent":
        state.set_agent_name("poet_agent")
        state.set_is_envstep(True)
    elif state.get_agent_name() == "poet_agent":
        state.set_agent_name("coinflip_agent")


def make_coinflip(
    script: ScriptedLLM, *, max_errors: int = 3, max_steps: int = 10
) -> tuple[Orchestrator, dict[str, Any]]:
    """The seed's wiring: one Groq adapter shared by both agents, here backed by the scripted fake LLM."""
    token_usage: dict[str, int] = {}
    llm = GroqAPIAdapter(
        model="llama3-8b-8192",
        temperature=1,
        top_p=1,
        token_usage=token_usage,
        api_key="XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        llm_agent=script.agent(),
    )
    coinflip_agent = Agent("coinflip_agent", CoinflipPE(), llm)
    poet_agent = Agent("poet_agent", PoetPE(), llm)
    state = State()
    state.set_max_errors(max_errors)
    state.set_max_steps(max_steps)
    return Orchestrator([coinflip_agent, poet_agent], transition, state), token_usage


# --- the seed example ---------------------------------------------------------------------------------------------


def test_seed_coinflip_loop_runs_on_the_fake_llm(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    """The seed's environment loop, `while True: print(orchestrator.forward(input("> "), 0))`, in a script."""
    script = ScriptedLLM(["heads", "echo 'Heads! luck'", "I think TAILS and heads", "tails", "echo 'Tails! fate'"])
    orchestrator, token_usage = make_coinflip(script)
    typed = iter(["start", "obs-2"])

    def fake_input(prompt: str = "") -> str:
        try:
            return next(typed)
        except StopIteration:
            raise EOFError from None

    def environment_loop() -> None:  # the seed's loop, verbatim
        while True:
            print(orchestrator.forward(input("> "), 0))

    monkeypatch.setattr(builtins, "input", fake_input)
    with pytest.raises(EOFError):
        environment_loop()

    assert capsys.readouterr().out == "echo 'Heads! luck'\necho 'Tails! fate'\n"
    assert turns(orchestrator) == [
        ("coinflip_agent", 1, True),
        ("poet_agent", 1, True),
        ("coinflip_agent", 1, False),  # "I think TAILS and heads": signal_error
        ("coinflip_agent", 2, True),  # retried without a transition
        ("poet_agent", 1, True),
    ]
    # The retry showed the model its rejected reply, then the correction.
    assert script.calls[3][-2:] == [
        ("assistant", "I think TAILS and heads"),
        ("user", "Invalid response. Please answer either heads or tails."),
    ]
    assert orchestrator.state.get("coinflip") == {"flip": "tails"}
    assert orchestrator.state.env_steps == 2
    assert token_usage == script.expected_usage()
    assert orchestrator.token_usage == token_usage
    assert token_usage["total_tokens"] > 0


async def test_aforward_runs_every_hop_with_the_observation_on_the_first_only() -> None:
    script = ScriptedLLM(["tails", "echo 'Tails!'"])
    orchestrator, _ = make_coinflip(script)
    seen: list[tuple[str, Any]] = []

    def spying_transition(obs, state):  # type: ignore[no-untyped-def]
        seen.append((state.get_agent_name(), obs))
        transition(obs, state)

    orchestrator.register_transition(spying_transition)
    assert await orchestrator.aforward("start") == "echo 'Tails!'"
    assert seen == [("init", "start"), ("coinflip_agent", None)]
    assert orchestrator.state.response == "echo 'Tails!'"
    assert orchestrator.state.last_action == "echo 'Tails!'"
    assert orchestrator.state.is_envstep is False


async def test_aforward_uses_the_active_miniagents_context() -> None:
    script = ScriptedLLM(["heads", "echo ok"])
    orchestrator, _ = make_coinflip(script)
    async with MiniAgents():
        assert await orchestrator.aforward("start") == "echo ok"


async def test_every_step_turn_and_llm_call_is_an_agent_call() -> None:
    """The LLM runs inside the turn's agent, which runs inside the orchestrator's agent (what the views show)."""
    traces: list[list[str]] = []
    answers = iter(["heads", "echo poem"])

    def reply_fn(messages: Any) -> str:
        traces.append([agent.alias for agent in InteractionContext.get_current().get_agent_trace()])
        return next(answers)

    orchestrator, _ = make_coinflip(ScriptedLLM([]))
    for agent in orchestrator.agents:
        agent.llm.llm_agent = FakeLLMAgent.fork(reply_fn=reply_fn)
    async with MiniAgents():
        replies = await orchestrator.miniagent.trigger(ObservationMessage(content="start", observation="start", step=1))
    assert traces == [
        ["FAKE_LLM_AGENT", "coinflip_agent", "orchestrator"],
        ["FAKE_LLM_AGENT", "poet_agent", "orchestrator"],
    ]
    # The orchestrator's reply sequence: each turn's reply and result, then the action.
    kinds = [type(message).__name__ for message in replies]
    assert kinds == ["AssistantMessage", "TurnResult", "AssistantMessage", "TurnResult", "ActionMessage"]
    results = [message for message in replies if isinstance(message, TurnResult)]
    assert [(result.agent_name, result.env_step, result.state_changes) for result in results] == [
        ("coinflip_agent", False, (("coinflip", "{'flip': 'heads'}"),)),
        ("poet_agent", True, ()),
    ]
    assert isinstance(replies[-1], ActionMessage)
    assert replies[-1].content == "echo poem"


# --- errors and limits --------------------------------------------------------------------------------------------


def test_max_errors_overflow_after_one_plus_max_errors_calls() -> None:
    script = ScriptedLLM(["both heads and tails"] * 4)
    orchestrator, _ = make_coinflip(script, max_errors=3)
    with pytest.raises(TooManyErrorsError, match="4 rejected turns in a row") as caught:
        orchestrator.forward("start")
    assert isinstance(caught.value, OverflowError)
    assert len(script.calls) == 4
    assert turns(orchestrator) == [("coinflip_agent", attempt, False) for attempt in (1, 2, 3, 4)]
    assert "TooManyErrorsError" in repr(orchestrator)


def test_max_errors_zero_allows_no_retry() -> None:
    script = ScriptedLLM(["neither"])
    orchestrator, _ = make_coinflip(script, max_errors=0)
    with pytest.raises(TooManyErrorsError):
        orchestrator.forward("start")
    assert len(script.calls) == 1


def test_errors_are_counted_in_a_row_only() -> None:
    """A rejected turn followed by an accepted one resets the count."""
    script = ScriptedLLM(["neither", "heads", "echo 1", "neither", "tails", "echo 2"])
    orchestrator, _ = make_coinflip(script, max_errors=1)
    assert orchestrator.forward("a") == "echo 1"
    assert orchestrator.forward("b") == "echo 2"


def test_max_steps_is_enforced() -> None:
    script = ScriptedLLM(["heads", "echo 1", "tails", "echo 2"])
    orchestrator, _ = make_coinflip(script, max_steps=2)
    orchestrator.forward("a")
    orchestrator.forward("b")
    with pytest.raises(MaxStepsReachedError, match="already returned 2 actions"):
        orchestrator.forward("c")
    assert len(script.calls) == 4  # the refused step called no LLM


def test_unknown_agent_name_is_a_clear_error() -> None:
    orchestrator, _ = make_coinflip(ScriptedLLM([]))
    orchestrator.register_transition(lambda obs, state: state.set_agent_name("poet"))
    with pytest.raises(UnknownAgentError, match="'poet'.*registered: 'coinflip_agent', 'poet_agent'"):
        orchestrator.forward("start")


def test_a_transition_that_names_no_agent_is_a_clear_error() -> None:
    orchestrator, _ = make_coinflip(ScriptedLLM([]))
    orchestrator.register_transition(lambda obs, state: None)
    with pytest.raises(UnknownAgentError, match="'init'"):
        orchestrator.forward("start")


def test_duplicate_agent_names_are_refused() -> None:
    orchestrator, _ = make_coinflip(ScriptedLLM([]))
    with pytest.raises(OrchestratorSetupError, match="already registered"):
        orchestrator.register_agent(orchestrator.agents[0])


def test_missing_transition_or_agents_are_refused() -> None:
    with pytest.raises(OrchestratorSetupError, match="no transition"):
        Orchestrator([], None).forward("x")
    with pytest.raises(OrchestratorSetupError, match="no agents"):
        Orchestrator([], transition).forward("x")


def test_max_turns_per_step_stops_an_endless_hand_off() -> None:
    script = ScriptedLLM(["heads"] * 3)
    orchestrator, _ = make_coinflip(script)
    orchestrator.state.max_turns_per_step = 3
    orchestrator.register_transition(lambda obs, state: state.set_agent_name("coinflip_agent"))
    with pytest.raises(TooManyTurnsError, match="more than 3 agent turns"):
        orchestrator.forward("start")
    assert len(script.calls) == 3


def test_a_transition_can_signal_an_error_for_the_next_agent() -> None:
    """The note is added to the freshly rendered prompt, so the observation is not lost."""
    script = ScriptedLLM(["heads", "echo ok"])
    orchestrator, _ = make_coinflip(script)

    def strict_transition(obs, state):  # type: ignore[no-untyped-def]
        transition(obs, state)
        if state.get_agent_name() == "poet_agent":
            signal_error(state, "poet must rhyme", "Make it rhyme.")

    orchestrator.register_transition(strict_transition)
    assert orchestrator.forward("start") == "echo ok"
    assert script.calls[1][-1] == ("user", "Make it rhyme.")
    assert script.calls[1][-2][1].startswith("Your output will be interpretet by a bash shell.")


async def test_async_transitions_and_prompt_engineers_are_awaited() -> None:
    class AsyncPE(PromptEngineer):
        async def arender_prompt(self, obs, history, state):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0)
            history.append(UserMessage(content=f"say {obs}"))

        async def aprocess_response(self, obs, response, history, state):  # type: ignore[no-untyped-def]
            state.set_is_envstep(True)
            return response.upper()

    async def async_transition(obs, state):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        state.set_agent_name("solo")

    script = ScriptedLLM(["hello"])
    orchestrator = Orchestrator([Agent("solo", AsyncPE(), script.adapter())], async_transition)
    assert await orchestrator.aforward("hi") == "HELLO"
    assert script.calls == [[("user", "say hi")]]


async def test_an_exception_in_a_prompt_engineer_reaches_the_caller() -> None:
    class BrokenPE(PromptEngineer):
        def render_prompt(self, obs, history, state):  # type: ignore[no-untyped-def]
            raise KeyError("flip")

    orchestrator = Orchestrator(
        [Agent("solo", BrokenPE(), ScriptedLLM([]).adapter())], lambda o, s: s.set_agent_name("solo")
    )
    with pytest.raises(KeyError, match="flip"):
        await orchestrator.aforward("x")
    assert "KeyError" in repr(orchestrator)


# --- the sync facade ----------------------------------------------------------------------------------------------


async def test_forward_under_a_running_loop_says_to_await_aforward() -> None:
    orchestrator, _ = make_coinflip(ScriptedLLM([]))
    with pytest.raises(RunningEventLoopError, match=re.escape("await orchestrator.aforward(...)")):
        orchestrator.forward("start")


async def test_forward_under_a_running_loop_uses_the_notebook_runner() -> None:
    """A stand-in for the notebook layer's runner: the coroutine runs to completion on a loop of its own thread."""
    ran: list[str] = []

    def runner(coroutine: Any) -> Any:
        ran.append(coroutine.__qualname__)
        results: list[Any] = []
        thread = threading.Thread(target=lambda: results.append(asyncio.run(coroutine)))
        thread.start()
        thread.join()
        return results[0]

    uninstall = install_blocking_runner(runner)
    try:
        orchestrator, _ = make_coinflip(ScriptedLLM(["heads", "echo from the runner"]))
        assert orchestrator.forward("start") == "echo from the runner"
    finally:
        uninstall()
    assert ran == ["PromisingContext.arun"]  # in a fresh MiniAgents context, as `MiniAgents().run` does


# --- reset, timeline, display -------------------------------------------------------------------------------------


def test_reset_keeps_limits_clears_histories_and_restarts_the_transition() -> None:
    script = ScriptedLLM(["heads", "echo 1", "tails", "echo 2"])
    orchestrator, _ = make_coinflip(script, max_errors=2, max_steps=1)
    orchestrator.forward("a")
    assert orchestrator.agents[0].history
    orchestrator.reset()
    assert (orchestrator.state.max_errors, orchestrator.state.max_steps) == (2, 1)
    assert orchestrator.state.agent_name == "init"
    assert all(agent.history == [] for agent in orchestrator.agents)
    assert orchestrator.forward("b") == "echo 2"
    assert script.calls[2] == [("user", 'Flip a coin. Answer only with "heads" or "tails".')]


def test_reset_with_a_given_state_uses_it() -> None:
    orchestrator, _ = make_coinflip(ScriptedLLM([]))
    state = State(max_errors=7)
    orchestrator.reset(state)
    assert orchestrator.state is state


def test_timeline_repr_and_html_are_deterministic() -> None:
    def run() -> Orchestrator:
        script = ScriptedLLM(["heads", "echo <b>Heads</b>", "neither", "tails", "echo 'Tails'"])
        orchestrator, _ = make_coinflip(script)
        orchestrator.forward("start", 0)
        orchestrator.forward("obs-2", 1)
        return orchestrator

    first, second = run(), run()
    assert repr(first) == repr(second)
    assert first._repr_html_() == second._repr_html_()
    assert repr(first) == (
        "<Orchestrator 'orchestrator' (agents: coinflip_agent, poet_agent; transition: transition; actions: 2; "
        "current agent: 'poet_agent')>\n"
        "step 1: observation='start', reward=0.0\n"
        "  init -> coinflip_agent\n"
        "  coinflip_agent #1: reply='heads' output=None\n"
        "    coinflip = {'flip': 'heads'}\n"
        "  coinflip_agent -> poet_agent (env step)\n"
        "  poet_agent #1: reply='echo <b>Heads</b>'\n"
        "  => action from poet_agent: 'echo <b>Heads</b>'\n"
        "step 2: observation='obs-2', reward=1.0\n"
        "  poet_agent -> coinflip_agent\n"
        "  coinflip_agent #1 [rejected]: reply='neither' output=''\n"
        "  ! coinflip_agent (reply, 1 in a row): 'Invalid flip.'\n"
        "  coinflip_agent #2: reply='tails' output=None\n"
        "    coinflip = {'flip': 'tails'}\n"
        "  coinflip_agent -> poet_agent (env step)\n"
        "  poet_agent #1: reply=\"echo 'Tails'\"\n"
        "  => action from poet_agent: \"echo 'Tails'\""
    )
    html = first._repr_html_()
    assert "echo &lt;b&gt;Heads&lt;/b&gt;" in html
    assert "<b>Heads</b>" not in html
    assert "0x" not in html
    assert "0x" not in repr(first)
    assert sum(isinstance(record, TransitionRecord) for record in first.timeline) == 4


def test_agent_argument_checks() -> None:
    llm = ScriptedLLM([]).adapter()
    with pytest.raises(OrchestratorSetupError, match="needs an LLM"):
        Agent("a", CoinflipPE())
    with pytest.raises(OrchestratorSetupError, match="same argument"):
        Agent("a", CoinflipPE(), llm, llm_adapter=ScriptedLLM([]).adapter())
    with pytest.raises(OrchestratorSetupError, match="PromptEngineer"):
        Agent("a", object(), llm)  # type: ignore[arg-type]
    with pytest.raises(OrchestratorSetupError, match="non-empty str name"):
        Agent("", CoinflipPE(), llm)
    assert Agent("a", CoinflipPE(), llm_adapter=llm).llm_adapter is llm
    assert isinstance(OrchestratorSetupError("x"), OrchestrationError)


async def test_an_llm_miniagent_can_be_given_directly() -> None:
    script = ScriptedLLM(["heads", "echo direct"])
    coinflip = Agent("coinflip_agent", CoinflipPE(), script.agent())
    poet = Agent("poet_agent", PoetPE(), script.agent())
    orchestrator = Orchestrator([coinflip, poet], transition)
    assert await orchestrator.aforward("x") == "echo direct"
    assert orchestrator.token_usage["total_tokens"] > 0


# --- the orchestrator as an agent ---------------------------------------------------------------------------------


async def test_the_orchestrator_agent_can_be_triggered_with_plain_text() -> None:
    """Triggered like any agent (in a chain, from a chat cell), the text is the observation."""
    script = ScriptedLLM(["heads", "echo from text"])
    orchestrator, _ = make_coinflip(script)
    async with MiniAgents():
        replies = await orchestrator.miniagent.trigger("the observation")
    assert str(replies[-1]) == "echo from text"
    assert orchestrator.timeline[0] == StepRecord(1, "the observation", None)


async def test_steps_of_one_orchestrator_cannot_overlap() -> None:
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow_reply(messages: Any) -> str:
        started.set()
        await release.wait()
        return "heads"

    coinflip = Agent("coinflip_agent", CoinflipPE(), FakeLLMAgent.fork(reply_fn=slow_reply))
    poet = Agent("poet_agent", PoetPE(), FakeLLMAgent.fork(replies=["echo slow"]))
    orchestrator = Orchestrator([coinflip, poet], transition)
    async with MiniAgents():
        first = asyncio.ensure_future(orchestrator.aforward("a"))
        await started.wait()
        with pytest.raises(OrchestrationError, match="still running"):
            await orchestrator.aforward("b")
        release.set()
        assert await first == "echo slow"


def test_observation_and_reward_types_are_checked() -> None:
    orchestrator, _ = make_coinflip(ScriptedLLM([]))
    with pytest.raises(OrchestratorSetupError, match="must be a str or None, got int"):
        orchestrator.forward(3)  # type: ignore[arg-type]
    with pytest.raises(OrchestratorSetupError, match="reward must be a number"):
        orchestrator.forward("x", "high")  # type: ignore[arg-type]


async def test_persistence_handlers_get_every_message_of_a_step() -> None:
    persisted: list[Message] = []

    async def keep(messages: list[Message]) -> None:
        persisted.extend(messages)

    script = ScriptedLLM(["heads", "echo kept"])
    orchestrator, _ = make_coinflip(script)
    async with MiniAgents(on_persist_messages=keep):
        assert await orchestrator.aforward("start") == "echo kept"
    kinds = {type(message).__name__ for message in persisted}
    assert {"ObservationMessage", "TurnRequest", "TurnResult", "ActionMessage", "FakeLLMMessage"} <= kinds
    assert all("XXXXXXXX" not in message.serialized for message in persisted)  # the API key is never persisted
