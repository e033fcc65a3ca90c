"""Rate, token and concurrency limits, counted in memory.

Each limited scope (a key, a tenant) has a sliding window of 60 one-second
buckets of requests and tokens admitted here, and a count of requests in flight.
`Fleet` holds what the other replicas reported (see `data_plane/fleet.py`); a
request is admitted when this replica's counts plus the fleet's leave room. The
error bound across replicas is what the others admit between two reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.errors import RateLimited
from shared.state import Policy

__all__ = ["WINDOW", "Admission", "Fleet", "Limiter", "Window"]

WINDOW = 60  # seconds


class Window:
    """Requests and tokens per second over the last `WINDOW` seconds."""

    __slots__ = ("requests", "seconds", "tokens")

    def __init__(self) -> None:
        self.seconds = [0] * WINDOW  # which second each slot currently holds
        self.requests = [0] * WINDOW
        self.tokens = [0] * WINDOW

    def add(self, second: int, requests: int, tokens: int) -> None:
        slot = second % WINDOW
        if self.seconds[slot] != second:
            self.seconds[slot], self.requests[slot], self.tokens[slot] = second, 0, 0
        self.requests[slot] += requests
        self.tokens[slot] += tokens

    def totals(self, now: int) -> tuple[int, int]:
        requests = tokens = 0
        oldest = now - WINDOW
        for slot in range(WINDOW):
            if self.seconds[slot] > oldest:
                requests += self.requests[slot]
                tokens += self.tokens[slot]
        return requests, tokens

    def per_second(self, now: int) -> dict[int, tuple[int, int]]:
        oldest = now - WINDOW
        return {
            s: (r, t)
            for s, r, t in zip(self.seconds, self.requests, self.tokens, strict=True)
            if s > oldest and (r or t)
        }


@dataclass
class Fleet:
    """What the other replicas reported: per scope, per second, and in flight."""

    windows: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)

    def totals(self, scope: str, now: int) -> tuple[int, int]:
        oldest = now - WINDOW
        requests = tokens = 0
        for second, (r, t) in self.windows.get(scope, {}).items():
            if second > oldest:
                requests += r
                tokens += t
        return requests, tokens

    def oldest_seconds(self, scope: str, now: int) -> list[tuple[int, int, int]]:
        oldest = now - WINDOW
        return [(s, r, t) for s, (r, t) in self.windows.get(scope, {}).items() if s > oldest]


@dataclass(frozen=True)
class Admission:
    """What one admitted request holds: the scopes it counts against, when, and
    the tokens it reserved; `headers` are OpenAI's x-ratelimit-* for the client."""

    scopes: tuple[str, ...]
    second: int
    reserved_tokens: int
    headers: tuple[tuple[bytes, bytes], ...]


