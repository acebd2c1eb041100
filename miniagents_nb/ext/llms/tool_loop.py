"""The tool loop of the LLM agents: ask the model, run the tools it calls, give it the results, until it answers.

One LLM call, one reply message: the text of every turn streams into it, and the final message carries the whole
exchange (`tool_calls`, `tool_turns`) with `usage` summed over the turns. While the model streams a tool call, the
call already exists: a `ToolCallMessage` promise (its tokens are the arguments' JSON, as they arrive) is the input
of the tool's agent call, which is queued under the LLM call at once and runs when the turn is over. Tools of one
turn run concurrently and their results go back in call order; a `sequential` tool runs alone. Arguments that do
not fit a tool's schema, unknown tools and tool failures go back to the model as error results (unless
`tool_errors="raise"`), so that it can recover. Cancelling the LLM call cancels the tools it started.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from miniagents_nb.agents import AgentCall, InteractionContext, MiniAgent
from miniagents_nb.errors import InvalidArgumentsError
from miniagents_nb.ext.llms.conversion import message_to_llm_dict, thaw
from miniagents_nb.ext.llms.messages import ToolCallMessage
from miniagents_nb.ext.llms.tool_errors import ToolError, ToolLoopLimitError, ToolNotFoundError
from miniagents_nb.ext.llms.tool_formats import ToolCallResult
from miniagents_nb.ext.llms.tools import ToolSet
from miniagents_nb.messages import ErrorMessage, ImageMessage, MessagePromise, MessageTokenAppender, error_to_text
from miniagents_nb.promising.ext.frozen import Frozen

__all__ = ["DEFAULT_MAX_TURNS", "ToolLoopLLM", "ToolTurn", "arun_tool_loop"]

DEFAULT_MAX_TURNS = 10
"""Model requests one LLM call may make when it has tools (`max_turns=`)."""

_TOOL_ERRORS = ("return", "raise")


class ToolTurn:
    """One model request of the tool loop, as the provider sees it: `request` holds the provider-shaped keyword
    arguments to add (`tools`, `tool_choice`, ...); the provider reports each tool call the model streams with
    `start_tool_call(index, call_id, name)` and `add_arguments(index, json_piece)` (once per streamed piece).
    `errors_returned` is whether a tool's failure goes back to the model (`tool_errors="return"`)."""

    __slots__ = ("_calls", "_errors_returned", "_tools", "_turn_number", "request")

    def __init__(
        self, request: dict[str, Any], tools: ToolSet, turn_number: int, *, errors_returned: bool = True
    ) -> None:
        self.request = request
        self._tools = tools
        self._turn_number = turn_number
        self._errors_returned = errors_returned
        self._calls: dict[int, _StreamedCall] = {}

    def start_tool_call(self, index: int, call_id: str | None, name: str) -> None:
        early = self._calls.get(index)
        if early is not None and early.name:
            return  # the provider repeated the call's start
        call = self._calls[index] = _StreamedCall(
            call_id or f"call_{self._turn_number}_{index}", name, self._tools, self._errors_returned
        )
        if early is not None:  # pieces that came before the name
            for piece in early.pieces:
                call.add(piece)
            early.end()

    def add_arguments(self, index: int, piece: str) -> None:
        if piece:
            call = self._calls.get(index)
            if call is None:  # a provider that sends arguments before the name: name it when the name comes
                call = self._calls[index] = _StreamedCall(
                    f"call_{self._turn_number}_{index}", "", self._tools, self._errors_returned
                )
            call.add(piece)

    @property
    def calls(self) -> list[_StreamedCall]:
        return [self._calls[index] for index in sorted(self._calls)]

    def end(self, error: BaseException | None = None) -> None:
        for call in self._calls.values():
            call.end(error)


def _not_found_text(name: str, tools: ToolSet) -> str:
    return f"There is no tool named {name!r}. The tools are: {', '.join(tools.by_name) or 'none'}; call one of those."


async def _missing_tool(ctx: InteractionContext, tool_name: str, text: str) -> None:
    """The call of a tool the model named but the LLM call does not have: it fails saying so (the views show the
    attempt as a failed tool call, its arguments as the model wrote them)."""
    raise ToolNotFoundError(text, tool_name=tool_name)


