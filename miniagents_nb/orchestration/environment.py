"""Environments: what an orchestrator acts on (observation in, action out), and a loop that runs an episode.

`ToyShellEnvironment` pretends to be a shell over a few in-memory files, for tests and tutorials: it understands
a handful of commands and never executes anything, so a model's output can never touch the machine.
"""

from __future__ import annotations

import inspect
import shlex
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from miniagents_nb.orchestration._sync import run_blocking
from miniagents_nb.orchestration.errors import MaxStepsReachedError
from miniagents_nb.orchestration.orchestrator import Orchestrator

__all__ = [
    "Environment",
    "Episode",
    "EpisodeStep",
    "StepResult",
    "ToyShellEnvironment",
    "arun_episode",
    "run_episode",
]


@dataclass(frozen=True)
class StepResult:
    """What the environment answers to an action."""

    observation: str
    reward: float = 0.0
    done: bool = False


@runtime_checkable
class Environment(Protocol):
    """Anything with `reset() -> first observation` and `step(action) -> StepResult` (either may be async)."""

    def reset(self) -> str | Awaitable[str]:
        """Start an episode; return the first observation."""

    def step(self, action: str) -> StepResult | Awaitable[StepResult]:
        """Apply `action`; return what happened."""


@dataclass(frozen=True)
class EpisodeStep:
    """One action of an episode and the environment's answer."""

    action: str
    observation: str
    reward: float
    done: bool


@dataclass
class Episode:
    """The record of one episode: the first observation, every step, and why it stopped."""

    first_observation: str
    steps: list[EpisodeStep] = field(default_factory=list)
    stopped_by: str = "done"

    @property
    def done(self) -> bool:
        """Whether the environment ended the episode."""
        return bool(self.steps) and self.steps[-1].done

    @property
    def actions(self) -> list[str]:
        """The actions, in order."""
        return [step.action for step in self.steps]

    @property
    def total_reward(self) -> float:
        """The sum of the rewards."""
        return sum(step.reward for step in self.steps)


async def arun_episode(
    orchestrator: Orchestrator, environment: Environment, *, max_actions: int | None = None
) -> Episode:
    """Reset `environment`, then alternate `orchestrator.aforward(observation, reward)` and `environment.step`
    until the environment says done, `max_actions` actions were taken, or the state's `max_steps` is reached."""
    first = environment.reset()
    observation = await first if inspect.isawaitable(first) else first
    episode = Episode(first_observation=observation)
    reward: float | None = None
    while True:
        if max_actions is not None and len(episode.steps) >= max_actions:
            episode.stopped_by = "max_actions"
            return episode
        try:
            action = await orchestrator.aforward(observation, reward)
        except MaxStepsReachedError:
            episode.stopped_by = "max_steps"
            return episode
        outcome = environment.step(action)
        result = await outcome if inspect.isawaitable(outcome) else outcome
        episode.steps.append(EpisodeStep(action, result.observation, result.reward, result.done))
        if result.done:
            return episode
        observation, reward = result.observation, result.reward


def run_episode(orchestrator: Orchestrator, environment: Environment, *, max_actions: int | None = None) -> Episode:
    """Blocking `arun_episode` for scripts and notebook cells."""
    return run_blocking(
        lambda: arun_episode(orchestrator, environment, max_actions=max_actions),
        "run_episode(...)",
        "await arun_episode(...)",
    )


class ToyShellEnvironment:
    """A make-believe shell over `files` (name -> content) in one directory; `submit <answer>` ends the episode
    when the answer is right (reward 1), and costs a reward of -1 when it is wrong.

    Understood: `ls` (`-a`, `-l`, `-la` show dot files), `cat FILE...`, `pwd`, `echo TEXT`, `grep PATTERN FILE`,
    `submit ANSWER`. Anything else answers "command not found". Nothing is ever executed.
    """

    def __init__(self, files: Mapping[str, str], answer: str | None = None, *, directory: str = "/ctf") -> None:
        self.files = dict(files)
        self.answer = answer
        self.directory = directory
        self.history: list[str] = []

    def reset(self) -> str:
        """Forget the actions taken; the first observation is empty, as a fresh shell prints nothing."""
        self.history.clear()
        return ""

    def step(self, action: str) -> StepResult:
        """Pretend to run `action`."""
        self.history.append(action)
        try:
            words = shlex.split(action)
        except ValueError as error:
            return StepResult(f"bash: syntax error: {error}")
        if not words:
            return StepResult("")
        command, args = words[0], words[1:]
        if command == "submit":
            given = " ".join(args)
            if self.answer is not None and given == self.answer:
                return StepResult("Correct! The task is solved.", reward=1.0, done=True)
            return StepResult("Wrong answer. Keep looking.", reward=-1.0)
        if command == "ls":
            show_all = any(arg.startswith("-") and "a" in arg for arg in args)
            names = sorted(name for name in self.files if show_all or not name.startswith("."))
            return StepResult("\n".join(([".", ".."] if show_all else []) + names))
        if command == "cat":
            return StepResult("\n".join(self._read(name) for name in args))
        if command == "pwd":
            return StepResult(self.directory)
        if command == "echo":
            return StepResult(" ".join(args))
        if command == "grep" and len(args) == 2:
            pattern, name = args
            if name not in self.files:
                return StepResult(f"grep: {name}: No such file or directory")
            return StepResult("\n".join(line for line in self.files[name].splitlines() if pattern in line))
        return StepResult(f"bash: {command}: command not found")

    def _read(self, name: str) -> str:
        if name in self.files:
            return self.files[name]
        return f"cat: {name}: No such file or directory"
