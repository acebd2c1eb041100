"""Credentials passed other than as `api_key` (headers, query parameters, URLs) reach the provider, and nothing the
package writes or persists holds them: LLM logs, persisted messages and call nodes, the run store, what observers
(the notebook views and their saved forms) read, reprs, error messages. (Issue 17.)

Each test drives the official SDKs against the local protocol servers and inspects the requests actually sent.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from miniagents_nb import Message, MiniAgents
from miniagents_nb.events import MiniAgentsEvent
from miniagents_nb.ext.llms import AnthropicAgent, OpenAIAgent
from miniagents_nb.ext.llms.credentials import REDACTED, credential_strings, redact_argument, redact_url
from miniagents_nb.ext.llms.errors import LLMAuthenticationError, LLMConnectionError
from miniagents_nb.runs import RunStore

from .conftest import CLOSED_PORT_URL
from .servers import HTTPError, LLMTestServer

SECRETS = {
    "bearer": "sk-bearer-0123456789",
    "azure": "azure-key-0123456789",
    "default": "default-key-0123456789",
    "query": "query-key-0123456789",
    "trigger": "trigger-key-0123456789",
    "anthropic": "ant-key-0123456789",
    "user_info": "pass-0123456789",
}


class Written:
    """Everything the package wrote or kept while the agents ran: logs, persisted messages, observed arguments."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.persisted: list[str] = []
        self.observed: list[str] = []

    async def persist(self, messages: list[Message]) -> None:
        self.persisted.extend(message.serialized for message in messages)
        self.persisted.extend(str(message) for message in messages)

    def observe(self, event: MiniAgentsEvent) -> None:
        agent = getattr(event, "agent", None)
        if agent is not None:  # what the views, their saved forms and the recorder read of a call
            self.observed.append(repr(dict(agent.frozen_kwargs)))
            self.observed.append(repr(dict(getattr(event, "kwargs", {}))))
            self.observed.append(repr(agent))

    def everything(self) -> str:
        files = [path.read_bytes().decode("utf-8", "replace") for path in self.folder.rglob("*") if path.is_file()]
        return "\n".join([*files, *self.persisted, *self.observed])


@pytest.fixture
def written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Written:
    monkeypatch.chdir(tmp_path)  # llm_logs/ goes here
    return Written(tmp_path)


async def _run(written: Written, main: Any) -> Any:
    with RunStore(written.folder / "runs.sqlite") as store:
        mini_agents = MiniAgents(llm_logger_agent=True, on_persist_messages=written.persist, record_to=store)
        mini_agents.subscribe(written.observe)
        async with mini_agents:
            return await main()


def _assert_no_secret(text: str, *names: str) -> None:
    for name in names:
        assert SECRETS[name] not in text, f"the {name} credential was written"


async def test_openai_credentials_in_headers_queries_and_urls_are_sent_but_never_written(
    llm_server: LLMTestServer, written: Written
) -> None:
    async def main() -> Any:
        agent = OpenAIAgent.fork(
            model="gpt-4.1-mini",
            base_url=llm_server.openai_base_url,
            extra_headers={"Authorization": f"Bearer {SECRETS['bearer']}", "X-Trace": "visible"},
            default_headers={"api-key": SECRETS["azure"]},  # Azure's header
            default_query={"api-version": "2024-10-21", "sig": SECRETS["query"]},
            max_retries=0,
        )
        first = await agent.trigger("hi")
        second = await agent.trigger("again", extra_headers={"X-Api-Key": SECRETS["trigger"]})
        in_url = OpenAIAgent.fork(
            model="gpt-4.1-mini",
            base_url=llm_server.openai_base_url.replace("//", f"//user:{SECRETS['user_info']}@"),
            max_retries=0,
        )
        await in_url.trigger("and with the password in the URL")
        return agent, first, second

    agent, first, second = await _run(written, main)
    assert str(first[0]) == str(second[0]) == "Hello from the test server."

    sent_first, sent_second, sent_third = llm_server.requests
    assert sent_third.headers["authorization"] == "Basic " + base64.b64encode(
        f"user:{SECRETS['user_info']}".encode()
    ).decode("ascii")
    assert sent_first.headers["authorization"] == f"Bearer {SECRETS['bearer']}"
    assert sent_first.headers["x-trace"] == "visible"
    assert sent_first.headers["api-key"] == SECRETS["azure"]
    assert f"sig={SECRETS['query']}" in sent_first.path
    assert "api-version=2024-10-21" in sent_first.path
    assert "default_headers" not in sent_first.json  # client options, not request body fields
    assert sent_second.headers["x-api-key"] == SECRETS["trigger"]  # a call's own headers replace the fork's
    assert sent_second.headers["api-key"] == SECRETS["azure"]

    everything = written.everything() + repr(agent) + str(agent)
    _assert_no_secret(everything, "bearer", "azure", "query", "trigger", "user_info")
    assert REDACTED in everything
    assert "visible" in everything  # only the credentials are hidden
    assert list(written.folder.glob("llm_logs/*.md"))  # the logs were written (and hold no credential)


