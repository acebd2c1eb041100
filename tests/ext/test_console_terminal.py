"""The console chat in a real terminal (a pseudo-terminal driving prompt_toolkit), with piped input and with stdin
closed. Each test runs `console_chat_script.py` in a subprocess."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from miniagents_nb.ext.agents.console_agents import END_OF_INPUT_NOTICE
from miniagents_nb.ext.agents.markdown_chat import parse_sections

pty = pytest.importorskip("pty")  # POSIX only

SCRIPT = Path(__file__).with_name("console_chat_script.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT = 20.0  # seconds for one expected piece of output; far above what it takes, below the test timeout
_CSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[=>]")


def _child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "MINIAGENTS_NB_LLM": "fake", **extra}
    env.pop("NO_COLOR", None)
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return env


class Terminal:
    """A chat script running on a pseudo-terminal: type keys, wait for text on the screen."""

    def __init__(self, cwd: Path, **env: str) -> None:
        self.master, slave = pty.openpty()
        self._control_read, self._control_write = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(self._control_read)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=_child_env(**env),
            pass_fds=(self._control_read,),
            start_new_session=True,
        )
        os.close(slave)
        os.close(self._control_read)
        self.raw = b""

    @property
    def screen(self) -> str:
        """Everything printed so far, without terminal control sequences and carriage returns."""
        text = _CSI.sub("", self.raw.decode("utf-8", "replace")).replace("\r", "")
        return re.sub(r"\x1b[^@-~]*$", "", text)  # a sequence still arriving (so positions never shift)

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def release_next_token(self) -> None:
        os.write(self._control_write, b"x")

    def _read_some(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # the child closed the terminal
            return False
        self.raw += data
        return bool(data)

    def wait_for(self, pattern: str, after: int = 0) -> int:
        """Wait until `pattern` (a regex) is on the screen after position `after`; returns where the match ends."""
        deadline = time.monotonic() + WAIT
        while True:
            match = re.compile(pattern).search(self.screen, after)
            if match:
                return match.end()
            if time.monotonic() > deadline or not self._read_some(0.05):
                pytest.fail(f"{pattern!r} never appeared on the terminal. Screen so far:\n{self.screen}")

    def wait_for_exit(self) -> int:
        deadline = time.monotonic() + WAIT
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read_some(0.05)
        while self._read_some(0):  # the rest of the output
            pass
        return self.process.wait(timeout=1)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        os.close(self.master)
        os.close(self._control_write)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(tmp_path)
    yield term
    term.close()


def test_a_chat_in_a_terminal_streams_the_reply_and_ends_with_exit(terminal: Terminal, tmp_path: Path) -> None:
    position = terminal.wait_for(r"YOU ARE NOW IN A CHAT WITH AN AI ASSISTANT")
    position = terminal.wait_for(r'Press Ctrl\+C \(or type "exit"\) to quit the conversation\.', position)
    position = terminal.wait_for(r"USER:", position)
    terminal.type("hi\r")  # Enter sends
    position = terminal.wait_for(r"FAKE_AGENT: Hel", position)
    assert "lo, hi!" not in terminal.screen  # the first token is on screen before the second one exists
    terminal.release_next_token()
    position = terminal.wait_for(r"FAKE_AGENT: Hello, hi!", position - len("FAKE_AGENT: Hel"))
    position = terminal.wait_for(r"USER:", position)
    terminal.type("line one\x00line two\r")  # Ctrl+Space inserts a newline
    position = terminal.wait_for(r"FAKE_AGENT: Hel", position)
    terminal.release_next_token()
    position = terminal.wait_for(r"lo, line one\nline two!", position)
    position = terminal.wait_for(r"USER:", position)
    terminal.type("exit\r")
    terminal.wait_for(r"DIALOG OVER", position)
    assert terminal.wait_for_exit() == 0
    assert "Traceback" not in terminal.screen
    assert "\x1b[92;1mFAKE_AGENT: " in terminal.raw.decode()  # the upstream style on a colour terminal
    chat = parse_sections((tmp_path / "CHAT.md").read_text(encoding="utf-8"))
    assert [(role, content) for role, _, content in chat] == [
        ("user", "hi"),
        ("assistant", "Hello, hi!"),
        ("user", "line one\nline two"),
        ("assistant", "Hello, line one\nline two!"),
    ]


def test_ctrl_c_at_the_prompt_ends_the_chat(tmp_path: Path) -> None:
    terminal = Terminal(tmp_path, NO_COLOR="1")
    try:
        terminal.wait_for(r"USER:")
        terminal.type("hi\r")
        terminal.release_next_token()
        position = terminal.wait_for(r"FAKE_AGENT: Hello, hi!")
        terminal.wait_for(r"USER:", position)
        terminal.type("\x03")
        terminal.wait_for(r"DIALOG OVER")
        assert terminal.wait_for_exit() == 0
        assert "Traceback" not in terminal.screen
        assert "\x1b[92;1m" not in terminal.raw.decode()  # NO_COLOR turns the agents' colours off
        assert [content for _, _, content in parse_sections((tmp_path / "CHAT.md").read_text())] == [
            "hi",
            "Hello, hi!",  # recorded although the user quit right after it
        ]
    finally:
        terminal.close()


def test_ctrl_d_at_the_prompt_ends_the_chat_with_a_notice(terminal: Terminal) -> None:
    terminal.wait_for(r"USER:")
    terminal.type("\x04")
    position = terminal.wait_for(re.escape(END_OF_INPUT_NOTICE))
    terminal.wait_for(r"DIALOG OVER", position)
    assert terminal.wait_for_exit() == 0


def test_a_closed_stdin_ends_the_chat_cleanly_with_a_notice(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "-"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_child_env(),
        timeout=WAIT * 2,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert completed.stdout.endswith(f"\nUSER: \n{END_OF_INPUT_NOTICE}\nDIALOG OVER\n")
    assert "\x1b[" not in completed.stdout  # not a terminal: no colours


def test_piped_input_is_read_line_by_line_and_echoed(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "-"],
        input="hi\n\nexit\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_child_env(),
        timeout=WAIT * 2,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.endswith("\nUSER: hi\n\nFAKE_AGENT: Hello, hi!\n\nUSER: \nUSER: exit\nDIALOG OVER\n"), (
        completed.stdout
    )
