"""Replay: LLM replies read back from a run store instead of asking the provider again.

A recorded LLM reply carries `request_key`: a SHA-256 over the provider, the model, the parameters that shape the
answer and the message dicts sent (canonical JSON, credentials masked, transport settings left out), stored in the
`llm_requests` table with how the reply was cut into tokens. `ReplaySource` finds the reply of a key: the
occurrences of the newest run that holds it, in call order (the n-th identical request of a process gets the n-th
recorded reply; past the last, the last again), with each token's delay as it was recorded. The LLM agents
(`miniagents_nb.ext.llms`) use it under `MINIAGENTS_NB_LLM=replay` or `MiniAgents(replay_from=...)`.

Standard library only; nothing here talks to a provider.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from miniagents_nb.errors import RunStoreError
from miniagents_nb.messages import Message
from miniagents_nb.runs.encoding import SECRET_MASK, unpack_token_lengths, unpack_tokens
from miniagents_nb.runs.reading import load_messages
from miniagents_nb.runs.store import flush_stores_of

__all__ = [
    "DEFAULT_RUNS_PATH",
    "ReplaySource",
    "ReplayedReply",
    "TRANSPORT_PARAMETERS",
    "canonical_request",
    "configure_read",
    "default_runs_path",
    "replay_source",
    "request_key",
]

DEFAULT_RUNS_PATH = ".miniagents/runs.sqlite"
"""The store replay reads when `MINIAGENTS_NB_RUNS` does not name one (where a notebook records by default)."""

TRANSPORT_PARAMETERS = frozenset(
    {
        "api_key",
        "api_key_env",
        "async_client",
        "base_url",
        "default_headers",
        "default_query",
        "extra_headers",
        "extra_query",
        "http_client",
        "max_retries",
        "stream",
        "stream_options",
        "timeout",
    }
)
"""Parameters that say how a request travels, not what it asks: left out of the key (so a recording made against
one server replays for another, and a key never holds a credential)."""

_SECRET_WORDS = ("api_key", "apikey", "api-key", "authorization", "password", "secret", "token", "credential")


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS) and not lowered.endswith("tokens")


def _plain(value: Any) -> Any:
    """JSON-able, with every credential-looking mapping key masked (at any depth)."""
    if isinstance(value, Mapping):
        return {str(key): SECRET_MASK if _is_secret(str(key)) else _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (frozenset, set)):
        return sorted((_plain(item) for item in value), key=repr)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return f"<{type(value).__name__}>"


def canonical_request(
    provider: str, model: str | None, parameters: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The request as the key sees it: transport parameters dropped, credentials masked, plain JSON values."""
    kept = {name: value for name, value in parameters.items() if name not in TRANSPORT_PARAMETERS}
    return {"provider": provider, "model": model, "parameters": _plain(kept), "messages": _plain(list(messages))}


