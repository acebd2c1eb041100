"""What a promise says when it is used as if it were its value: `reply[0]`, `len(reply)`, `print(reply)`.

A reply is a promise of messages, and the usual first mistake is to forget the `await`. Python's own words for it
("not subscriptable", an address) do not say what to do; these texts do, in the words of where the user is (a
notebook cell can await at its top level; a script awaits inside an async function). They are written only when
asked for, so they cost nothing on the engine's paths, and they hold no address, id or timing (a notebook's saved
output must not change from run to run).
"""

from __future__ import annotations

from typing import Any

from miniagents_nb.promising.environment import in_ipython

__all__ = ["message_promise_repr", "sequence_promise_repr", "sequence_promise_use_error"]


def _where_to_await() -> str:
    if in_ipython():
        return "(a notebook cell can `await` at its top level)"
    return "(inside an `async def`)"


def _progress(promise: Any, what: str, ended: str) -> str:
    pieces = promise.pieces_so_far
    count = sum(1 for piece in pieces if not isinstance(piece, BaseException))
    so_far = f"{count} {what}{'' if count == 1 else 's'}"
    if promise.error_now() is not None or any(isinstance(piece, BaseException) for piece in pieces):
        return f"{so_far}, then it failed"
    if not promise.producer_ended:
        return f"{so_far} so far, still streaming"
    return f"{so_far}, {ended}"


def sequence_promise_repr(promise: Any) -> str:
    """The `repr` (and `str`) of a `MessageSequencePromise`: what it is and how to get its messages."""
    text = (
        f"<{type(promise).__name__}: a promise of a reply's messages ({_progress(promise, 'message', 'no more to come')}). "
        f"`messages = await reply` {_where_to_await()} gives them as a tuple; "
        "`async for message_promise in reply:` streams them"
    )
    if in_ipython():
        text += "; `reply` alone on a cell's last line shows them live"
    return text + ".>"


def sequence_promise_use_error(promise: Any, what: str) -> str:
    """The message of the `NotAwaitedError` raised by `reply[...]` / `len(reply)` (`what` names the attempt)."""
    return (
        f"{what} a {type(promise).__name__}: a reply is a promise of messages, not the messages. "
        f"Await it first: `messages = await reply` {_where_to_await()} gives the tuple of messages, "
        "then `messages[0]`, `len(messages)`; or stream them with `async for message_promise in reply:`."
    )


def message_promise_repr(promise: Any) -> str:
    """The `repr` (and `str`) of a `MessagePromise`: what it is and how to get the message."""
    return (
        f"<{type(promise).__name__}: a promise of one message ({_progress(promise, 'token', 'complete')}). "
        f"`message = await message_promise` {_where_to_await()} gives the message; "
        "`async for token in message_promise:` streams its tokens.>"
    )
