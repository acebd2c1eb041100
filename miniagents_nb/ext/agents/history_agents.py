"""History agents: they record a conversation as it flows through them and can hand the whole of it back.

A history agent sits in a chain (the user agent's, or a dialog loop's). It records every message the moment that
message is complete, one by one, so an interrupt, a failing assistant or a full disk never takes the messages
recorded before it. With `return_full_history=True` it replies the whole conversation (what an LLM needs as its
prompt); otherwise it passes its input through unchanged, still streaming.

Where the conversation is kept is a `ChatHistory` (the earliest README's name): `InMemoryChatHistory` or
`MarkdownChatHistory`. The default in-memory history belongs to the current `MiniAgents` context, never to the
module (upstream shared one module-level list between every context).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

from miniagents_nb.agents import InteractionContext, MiniAgent, miniagent
from miniagents_nb.errors import InvalidArgumentsError, MiniAgentsError
from miniagents_nb.ext.agents.file_paths import path_problem
from miniagents_nb.ext.agents.markdown_chat import format_section, history_message, parse_sections
from miniagents_nb.ext.agents.per_context import per_context
from miniagents_nb.messages import Message

__all__ = [
    "ChatHistory",
    "HistoryFileError",
    "InMemoryChatHistory",
    "MarkdownChatHistory",
    "MarkdownHistoryAgent",
    "MarkdownHistoryRecorder",
    "chat_history_agent",
    "in_memory_history_agent",
    "markdown_history_agent",
]

HistoryMessageFactory = Callable[..., Message]
"""`factory(content=..., role=..., [model=...]) -> Message`: how a message read back from a file is built."""


class HistoryFileError(MiniAgentsError, OSError):
    """A chat history file could not be written or read; `path` names it, `unsaved_messages` holds what was lost.

    It is also an `OSError`, so code that guards file access with `except OSError` catches it.
    """

    def __init__(self, message: str, path: Path, unsaved_messages: tuple[Message, ...] = ()) -> None:
        super().__init__(message)
        self.path = path
        self.unsaved_messages = unsaved_messages

    def __str__(self) -> str:
        return str(self.args[0])


class ChatHistory(ABC):
    """Where a conversation is kept: a history loads what was said and stores what is said next.

    `history_agent` turns a history into an agent for chains and dialog loops (e.g. the `chat_history=` of
    `create_console_user_agent`).
    """

    @abstractmethod
    async def aload_chat_history(self) -> tuple[Message, ...]:
        """The whole conversation so far, oldest first."""

    @abstractmethod
    async def astore_message(self, message: Message) -> None:
        """Record one more message (called as soon as each message is complete)."""

    @cached_property
    def history_agent(self) -> MiniAgent:
        """An agent that records its input here (see `chat_history_agent`); fork it with `return_full_history`."""
        return chat_history_agent.fork(non_freezable_kwargs={"chat_history": self})


class InMemoryChatHistory(ChatHistory):
    """A conversation kept in a list: the given one (shared by reference) or a new one of its own."""

    def __init__(self, messages: list[Message] | None = None) -> None:
        if messages is not None and not isinstance(messages, list):
            raise InvalidArgumentsError(
                f"An in-memory chat history keeps its messages in a list, got {type(messages).__name__}: pass a list "
                "(a list given to an agent as a plain argument is frozen into a tuple; pass it through "
                "`non_freezable_kwargs={'message_list': my_list}` instead)."
            )
        self.messages: list[Message] = [] if messages is None else messages

    async def aload_chat_history(self) -> tuple[Message, ...]:
        return tuple(self.messages)

    async def astore_message(self, message: Message) -> None:
        self.messages.append(message)


class MarkdownChatHistory(ChatHistory):
    """A conversation kept in a markdown file, one `role[ / model]` section per message (see `markdown_chat`).

    `append=False` starts the file afresh: it is emptied the first time it is loaded or stored to by this object.
    Messages with a true `no_history` field are not recorded unless `ignore_no_history`; blank ones are skipped
    with `skip_empty`.
    """

    def __init__(
        self,
        history_md_file: str | Path = "CHAT.md",
        *,
        default_role: str = "assistant",
        append: bool = True,
        skip_empty: bool = True,
        ignore_no_history: bool = False,
        history_message_factory: HistoryMessageFactory | None = None,
    ) -> None:
        problem = path_problem(history_md_file)
        if problem is not None:
            raise HistoryFileError(
                f"The chat history file name {str(history_md_file)!r} {problem}: choose another `history_md_file=`.",
                Path(str(history_md_file).replace("\0", "")),
            )
        self.path = Path(history_md_file)
        self.default_role = default_role
        self.skip_empty = skip_empty
        self.ignore_no_history = ignore_no_history
        self.history_message_factory = history_message_factory or history_message
        self._truncate_first = not append

    def _prepare(self) -> None:
        if self._truncate_first:
            self._write("", "w", ())
            self._truncate_first = False

    def _write(self, text: str, mode: str, unsaved: tuple[Message, ...]) -> None:
        try:
            _write_text(self.path, text, mode)
        except (OSError, ValueError) as error:  # ValueError: a name the platform refuses
            raise HistoryFileError(
                f"Cannot write the chat history to {str(self.path)!r} ({getattr(error, 'strerror', None) or error}): "
                "choose a writable "
                "`history_md_file=`. The messages written before this one are still in the file; the error's "
                "`unsaved_messages` holds the one that was not.",
                self.path,
                unsaved,
            ) from error

    async def astore_message(self, message: Message) -> None:
        self._prepare()
        if message.get("no_history") and not self.ignore_no_history:
            return
        content = str(message)
        if self.skip_empty and not content.strip():
            return
        role = message.get("role") or self.default_role
        self._write(format_section(str(role), content, message.get("model")), "a", (message,))

    async def aload_chat_history(self) -> tuple[Message, ...]:
        self._prepare()
        try:
            with self.path.open(encoding="utf-8", newline="") as file:  # no newline translation: see markdown_chat
                text = file.read()
        except FileNotFoundError:
            return ()
        except (OSError, UnicodeDecodeError) as error:
            raise HistoryFileError(
                f"Cannot read the chat history from {str(self.path)!r} ({error}): make sure it is a readable UTF-8 "
                "text file, or choose another `history_md_file=`.",
                self.path,
            ) from error
        factory = self.history_message_factory
        return tuple(
            factory(content=content, role=role, **({"model": model} if model else {}))
            for role, model, content in parse_sections(text, extra_roles=(self.default_role,))
        )


def _write_text(path: Path, text: str, mode: str) -> None:
    """Write `text` in one go and close the file, so what was written is on disk before the next message comes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open(mode, encoding="utf-8", newline="") as file:  # no newline translation: see markdown_chat
        file.write(text)