class _StreamedCall:
    __slots__ = ("agent_call", "appender", "found", "id", "name", "pieces", "promise")

    def __init__(self, call_id: str, name: str, tools: ToolSet, errors_returned: bool) -> None:
        self.id = call_id
        self.name = name
        self.pieces: list[str] = []
        self.appender = MessageTokenAppender(capture_errors=True)
        self.appender.open()
        self.promise: MessagePromise = ToolCallMessage.promise(
            start_soon=False, message_token_streamer=self.appender, tool_name=name, tool_call_id=call_id
        )
        tool = tools.by_name.get(name)
        self.found = tool is not None
        self.agent_call: AgentCall | None = None
        if name:  # queued now, under the LLM call; it runs when the turn is over
            # Whatever the context says: with tool_errors="return" a failure is the model's error result, handled
            # by the loop, so it is an ErrorMessage (not logged as an error nobody handled); with "raise" it is a
            # failure of the LLM call, logged once, here, where its agent trace names the tool.
            if tool is not None:
                agent = tool.agent
            else:  # a name the model made up: a call all the same, which fails (the trace shows what was tried)
                agent = MiniAgent(
                    _missing_tool,
                    alias=name,
                    description="A tool the model called, which this LLM call does not have.",
                    tool_name=name,
                    text=_not_found_text(name, tools),
                )
            initiated = agent.initiate_call(start_soon=False, errors_as_messages=errors_returned)
            self.agent_call = initiated.send_message(self.promise).finish()

    def add(self, piece: str) -> None:
        self.pieces.append(piece)
        self.appender.append(piece)

    def end(self, error: BaseException | None = None) -> None:
        if self.appender.is_open:
            self.appender.close(error)
        if error is not None and self.agent_call is not None:
            self.agent_call.cancel()

    def result(self) -> ToolCallResult:
        arguments_json = "".join(self.pieces)
        message = self.promise.result_now() if self.promise.producer_ended else None
        arguments = getattr(message, "arguments", None)
        return ToolCallResult(self.id, self.name, arguments_json, thaw(arguments))


