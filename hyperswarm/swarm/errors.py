"""The swarm's errors. JS hyperswarm throws plain errors with messages only; the codes here
name those messages."""

from __future__ import annotations

__all__ = ["SwarmDestroyedError", "SwarmError"]


class SwarmError(Exception):
    """Root of the swarm's errors (the swarm used wrongly, or used after it is gone)."""

    code: str = "SWARM_ERROR"


class SwarmDestroyedError(SwarmError):
    """The swarm is destroyed (JS 'Swarm has been destroyed')."""

    code = "SWARM_DESTROYED"
