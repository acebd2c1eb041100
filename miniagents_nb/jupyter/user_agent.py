"""The notebook user agent: a chat widget that plays the human's part in `dialog_loop` inside a notebook.

The widget (`NotebookChat`) shows the conversation, both sides, each message labelled by the agent that sent it and
the assistant's reply streaming token by token, with a text box, a Send button and a Stop button under it (Enter
sends, Shift+Enter adds a new line). It does what the console user agent does at a terminal: it shows what the
assistant said while it streams, then waits for the user's text and replies it as a `UserMessage`; "exit" or Stop
ends the dialog with `KeyboardInterrupt` (which `dialog_loop` takes as the normal end); blank input is ignored.

Three ways in::

    # one chat widget per dialog, shown in the cell that starts the dialog
    await dialog_loop.trigger(SystemMessage("Be brief."), user_agent=notebook_user_agent, assistant_agent=llm)

    chat = NotebookChat()                                        # one chat, driven by its own methods
    await chat.run(SystemMessage("Be brief."), assistant_agent=llm)   # the cell awaits the dialog
    chat.start(SystemMessage("Be brief."), assistant_agent=llm)       # the dialog runs in the background

    # scripted input (tutorials under nbval, demos): the same widget, no human needed
    await dialog_loop.trigger(user_agent=create_notebook_user_agent(script=["hi", "exit"]), assistant_agent=llm)
    await NotebookChat(script=["hi", "exit"]).run(assistant_agent=llm)

Which kernels can await the dialog in the cell: the widget's messages reach the kernel as comm messages, and only
ipykernel 7.4+ handles them while a cell is running (ipykernel PR #1565). On older kernels (6.x, 7.0-7.3, which
is what Colab and many VS Code setups run) a cell that awaits the dialog would never see the user's text, so the
dialog must run in the background: `chat.start(...)`, or `dialog_loop.trigger(...)` without `await`. The chat
detects the deadlock (the cell that started the dialog is still running when the chat first waits for input) and
fails at once with `NotebookInputError` instead of hanging; `cell_can_await_input()` tells which case applies.
Scripted chats never wait, so they can be awaited on every kernel.

Each chat keeps its own conversation (`chat.history`), so two dialogs in one notebook do not see each other's
messages even though the notebook shares one `MiniAgents` context; a `history_agent=` given to `dialog_loop`
replaces it, as with the console user agent.

The same goes for a dialog run by the sync facade (`MiniAgents().run(main())` in a cell blocks the cell on every
kernel): the chat refuses to wait there too.

Which chat a turn belongs to: `notebook_user_agent` finds the call that runs the dialog (its nearest caller that is
not part of the user agent: `dialog_loop`, `agent_loop` or a loop of one's own) and keeps one chat per such call,
made and shown in the cell at the dialog's first turn; two dialogs running at once get two chats.

The static `text/plain` / `text/html` forms give the transcript deterministically (no ids, no timings): they are
what nbval compares, and when the chat ends while its cell still runs (an awaited dialog), every output showing it
is replaced by the final transcript. The live widget reuses the views' machinery (`views.LiveView`): coalesced
deltas, at most `max_updates_per_second` front-end messages, an exact final state. Headless runs (nbclient,
nbval) record only what happens while the displaying cell runs, so a tutorial awaits a scripted dialog.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from miniagents_nb.agents import InteractionContext, MiniAgent, miniagent
from miniagents_nb.errors import InvalidArgumentsError
from miniagents_nb.ext.agents.aggregator_agents import agent_chain
from miniagents_nb.ext.agents.console_agents import GREETING
from miniagents_nb.ext.agents.history_agents import ChatHistory, InMemoryChatHistory
from miniagents_nb.ext.agents.misc_agents import user_agent
from miniagents_nb.ext.agents.per_context import per_context
from miniagents_nb.jupyter._chat_model import render_chat_html, render_chat_text
from miniagents_nb.jupyter._kernel_input import cell_can_await_input
from miniagents_nb.jupyter.chat import (
    EXIT_NOTICE,
    INPUT_PLACEHOLDER,
    SCRIPT_END_NOTICE,
    NotebookChat,
    NotebookInputError,
    chat_input_agent,
)
from miniagents_nb.messages import Message

__all__ = [
    "EXIT_NOTICE",
    "INPUT_PLACEHOLDER",
    "SCRIPT_END_NOTICE",
    "NotebookChat",
    "NotebookInputError",
    "cell_can_await_input",
    "create_notebook_user_agent",
    "notebook_chat_history_agent",
    "notebook_input_agent",
    "notebook_user_agent",
    "render_chat_html",
    "render_chat_text",
]

# --- which chat a turn belongs to ----------------------------------------------------------------------------------

_CHATS_KEY = "notebook_chats"


def _chat_store(ctx: InteractionContext) -> dict[int | None, tuple[InteractionContext | None, NotebookChat]]:
    store: dict[int | None, tuple[InteractionContext | None, NotebookChat]] = per_context(
        ctx.miniagents, _CHATS_KEY, dict
    )
    return store


def _dialog_of(ctx: InteractionContext) -> InteractionContext | None:
    """The call that runs the dialog (`dialog_loop`, `agent_loop`, a loop of one's own): the nearest caller that
    is not part of the user agent itself; None when the user agent was triggered from a cell."""
    parent = ctx.parent
    while parent is not None and parent.this_agent.wrapped_func_or_class in _USER_AGENT_PARTS:
        parent = parent.parent
    return parent


def _find_chat(ctx: InteractionContext) -> NotebookChat | None:
    dialog = _dialog_of(ctx)
    found = _chat_store(ctx).get(None if dialog is None else id(dialog))
    return found[1] if found is not None and found[0] is dialog else None


def _chat_for_turn(ctx: InteractionContext, script: tuple[str, ...] | None, options: dict[str, Any]) -> NotebookChat:
    """The chat of this turn's dialog; the first turn of a dialog makes one and shows it in the cell."""
    dialog = _dialog_of(ctx)
    store = _chat_store(ctx)
    key = None if dialog is None else id(dialog)
    found = store.get(key)
    if found is not None and found[0] is dialog and not found[1].ended:
        return found[1]
    for other, (_, chat) in list(store.items()):  # ended dialogs are forgotten (their widgets stay on show)
        if chat.ended:
            del store[other]
    chat = NotebookChat(script, **options)
    store[key] = (dialog, chat)  # the dialog's context is held with it, so its id is not reused meanwhile
    chat._display_once()
    return chat


class _DialogChatHistory(ChatHistory):
    """The conversation of the chat of a dialog, found when first used: by then the input agent of the turn has
    made the chat (whatever order the two agents started in)."""

    def __init__(self, ctx: InteractionContext) -> None:
        self._ctx = ctx
        self._history: ChatHistory | None = None

    def _resolved(self) -> ChatHistory:
        if self._history is None:
            chat = _find_chat(self._ctx)
            self._history = chat.history if chat is not None else InMemoryChatHistory()
        return self._history

    async def aload_chat_history(self) -> tuple[Message, ...]:
        return await self._resolved().aload_chat_history()

    async def astore_message(self, message: Message) -> None:
        await self._resolved().astore_message(message)


# --- the agents ----------------------------------------------------------------------------------------------------


@miniagent(alias="NOTEBOOK_INPUT_AGENT")
async def notebook_input_agent(
    ctx: InteractionContext,
    script: tuple[str, ...] | None = None,
    greeting: str = GREETING,
    placeholder: str = INPUT_PLACEHOLDER,
    user_label: str = "USER",
    chat: NotebookChat | None = None,
) -> None:
    """Show the input in the dialog's chat widget as it streams, pass it on, then reply the user's text as a
    `UserMessage`; "exit", Stop or the end of `script` raise KeyboardInterrupt (the end of the dialog).

    Without `chat` (a non-freezable argument), each dialog gets a chat of its own, made and shown in the cell at
    its first turn; `script` then scripts every such chat.
    """
    if chat is None:
        options = {"greeting": greeting, "placeholder": placeholder, "user_label": user_label}
        chat = _chat_for_turn(ctx, script, options)
    elif script is not None:
        raise InvalidArgumentsError("A chat given to notebook_input_agent has its own script: pass `script=` to it.")
    await chat._aserve_turn(ctx)


@miniagent(alias="NOTEBOOK_CHAT_HISTORY_AGENT")
async def notebook_chat_history_agent(ctx: InteractionContext, return_full_history: bool = False) -> None:
    """Record the input in the conversation of the dialog's chat, then pass it on or reply the whole of it."""
    history = _DialogChatHistory(ctx)
    ctx.reply(history.history_agent.trigger(ctx.message_promises, return_full_history=return_full_history))


_USER_AGENT_PARTS = frozenset(
    agent.wrapped_func_or_class
    for agent in (user_agent, agent_chain, notebook_input_agent, chat_input_agent, notebook_chat_history_agent)
)

notebook_user_agent = user_agent.fork(
    alias="NOTEBOOK_USER_AGENT",
    output_agent=None,
    input_agent=notebook_input_agent,
    history_agent=notebook_chat_history_agent,
)
"""The user in a notebook: each dialog gets a chat widget in the cell that starts it (see the module docstring)."""


def create_notebook_user_agent(
    script: Iterable[str] | None = None,
    *,
    chat_history: ChatHistory | None = None,
    alias: str | None = None,
    greeting: str = GREETING,
    placeholder: str = INPUT_PLACEHOLDER,
    user_label: str = "USER",
) -> MiniAgent:
    """A notebook user agent with options: `script` (the inputs of a scripted chat, typed one per turn), the
    conversation kept in `chat_history` instead of each chat's own, the greeting and labels of its widgets."""
    if isinstance(script, str):
        raise InvalidArgumentsError(
            f"`script` is a list of the user's inputs, got the string {script!r}: pass [{script!r}]."
        )
    input_agent = notebook_input_agent.fork(
        script=None if script is None else tuple(str(item) for item in script),
        greeting=greeting,
        placeholder=placeholder,
        user_label=user_label,
    )
    options: dict[str, Any] = {"input_agent": input_agent}
    if chat_history is not None:
        options["history_agent"] = chat_history.history_agent
    return notebook_user_agent.fork(alias=alias, **options)
