"""The seeds' dialog examples with scripted input, and the dialog loop's other behaviours.

The assistants are scripted fakes defined here (the real LLM agents are tested elsewhere): they stream their reply
word by word, with the `agent_alias` and `model` an LLM agent would put on it.
"""

from __future__ import annotations

import asyncio
import io
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from miniagents_nb import InteractionContext, Message, MiniAgent, MiniAgents, miniagent
from miniagents_nb.errors import InvalidArgumentsError
from miniagents_nb.ext import (
    HistoryFileError,
    InMemoryChatHistory,
    OutputFileError,
    console_user_agent,
    create_console_user_agent,
    dialog_loop,
    file_output_agent,
    in_memory_history_agent,
    markdown_history_agent,
    prompt_agent,
    user_agent,
)
from miniagents_nb.ext.agents.console_agents import END_OF_INPUT_NOTICE, GREETING, INSTRUCTIONS
from miniagents_nb.ext.agents.markdown_chat import parse_sections
from miniagents_nb.ext.llms.messages import AssistantMessage, SystemMessage, UserMessage

from .helpers import WatchedBuffer

GREETING_BLOCK = f"{GREETING}\n\n{INSTRUCTIONS}"

SEED_REPLY_1 = (
    'Hello! The greeting "hi" is a casual and commonly used informal salutation. It\'s grammatically correct and '
    "doesn't require any changes. If you'd like to provide a more formal or elaborate greeting, you could consider "
    'alternatives such as "Hello," "Good morning/afternoon/evening," or "Greetings."'
)
SEED_REPLY_2 = (
    'You\'re welcome! The phrase "Got it, thanks!" is a concise and informal way to express understanding and '
    "appreciation. It's perfectly fine as is for casual communication. If you wanted a slightly more formal version, "
    'you could say:\n\n"I understand. Thank you!"'
)
# README v1, "Pre-packaged agents": the interaction, verbatim (the user pressed Ctrl+C at the last prompt).
SEED_TRANSCRIPT = f"""\
YOU ARE NOW IN A CHAT WITH AN AI ASSISTANT

Press Enter to send your message.
Press Ctrl+Space to insert a newline.
Press Ctrl+C (or type "exit") to quit the conversation.

USER: hi

ANTHROPIC_AGENT: {SEED_REPLY_1}

USER: got it, thanks!

ANTHROPIC_AGENT: {SEED_REPLY_2}

USER:
"""
SEED_SYSTEM_PROMPT = (
    "Your job is to improve the styling and grammar of the sentences that the user throws at you. Leave the "
    "sentences unchanged if they seem fine."
)


def words(text: str) -> Callable[[dict[str, Any]], AsyncIterator[str]]:
    async def stream(_aux: dict[str, Any]) -> AsyncIterator[str]:
        for word in re.findall(r"\s*\S+", text):
            yield word

    return stream


def scripted_assistant(replies: Callable[[tuple[Message, ...]], str], received: list[tuple[Message, ...]]) -> MiniAgent:
    """A stand-in for an LLM agent: it records its input and streams `replies(input)` word by word."""

    @miniagent
    async def anthropic_agent(ctx: InteractionContext, model: str = "fake-model", max_tokens: int = 0) -> None:
        messages = await ctx.message_promises
        received.append(messages)
        ctx.reply(
            AssistantMessage.promise(
                message_token_streamer=words(replies(messages)), agent_alias=ctx.this_agent.alias, model=model
            )
        )

    return anthropic_agent


def user_turns(messages: tuple[Message, ...]) -> int:
    return sum(1 for message in messages if message.get("role") == "user")


