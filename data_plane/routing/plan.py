"""Choosing the deployment for the next attempt of a request.

Deployments are tried tier by tier (lowest `priority` first): a tier is passed
over only when none of its deployments is available (open circuit, waiting out a
backoff or a Retry-After, or over its own quota). Within a tier the route's
strategy chooses, preferring deployments this request has not tried yet.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from data_plane.routing.health import DeploymentHealth, Health
from shared.routing import Deployment
from shared.state import Route

__all__ = ["EXPLORE", "Choice", "choose"]

EXPLORE = 0.05  # lowest_latency: the share of choices made at random, to notice recoveries
# (deployment) -> True when its quota admits one more request (and counts it)
Admit = Callable[[Deployment], bool]


class Choice:
    """A deployment to try, or none with the time (monotonic) one may become available."""

    __slots__ = ("deployment", "health", "over_quota", "wait_until")

    def __init__(
        self,
        deployment: Deployment | None,
        health: DeploymentHealth | None,
        wait_until: float | None = None,
        over_quota: bool = False,
    ) -> None:
        self.deployment = deployment
        self.health = health
        self.wait_until = wait_until
        self.over_quota = over_quota


def _tiers(route: Route) -> list[list[Deployment]]:
    if len(route.deployments) == 1:
        return [list(route.deployments)]
    by_priority: dict[int, list[Deployment]] = {}
    for d in route.deployments:
        by_priority.setdefault(d.priority, []).append(d)
    return [by_priority[p] for p in sorted(by_priority)]


def choose(
    route: Route,
    health: Health,
    now: float,
    tried: set[str],
    admit: Admit,
    allowed: Callable[[Deployment], bool] | None = None,
) -> Choice:
    over_quota = False
    for tier in _tiers(route):
        candidates = []
        for d in tier:
            if allowed is not None and not allowed(d):
                continue
            h = health.of(d.id, route.id)
            if h.available(now):
                candidates.append((d, h))
        fresh = [c for c in candidates if c[0].id not in tried] or candidates
        while fresh:
            picked = _pick(route.strategy, fresh)
            if admit(picked[0]):
                return Choice(*picked)
            over_quota = True
            fresh.remove(picked)
    waits = [
        health.of(d.id, route.id).available_at()
        for d in route.deployments
        if allowed is None or allowed(d)
    ]
    later = [w for w in waits if w > now]
    return Choice(None, None, min(later) if later else None, over_quota)


def _pick(
    strategy: str, candidates: list[tuple[Deployment, DeploymentHealth]]
) -> tuple[Deployment, DeploymentHealth]:
    if len(candidates) == 1:
        return candidates[0]
    if strategy == "least_in_flight":
        return min(candidates, key=lambda c: ((c[1].in_flight + 1) / c[0].weight, random.random()))
    if strategy == "lowest_latency":
        unmeasured = [c for c in candidates if c[1].ttft is None]
        if unmeasured:
            return random.choice(unmeasured)
        if random.random() < EXPLORE:
            return random.choice(candidates)
        return min(candidates, key=lambda c: c[1].ttft or 0.0)
    return random.choices(candidates, weights=[c[0].weight for c in candidates])[0]
