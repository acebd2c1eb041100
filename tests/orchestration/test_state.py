"""`State`: tinysmith's accessors, our properties, limits, namespaces and `signal_error`."""

from __future__ import annotations

import pytest

from miniagents_nb.errors import MiniAgentsError
from miniagents_nb.orchestration import ErrorStatus, OrchestratorSetupError, State, signal_error
from miniagents_nb.orchestration.state import DEFAULT_MAX_ERRORS, INITIAL_AGENT_NAME


def test_fresh_state_has_working_defaults() -> None:
    state = State()
    assert state.get_agent_name() == INITIAL_AGENT_NAME == "init"
    assert state.get_is_envstep() is False
    assert state.get_response() is None
    assert state.get_error_status() is False
    assert state.get_max_errors() == DEFAULT_MAX_ERRORS == 3
    assert state.get_max_steps() is None
    assert state.env_steps == 0
    assert state.last_action is None
    assert state.observation is None


def test_tinysmith_accessors_and_properties_are_the_same_data() -> None:
    state = State()
    state.set_agent_name("planner")
    assert state.agent_name == "planner"
    state.agent_name = "reviewer"
    assert state.get_agent_name() == "reviewer"
    state.set_is_envstep(True)
    assert state.is_envstep is True
    state.is_envstep = False
    assert state.get_is_envstep() is False
    state.set_max_errors(5)
    assert state.max_errors == 5
    state.set_max_steps(7)
    assert state.max_steps == 7
    state.max_steps = None
    assert state.get_max_steps() is None


def test_error_fields_can_be_set_one_by_one_and_reset() -> None:
    state = State()
    state.set_error_status(True)
    state.set_error_log_message("log")
    state.set_error_improve_message("improve")
    assert state.error == ErrorStatus(True, "log", "improve")
    assert (state.get_error_log_message(), state.get_error_improve_message()) == ("log", "improve")
    state.reset_error()
    assert state.error == ErrorStatus()


def test_signal_error_sets_all_three_fields() -> None:
    state = State()
    signal_error(state, "Invalid flip.", "Answer heads or tails.")
    assert state.get_error_status() is True
    assert state.get_error_log_message() == "Invalid flip."
    assert state.get_error_improve_message() == "Answer heads or tails."


@pytest.mark.parametrize(("log", "improve"), [("", "x"), ("x", ""), ("x", "   "), (None, "x")])
def test_signal_error_requires_both_messages(log: object, improve: object) -> None:
    with pytest.raises(OrchestratorSetupError, match="signal_error"):
        signal_error(State(), log, improve)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_errors": -1}, "max_errors"),
        ({"max_errors": 1.5}, "max_errors"),
        ({"max_errors": True}, "max_errors"),
        ({"max_steps": 0}, "max_steps"),
        ({"max_turns_per_step": 0}, "max_turns_per_step"),
    ],
)
def test_limits_are_validated(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(OrchestratorSetupError, match=name) as caught:
        State(**kwargs)  # type: ignore[arg-type]
    assert isinstance(caught.value, MiniAgentsError)
    assert isinstance(caught.value, ValueError)


def test_blackboard_get_set_delete_and_iteration() -> None:
    state = State()
    assert state.get("missing") is None
    assert state.get("missing", 1) == 1
    state.set("task", "find it")
    state.set("planner", {"plan": []})
    assert "task" in state
    assert list(state) == state.keys() == ["task", "planner"]
    assert state.items() == [("task", "find it"), ("planner", {"plan": []})]
    state.delete("task")
    state.delete("task")  # no error when absent
    assert state.keys() == ["planner"]


def test_namespace_is_created_once_and_mutated_in_place() -> None:
    state = State()
    namespace = state.namespace("executor")
    namespace["num_steps"] = 1
    assert state.get("executor") == {"num_steps": 1}
    assert state.namespace("executor") is namespace


def test_namespace_refuses_a_non_dict_value() -> None:
    state = State()
    state.set("task", "text")
    with pytest.raises(OrchestratorSetupError, match="not a namespace dict"):
        state.namespace("task")


def test_copy_limits_keeps_limits_and_drops_the_blackboard() -> None:
    state = State(max_errors=5, max_steps=4, max_turns_per_step=9)
    state.set("task", "x")
    fresh = state.copy_limits()
    assert (fresh.max_errors, fresh.max_steps, fresh.max_turns_per_step) == (5, 4, 9)
    assert fresh.keys() == []


def test_agent_name_must_be_a_non_empty_string() -> None:
    with pytest.raises(OrchestratorSetupError):
        State().set_agent_name("")


def test_repr_shows_bookkeeping_and_blackboard() -> None:
    state = State(max_steps=10)
    state.set("coinflip", {"flip": "heads"})
    assert repr(state) == (
        "State(agent_name='init', env_steps=0, max_errors=3, max_steps=10, data={'coinflip': {'flip': 'heads'}})"
    )