def request_key(
    provider: str, model: str | None, parameters: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]
) -> str:
    """The stable key of an LLM request (the same in every process and on every machine)."""
    text = json.dumps(
        canonical_request(provider, model, parameters, messages),
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def default_runs_path() -> str:
    """`MINIAGENTS_NB_RUNS`, else `.miniagents/runs.sqlite` (relative to the working directory)."""
    return os.environ.get("MINIAGENTS_NB_RUNS", "").strip() or DEFAULT_RUNS_PATH


@dataclass(frozen=True)
class ReplayedReply:
    """A recorded LLM reply, ready to stream back."""

    message: Message
    """The reply as recorded (its fields are the metadata and usage the provider gave)."""
    tokens: tuple[str, ...]
    """Its text cut as it was streamed (one token for a reply that was not streamed)."""
    delays: tuple[float, ...]
    """Seconds to wait before each token to keep the recorded timing (from the call's start to the first token,
    then between tokens; as precise as the recording's token sampling)."""
    run_id: int
    call_id: int


_KEYED_VERSION = 2
"""The schema version that added `llm_requests.request_key` (`runs.schema`)."""

_LOOKUP = """
SELECT l.run_id, l.call_id, l.position, l.token_lengths, p.hash_key, p.token_counts, p.token_times, p.replied_at,
    c.started_at
FROM llm_requests l
JOIN replied p ON p.run_id = l.run_id AND p.call_id = l.call_id AND p.position = l.position
JOIN calls c ON c.run_id = l.run_id AND c.call_id = l.call_id
WHERE l.request_key = ? AND p.hash_key IS NOT NULL
ORDER BY l.run_id DESC, l.call_id, l.position
"""


def _tokens(content: Any, lengths: tuple[int, ...]) -> tuple[str, ...]:
    text = content if isinstance(content, str) else ""
    if not text:
        return ()
    if not lengths or sum(lengths) != len(text):
        return (text,)
    tokens: list[str] = []
    start = 0
    for length in lengths:
        tokens.append(text[start : start + length])
        start += length
    return tuple(tokens)


def _delays(count: int, counts: bytes | None, times: bytes | None, start: float | None) -> tuple[float, ...]:
    sample_counts, sample_times = unpack_tokens(counts, times)
    if not count or not sample_times:
        return (0.0,) * count
    arrivals: list[float] = []
    previous = 0
    for seen, at in zip(sample_counts, sample_times, strict=False):
        arrivals.extend([at] * max(0, min(seen, count) - previous))
        previous = max(previous, min(seen, count))
    arrivals.extend([arrivals[-1] if arrivals else sample_times[-1]] * (count - len(arrivals)))
    delays: list[float] = []
    last = start if start is not None else arrivals[0]
    for at in arrivals:
        delays.append(max(0.0, at - last))
        last = at
    return tuple(delays)


class ReplaySource:
    """The recorded LLM replies of one store file, by request key (read-only; thread-safe).

    `MiniAgents(replay_from=ReplaySource(path, keep_timing=True))` replays with the recorded timing."""

    def __init__(self, path: str | os.PathLike[str], *, keep_timing: bool = False, busy_timeout_s: float = 5.0) -> None:
        self.path = str(Path(path).expanduser().absolute())
        self.keep_timing = keep_timing
        """Wait before each token as long as the recording did (else tokens come as fast as they are read)."""
        self.busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._replies: dict[str, list[ReplayedReply]] = {}
        self._taken: dict[str, int] = {}

    def _connect(self) -> sqlite3.Connection:
        flush_stores_of(self.path)  # what this process recorded there so far is readable
        if not Path(self.path).exists():
            raise RunStoreError(
                f"There is no run store at {self.path} to replay LLM replies from: record a run there first "
                "(`MiniAgents(record_to=...)`, or a notebook with `%load_ext miniagents_nb`), or point "
                "MINIAGENTS_NB_RUNS at the store that holds the recording."
            )
        try:
            connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
            configure_read(connection, self.busy_timeout_s)
        except sqlite3.Error as error:
            raise RunStoreError(f"Cannot open the run store {self.path} to replay from: {error}.") from error
        return connection

    def _load(self, key: str) -> list[ReplayedReply]:
        connection = self._connect()
        try:
            if int(connection.execute("PRAGMA user_version").fetchone()[0]) < _KEYED_VERSION:
                return []  # written before replay keys existed: nothing in it can match
            rows = connection.execute(_LOOKUP, (key,)).fetchall()
            if not rows:
                return []
            newest = rows[0][0]
            rows = [row for row in rows if row[0] == newest]
            messages = load_messages(connection, [row[4] for row in rows])
        except sqlite3.Error as error:
            raise RunStoreError(f"Cannot read the run store {self.path} to replay from: {error}.") from error
        finally:
            connection.close()
        replies: list[ReplayedReply] = []
        for run_id, call_id, _, lengths, hash_key, counts, times, replied_at, started_at in rows:
            message = messages.get(hash_key)
            if message is None:
                continue
            tokens = _tokens(getattr(message, "content", None), unpack_token_lengths(lengths))
            start = started_at if started_at is not None else replied_at
            replies.append(ReplayedReply(message, tokens, _delays(len(tokens), counts, times, start), run_id, call_id))
        return replies

    def reply_for(self, key: str) -> ReplayedReply | None:
        """The next recorded reply of the request `key` (None when the store holds none)."""
        with self._lock:
            replies = self._replies.get(key)
            if replies is None:
                replies = self._replies[key] = self._load(key)
            if not replies:
                del self._replies[key]  # a later recording may hold it: look again next time
                return None
            taken = self._taken.get(key, 0)
            self._taken[key] = taken + 1
            return replies[min(taken, len(replies) - 1)]

    def recorded_requests(self, provider: str | None = None) -> int:
        """How many LLM requests with a key the store holds (of `provider` when given)."""
        connection = self._connect()
        try:
            query = "SELECT COUNT(*) FROM llm_requests WHERE request_key IS NOT NULL"
            if provider is not None:
                return int(connection.execute(f"{query} AND provider = ?", (provider,)).fetchone()[0])
            return int(connection.execute(query).fetchone()[0])
        except sqlite3.Error:
            return 0
        finally:
            connection.close()

    def unkeyed_requests(self) -> int:
        """How many recorded LLM requests carry no replay key (recorded before replay existed: schema version 1,
        or runs a version 1 file held when it was migrated); they cannot be replayed."""
        try:
            connection = self._connect()
        except RunStoreError:
            return 0
        try:
            if int(connection.execute("PRAGMA user_version").fetchone()[0]) < _KEYED_VERSION:
                return int(connection.execute("SELECT COUNT(*) FROM llm_requests").fetchone()[0])
            return int(connection.execute("SELECT COUNT(*) FROM llm_requests WHERE request_key IS NULL").fetchone()[0])
        except sqlite3.Error:
            return 0
        finally:
            connection.close()

    def recorded_provider(self) -> str | None:
        """The provider of the newest recorded request with a key (the mismatch error names it when it is not the
        requesting agent's: `default_llm_agent()` picks its provider by the API keys set, even under replay)."""
        try:
            connection = self._connect()
        except RunStoreError:
            return None
        try:
            row = connection.execute(
                "SELECT provider FROM llm_requests WHERE request_key IS NOT NULL ORDER BY run_id DESC, call_id DESC "
                "LIMIT 1"
            ).fetchone()
        except sqlite3.Error:
            return None
        finally:
            connection.close()
        return None if row is None else str(row[0])

    def __repr__(self) -> str:
        return f"ReplaySource({self.path!r})"


def configure_read(connection: sqlite3.Connection, busy_timeout_s: float) -> None:
    """A busy timeout only (a read-only connection cannot switch the journal mode)."""
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")


_sources: dict[str, ReplaySource] = {}
_sources_lock = threading.Lock()


def replay_source(target: Any = None) -> ReplaySource:
    """The replay source of `target`: a `ReplaySource` as is, a `RunStore` (anything with a `path`) or a path; None
    means `default_runs_path()`. One source per file for the process (its occurrence cursors are shared)."""
    if isinstance(target, ReplaySource):
        return target
    path = getattr(target, "path", target)
    if path is None:
        path = default_runs_path()
    if not isinstance(path, (str, os.PathLike)):
        raise RunStoreError(f"replay_from= takes a run store, a path or a ReplaySource, got {type(target).__name__}.")
    key = str(Path(path).expanduser().absolute())
    with _sources_lock:
        source = _sources.get(key)
        if source is None:
            source = _sources[key] = ReplaySource(key)
        return source
