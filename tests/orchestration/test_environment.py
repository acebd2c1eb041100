"""The toy environment never executes anything; the episode loop stops for the right reasons."""

from __future__ import annotations

from miniagents_nb.orchestration import Environment, StepResult, ToyShellEnvironment

FILES = {"notes.txt": "the key is in the hidden file\nkey: nope", ".hidden": "key{found}"}


def test_toy_shell_is_an_environment() -> None:
    assert isinstance(ToyShellEnvironment(FILES), Environment)


def test_toy_shell_lists_and_reads_files() -> None:
    env = ToyShellEnvironment(FILES, answer="key{found}")
    assert env.reset() == ""
    assert env.step("ls").observation == "notes.txt"
    assert env.step("ls -la").observation == ".\n..\n.hidden\nnotes.txt"
    assert env.step("cat .hidden") == StepResult("key{found}")
    assert env.step("cat missing").observation == "cat: missing: No such file or directory"
    assert env.step("grep key notes.txt").observation == "the key is in the hidden file\nkey: nope"
    assert env.step("pwd").observation == "/ctf"
    assert env.step("echo hi there").observation == "hi there"
    assert env.history[0] == "ls"


def test_toy_shell_never_runs_other_commands() -> None:
    env = ToyShellEnvironment(FILES)
    assert env.step("rm -rf /").observation == "bash: rm: command not found"
    assert env.step("python3 -c 'print(1)'").observation == "bash: python3: command not found"
    assert env.step("echo 'unterminated").observation.startswith("bash: syntax error")
    assert env.step("").observation == ""


def test_toy_shell_submit() -> None:
    env = ToyShellEnvironment(FILES, answer="key{found}")
    assert env.step("submit key{nope}") == StepResult("Wrong answer. Keep looking.", reward=-1.0)
    assert env.step("submit key{found}") == StepResult("Correct! The task is solved.", reward=1.0, done=True)
