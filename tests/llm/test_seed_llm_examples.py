"""The seeds' LLM examples (with `miniagents` -> `miniagents_nb`), run against the local OpenAI-protocol server.

- README v2 "Work with LLMs": `openai_agent.fork(...)`, `Message(text=..., role="user")`, Yoda-speak;
- README v1 "Work with LLMs": `.inquire("Hello, how are you?", system=..., max_tokens=50, temperature=0.7)`;
- the earliest README: `create_openai_agent(model="gpt-4")` as the assistant of `adialog_loop`;
- the web research tutorial: `aprepare_dicts_for_openai` + the SDK's structured output, `OpenAIAgent.trigger(...,
  stream=False, errors_as_messages=False, response_metadata={"not_for_user": True, "role": "user"})`, a final answer
  fed through `initiate_call()` / `send_message()`, `main()` skipping `not_for_user` messages, and
  `MiniAgents(llm_logger_agent=True, errors_as_messages=True)`.

Each keeps the seed's code and its `MiniAgents().run(main())` call (plain sync tests: `run()` makes its own loop); the
server's reply is scripted, the printed output and the exact requests are asserted. (The Anthropic `dialog_loop`
example belongs to the pre-packaged agents' tests.)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from .servers import LLMTestServer, OpenAIJSON, OpenAIStream


def test_readme_v2_yoda_speak(llm_server: LLMTestServer, capsys: pytest.CaptureFixture[str]) -> None:
    llm_server.enqueue(OpenAIStream(["Fine", ", I", " am", ".", " Thank", " you,", " young", " one."]))

    from miniagents_nb import Message, MiniAgents
    from miniagents_nb.ext.llm.openai import openai_agent

    # NOTE: "Forking" an agent is a convenient way of creating a new agent instance
    # with the specified configuration. Alternatively, you could pass the `model`
    # parameter to `openai_agent.inquire()` directly every time you talk to the
    # agent.
    gpt_4o_agent = openai_agent.fork(model="gpt-4o-2024-05-13")

    async def main():
        reply_sequence = gpt_4o_agent.inquire(
            Message(text="How are you today?", role="user"),
            max_tokens=1000,
            temperature=0.0,
            system="Respond only in Yoda-speak.",
        )
        async for msg_promise in reply_sequence:
            async for token in msg_promise:
                print(token, end="", flush=True)
            print("\n")

    MiniAgents().run(main())

    assert capsys.readouterr().out == "Fine, I am. Thank you, young one.\n\n"
    assert llm_server.bodies == [
        {
            "model": "gpt-4o-2024-05-13",
            "messages": [
                {"role": "system", "content": "Respond only in Yoda-speak."},
                {"role": "user", "content": "How are you today?"},
            ],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": 1000,
            "temperature": 0.0,
        }
    ]


def test_readme_v1_hello_how_are_you(llm_server: LLMTestServer, capsys: pytest.CaptureFixture[str]) -> None:
    llm_server.enqueue(OpenAIStream(["I'm", " doing", " well,", " thanks!"]))

    from miniagents_nb import MiniAgents
    from miniagents_nb.ext.llm.openai import openai_agent

    gpt_4o_agent = openai_agent.fork(model="gpt-4o-2024-05-13")

    async def main():
        reply_sequence = gpt_4o_agent.inquire(
            "Hello, how are you?",
            system="You are a helpful assistant.",
            max_tokens=50,
            temperature=0.7,
        )
        async for msg_promise in reply_sequence:
            async for token in msg_promise:
                print(token, end="", flush=True)
            print("\n")

    MiniAgents().run(main())

    assert capsys.readouterr().out == "I'm doing well, thanks!\n\n"
    body = llm_server.last_body
    assert body["messages"] == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hello, how are you?"},
    ]
    assert (body["model"], body["max_tokens"], body["temperature"], body["stream"]) == (
        "gpt-4o-2024-05-13",
        50,
        0.7,
        True,
    )


def test_readme_early_create_openai_agent_in_adialog_loop(
    llm_server: LLMTestServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The earliest README's `create_openai_agent(model="gpt-4")` as the assistant of `adialog_loop` (a scripted
    user agent stands in for the console user agent, which another test file covers)."""
    llm_server.enqueue(OpenAIStream(["Hi", " there!"]))
    lines = iter(["hi"])

    def scripted_input(prompt: str = "") -> str:
        sys.stdout.write(prompt)
        try:
            line = next(lines)
        except StopIteration:
            raise KeyboardInterrupt from None
        sys.stdout.write(line + "\n")
        return line

    monkeypatch.setattr("builtins.input", scripted_input)

    from miniagents_nb import InteractionContext, miniagent
    from miniagents_nb.ext.llm.openai import create_openai_agent
    from miniagents_nb.miniagents import MiniAgents
    from miniagents_nb.utils import adialog_loop

    @miniagent
    async def user_agent(ctx: InteractionContext) -> None:
        async for msg_promise in ctx.message_promises:
            print("ASSISTANT: ", end="", flush=True)
            async for token in msg_promise:
                print(token, end="", flush=True)
            print()
        ctx.reply(input("USER: "))  # noqa: ASYNC250 - the seed's code

    async def amain() -> None:
        try:
            print()
            await adialog_loop(
                user_agent=user_agent,
                assistant_agent=create_openai_agent(model="gpt-4"),
            )
        except KeyboardInterrupt:
            print()

    MiniAgents().run(amain())

    assert capsys.readouterr().out == "\nUSER: hi\nASSISTANT: Hi there!\nUSER: \n"
    assert llm_server.bodies == [
        {
            "model": "gpt-4",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ]


SEARCHES_JSON = '{"web_searches": [{"rationale": "what it is", "web_search_query": "MiniAgents framework"}]}'


def test_tutorial_web_research_flow(
    llm_server: LLMTestServer, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tutorial's agents, with the web search and scraping utilities replaced by a fixed page."""
    monkeypatch.chdir(tmp_path)
    llm_server.enqueue(
        OpenAIJSON(SEARCHES_JSON),  # research_agent: structured output through the SDK
        OpenAIJSON("MiniAgents is an asyncio framework for LLM agents."),  # page_scraper_agent: stream=False
        OpenAIStream(["MiniAgents", " is", " a", " framework."]),  # final_answer_agent: streamed
    )

    from typing import Union

    from openai import AsyncOpenAI
    from pydantic import BaseModel

    from miniagents_nb import AgentCall, InteractionContext, Message, MessageSequencePromise, MiniAgents, miniagent
    from miniagents_nb.ext.llms import OpenAIAgent, aprepare_dicts_for_openai

    MODEL = "gpt-4o-mini"  # or "gpt-4o" for better quality
    SMARTER_MODEL = "o4-mini"  # or "o3" for better quality

    openai_client = AsyncOpenAI()

    class WebSearch(BaseModel):
        rationale: str
        web_search_query: str

    class WebSearchesToBeDone(BaseModel):
        web_searches: tuple[WebSearch, ...]

    async def scrape_web_page(url: str) -> str:
        return f"<page at {url}>"

    @miniagent
    async def research_agent(ctx: InteractionContext) -> None:
        ctx.reply("RESEARCHING...")
        message_dicts = await aprepare_dicts_for_openai(
            ctx.message_promises,
            system="Your job is to breakdown the user's question into a list of web searches.",
        )
        response = await openai_client.chat.completions.parse(
            model=SMARTER_MODEL,
            messages=message_dicts,  # type: ignore[arg-type]  # the seed's code as written (plain dicts)
            response_format=WebSearchesToBeDone,
        )
        parsed: WebSearchesToBeDone = response.choices[0].message.parsed  # type: ignore[assignment]  # as written
        ctx.reply(f"RUNNING {len(parsed.web_searches)} WEB SEARCHES")

        final_answer_call: AgentCall = final_answer_agent.initiate_call(
            user_question=await ctx.message_promises,
        )
        for web_search in parsed.web_searches:
            search_and_scraping_results = page_scraper_agent.trigger(
                ctx.message_promises,
                url="https://example.com/" + web_search.web_search_query.replace(" ", "-"),
                rationale=web_search.rationale,
            )
            final_answer_call.send_message(search_and_scraping_results)
            ctx.reply(search_and_scraping_results)
        ctx.reply(final_answer_call.reply_sequence())

    @miniagent
    async def page_scraper_agent(ctx: InteractionContext, url: str, rationale: str) -> None:
        page_content = await scrape_web_page(url)
        page_summary = await OpenAIAgent.trigger(
            [
                ctx.message_promises,
                f"URL: {url}\nRATIONALE: {rationale}\n\nWEB PAGE CONTENT:\n\n{page_content}",
            ],
            system="Your job is to extract from WEB PAGE CONTENT facts that are relevant to the users question.",
            model=MODEL,
            stream=False,
            errors_as_messages=False,
            response_metadata={
                "not_for_user": True,
                "role": "user",
            },
        )
        ctx.reply(f"SCRAPING SUCCESSFUL: {url}")
        ctx.reply(page_summary)

    @miniagent
    async def final_answer_agent(ctx: InteractionContext, user_question: Union[Message, tuple[Message, ...]]) -> None:  # noqa: UP007 - the seed's spelling
        await ctx.message_promises
        ctx.reply("==========\nANSWER:\n==========")
        ctx.reply(
            OpenAIAgent.trigger(
                [
                    "USER QUESTION:",
                    user_question,
                    "INFORMATION FOUND ON THE INTERNET:",
                    ctx.message_promises.as_single_text_promise(),
                ],
                system="Please answer the USER QUESTION based on the INFORMATION FOUND ON THE INTERNET.",
                model=MODEL,
            )
        )

    async def main():
        question = "What is MiniAgents?"
        response_promises: MessageSequencePromise = research_agent.trigger(question)
        print()
        async for message_promise in response_promises:
            if message_promise.known_beforehand.get("not_for_user"):
                continue
            async for token in message_promise:
                print(token, end="", flush=True)
            print("\n")
        await openai_client.close()

    MiniAgents(
        llm_logger_agent=True,  # Log LLM requests and responses as markdown
        errors_as_messages=True,  # Handle errors gracefully
    ).run(main())

    assert capsys.readouterr().out == (
        "\n"
        "RESEARCHING...\n\n"
        "RUNNING 1 WEB SEARCHES\n\n"
        "SCRAPING SUCCESSFUL: https://example.com/MiniAgents-framework\n\n"
        "==========\nANSWER:\n==========\n\n"
        "MiniAgents is a framework.\n\n"
    )
    research, scraper, final = llm_server.bodies
    assert research["model"] == SMARTER_MODEL
    assert research["messages"][0]["role"] == "system"  # aprepare_dicts_for_openai: system first (fix 11)
    assert research["messages"][1] == {"role": "user", "content": "What is MiniAgents?"}
    assert research["response_format"]["json_schema"]["name"] == "WebSearchesToBeDone"
    assert (scraper["model"], "stream" in scraper) == (MODEL, False)
    assert [message["role"] for message in scraper["messages"]] == ["system", "user", "user"]
    assert scraper["messages"][2]["content"].startswith("URL: https://example.com/MiniAgents-framework\nRATIONALE:")
    assert final["stream"] is True
    assert [message["content"] for message in final["messages"][1:4]] == [
        "USER QUESTION:",
        "What is MiniAgents?",
        "INFORMATION FOUND ON THE INTERNET:",
    ]
    joined = final["messages"][4]
    assert joined == {
        "role": "user",  # the page summary's role (response_metadata) carried by the joined message
        "content": "SCRAPING SUCCESSFUL: https://example.com/MiniAgents-framework\n\n"
        "MiniAgents is an asyncio framework for LLM agents.",
    }
    logs: list[Any] = sorted((tmp_path / "llm_logs").glob("*.md"))
    assert len(logs) == 2  # the two OpenAIAgent calls (the direct SDK call is not an agent)
