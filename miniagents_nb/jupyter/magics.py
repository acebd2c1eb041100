"""`%%miniagent`, `%%chat` and `%miniagents`.

IPython has no async magics, so `%%chat` (which must keep its cell busy while the reply streams) is rewritten by a
cleanup input transformer into `await <this module>.achat_cell(line, body)`: the kernel then runs the cell as a
coroutine on its own loop, the cell shows `[*]` until the reply is complete, its output is charged to the cell
(headless runs record it), and a kernel interrupt cancels it. The registered `%%chat` magic is what `%%chat?` and
`%lsmagic` show, and it is the fallback when the transformer cannot be used (autoawait off): then the chat runs in
the background and the cell returns at once.

`%%miniagent NAME` needs no await: it compiles the cell body into the body of `async def NAME(ctx, **kwargs)`.
The keyword arguments of the call (fork-time and trigger-time) are plain names in the body, looked up before the
notebook's globals (and also available together as the dict `kwargs`); `ctx` is the `InteractionContext`.
Assignments made with `global` inside the body stay local to that call.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import inspect
import shlex
import sys
import types
from typing import Any, Protocol

from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class
from IPython.utils.text import DollarFormatter

from miniagents_nb.agents import MiniAgent
from miniagents_nb.errors import MiniAgentsError
from miniagents_nb.jupyter._ipython import argument, cell_magic, line_magic, magic_arguments, parse_argstring
from miniagents_nb.messages import Message

__all__ = [
    "ChatSession",
    "MiniAgentsMagics",
    "achat_cell",
    "chat_transformer",
    "compile_agent_body",
    "make_agent_function",
]


class ChatSession(Protocol):
    """What the magics need from the notebook session (the session passes itself in, so this module never
    imports the session's)."""

    shell: Any
    chat_history: list[Message]

    async def chat(self, agent: Any, text: str, kwargs: dict[str, Any], new: bool, tree: bool) -> None: ...

    def keep_task(self, task: asyncio.Task[Any]) -> None: ...

    def cancel_all(self) -> int: ...

    def status_text(self) -> str: ...

    def record(self, value: str | None) -> str: ...

    def runs_table(self, limit: int | None) -> Any: ...

    def recorded_run(self, run_id: int, *, tree: bool = True, timeline: bool = False) -> Any: ...

    rerun_policy: str


_CHAT_MAGIC = "%%chat"


# --- %%chat through the cleanup transformer ----------------------------------------------------------------------


def chat_transformer(lines: list[str]) -> list[str]:
    """Rewrite a `%%chat` cell into an awaited call (only when the shell can await at top level)."""
    if not lines or lines[0].split(maxsplit=1)[:1] != [_CHAT_MAGIC]:
        return lines
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or not getattr(shell, "autoawait", False):
        return lines
    line = lines[0][len(_CHAT_MAGIC) :].strip()
    body = "".join(lines[1:])
    return [f"await __import__({__name__!r}, fromlist=['_']).achat_cell({line!r}, {body!r})\n"]


async def achat_cell(line: str, body: str) -> None:
    """Run one `%%chat` cell: send the body, show the reply streaming, remember the exchange."""
    __tracebackhide__ = True
    session = _session_or_usage_error()
    await session.chat(*_parse_chat(session, _expand(session, line), body))


def _session_or_usage_error() -> ChatSession:
    """The session whose magics are registered in the running shell (what `%load_ext miniagents_nb` set up)."""
    from IPython import get_ipython

    shell = get_ipython()
    registry = getattr(getattr(shell, "magics_manager", None), "registry", {})
    magics = registry.get(MiniAgentsMagics.__name__)
    if not isinstance(magics, MiniAgentsMagics):
        raise UsageError("The miniagents_nb extension is not loaded: run `%load_ext miniagents_nb` first.")
    return magics.session


def _expand(session: ChatSession, line: str) -> str:
    """`{name}` / `$name` in the magic line, from the notebook's namespace (what IPython does for magics)."""
    try:
        return str(DollarFormatter().vformat(line, [], session.shell.user_ns))
    except Exception:  # IPython leaves a line it cannot expand as it is
        return line


def _parse_value(text: str) -> Any:
    """`key=value` values: Python literals (`0.2`, `"a b"`, `[1, 2]`, `True`), anything else is a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _parse_chat(session: ChatSession, line: str, body: str) -> tuple[MiniAgent, str, dict[str, Any], bool, bool]:
    try:
        words = shlex.split(line)  # POSIX rules, so that key="two words" is one argument
    except ValueError as error:
        raise UsageError(f"%%chat: cannot parse the line {line!r}: {error}.") from None
    parser: Any = getattr(MiniAgentsMagics.chat, "parser")  # noqa: B009 - set by @magic_arguments, untyped
    args = parser.parse_args(words)  # a bad argument raises UsageError
    agent = _resolve_agent(session, args.agent)
    kwargs: dict[str, Any] = {}
    for item in args.kwargs:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"%%chat: expected key=value after the agent, got {item!r} (e.g. temperature=0.2).")
        kwargs[key] = _parse_value(value)
    text = body.strip()
    if not text:
        raise UsageError("%%chat: the cell is empty: write the message below the `%%chat AGENT` line.")
    return agent, text, kwargs, bool(args.new), bool(args.tree)


def _resolve_agent(session: ChatSession, expression: str) -> MiniAgent:
    try:
        agent = eval(expression, session.shell.user_ns)  # the user's own notebook namespace
    except Exception as error:
        raise UsageError(f"%%chat: cannot find the agent {expression!r}: {type(error).__name__}: {error}") from None
    if not isinstance(agent, MiniAgent):
        raise UsageError(
            f"%%chat: {expression!r} is a {type(agent).__name__}, not an agent: define one with `@miniagent` or "
            "`%%miniagent NAME`."
        )
    return agent


# --- %%miniagent -------------------------------------------------------------------------------------------------


class _CallNamespace(dict[str, Any]):
    """The globals of one agent call: the call's keyword arguments first, then the notebook's globals."""

    __slots__ = ("_fallback",)

    def __init__(self, kwargs: dict[str, Any], fallback: dict[str, Any]) -> None:
        super().__init__(kwargs)
        self._fallback = fallback
        self["__builtins__"] = fallback.get("__builtins__", builtins)

    def __missing__(self, key: str) -> Any:
        return self._fallback[key]


def compile_agent_body(name: str, body: str, filename: str) -> types.CodeType:
    """The code object of `async def NAME(ctx, **kwargs): <body>` (line numbers are the cell's)."""
    module = ast.parse(body or "pass", filename=filename, mode="exec")
    statements = module.body or [ast.Pass()]
    fields: dict[str, Any] = {"type_params": []} if sys.version_info >= (3, 12) else {}  # PEP 695 field
    function = ast.AsyncFunctionDef(
        name=name,
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg(arg="ctx")],
            vararg=None,
            kwonlyargs=[],
            kw_defaults=[],
            kwarg=ast.arg(arg="kwargs"),
            defaults=[],
        ),
        body=statements,
        decorator_list=[],
        returns=None,
        type_comment=None,
        **fields,
    )
    function.lineno = 1
    function.col_offset = 0
    wrapper = ast.Module(body=[function], type_ignores=[])
    ast.fix_missing_locations(wrapper)
    code = compile(wrapper, filename, "exec", dont_inherit=True)
    function_code = next(const for const in code.co_consts if isinstance(const, types.CodeType))
    return function_code


