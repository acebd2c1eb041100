"""Fixtures of the LLM tests: no test may reach a real provider or use a real key.

`_offline_llm_environment` (autouse) replaces the API keys with dummies, points both SDKs' base URLs at a closed
local port and removes proxy settings, for every test in this directory. `llm_server` starts the local protocol
server (tests/llm/servers.py) and points the SDKs' base URLs (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`) at it, so
code that names no `base_url`, like the seeds' examples, talks to it too; it also turns the offline switch
(`MINIAGENTS_NB_LLM=fake`, which would make every LLM agent answer with the fake) off.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .servers import LLMTestServer

DUMMY_OPENAI_KEY = "sk-test-dummy-openai-key"
DUMMY_ANTHROPIC_KEY = "sk-ant-test-dummy-anthropic-key"
CLOSED_PORT_URL = "http://127.0.0.1:9"  # discard port: nothing listens, a stray request fails at once


@pytest.fixture(autouse=True)
def _offline_llm_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", DUMMY_OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", DUMMY_ANTHROPIC_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{CLOSED_PORT_URL}/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", CLOSED_PORT_URL)
    monkeypatch.setenv("MINIAGENTS_NB_LLM", "fake")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in (
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "OPENAI_ADMIN_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "MINIAGENTS_NB_LLM_MODEL",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def real_llms(monkeypatch: pytest.MonkeyPatch) -> None:
    """The offline switch off (`MINIAGENTS_NB_LLM` unset): the agents take their SDK paths (and fail there)."""
    monkeypatch.delenv("MINIAGENTS_NB_LLM", raising=False)


@pytest.fixture
def llm_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMTestServer]:
    server = LLMTestServer().start()
    monkeypatch.delenv("MINIAGENTS_NB_LLM")  # the offline switch off: these tests drive the SDKs against the server
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
    try:
        yield server
    finally:
        server.stop()
