"""What the planes agree on about live data plane replicas."""

from __future__ import annotations

__all__ = ["LIVENESS"]

# seconds: a replica whose last report is older than this has stopped counting (its
# requests in flight, and the event schema it understands, are no longer taken into account)
LIVENESS = 10.0