async def test_anthropic_credentials_in_default_and_extra_headers_are_sent_but_never_written(
    llm_server: LLMTestServer, written: Written
) -> None:
    async def main() -> Any:
        agent = AnthropicAgent.fork(
            model="claude-test",
            default_headers={"x-api-key": SECRETS["anthropic"]},
            extra_headers={"Authorization": f"Bearer {SECRETS['bearer']}"},
            max_retries=0,
        )
        return await agent.trigger("hi")

    replies = await _run(written, main)
    assert str(replies[0]) == "Hello from the test server."
    (sent,) = llm_server.requests
    assert sent.headers["x-api-key"] == SECRETS["anthropic"]
    assert sent.headers["authorization"] == f"Bearer {SECRETS['bearer']}"
    _assert_no_secret(written.everything(), "anthropic", "bearer")


async def test_error_messages_never_show_a_credential(llm_server: LLMTestServer, written: Written) -> None:
    llm_server.enqueue(HTTPError(401, f"Incorrect API key provided: {SECRETS['bearer']}"))

    async def main() -> Any:
        rejected = OpenAIAgent.fork(
            model="m", extra_headers={"Authorization": f"Bearer {SECRETS['bearer']}"}, max_retries=0
        )
        unreachable = OpenAIAgent.fork(
            model="m", base_url=f"{CLOSED_PORT_URL}/v1?api_key={SECRETS['query']}", max_retries=0
        )
        with pytest.raises(LLMAuthenticationError) as rejected_error:
            await rejected.trigger("hi")
        with pytest.raises(LLMConnectionError) as unreachable_error:
            await unreachable.trigger("hi")
        return rejected_error.value, unreachable_error.value

    rejected_error, unreachable_error = await _run(written, main)
    assert f"Incorrect API key provided: {REDACTED}" in str(rejected_error)
    assert f"api_key={REDACTED}" in str(unreachable_error)
    chains = []
    for error in (rejected_error, unreachable_error):
        current: BaseException | None = error
        while current is not None:  # what a logged traceback prints
            chains.append(f"{type(current).__name__}: {current}")
            current = current.__cause__ or current.__context__
    _assert_no_secret("\n".join(chains) + written.everything(), "bearer", "query")


async def test_errors_as_messages_never_show_a_credential(llm_server: LLMTestServer, written: Written) -> None:
    llm_server.enqueue(HTTPError(403, f"key {SECRETS['azure']} is not allowed"))

    async def main() -> Any:
        agent = OpenAIAgent.fork(model="m", default_headers={"api-key": SECRETS["azure"]}, max_retries=0)
        return await agent.trigger("hi", errors_as_messages=True)

    replies = await _run(written, main)
    assert "LLMAuthenticationError" in str(replies[0])
    _assert_no_secret(str(replies[0]) + written.everything(), "azure")


