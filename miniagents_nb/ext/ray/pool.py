"""Starting (or joining) Ray, and the pool of `AgentWorker` actors each `ray_agent` dispatches its calls to.

Start-up needs nothing: with no Ray running, the first call starts a local one with the machine's CPUs, no
dashboard and quiet logging; `address=` (or `MINIAGENTS_NB_RAY_ADDRESS`) joins a cluster instead, after a quick
check that the address answers (Ray itself would retry for minutes). Actors are made lazily, one more whenever
every existing one is busy, up to the pool size (by default: the cluster's CPUs divided by `num_cpus` per actor).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from miniagents_nb.ext.ray.errors import RayAgentError, RayConnectionError, RayDependencyError, RayResourcesError

__all__ = ["ADDRESS_VARIABLE", "ActorPool", "PoolOptions", "ensure_ray", "import_ray"]

ADDRESS_VARIABLE = "MINIAGENTS_NB_RAY_ADDRESS"
"""The environment variable naming the Ray cluster to join (`host:port`, `ray://host:port` or `auto`)."""

_START_LOCK = threading.Lock()


def import_ray() -> Any:
    """The `ray` module, or a `RayDependencyError` that says how to install it."""
    try:
        import ray
    except ImportError as error:
        raise RayDependencyError(
            f'Running agents on Ray needs the `ray` package ({error}): pip install "miniagents-nb[ray]".'
        ) from None
    return ray


def _check_reachable(address: str) -> None:
    if address == "auto":
        return
    host_port = address.split("://", 1)[-1].rstrip("/")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise RayConnectionError(
            f"The Ray address {address!r} is not of the form host:port (or ray://host:port, or auto)."
        )
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise RayConnectionError(
            f"Cannot reach the Ray cluster at {address} ({error}): check the address (`address=` or "
            f"{ADDRESS_VARIABLE}) and that the cluster's head node is up, or unset it to run on a local Ray."
        ) from None


def ensure_ray(address: str | None = None, runtime_env: Mapping[str, Any] | None = None) -> Any:
    """Ray, initialized: joined at `address` (or `MINIAGENTS_NB_RAY_ADDRESS`), or a local one started now.

    `runtime_env` is the job's (e.g. `{"py_modules": [tools]}` ships a local module of agents to a cluster's
    workers); it only applies when this call starts or joins Ray, not to a Ray that is running already.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    with _START_LOCK:
        if ray.is_initialized():
            return ray
        address = address or os.environ.get(ADDRESS_VARIABLE) or None
        options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
        if runtime_env is not None:
            options["runtime_env"] = dict(runtime_env)
        if address is None:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, **options)
        else:
            _check_reachable(address)
            try:
                ray.init(address=address, **options)
            except ConnectionError as error:
                raise RayConnectionError(f"Cannot join the Ray cluster at {address}: {error}") from None
    return ray


@dataclass(frozen=True)
class PoolOptions:
    """How a `ray_agent`'s actors are made: resources per actor, concurrency, runtime env, pool size."""

    address: str | None = None
    pool_size: int | None = None
    num_cpus: float = 1
    resources: Mapping[str, float] | None = None
    max_concurrency: int | None = None
    runtime_env: Mapping[str, Any] | None = None
    ray_options: Mapping[str, Any] = field(default_factory=dict)
    start_timeout: float | None = 60.0
    """How long a new actor may wait for its resources (and its runtime env) before the call fails (None: ever)."""

    def demand(self) -> dict[str, float]:
        """The resources one actor asks for, named as Ray counts them (`CPU`, `GPU`, `memory`, custom names)."""
        demand = {"CPU": float(self.num_cpus)}
        for option, name in (("num_gpus", "GPU"), ("memory", "memory")):
            if self.ray_options.get(option):
                demand[name] = float(self.ray_options[option])
        demand.update({name: float(amount) for name, amount in (self.resources or {}).items()})
        return {name: amount for name, amount in demand.items() if amount > 0}

    def actor_options(self) -> dict[str, Any]:
        """The options of each actor, for Ray. `max_concurrency` (calls at once) is the actor's own
        (`AgentWorker(max_calls)`): Ray's limit of method calls at once stays above it, so that the input and the
        cancellation of a call always reach the actor (`_CONTROL_CALLS` more, at least Ray's default)."""
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError(
                f"max_concurrency must be at least 1 (calls an actor runs at once), not {self.max_concurrency}."
            )
        options: dict[str, Any] = {"num_cpus": self.num_cpus, **self.ray_options}
        if self.resources is not None:
            options["resources"] = dict(self.resources)
        if self.max_concurrency is not None and self.max_concurrency + _CONTROL_CALLS > _RAY_ASYNC_CONCURRENCY:
            options["max_concurrency"] = self.max_concurrency + _CONTROL_CALLS
        if self.runtime_env is not None:
            options["runtime_env"] = _runtime_env(self.runtime_env)
        return options


