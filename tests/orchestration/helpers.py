"""Helpers for the orchestration tests: a scripted fake LLM that records what the model was shown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from miniagents_nb.ext.llms import FakeLLMAgent
from miniagents_nb.ext.llms.fake import split_into_tokens
from miniagents_nb.orchestration import FakeLLMAdapter, Orchestrator, TurnRecord


class ScriptedLLM:
    """The `reply_fn` of a fake LLM: hands out `replies` in order (an exception in the list is raised instead)
    and records every prompt. Being called once more than scripted fails the test."""

    def __init__(self, replies: Sequence[Any]) -> None:
        self.replies = list(replies)
        self.calls: list[list[tuple[str, str]]] = []
        self.answers: list[str] = []

    def __call__(self, message_dicts: Sequence[Any]) -> str:
        self.calls.append([(d["role"], str(d["content"])) for d in message_dicts])
        if not self.replies:
            raise AssertionError(f"the LLM was called {len(self.calls)} times, more than scripted")
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        self.answers.append(str(reply))
        return str(reply)

    @property
    def roles(self) -> list[list[str]]:
        """The roles of each prompt's messages, call by call."""
        return [[role for role, _ in call] for call in self.calls]

    def agent(self) -> Any:
        """A fork of the fake LLM agent driven by this script."""
        return FakeLLMAgent.fork(reply_fn=self)

    def adapter(self, token_usage: dict[str, int] | None = None) -> FakeLLMAdapter:
        """A `FakeLLMAdapter` driven by this script."""
        return FakeLLMAdapter(reply_fn=self, token_usage=token_usage)

    def expected_usage(self) -> dict[str, int]:
        """The fake LLM's token counts for the calls made so far (words of the prompt and of the reply)."""
        prompt = sum(len(split_into_tokens(content)) for call in self.calls for _, content in call)
        completion = sum(len(split_into_tokens(answer)) for answer in self.answers)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def turns(orchestrator: Orchestrator) -> list[tuple[str, int, bool]]:
    """(agent, attempt, accepted) of every turn on the orchestrator's timeline."""
    return [
        (record.agent, record.attempt, record.accepted)
        for record in orchestrator.timeline
        if isinstance(record, TurnRecord)
    ]