class Limiter:
    def __init__(self) -> None:
        self.windows: dict[str, Window] = {}
        self.in_flight: dict[str, int] = {}
        self.fleet = Fleet()
        self.dirty: set[tuple[str, int]] = set()  # (scope, second) changed since the last report
        self.dirty_in_flight: set[str] = set()

    def admit(self, limits: list[tuple[str, Policy]], tokens: int, now: float) -> Admission:
        """Admit one request estimated at `tokens` against every (scope, policy), or
        raise `RateLimited` without counting anything."""
        second = int(now)
        headers: list[tuple[bytes, bytes]] = []
        for scope, policy in limits:
            headers += self._check(scope, policy, tokens, second, now)
        scopes = tuple(scope for scope, _ in limits)
        for scope in scopes:
            self.windows.setdefault(scope, Window()).add(second, 1, tokens)
            self.in_flight[scope] = self.in_flight.get(scope, 0) + 1
            self.dirty.add((scope, second))
            self.dirty_in_flight.add(scope)
        return Admission(scopes, second, tokens, tuple(headers))

    def settle(self, admission: Admission, tokens: int) -> None:
        """The request ended having used `tokens`: correct the reservation, free its slot."""
        for scope in admission.scopes:
            window = self.windows.get(scope)
            if window is not None and window.seconds[admission.second % WINDOW] == admission.second:
                window.add(admission.second, 0, tokens - admission.reserved_tokens)
                self.dirty.add((scope, admission.second))
            self.in_flight[scope] = max(self.in_flight.get(scope, 1) - 1, 0)
            self.dirty_in_flight.add(scope)

    def bucket(self, scope: str, second: int) -> tuple[int, int]:
        window = self.windows.get(scope)
        if window is None or window.seconds[second % WINDOW] != second:
            return 0, 0
        slot = second % WINDOW
        return window.requests[slot], window.tokens[slot]

    def _check(
        self, scope: str, policy: Policy, tokens: int, second: int, now: float
    ) -> list[tuple[bytes, bytes]]:
        window = self.windows.get(scope)
        local_requests, local_tokens = window.totals(second) if window else (0, 0)
        fleet_requests, fleet_tokens = self.fleet.totals(scope, second)
        used_requests = local_requests + fleet_requests
        used_tokens = local_tokens + fleet_tokens
        headers: list[tuple[bytes, bytes]] = []
        if policy.max_concurrent is not None:
            running = self.in_flight.get(scope, 0) + self.fleet.in_flight.get(scope, 0)
            if running >= policy.max_concurrent:
                raise RateLimited(
                    f"Too many concurrent requests for this {_kind(scope)}: "
                    f"the limit is {policy.max_concurrent}.",
                    code="concurrency_limit_exceeded",
                    retry_after=1,
                )
        if policy.rpm is not None:
            reset = self._reset(scope, second, used_requests + 1 - policy.rpm, 1)
            headers += _headers("requests", policy.rpm, policy.rpm - used_requests - 1, reset)
            if used_requests + 1 > policy.rpm:
                raise RateLimited(
                    f"Rate limit reached for this {_kind(scope)}: {policy.rpm} requests "
                    f"per minute. Try again in {reset} s.",
                    code="rate_limit_exceeded",
                    retry_after=reset,
                    headers=tuple(headers),
                )
        if policy.tpm is not None:
            reset = self._reset(scope, second, used_tokens + tokens - policy.tpm, 2)
            headers += _headers("tokens", policy.tpm, policy.tpm - used_tokens - tokens, reset)
            if used_tokens + tokens > policy.tpm:
                raise RateLimited(
                    f"Token rate limit reached for this {_kind(scope)}: {policy.tpm} tokens "
                    f"per minute. Try again in {reset} s.",
                    code="tokens_limit_exceeded",
                    retry_after=reset,
                    headers=tuple(headers),
                )
        return headers

    def _reset(self, scope: str, second: int, excess: int, column: int) -> int:
        """Seconds until enough old buckets leave the window to free `excess` units."""
        if excess <= 0:
            return 0
        window = self.windows.get(scope)
        buckets: dict[int, int] = {}
        if window is not None:
            for s, counts in window.per_second(second).items():
                buckets[s] = buckets.get(s, 0) + counts[column - 1]
        for s, r, t in self.fleet.oldest_seconds(scope, second):
            buckets[s] = buckets.get(s, 0) + (r if column == 1 else t)
        freed = 0
        for s in sorted(buckets):
            freed += buckets[s]
            if freed >= excess:
                return max(s + WINDOW - second, 1)
        return WINDOW


def _kind(scope: str) -> str:
    return scope.partition(":")[0]


_HEADER_NAMES = {
    name: (
        f"x-ratelimit-limit-{name}".encode(),
        f"x-ratelimit-remaining-{name}".encode(),
        f"x-ratelimit-reset-{name}".encode(),
    )
    for name in ("requests", "tokens")
}


def _headers(name: str, limit: int, remaining: int, reset: int) -> list[tuple[bytes, bytes]]:
    limit_h, remaining_h, reset_h = _HEADER_NAMES[name]
    return [
        (limit_h, b"%d" % limit),
        (remaining_h, b"%d" % max(remaining, 0)),
        (reset_h, b"%ds" % reset),
    ]