def _runtime_env(runtime_env: Mapping[str, Any]) -> dict[str, Any]:
    """An actor's runtime env, refused early (with what to do) when it names local code to ship.

    Ray uploads a local `working_dir` or local `py_modules` only for the whole job (`ray.init(runtime_env=...)`);
    an actor's own runtime env takes URIs only, and Ray's error would come at the first call, deep in its stack.
    """
    env = dict(runtime_env)
    local = (
        [str(env["working_dir"])] if isinstance(env.get("working_dir"), str) and not _is_uri(env["working_dir"]) else []
    )
    for module in env.get("py_modules") or ():
        if isinstance(module, ModuleType) or not _is_uri(str(module)):
            local.append(getattr(module, "__name__", str(module)))
    if local:
        raise RayAgentError(
            f"ray_agent(runtime_env=...) names local code ({', '.join(local)}), which Ray ships only for the whole "
            "job: pass that runtime env to `ensure_ray(runtime_env=...)` (or `ray.init(runtime_env=...)`) before "
            "the first call, and keep URIs, `pip`, `env_vars` and the like in the agent's own runtime_env."
        )
    return env


def _is_uri(value: str) -> bool:
    return "://" in value


_RAY_ASYNC_CONCURRENCY = 1000
"""Ray's default `max_concurrency` of an async actor (method calls at once)."""
_CONTROL_CALLS = 100
"""Room Ray leaves above `max_concurrency` calls for their `send_input` and `cancel_call` (and calls waiting)."""

_ACTOR_CLASS: Any = None


def _actor_class(ray: Any) -> Any:
    global _ACTOR_CLASS  # one actor class per process (Ray registers it once)
    if _ACTOR_CLASS is None:
        from miniagents_nb.ext.ray.worker import AgentWorker

        _ACTOR_CLASS = ray.remote(AgentWorker)
    return _ACTOR_CLASS


class ActorPool:
    """The actors of one `ray_agent`, with how many calls each runs now (calls go to the least busy one)."""

    def __init__(self, options: PoolOptions, alias: str = "") -> None:
        self.options = options
        self.alias = alias
        self._busy: dict[Any, int] = {}  # actor handle -> calls in flight
        self._started: set[Any] = set()  # the actors that have answered once
        self._size: int | None = options.pool_size

    @property
    def actors(self) -> list[Any]:
        """The live actor handles (e.g. to `ray.kill` one in a test of worker faults)."""
        return list(self._busy)

    def _pool_size(self, ray: Any) -> int:
        if self._size is None:
            cpus = float(ray.cluster_resources().get("CPU", 1))
            per_actor = self.options.num_cpus or 1
            self._size = max(1, int(cpus // per_actor))
        return self._size

    def acquire(self) -> Any:
        """An actor for one call (made now if every actor is busy and the pool is not full); `release` it after."""
        ray = ensure_ray(self.options.address)
        idle = [actor for actor, busy in self._busy.items() if busy == 0]
        if idle:
            actor = idle[0]
        elif len(self._busy) < self._pool_size(ray):
            self._check_fits(ray)
            actor = _actor_class(ray).options(**self.options.actor_options()).remote(self.options.max_concurrency)
            self._busy[actor] = 0
        else:
            actor = min(self._busy, key=self._busy.__getitem__)
        self._busy[actor] += 1
        return actor

    def _check_fits(self, ray: Any) -> None:
        """Fail now if one actor asks for more than the whole cluster has (Ray would wait for it for ever)."""
        totals = ray.cluster_resources()
        short = [(name, asked, float(totals.get(name, 0))) for name, asked in self.options.demand().items()]
        short = [(name, asked, has) for name, asked, has in short if asked > has]
        if short:
            asked_text = ", ".join(f"{asked:g} {name}" for name, asked, _has in short)
            has_text = ", ".join(f"{has:g} {name}" for name, _asked, has in short)
            raise RayResourcesError(
                f"Each Ray actor of agent {self.alias} asks for {asked_text}, but the whole cluster has {has_text}: "
                "it could never start. Ask for less (`num_cpus=0` or a fraction for an agent that mostly waits, "
                "`resources=`), or add nodes to the cluster before the first call."
            )

    def is_started(self, actor: Any) -> bool:
        return actor in self._started

    def mark_started(self, actor: Any) -> None:
        if actor in self._busy:
            self._started.add(actor)

    def start_failed(self, actor: Any) -> RayResourcesError:
        """An actor did not start within `start_timeout`: kill it (it must not take the resources later) and say
        what the cluster has free."""
        self.discard(actor)
        ray = import_ray()
        ray.kill(actor)
        free = ray.available_resources()
        wanted = self.options.demand()
        free_text = ", ".join(f"{float(free.get(name, 0)):g} {name}" for name in wanted)
        asked_text = ", ".join(f"{amount:g} {name}" for name, amount in wanted.items())
        return RayResourcesError(
            f"A Ray actor for agent {self.alias} (asking for {asked_text}) did not start within "
            f"{self.options.start_timeout:g} s; the cluster has {free_text} free. Other actors hold the rest: close "
            "the pools you are done with (`ray_target(agent).pool.close()`), ask for less (`num_cpus=0` or a "
            "fraction for agents that mostly wait), or raise `start_timeout` (e.g. for a slow runtime env)."
        )

    def release(self, actor: Any) -> None:
        if actor in self._busy:
            self._busy[actor] -= 1

    def close(self) -> None:
        """Kill this pool's actors (their CPUs go back to the cluster); a later call makes new ones."""
        actors, self._busy = list(self._busy), {}
        self._started.clear()
        if actors:
            ray = import_ray()
            for actor in actors:
                ray.kill(actor)

    def discard(self, actor: Any) -> None:
        """Forget an actor that died (the next call makes a new one)."""
        self._busy.pop(actor, None)
        self._started.discard(actor)
