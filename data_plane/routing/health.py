"""Each deployment's health as this replica sees it: a circuit breaker, requests in
flight, a moving average of time to first token, and when it may be tried again.

Kept in memory beside the snapshot, never in it; `report` rows go to PostgreSQL
in the background for the admin API. All times are `time.monotonic()`.
"""

from __future__ import annotations

import collections
from datetime import UTC, datetime

from shared.routing import BreakerPolicy, RetryPolicy

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "DeploymentHealth", "Health"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
LATENCY_WEIGHT = 0.2  # of the newest sample in the moving average
_MAX_RECENT = 1024


class DeploymentHealth:
    __slots__ = (
        "consecutive",
        "failures",
        "in_flight",
        "last_error",
        "last_error_at",
        "last_sample",
        "not_before",
        "opened_until",
        "probing",
        "recent",
        "requests",
        "route_id",
        "state",
        "ttft",
    )

    def __init__(self, route_id: str) -> None:
        self.route_id = route_id
        self.state = CLOSED
        self.in_flight = 0
        self.ttft: float | None = None  # seconds, moving average
        self.last_sample = 0.0
        self.consecutive = 0
        self.opened_until = 0.0
        self.probing = False  # half open: the one probe is out
        self.not_before = 0.0  # a backoff or the upstream's Retry-After
        self.recent: collections.deque[tuple[float, bool]] = collections.deque()
        self.requests = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None

    def available(self, now: float) -> bool:
        """May a new attempt go here now? (An open breaker whose cooldown is over
        turns half open and lets one probe through.)"""
        if now < self.not_before:
            return False
        if self.state == OPEN:
            if now < self.opened_until:
                return False
            self.state, self.probing = HALF_OPEN, False
        return not (self.state == HALF_OPEN and self.probing)

    def available_at(self) -> float:
        """When it may next be tried, as far as is known now."""
        return max(self.not_before, self.opened_until if self.state == OPEN else 0.0)

    def begin(self) -> bool:
        """An attempt starts here; True if it is the half-open breaker's probe."""
        self.in_flight += 1
        self.requests += 1
        if self.state == HALF_OPEN:
            self.probing = True
            return True
        return False

    def end(self, probe: bool) -> None:
        self.in_flight -= 1
        if probe and self.state == HALF_OPEN:  # the probe ended without a verdict
            self.probing = False

    def succeeded(self, now: float, latency: float | None, probe: bool) -> None:
        """Only the probe's success closes a breaker that is not closed: attempts that
        began before it opened say nothing about the deployment now."""
        if latency is not None:
            self.ttft = (
                latency if self.ttft is None else self.ttft + LATENCY_WEIGHT * (latency - self.ttft)
            )
            self.last_sample = now
        if self.state == CLOSED:
            self.consecutive = 0
            self._remember(now, failed=False)
        elif probe and self.state == HALF_OPEN:
            self.state, self.probing, self.consecutive = CLOSED, False, 0
            self.recent.clear()

    def failed(
        self,
        now: float,
        error: str,
        breaker: BreakerPolicy,
        retry: RetryPolicy,
        retry_after: float | None,
        probe: bool = False,
    ) -> None:
        self.failures += 1
        self.consecutive += 1
        self.last_error = error[:300].replace("\0", "")
        self.last_error_at = datetime.now(UTC)
        self._remember(now, failed=True)
        backoff = min(retry.backoff * 2 ** min(self.consecutive - 1, 30), retry.max_backoff)
        self.not_before = max(self.not_before, now + max(backoff, retry_after or 0.0))
        if (
            (probe and self.state == HALF_OPEN)
            or (self.state == CLOSED and self._tripped(now, breaker))
            or self.state == OPEN  # a late failure: out for a cooldown after the last one
        ):
            self.state, self.probing = OPEN, False
            self.opened_until = max(self.opened_until, now + breaker.cooldown)

    def _remember(self, now: float, failed: bool) -> None:
        self.recent.append((now, failed))
        if len(self.recent) > _MAX_RECENT:
            self.recent.popleft()

    def _tripped(self, now: float, breaker: BreakerPolicy) -> bool:
        if self.consecutive >= breaker.failures:
            return True
        recent = self.recent
        while recent and recent[0][0] < now - breaker.window:
            recent.popleft()
        if len(recent) < breaker.min_requests:
            return False
        failed = sum(1 for _, f in recent if f)
        return failed >= breaker.ratio * len(recent)


class Health:
    """Every deployment's health on this replica, by deployment id."""

    def __init__(self) -> None:
        self.deployments: dict[str, DeploymentHealth] = {}

    def of(self, deployment_id: str, route_id: str) -> DeploymentHealth:
        found = self.deployments.get(deployment_id)
        if found is None:
            found = self.deployments[deployment_id] = DeploymentHealth(route_id)
        return found

    def forget_except(self, deployment_ids: set[str]) -> None:
        """Drop the health of deployments that no longer exist (and are idle)."""
        for gone in [
            d for d, h in self.deployments.items() if d not in deployment_ids and not h.in_flight
        ]:
            del self.deployments[gone]
