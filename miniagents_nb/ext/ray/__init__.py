"""Agents that run on Ray: `ray_agent(agent)` runs an agent's calls in Ray workers and streams the replies back.

Install with `pip install "miniagents-nb[ray]"`. Nothing here is imported by the core, and `ray` itself is
imported only when a `ray_agent` is first called. See docs/ray.md.
"""

from __future__ import annotations

from miniagents_nb.ext.ray.agent import RemoteAgentTarget, ray_agent, ray_target
from miniagents_nb.ext.ray.errors import (
    RayAgentError,
    RayAgentImportError,
    RayConnectionError,
    RayDependencyError,
    RayResourcesError,
    RayWorkerDiedError,
    RemoteAgentError,
    WireFormatError,
)
from miniagents_nb.ext.ray.pool import ADDRESS_VARIABLE, ensure_ray

__all__ = [
    "ADDRESS_VARIABLE",
    "RayAgentError",
    "RayAgentImportError",
    "RayConnectionError",
    "RayDependencyError",
    "RayResourcesError",
    "RayWorkerDiedError",
    "RemoteAgentError",
    "RemoteAgentTarget",
    "WireFormatError",
    "ensure_ray",
    "ray_agent",
    "ray_target",
]
