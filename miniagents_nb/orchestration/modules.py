"""Modules: hooks an `Agent` runs around its turns, mostly memories that condense the episode for the prompt.

A module publishes what it produces on the state under its own `name` (`state.get(name)["memory"]`), and the
prompt engineers that want it read that key. The memories here work from the state's record of the episode
(`state.last_action`, `state.observation`, `state.env_steps`), not from the `obs` argument of the hop they happen
to run in, so each `(action, observation)` pair is recorded exactly once, whichever agent of the step runs the
module first (tinysmith's list memory missed an observation whenever another agent ran first).
"""

from __future__ import annotations

from collections import deque

from miniagents_nb.ext.llms.messages import SystemMessage, UserMessage
from miniagents_nb.orchestration.adapters import LLMAdapter
from miniagents_nb.orchestration.state import State

__all__ = ["EMPTY_OUTPUT_NOTE", "ListMemory", "Module", "SummaryMemory", "describe_output"]

EMPTY_OUTPUT_NOTE = "(the command ran and printed nothing)"


def describe_output(observation: str | None, max_words: int | None = 1000) -> str:
    """The observation as a memory shows it: a note for empty output, a hint instead of overly long output."""
    text = (observation or "").strip("\n")
    if not text.strip():
        return EMPTY_OUTPUT_NOTE
    if max_words is not None:
        words = len(text.split())
        if words > max_words:
            return f"(the output was too long to keep: {words} words; narrow it down, e.g. with grep or head)"
    return text


class Module:
    """A pre/post-processing hook of an agent.

    `preprocessing` runs before the prompt is rendered on a normal turn (not on a retry, which only adds the
    correction to the history). `postprocessing` runs once the reply has been *accepted* by the prompt engineer,
    so a module never learns from a reply that was rejected (tinysmith meant to skip rejected replies and never
    did). Override the plain methods, or the `a`-prefixed coroutines when the hook awaits something (an LLM).
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def preprocessing(self, obs: str | None, state: State) -> None:
        """Before the prompt is rendered."""

    def postprocessing(self, response: str, state: State) -> None:
        """After the reply was accepted."""

    def reset(self) -> None:
        """Forget everything: a new episode starts."""

    async def apreprocessing(self, obs: str | None, state: State) -> None:
        """Coroutine version of `preprocessing`, the one the agent calls."""
        self.preprocessing(obs, state)

    async def apostprocessing(self, response: str, state: State) -> None:
        """Coroutine version of `postprocessing`, the one the agent calls."""
        self.postprocessing(response, state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class _StepRecorder(Module):
    """Detects, from the state, the `(last action, its observation)` pair of a step not recorded yet."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._recorded_step = 0

    def _new_pair(self, state: State) -> tuple[str, str | None] | None:
        if state.last_action is None or state.env_steps == self._recorded_step:
            return None
        self._recorded_step = state.env_steps
        return state.last_action, state.observation

    def reset(self) -> None:
        self._recorded_step = 0


class ListMemory(_StepRecorder):
    """Keeps the transcript of the episode (`$ action` then its output), the last `maxlen` pairs, and publishes
    it as markdown under `state[name]["memory"]` (the raw pairs under `"entries"`).

    Attach one instance to every agent of a strategy that needs the transcript: the first of them to run in a
    step records the pair, the others see it already there.
    """

    def __init__(self, name: str = "list_memory", maxlen: int | None = None, max_words: int | None = 1000) -> None:
        super().__init__(name)
        self.maxlen = maxlen
        self.max_words = max_words
        self.entries: deque[tuple[str, str]] = deque(maxlen=maxlen)

    def preprocessing(self, obs: str | None, state: State) -> None:
        """Record the pair of the new step (if any) and publish the transcript."""
        pair = self._new_pair(state)
        if pair is not None:
            action, observation = pair
            self.entries.append((action, describe_output(observation, self.max_words)))
        state.set(self.name, {"memory": self.render(), "entries": [list(entry) for entry in self.entries]})

    def render(self) -> str:
        """The transcript as markdown shell blocks (empty string when nothing happened yet)."""
        blocks = [f"```\n$ {action}\n{output}\n```" for action, output in self.entries]
        return "\n".join(blocks)

    def reset(self) -> None:
        """Empty the transcript (tinysmith's reset kept it)."""
        super().reset()
        self.entries.clear()


class SummaryMemory(_StepRecorder):
    """Keeps a running summary of the episode, rewritten by an LLM after every step (recursive summarisation),
    and publishes it under `state[name]["memory"]`. Its LLM calls show up in the views and in the adapter's
    token usage like any other call.
    """

    SYSTEM_PROMPT = (
        "You keep the notes of an agent that works in a shell, one command at a time. Below are the notes so "
        "far, then the latest command and what it printed. Rewrite the notes so that they also cover the new "
        "result. Keep every fact that may matter later (file names, values, what failed and why) and drop "
        "repetition. Reply with the notes only.\n\nNotes so far:\n{summary}"
    )

    def __init__(self, name: str, llm: LLMAdapter, max_words: int | None = 1000) -> None:
        super().__init__(name)
        self.llm = llm
        self.max_words = max_words
        self.summary = ""

    async def apreprocessing(self, obs: str | None, state: State) -> None:
        """Fold the new step into the summary (one LLM call per step), then publish it."""
        pair = self._new_pair(state)
        if pair is not None:
            action, observation = pair
            prompt = [
                SystemMessage(content=self.SYSTEM_PROMPT.format(summary=self.summary or "(none yet)")),
                UserMessage(content=f"$ {action}\n{describe_output(observation, self.max_words)}"),
            ]
            self.summary = (await self.llm.agenerate(prompt)).strip()
        state.set(self.name, {"memory": self.summary})

    def reset(self) -> None:
        """Forget the summary."""
        super().reset()
        self.summary = ""
