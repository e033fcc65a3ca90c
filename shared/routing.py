"""A route's deployments and settings: value types shared by events and the state.

A route (a public model name) owns one or more deployments. Each deployment is
one upstream (a provider and its model name) with a weight, a priority tier, an
optional quota of its own and its timeouts. The route says how to choose among
them (`strategy`), how to retry (`RetryPolicy`) and when to take a failing
deployment out of rotation (`BreakerPolicy`).

These structs are encoded as maps (they appear in the event log, which is also
the audit log); every field has a default, so older events decode.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "STRATEGIES",
    "BreakerPolicy",
    "Deployment",
    "RetryPolicy",
    "Timeouts",
]

# weighted: random by weight; least_in_flight: fewest requests running here per
# unit of weight; lowest_latency: the smallest moving average of time to first token
STRATEGIES = ("weighted", "least_in_flight", "lowest_latency")


class Timeouts(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """Seconds. `first_token`: until a stream's first event; `idle`: the longest gap
    between two stream events; `response`: until a non-streaming answer is complete
    (its headers come with it); `total`: the whole attempt."""

    connect: float = 5.0
    first_token: float = 10.0
    idle: float = 30.0
    response: float = 120.0
    total: float = 600.0


class Deployment(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    id: str
    provider_id: str
    upstream_model: str
    weight: int = 1
    priority: int = 0  # tier: lower first; the next tier only when none of this one is available
    rpm: int | None = None  # the provider account's own quota, held across the fleet
    tpm: int | None = None
    timeouts: Timeouts = Timeouts()
    # the upstream continues a partial assistant message sent as the last message
    # (prefill); None: as the provider kind says
    continuation: bool | None = None


class RetryPolicy(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """Attempts before the commit point (the first upstream event of a stream, or the
    whole answer of a non-stream)."""

    max_attempts: int = 3
    # seconds for all attempts of one request: at least a non-stream's `response` timeout
    deadline: float = 120.0
    backoff: float = 0.05  # first wait before retrying the same deployment, doubled each time
    max_backoff: float = 2.0
    max_retry_after: float = 10.0  # a longer Retry-After is not waited for: the client gets it


class BreakerPolicy(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """A deployment opens after `failures` consecutive failures, or when at least
    `ratio` of the last `window` seconds' attempts (at least `min_requests`) failed;
    it stays open `cooldown` seconds, then lets one probe through."""

    failures: int = 5
    ratio: float = 0.5
    window: float = 30.0
    min_requests: int = 20
    cooldown: float = 10.0
