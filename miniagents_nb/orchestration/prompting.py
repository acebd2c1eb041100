"""`PromptEngineer`: the part of an agent that writes its prompt and reads its reply.

Subclass it and override the plain methods (`render_prompt`, `process_response`, `reset`) as in tinysmith, or
the `a`-prefixed coroutine versions when building a prompt or reading a reply needs to await something (another
agent, a retrieval call). The orchestrator only ever calls the coroutine versions, which default to the plain ones.
"""

from __future__ import annotations

from miniagents_nb.ext.llms.messages import LLMMessage
from miniagents_nb.orchestration.state import State

__all__ = ["PromptEngineer"]


class PromptEngineer:
    """Builds an agent's chat history from the state and turns the model's reply into the agent's output.

    `render_prompt` edits `history` in place: the list is the agent's own, kept between turns, so a prompt
    engineer chooses between rebuilding it every turn (`history.clear()` first) and growing a conversation. The
    agent appends the model's reply to it after each call, so a growing conversation alternates properly.

    `process_response` stores what it learned in the state, may call `state.set_is_envstep(True)` to make its
    return value the environment's next action, and calls `signal_error(state, ...)` on a reply it cannot use:
    the agent is then re-prompted with the improve message, and the return value is ignored.
    """

    def render_prompt(self, obs: str | None, history: list[LLMMessage], state: State) -> None:
        """Append (or rebuild) the prompt in `history`; `obs` is None on hops after the first of a step."""
        raise NotImplementedError(
            f"{type(self).__name__} must override `render_prompt` (or the coroutine `arender_prompt`)."
        )

    def process_response(self, obs: str | None, response: str, history: list[LLMMessage], state: State) -> str | None:
        """Read the model's `response`; return the agent's output (the action on an environment step)."""
        raise NotImplementedError(
            f"{type(self).__name__} must override `process_response` (or the coroutine `aprocess_response`)."
        )

    def reset(self) -> None:
        """Forget whatever this prompt engineer remembers between turns (a new episode starts)."""

    async def arender_prompt(self, obs: str | None, history: list[LLMMessage], state: State) -> None:
        """Coroutine version of `render_prompt`, the one the orchestrator calls."""
        self.render_prompt(obs, history, state)

    async def aprocess_response(
        self, obs: str | None, response: str, history: list[LLMMessage], state: State
    ) -> str | None:
        """Coroutine version of `process_response`, the one the orchestrator calls."""
        return self.process_response(obs, response, history, state)