async def _arecord(ctx: InteractionContext, history: ChatHistory, return_full_history: bool) -> None:
    if not return_full_history:
        ctx.reply(ctx.message_promises)  # pass-through first: the next agent gets the tokens while they stream
    async for message_promise in ctx.message_promises:
        await history.astore_message(await message_promise)
    if return_full_history:
        ctx.reply(await history.aload_chat_history())


@miniagent
async def chat_history_agent(
    ctx: InteractionContext, chat_history: ChatHistory, return_full_history: bool = False
) -> None:
    """Record the input in `chat_history` (a non-freezable argument), then pass it on or reply the whole history."""
    await _arecord(ctx, chat_history, return_full_history)


def _context_message_list() -> list[Message]:
    return []


@miniagent
async def in_memory_history_agent(
    ctx: InteractionContext, message_list: list[Message] | None = None, return_full_history: bool = False
) -> None:
    """Record the input in memory, then pass it on or reply the whole history.

    The history is `message_list` when given (through `non_freezable_kwargs={"message_list": my_list}`), otherwise
    a list that belongs to the current `MiniAgents` context: two contexts never share a conversation.
    """
    if message_list is None:
        message_list = per_context(ctx.miniagents, "in_memory_history", _context_message_list)
    await _arecord(ctx, InMemoryChatHistory(message_list), return_full_history)


def _started_markdown_files() -> set[Path]:
    return set()


class MarkdownHistoryRecorder:  # the class behind `MarkdownHistoryAgent` (one instance per call)
    """Record the input in a markdown file (`CHAT.md` by default), then pass it on or reply the whole history.

    With `append=False` the file is emptied the first time this context writes to it, and written to after that (a
    dialog loop keeps its whole conversation). The format is the one `MarkdownChatHistory` reads back.
    """

    def __init__(
        self,
        *,
        ctx: InteractionContext,
        history_md_file: str = "CHAT.md",
        default_role: str = "assistant",
        return_full_history: bool = False,
        history_message_factory: HistoryMessageFactory | None = None,
        append: bool = True,
        skip_empty: bool = True,
        ignore_no_history: bool = False,
    ) -> None:
        if path_problem(history_md_file) is not None:
            MarkdownChatHistory(history_md_file)  # raises the HistoryFileError that says what is wrong
        path = Path(history_md_file).absolute()
        started = per_context(ctx.miniagents, "markdown_history_files", _started_markdown_files)
        self.ctx = ctx
        self.return_full_history = return_full_history
        self.history = MarkdownChatHistory(
            path,
            default_role=default_role,
            append=append or path in started,
            skip_empty=skip_empty,
            ignore_no_history=ignore_no_history,
            history_message_factory=history_message_factory,
        )
        started.add(path)

    async def __call__(self) -> None:
        await _arecord(self.ctx, self.history, self.return_full_history)


MarkdownHistoryAgent = miniagent(MarkdownHistoryRecorder, alias="MARKDOWN_HISTORY_AGENT")
"""Record the input in a markdown file (`CHAT.md` by default), then pass it on or reply the whole history (made
with `miniagent(...)` rather than as a decorated class, so that type checkers see the agent it is)."""


markdown_history_agent = MarkdownHistoryAgent
"""The older seeds' name of `MarkdownHistoryAgent` (the same agent)."""