class ToolLoopLLM(Protocol):
    """What the loop needs of an LLM agent (`LLMAgent` is one)."""

    tools: Any
    response_format: Any
    tool_choice: Any
    parallel_tool_calls: bool | None
    max_turns: int
    stop_at_tools: Any
    tool_errors: str

    async def aproduce_tokens(self, message_dicts: list[dict[str, Any]], token_appender: MessageTokenAppender) -> None:
        """One model request."""

    def after_response(self, collected: dict[str, Any]) -> None:
        """Adjust one response's metadata."""

    def bind_tool_turn(self, turn: ToolTurn | None) -> None:
        """The turn the next `aproduce_tokens` reports tool calls to."""

    def tool_request_kwargs(self, tools: ToolSet, tool_choice: Any, parallel_tool_calls: bool | None) -> dict[str, Any]:
        """The tools in the provider's request shape."""

    def tool_exchange_dicts(self, text: str, calls: Sequence[ToolCallResult]) -> list[dict[str, Any]]:
        """A turn's tool calls and results as the provider's messages."""

    def extend_conversation(
        self, message_dicts: list[dict[str, Any]], new_dicts: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The conversation with the exchange added."""


def _add_usage(total: dict[str, Any], usage: Any) -> None:
    for key, value in (usage or {}).items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            total[key] = total.get(key, 0) + value
        elif isinstance(value, dict):
            _add_usage(total.setdefault(key, {}), value)


async def arun_tool_loop(
    llm: ToolLoopLLM, message_dicts: list[dict[str, Any]], appender: MessageTokenAppender, response: MessagePromise
) -> None:
    """Run the loop (see the module docstring); the final message's fields go into the appender's collector."""
    tools: ToolSet = llm.tools
    if llm.tool_errors not in _TOOL_ERRORS:
        raise InvalidArgumentsError(f"tool_errors is 'return' or 'raise', got {llm.tool_errors!r}.")
    if llm.response_format is not None:
        raise InvalidArgumentsError(
            "An LLM call with Python tools= cannot also take response_format= (the loop ends on a text answer): "
            "give the model a tool that takes the structured answer and stop on it with stop_at_tools=[...]."
        )
    if llm.max_turns < 1:
        raise InvalidArgumentsError(f"max_turns is at least 1 (one model request), got {llm.max_turns!r}.")
    stop_names = set(thaw(llm.stop_at_tools) or ())
    aux = appender.auxiliary_field_collector
    conversation = list(message_dicts)
    usage: dict[str, Any] = {}
    turns: list[dict[str, Any]] = []
    all_calls: list[Frozen] = []
    last: dict[str, Any] = {}
    for turn_number in range(1, llm.max_turns + 1):
        tool_choice = llm.tool_choice if turn_number == 1 else None  # forcing every turn would never end
        turn = ToolTurn(
            llm.tool_request_kwargs(tools, thaw(tool_choice), llm.parallel_tool_calls),
            tools,
            turn_number,
            errors_returned=llm.tool_errors == "return",
        )
        start = len(response.pieces_so_far)
        aux.clear()
        llm.bind_tool_turn(turn)
        try:
            await llm.aproduce_tokens(conversation, appender)
            llm.after_response(aux)
        except BaseException as error:
            turn.end(error)
            raise
        finally:
            llm.bind_tool_turn(None)
        turn.end()
        last = dict(aux)
        _add_usage(usage, last.get("usage"))
        text = "".join(str(piece) for piece in response.pieces_so_far[start:])
        streamed = turn.calls
        turn_record: dict[str, Any] = {"content": text, "usage": last.get("usage")}
        turns.append(turn_record)
        if not streamed:
            turn_record["tool_calls"] = ()
            break
        if turn_number == llm.max_turns:
            for call in streamed:
                call.end(asyncio.CancelledError())
            turn_record["tool_calls"] = tuple(call.result().as_field() for call in streamed)
            raise ToolLoopLimitError(
                f"The model still called tools ({', '.join(call.name for call in streamed)}) after max_turns="
                f"{llm.max_turns} requests, so those calls were not run and no answer came: raise max_turns, or "
                "tell the model (in the prompt) when to stop calling tools.",
                turns=tuple(turns),
            )
        results = await _arun_calls(streamed, tools, raise_errors=llm.tool_errors == "raise")
        records = [Frozen(**result.as_field()) for result in results]  # frozen once, shared by both fields
        all_calls.extend(records)
        turn_record["tool_calls"] = tuple(records)
        stopping = next((result for result in results if result.name in stop_names), None)
        if stopping is not None:
            if text:
                appender.append("\n\n")
            appender.append(stopping.result)
            break
        conversation = llm.extend_conversation(conversation, llm.tool_exchange_dicts(text, results))
        if text and not text[-1].isspace():
            appender.append("\n\n")  # the next turn's text is a new paragraph of the one message
    aux.clear()
    aux.update(last)
    aux["usage"] = usage
    aux["tool_calls"] = tuple(all_calls)
    aux["tool_turns"] = tuple(turns)


async def _arun_calls(calls: list[_StreamedCall], tools: ToolSet, *, raise_errors: bool) -> list[ToolCallResult]:
    """Run the turn's calls: consecutive non-sequential ones together, a sequential one alone; results in order."""
    results = [call.result() for call in calls]
    batch: list[int] = []
    try:
        for index, call in enumerate(calls):
            tool = tools.by_name.get(call.name)
            if tool is not None and tool.sequential:
                await _arun_batch(batch, calls, results, tools, raise_errors)
                batch = []
                await _arun_batch([index], calls, results, tools, raise_errors)
            else:
                batch.append(index)
        await _arun_batch(batch, calls, results, tools, raise_errors)
    except BaseException:
        for call in calls:  # cancelled (or failing with tool_errors="raise"): no tool of this turn goes on
            if call.agent_call is not None:
                call.agent_call.cancel()
        raise
    return results


async def _arun_batch(
    batch: list[int],
    calls: list[_StreamedCall],
    results: list[ToolCallResult],
    tools: ToolSet,
    raise_errors: bool,
) -> None:
    if not batch:
        return
    if len(batch) == 1:
        await _arun_one(calls[batch[0]], results[batch[0]], tools, raise_errors)
        return
    await asyncio.gather(*(_arun_one(calls[index], results[index], tools, raise_errors) for index in batch))


async def _arun_one(call: _StreamedCall, result: ToolCallResult, tools: ToolSet, raise_errors: bool) -> None:
    if call.agent_call is None or not call.found:
        if call.agent_call is not None:
            try:
                await call.agent_call.reply_sequence()  # it fails (as an ErrorMessage with tool_errors="return")
            except ToolNotFoundError:
                if raise_errors:
                    raise
        result.result = _not_found_text(call.name, tools)
        result.is_error = True
        return
    try:
        messages = await call.agent_call.reply_sequence()
    except Exception as error:
        if raise_errors:
            raise
        result.result, result.is_error = error_to_text(error), True
        return
    texts = []
    for message in messages:
        if isinstance(message, ImageMessage):
            result.images.append(message)
        if isinstance(message, ErrorMessage):
            if raise_errors:
                raise call.agent_call.error or ToolError(f"Tool {call.name} failed: {message}")
            result.is_error = True
        texts.append(message_to_llm_dict(message)["content"])
    result.result = "\n\n".join(texts)