def test_readme_v1_dialog_loop_with_markdown_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO("hi\ngot it, thanks!\n"))
    received: list[tuple[Message, ...]] = []
    anthropic_agent = scripted_assistant(
        lambda messages: [SEED_REPLY_1, SEED_REPLY_2][user_turns(messages) - 1], received
    )

    # --- the seed's code (miniagents -> miniagents_nb; `anthropic_agent` is the scripted fake) ---
    from miniagents_nb import MiniAgents
    from miniagents_nb.ext import dialog_loop, markdown_history_agent
    from miniagents_nb.ext.llm import SystemMessage

    async def main() -> None:
        await dialog_loop.fork(
            assistant_agent=anthropic_agent.fork(
                model="claude-3-5-sonnet-20240620",
                max_tokens=1000,
            ),
            history_agent=markdown_history_agent,
        ).inquire(
            SystemMessage(
                "Your job is to improve the styling and grammar of the sentences that the user throws at you. Leave "
                "the sentences unchanged if they seem fine."
            )
        )

    MiniAgents().run(main())
    # --- end of the seed's code ---

    # The transcript up to the last prompt is the seed's; then stdin ends (instead of Ctrl+C) and says so.
    assert capsys.readouterr().out == SEED_TRANSCRIPT.removesuffix("USER:\n") + f"USER: \n{END_OF_INPUT_NOTICE}\n"
    model = "claude-3-5-sonnet-20240620"
    conversation = (
        UserMessage(content="hi"),
        AssistantMessage(content=SEED_REPLY_1, model=model, agent_alias="ANTHROPIC_AGENT"),
        UserMessage(content="got it, thanks!"),
        AssistantMessage(content=SEED_REPLY_2, model=model, agent_alias="ANTHROPIC_AGENT"),
    )
    system = SystemMessage(content=SEED_SYSTEM_PROMPT)
    # Every turn the assistant gets the whole history read back from CHAT.md, then the prompt (at the end).
    assert [[(m.role, str(m)) for m in messages] for messages in received] == [
        [(m.role, str(m)) for m in (*conversation[:1], system)],
        [(m.role, str(m)) for m in (*conversation[:3], system)],
    ]
    assert received[1][1].model == model
    assert parse_sections((tmp_path / "CHAT.md").read_text(encoding="utf-8")) == [
        ("user", None, "hi"),
        ("assistant", model, SEED_REPLY_1),
        ("user", None, "got it, thanks!"),
        ("assistant", model, SEED_REPLY_2),
    ]


def test_early_readme_adialog_loop_with_create_console_user_agent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\nhow are you?\n"))
    received: list[tuple[Message, ...]] = []

    def create_openai_agent(model: str) -> MiniAgent:
        """The scripted stand-in for `miniagents_nb.ext.llm.openai.create_openai_agent`."""
        fake = scripted_assistant(lambda messages: f"You said: {messages[-1]}", received)
        return fake.fork(alias="OPENAI_AGENT", model=model)

    histories: list[InMemoryChatHistory] = []

    # --- the seed's code (miniagents -> miniagents_nb; the README uses InMemoryChatHistory without importing it) ---
    from miniagents_nb.ext.console_user_agent import InMemoryChatHistory, create_console_user_agent
    from miniagents_nb.miniagents import MiniAgents
    from miniagents_nb.utils import adialog_loop

    async def amain() -> None:
        chat_history = InMemoryChatHistory()
        histories.append(chat_history)
        try:
            print()
            await adialog_loop(
                user_agent=create_console_user_agent(chat_history=chat_history),
                assistant_agent=create_openai_agent(model="gpt-4"),
            )
        except KeyboardInterrupt:
            print()

    MiniAgents().run(amain())
    # --- end of the seed's code ---

    assert capsys.readouterr().out == (
        f"\n{GREETING_BLOCK}"
        "\nUSER: hello\n"
        "\nOPENAI_AGENT: You said: hello\n"
        "\nUSER: how are you?\n"
        "\nOPENAI_AGENT: You said: how are you?\n"
        f"\nUSER: \n{END_OF_INPUT_NOTICE}\n"
        "\n"
    )
    [chat_history] = histories
    assert [(m.role, str(m)) for m in chat_history.messages] == [
        ("user", "hello"),
        ("assistant", "You said: hello"),
        ("user", "how are you?"),
        ("assistant", "You said: how are you?"),  # recorded before stdin ended
    ]
    assert [len(messages) for messages in received] == [1, 3]  # the whole history each turn
    assert chat_history.messages[1].model == "gpt-4"


