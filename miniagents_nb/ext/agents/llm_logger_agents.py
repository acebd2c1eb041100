"""`markdown_llm_logger_agent`: one markdown file per LLM call, with the prompt, the response and the metadata.

LLM agents trigger it themselves when `MiniAgents(llm_logger_agent=True)` (or when given a logger agent of your
own): its input is the prompt messages followed by the response message promise. The response is written while it
streams, so a call that hangs or fails still leaves a readable log, with the error at the end.

File names sort by time: `YYYYmmdd_HHMMSS__ffffff__<model>__<3 hex>.md` in `log_folder` (created when missing).
Sections use the setext headings that the markdown history agent reads (`role / model` over a line of `=`).
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime
from pathlib import Path
from pprint import pformat
from typing import IO, Any

from miniagents_nb.agents import InteractionContext, display_trace, miniagent
from miniagents_nb.messages import MessagePromise
from miniagents_nb.promising.ext.frozen import Frozen

__all__ = ["llm_log_file_name", "markdown_llm_logger_agent"]

_UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")  # no separator, NUL or control: never leaves the folder
_MODEL_CHARS = 80  # file names have a length limit (255 bytes on most file systems)


def llm_log_file_name(model: str | None, now: datetime | None = None) -> str:
    """`YYYYmmdd_HHMMSS__ffffff__<model>__<3 hex>.md` (the model made safe for file names)."""
    now = now or datetime.now()
    safe_model = (
        _UNSAFE_FILE_CHARACTERS.sub("_", model or "unknown-model").strip("_.")[:_MODEL_CHARS] or "unknown-model"
    )
    return f"{now:%Y%m%d_%H%M%S}__{now:%f}__{safe_model}__{secrets.token_hex(2)[:3]}.md"


def _plain(value: Any) -> Any:
    if isinstance(value, Frozen):
        return {key: _plain(item) for key, item in value.as_kwargs().items()}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def _without_class_markers(value: Any) -> Any:
    """Serialized fields without the `class_` entries of nested frozen values (noise in a log)."""
    if isinstance(value, dict):
        return {key: _without_class_markers(item) for key, item in value.items() if key != "class_"}
    if isinstance(value, list):
        return [_without_class_markers(item) for item in value]
    return value


def _open_new_log(folder: Path, model: str | None) -> IO[str]:
    folder.mkdir(parents=True, exist_ok=True)
    while True:  # two calls in the same microsecond with the same 3 hex digits: just draw again
        try:
            return (folder / llm_log_file_name(model)).open("x", encoding="utf-8")
        except FileExistsError:
            continue


def _section_header(promise: MessagePromise) -> str:
    known = promise.known_beforehand
    role = known.get("role")
    if not role:
        field = promise.message_class.model_fields.get("role")
        role = field.default if field is not None and isinstance(field.default, str) else "user"
    model = known.get("model")
    return f"{role} / {model}" if model else str(role)


@miniagent
async def markdown_llm_logger_agent(
    ctx: InteractionContext,
    log_folder: str = "llm_logs/",
    request_metadata: Any = None,
    show_response_metadata: bool = True,
) -> None:
    """Writes the LLM call it is given (prompt messages, then the response) into a new markdown file."""
    metadata = _plain(request_metadata) or {}
    with _open_new_log(Path(log_folder), metadata.get("model")) as log:
        trace = ctx.get_agent_trace()[1:]  # the LLM agent and its callers (not this logger)
        if trace:
            log.write(f"Agent trace: `{display_trace(trace)}`\n\n")
        if metadata:
            log.write(f"```python\n{pformat(metadata, sort_dicts=False)}\n```\n")
        last_message = None
        async for promise in ctx.message_promises:
            header = _section_header(promise)
            log.write(f"\n{header}\n{'=' * len(header)}\n")
            try:
                async for token in promise:
                    log.write(str(token))
                last_message = await promise
            except Exception as error:  # a failed response is logged, not re-raised: its consumers get it
                log.write(f"\n\n**ERROR:** {type(error).__name__}: {error}\n")
                last_message = None
            log.write("\n")
            log.flush()
        if show_response_metadata and last_message is not None:
            skip = {"class_", *last_message.non_metadata_fields()}
            fields = {
                key: _without_class_markers(value) for key, value in last_message.serialize().items() if key not in skip
            }
            log.write(f"\n```json\n{json.dumps(fields, indent=2, ensure_ascii=False, default=str)}\n```\n")
