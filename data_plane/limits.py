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

__all__ = ["WINDOW", "Admission", "Fleet", "Limiter", "Quota", "Refusal", "Window"]

WINDOW = 60  # seconds
Quota = tuple[int, int, int]  # limit, remaining, seconds until reset
Refusal = tuple[str, str, int]  # message, error code, seconds until it may pass


class Window:
    """Requests and tokens per second over the last `WINDOW` seconds, with running
    sums: a check reads two integers instead of adding up 60 buckets."""

    __slots__ = ("head", "requests", "seconds", "sum_requests", "sum_tokens", "tokens")

    def __init__(self) -> None:
        self.seconds = [0] * WINDOW  # which second each slot currently holds
        self.requests = [0] * WINDOW
        self.tokens = [0] * WINDOW
        self.sum_requests = self.sum_tokens = 0
        self.head = 0  # the latest second the slots have been moved up to

    def _advance(self, now: int) -> None:
        """Move the window to end at `now`: every slot then holds a second in
        (now - WINDOW, now], and the sums count exactly those seconds."""
        if now > self.head:
            for second in range(max(self.head + 1, now - WINDOW + 1), now + 1):
                self._recycle(second % WINDOW, second)
        elif now < self.head:  # the clock stepped back: drop the seconds now ahead of it
            for slot in range(WINDOW):
                if self.seconds[slot] > now:
                    self._recycle(slot, now - (now - slot) % WINDOW)
        self.head = now

    def _recycle(self, slot: int, second: int) -> None:
        if self.seconds[slot] != second:
            self.sum_requests -= self.requests[slot]
            self.sum_tokens -= self.tokens[slot]
            self.seconds[slot], self.requests[slot], self.tokens[slot] = second, 0, 0

    def add(self, second: int, requests: int, tokens: int) -> None:
        """Count into `second`: now, or an earlier second still in the window (a
        correction); a second that has left the window is ignored."""
        if second > self.head:
            self._advance(second)
        slot = second % WINDOW
        if self.seconds[slot] != second:
            return
        self.requests[slot] += requests
        self.tokens[slot] += tokens
        self.sum_requests += requests
        self.sum_tokens += tokens

    def totals(self, now: int) -> tuple[int, int]:
        self._advance(now)
        return self.sum_requests, self.sum_tokens

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
        raise `RateLimited` without counting anything. The x-ratelimit-* headers
        describe the tightest scope."""
        second = int(now)
        requests: Quota | None = None
        tokens_quota: Quota | None = None
        refusals: list[Refusal] = []
        for scope, policy in limits:
            scope_requests, scope_tokens = self._check(scope, policy, tokens, second, refusals)
            requests = _tighter(requests, scope_requests)
            tokens_quota = _tighter(tokens_quota, scope_tokens)
        if refusals:  # the one that lasts longest, with the tightest quotas
            message, code, retry_after = max(refusals, key=lambda r: r[2])
            raise RateLimited(
                message,
                code=code,
                retry_after=retry_after,
                headers=_headers(requests, tokens_quota),
            )
        scopes = tuple(scope for scope, _ in limits)
        for scope in scopes:
            window = self.windows.get(scope)
            if window is None:
                window = self.windows[scope] = Window()
            window.add(second, 1, tokens)
            self.in_flight[scope] = self.in_flight.get(scope, 0) + 1
            self.dirty.add((scope, second))
            self.dirty_in_flight.add(scope)
        return Admission(scopes, second, tokens, _headers(requests, tokens_quota))

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
        self, scope: str, policy: Policy, tokens: int, second: int, refusals: list[Refusal]
    ) -> tuple[Quota | None, Quota | None]:
        """This scope's (limit, remaining, reset) for requests and for tokens; a
        request over its rate or tokens adds to `refusals`; one over its
        concurrency is refused at once."""
        window = self.windows.get(scope)
        local_requests, local_tokens = window.totals(second) if window else (0, 0)
        fleet_requests, fleet_tokens = self.fleet.totals(scope, second)
        used_requests = local_requests + fleet_requests
        used_tokens = local_tokens + fleet_tokens
        if policy.max_concurrent is not None:
            running = self.in_flight.get(scope, 0) + self.fleet.in_flight.get(scope, 0)
            if running >= policy.max_concurrent:
                raise RateLimited(
                    f"Too many concurrent requests for this {_kind(scope)}: "
                    f"the limit is {policy.max_concurrent}.",
                    code="concurrency_limit_exceeded",
                    retry_after=1,
                )
        requests = tokens_quota = None
        if policy.rpm is not None:
            excess = used_requests + 1 - policy.rpm
            requests = (policy.rpm, -excess, self._reset(scope, second, excess, 1))
        if policy.tpm is not None:
            excess = used_tokens + tokens - policy.tpm
            tokens_quota = (policy.tpm, -excess, self._reset(scope, second, excess, 2))
        for quota, what, unit, code in (
            (requests, "Rate limit", "requests", "rate_limit_exceeded"),
            (tokens_quota, "Token rate limit", "tokens", "tokens_limit_exceeded"),
        ):
            if quota is not None and quota[1] < 0:
                message = (
                    f"{what} reached for this {_kind(scope)}: {quota[0]} {unit} "
                    f"per minute. Try again in {quota[2]} s."
                )
                refusals.append((message, code, quota[2]))
        return requests, tokens_quota

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


def _tighter(a: Quota | None, b: Quota | None) -> Quota | None:
    """The quota with less room left."""
    if a is None:
        return b
    if b is None:
        return a
    return a if a[1] <= b[1] else b


_NAMES = {
    kind: tuple(f"x-ratelimit-{part}-{kind}".encode() for part in ("limit", "remaining", "reset"))
    for kind in ("requests", "tokens")
}


def _headers(requests: Quota | None, tokens: Quota | None) -> tuple[tuple[bytes, bytes], ...]:
    """OpenAI's x-ratelimit-* headers for the given quotas."""
    found: list[tuple[bytes, bytes]] = []
    for kind, quota in (("requests", requests), ("tokens", tokens)):
        if quota is not None:
            limit_h, remaining_h, reset_h = _NAMES[kind]
            limit, remaining, reset = quota
            found += (
                (limit_h, b"%d" % limit),
                (remaining_h, b"%d" % max(remaining, 0)),
                (reset_h, b"%ds" % reset),
            )
    return tuple(found)