async def test_dialog_loop_streams_the_assistant_reply_token_by_token_to_the_console(
    watched_buffer: WatchedBuffer,
) -> None:
    gate = asyncio.Event()

    @miniagent
    async def slow_assistant(ctx: InteractionContext) -> None:
        async def tokens(_aux: dict[str, Any]) -> AsyncIterator[str]:
            yield "first "
            await gate.wait()
            yield "second"

        ctx.reply(AssistantMessage.promise(message_token_streamer=tokens, agent_alias="BOT"))

    output = watched_buffer
    user = create_console_user_agent(input_stream=io.StringIO("hi\nexit\n"), output_stream=output, greeting="")
    async with MiniAgents():
        dialog = dialog_loop.fork(user_agent=user, assistant_agent=slow_assistant).trigger()
        await asyncio.wait_for(output.wait_for("BOT: first "), timeout=10)
        assert "second" not in output.getvalue()  # on screen before the second token exists
        gate.set()
        assert await asyncio.wait_for(dialog, timeout=10) == ()
    assert output.getvalue() == "\nUSER: hi\n\nBOT: first second\n\nUSER: exit\n"


async def test_dialog_loop_can_put_the_prompt_first() -> None:
    received: list[tuple[Message, ...]] = []
    assistant = scripted_assistant(lambda messages: "ok", received)
    user = create_console_user_agent(input_stream=io.StringIO("a\n"), output_stream=io.StringIO())
    async with MiniAgents():
        await dialog_loop.trigger(
            SystemMessage(content="rules"), user_agent=user, assistant_agent=assistant, prompt_at_the_end=False
        )
    assert [(m.role, str(m)) for m in received[0]] == [("system", "rules"), ("user", "a")]


async def test_dialog_loop_puts_the_history_after_a_custom_user_agent() -> None:
    """A user agent that is not a fork of `user_agent` gets the history agent right after it."""
    lines = iter(["one", "two"])

    @miniagent
    async def scripted_user(ctx: InteractionContext) -> None:
        ctx.reply(ctx.message_promises)  # hands the assistant's turn on, as the pre-packaged user agents do
        await ctx.message_promises
        line = next(lines, None)
        if line is None:
            raise KeyboardInterrupt
        ctx.reply(UserMessage(content=line))

    received: list[tuple[Message, ...]] = []
    assistant = scripted_assistant(lambda messages: f"re: {messages[-1]}", received)
    history: list[Message] = []
    history_agent = in_memory_history_agent.fork(non_freezable_kwargs={"message_list": history})
    async with MiniAgents():
        await dialog_loop.trigger(user_agent=scripted_user, assistant_agent=assistant, history_agent=history_agent)
    assert [str(m) for m in history] == ["one", "re: one", "two", "re: two"]
    assert [[str(m) for m in messages] for messages in received] == [["one"], ["one", "re: one", "two"]]


async def test_dialog_loop_forks_a_pre_packaged_user_agent_to_use_the_history_agent() -> None:
    history: list[Message] = []
    history_agent = in_memory_history_agent.fork(non_freezable_kwargs={"message_list": history})
    received: list[tuple[Message, ...]] = []
    user = create_console_user_agent(input_stream=io.StringIO("q1\nq2\n"), output_stream=io.StringIO())
    async with MiniAgents():
        await dialog_loop.trigger(
            user_agent=user, assistant_agent=scripted_assistant(lambda m: "a", received), history_agent=history_agent
        )
        default_history = await in_memory_history_agent.trigger(return_full_history=True)
    assert [str(m) for m in history] == ["q1", "a", "q2", "a"]
    assert default_history == ()  # the context's default history was not used


async def test_dialog_loop_needs_someone_to_talk() -> None:
    async with MiniAgents():
        with pytest.raises(InvalidArgumentsError, match="user_agent"):
            await dialog_loop.trigger(user_agent=None)