def test_what_looks_like_a_credential() -> None:
    headers = {
        "Authorization": "Bearer abcdefgh",
        "api-key": "k1",
        "X-Goog-Api-Key": "k2",
        "Ocp-Apim-Subscription-Key": "k3",
        "Cookie": "session=abc",
        "X-Custom": "Basic dXNlcjpwYXNz",  # an auth scheme, whatever the name
        "Content-Type": "application/json",
        "X-Request-Id": "r1",
        "anthropic-version": "2023-06-01",
    }
    assert redact_argument("extra_headers", headers) == {
        **{name: REDACTED for name in list(headers)[:6]},
        "Content-Type": "application/json",
        "X-Request-Id": "r1",
        "anthropic-version": "2023-06-01",
    }
    clean = {"X-Trace": "1"}
    assert redact_argument("extra_headers", clean) is clean  # nothing to hide: the same object (stays frozen)
    assert redact_argument("temperature", 0.5) == 0.5
    assert redact_url("https://u:p@h.example/v1?api-version=1&key=K&code=C#f") == (
        f"https://{REDACTED}@h.example/v1?api-version=1&key={REDACTED}&code={REDACTED}#f"
    )
    assert redact_url("https://h.example/v1?max_tokens=5") == "https://h.example/v1?max_tokens=5"
    assert redact_argument("extra_query", {"max_tokens": 5, "access_token": "t"}) == {
        "max_tokens": 5,
        "access_token": REDACTED,
    }
    assert credential_strings({"api_key": "sk-abcdef", "extra_headers": {"Authorization": "Bearer tok-123"}}) == [
        "Bearer tok-123",
        "sk-abcdef",
        "tok-123",
    ]


def test_an_adapter_repr_never_shows_a_key_inside_its_base_url() -> None:
    from miniagents_nb.orchestration.adapters import CustomAPIAdapter

    adapter = CustomAPIAdapter(
        f"https://user:{SECRETS['user_info']}@llm.example/v1?key={SECRETS['query']}",
        "m",
        0.0,
        1.0,
        {},
        api_key=SECRETS["bearer"],
    )
    _assert_no_secret(repr(adapter), "user_info", "query", "bearer")
    assert "llm.example/v1" in repr(adapter)


async def test_the_views_and_their_saved_forms_never_show_a_credential(
    llm_server: LLMTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import comm
    from jupyter.helpers import RecordingComm

    from miniagents_nb.jupyter import SequenceView
    from miniagents_nb.jupyter._tracker import CallTracker

    comms: list[RecordingComm] = []

    def create_comm(*args: Any, **kwargs: Any) -> RecordingComm:
        comms.append(RecordingComm(*args, **kwargs))
        return comms[-1]

    monkeypatch.setattr(comm, "create_comm", create_comm)
    async with MiniAgents() as mini_agents:
        tracker = CallTracker(mini_agents)
        mini_agents.subscribe(tracker)
        agent = OpenAIAgent.fork(
            model="m", extra_headers={"Authorization": f"Bearer {SECRETS['bearer']}"}, max_retries=0
        )
        reply = agent.trigger("hi", default_headers={"api-key": SECRETS["azure"]})
        view = SequenceView(reply, tree=True, tracker=tracker)
        await reply
        await view.wait()
    assert llm_server.requests[0].headers["authorization"] == f"Bearer {SECRETS['bearer']}"
    assert llm_server.requests[0].headers["api-key"] == SECRETS["azure"]
    bundle, _ = view._repr_mimebundle_()  # the saved notebook output: the tree with each call's details
    shown = [bundle["text/html"], bundle["text/plain"], repr(view._model.all_details()), repr(view.state)]
    shown += [repr(data) for recording in comms for _, data in recording.published]  # what the widget was sent
    _assert_no_secret("\n".join(shown), "bearer", "azure")
    assert REDACTED in bundle["text/html"]