def make_agent_function(name: str, body: str, filename: str, user_ns: dict[str, Any]) -> Any:
    """An async function running `body` with the call's kwargs as names (see the module docstring)."""
    code = compile_agent_body(name, body, filename)
    docstring = ast.get_docstring(ast.parse(body or "pass"))

    async def agent_function(ctx: Any, **kwargs: Any) -> None:
        __tracebackhide__ = True
        body_function = types.FunctionType(code, _CallNamespace(kwargs, user_ns), name)
        await body_function(ctx, **kwargs)

    agent_function.__name__ = name
    agent_function.__qualname__ = name
    agent_function.__doc__ = docstring
    agent_function.body_code = code  # type: ignore[attr-defined]
    return agent_function


# --- the magics --------------------------------------------------------------------------------------------------


@magics_class
class MiniAgentsMagics(Magics):
    """The notebook layer's magics (registered by `%load_ext miniagents_nb`)."""

    def __init__(self, shell: Any, session: ChatSession) -> None:
        super().__init__(shell)
        self.session = session
        self._shell: Any = shell

    @magic_arguments()
    @argument("name", help="Python name the agent is bound to in the notebook (re-running the cell redefines it).")
    @argument("--alias", "-a", default=None, help="The agent's alias (default: NAME in upper snake case).")
    @argument("--description", "-d", default=None, help="The agent's description (default: the body's docstring).")
    @cell_magic
    def miniagent(self, line: str, cell: str) -> None:
        """Define an async agent from the cell body and bind it to NAME.

        The body is the body of `async def NAME(ctx, **kwargs)`: `ctx` is the InteractionContext (read
        `ctx.message_promises`, answer with `ctx.reply(...)`), `await` and `async for` work, and every keyword
        argument of the call (from `fork(...)` or `trigger(..., key=value)`) is a plain name in the body, looked
        up before the notebook's globals (all of them are also in the dict `kwargs`). A first string literal is
        the agent's description. Example::

            %%miniagent shout
            async for message in ctx.message_promises:
                ctx.reply(str(await message).upper() + "!" * excitement)

        then `await shout.trigger("hi", excitement=3)`.
        """
        args = parse_argstring(self.miniagent, line)
        name = args.name
        if not name.isidentifier() or name in {"ctx", "kwargs"}:
            raise UsageError(f"%%miniagent: {name!r} cannot be the agent's name: use a Python identifier.")
        filename = self._shell.compile.cache(cell)
        function = make_agent_function(name, cell, filename, self._shell.user_ns)  # a SyntaxError names its line
        if function.body_code.co_flags & inspect.CO_ASYNC_GENERATOR:
            raise UsageError(
                f"%%miniagent: the body of {name} uses `yield`, which makes it a generator: reply with "
                "`ctx.reply(...)` instead (a generator of messages can be replied: `ctx.reply(gen())`)."
            )
        try:
            agent = MiniAgent(function, alias=args.alias, description=args.description)
        except MiniAgentsError as error:
            raise UsageError(f"%%miniagent: {error}") from None
        self._shell.user_ns[name] = agent

    @magic_arguments()
    @argument("agent", help="The agent to talk to: a name (or expression) in the notebook.")
    @argument("kwargs", nargs="*", help="key=value arguments for the agent (Python literals, else strings).")
    @argument("--new", action="store_true", help="Start a new conversation (forget the earlier %%%%chat cells).")
    @argument("--tree", action="store_true", help="Also show the live tree of agent calls behind the reply.")
    @cell_magic
    def chat(self, line: str, cell: str) -> None:
        """Send the cell text to AGENT as a UserMessage and show the reply as it streams.

        The notebook keeps one conversation: each %%chat sends the whole history (earlier user messages and
        replies, in order) followed by the new message, and the exchange is added to it once the reply is
        complete (a failed or interrupted exchange is not). `--new` starts over; `%miniagents reset` clears it.
        The cell stays busy until the reply is complete; interrupting the kernel cancels the agent.
        """
        agent, text, kwargs, new, tree = _parse_chat(self.session, line, cell)
        coroutine = self.session.chat(agent, text, kwargs, new, tree)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._shell.loop_runner(coroutine)
            return
        self.session.keep_task(loop.create_task(coroutine))

    @magic_arguments()
    @argument(
        "action",
        nargs="?",
        default="status",
        choices=["status", "cancel", "reset", "rerun", "record", "runs", "run"],
        help="status (default): running calls and settings; cancel: cancel every running call; "
        "reset: forget the %%%%chat conversation; rerun cancel|keep: what re-running a cell does to the calls its "
        "earlier run left going; record off|on|PATH: where the cells' runs are recorded; runs: the recent "
        "recorded runs; run ID: show one recorded run.",
    )
    @argument(
        "value",
        nargs="?",
        default=None,
        help="after `rerun`: cancel (the default) or keep; after `record`: off, on, or the store file (a "
        "directory gets runs.sqlite in it); after `run`: the run's id (from `%%miniagents runs`).",
    )
    @argument("--limit", "-n", type=int, default=20, help="`runs`: how many runs to list, newest first (default 20).")
    @argument("--timeline", action="store_true", help="`run`: open the run's timeline (it is closed by default).")
    @line_magic
    def miniagents(self, line: str) -> Any:
        """Show the notebook's agent calls and settings, cancel the running calls, reset the chat, choose what a
        re-run does, and record and reopen runs.

        `%miniagents rerun cancel|keep`: when a cell runs again while calls of its earlier run still go on (an
        agent streaming in the background after that run returned), their views say "superseded" and, by default
        (`cancel`), they are cancelled: the re-run replaced the cell's output, so whatever the earlier run still
        produced would cost LLM tokens and never be seen. `keep` lets them run (to compare runs side by side).
        `%miniagents rerun` alone shows the choice in force.

        `%miniagents record off|on|PATH`: every cell that starts agent calls is recorded as a run (by default to
        `.miniagents/runs.sqlite` beside the notebook; `MINIAGENTS_NB_RECORD=0|PATH` chooses when the kernel
        starts). `%miniagents runs [-n N]` lists the recent runs; `%miniagents run ID [--timeline]` shows one as
        its reply was shown (messages, call tree with details, timeline), also after a kernel restart.
        """
        args = parse_argstring(self.miniagents, line)
        action, value = args.action, args.value
        if value in {"cancel", "keep"} and action != "rerun":
            raise UsageError(f"%miniagents: {value!r} goes after `rerun` (`%miniagents rerun {value}`).")
        if value is not None and action not in {"rerun", "record", "run"}:
            raise UsageError(
                f"%miniagents {action}: unexpected {value!r} (only `rerun`, `record` and `run` take a value)."
            )
        if action == "rerun":
            if value is not None:
                if value not in {"cancel", "keep"}:
                    raise UsageError(f"%miniagents rerun: expected cancel or keep, got {value!r}.")
                self.session.rerun_policy = value
            return _Status(_rerun_text(self.session.rerun_policy))
        if action == "record":
            return _Status(self.session.record(value))
        if action == "runs":
            return self.session.runs_table(args.limit if args.limit > 0 else None)
        if action == "run":
            if value is None or not value.lstrip("#").isdigit():
                raise UsageError("%miniagents run: give the run's id, e.g. `%miniagents run 3` (`%miniagents runs`).")
            try:
                return self.session.recorded_run(int(value.lstrip("#")), timeline=bool(args.timeline))
            except MiniAgentsError as error:
                raise UsageError(f"%miniagents run: {error}") from None
        if action == "cancel":
            cancelled = self.session.cancel_all()
            return _Status(f"Cancelled {cancelled} running agent call{'s' if cancelled != 1 else ''}.")
        if action == "reset":
            self.session.chat_history.clear()
            return _Status("The %%chat conversation was reset.")
        return _Status(self.session.status_text())


def _rerun_text(policy: str) -> str:
    if policy == "keep":
        return (
            "Re-running a cell keeps the calls its earlier run left going (their views say superseded); "
            "`%miniagents rerun cancel` cancels them instead."
        )
    return (
        "Re-running a cell cancels the calls its earlier run left going (their views say superseded); "
        "`%miniagents rerun keep` lets them run instead."
    )


class _Status:
    """A plain-text result (no widget): status is a snapshot, not a live view."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text)