async def test_a_failing_assistant_is_shown_as_a_message_under_errors_as_messages() -> None:
    turns = 0

    @miniagent
    async def flaky_assistant(ctx: InteractionContext) -> None:
        nonlocal turns
        turns += 1
        if turns == 1:
            raise ValueError("rate limited, try again")
        ctx.reply(AssistantMessage(content="better now"))

    output = io.StringIO()
    user = create_console_user_agent(input_stream=io.StringIO("a\nb\n"), output_stream=output, greeting="")
    async with MiniAgents(errors_as_messages=True):
        await dialog_loop.trigger(user_agent=user, assistant_agent=flaky_assistant)
    assert output.getvalue() == (
        "\nUSER: a\n\nASSISTANT: ValueError: rate limited, try again\n"
        f"\nUSER: b\n\nASSISTANT: better now\n\nUSER: \n{END_OF_INPUT_NOTICE}\n"
    )


async def test_an_unwritable_history_file_ends_the_dialog_with_an_error_naming_it(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be", encoding="utf-8")
    chat_file = blocked / "CHAT.md"
    received: list[tuple[Message, ...]] = []
    output = io.StringIO()
    user = create_console_user_agent(input_stream=io.StringIO("hi\n"), output_stream=output, greeting="")
    async with MiniAgents():
        with pytest.raises(HistoryFileError) as caught:
            await dialog_loop.trigger(
                user_agent=user,
                assistant_agent=scripted_assistant(lambda m: "never", received),
                history_agent=markdown_history_agent.fork(history_md_file=str(chat_file)),
            )
    assert str(chat_file) in str(caught.value)
    assert caught.value.unsaved_messages == (UserMessage(content="hi"),)
    assert received == []  # the assistant never got a conversation that could not be recorded
    assert output.getvalue() == "\nUSER: hi\n"


async def test_console_user_agent_replies_the_whole_conversation() -> None:
    output = io.StringIO()
    user = create_console_user_agent(
        input_stream=io.StringIO("first\nsecond\n"), output_stream=output, colors=False, greeting=""
    )
    async with MiniAgents():
        one = await user.trigger()
        two = await user.trigger(AssistantMessage(content="reply", agent_alias="BOT"))
    assert [str(m) for m in one] == ["first"]
    assert [str(m) for m in two] == ["first", "reply", "second"]
    assert output.getvalue() == "\nUSER: first\n\nBOT: reply\n\nUSER: second\n"
    assert user.alias == console_user_agent.alias == "CONSOLE_USER_AGENT"


async def test_user_agent_without_input_or_output_is_a_history() -> None:
    async with MiniAgents():
        await user_agent.trigger("x")
        assert [str(m) for m in await user_agent.trigger("y")] == ["x", "y"]


async def test_prompt_agent_wraps_the_input_between_prefix_and_suffix() -> None:
    received: list[tuple[Message, ...]] = []
    wrapped = prompt_agent.fork(
        target_agent=scripted_assistant(lambda m: "done", received),
        prompt_prefix=[SystemMessage(content="before")],
        prompt_suffix="after",
        model="m1",
    )
    async with MiniAgents():
        replies = await wrapped.trigger(["middle 1", "middle 2"])
    assert [str(m) for m in received[0]] == ["before", "middle 1", "middle 2", "after"]
    assert [(str(m), m.model) for m in replies] == [("done", "m1")]


async def test_file_output_agent_writes_the_joined_text_and_passes_the_input_on(tmp_path: Path) -> None:
    target = tmp_path / "out" / "answer.md"
    async with MiniAgents():
        replies = await file_output_agent.trigger(["one", "two"], file=str(target), delimiter="\n---\n")
    assert target.read_text(encoding="utf-8") == "one\n---\ntwo"
    assert [str(m) for m in replies] == ["one", "two"]


async def test_file_output_agent_names_an_unwritable_file(tmp_path: Path) -> None:
    async with MiniAgents():
        replies = file_output_agent.trigger("text", file=str(tmp_path))  # a folder, not a file
        with pytest.raises(OutputFileError, match="writable `file=`") as caught:
            await replies
    assert str(tmp_path) in str(caught.value)
    assert isinstance(caught.value, OSError)
