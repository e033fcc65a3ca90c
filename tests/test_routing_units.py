"""Breakers, choosing a deployment, and reading streams: the pure parts of routing."""

from __future__ import annotations

import random
from collections import Counter

import msgspec
import pytest

from data_plane.routing.health import CLOSED, HALF_OPEN, OPEN, DeploymentHealth, Health
from data_plane.routing.plan import choose
from data_plane.transport.attempt import _retry_after
from data_plane.transport.stream import StreamState
from shared.routing import BreakerPolicy, Deployment, RetryPolicy
from shared.state import Route

BREAKER = BreakerPolicy(failures=3, ratio=0.5, window=10, min_requests=10, cooldown=5)
RETRY = RetryPolicy(backoff=0.1, max_backoff=1.0)


def _route(*deployments: Deployment, strategy: str = "weighted") -> Route:
    return Route(id="r", model="m", tenant_ids=None, deployments=deployments, strategy=strategy)


def _fail(
    h: DeploymentHealth, now: float, retry_after: float | None = None, probe: bool = False
) -> None:
    h.failed(now, "upstream_error", BREAKER, RETRY, retry_after, probe)


def test_breaker_opens_after_consecutive_failures_then_one_probe_closes_it() -> None:
    h = DeploymentHealth("r")
    for i in range(3):
        assert h.state == CLOSED
        _fail(h, 100.0 + i)
    assert h.state == OPEN
    assert not h.available(104.9)
    assert h.available(107.1)  # cooldown over: half open, one probe may go
    assert h.state == HALF_OPEN
    probe = h.begin()
    assert probe
    assert not h.available(107.2)  # the probe is out: nobody else
    h.succeeded(107.3, 0.05, probe)
    h.end(probe)
    assert h.state == CLOSED
    assert h.available(107.4)


def test_a_failed_probe_opens_the_breaker_again() -> None:
    h = DeploymentHealth("r")
    for i in range(3):
        _fail(h, 100.0 + i)
    assert h.available(110.0)
    probe = h.begin()
    _fail(h, 110.1, probe=probe)
    h.end(probe)
    assert h.state == OPEN
    assert not h.available(114.0)
    assert h.available(115.2)


def test_a_probe_without_verdict_lets_another_probe_go() -> None:
    h = DeploymentHealth("r")
    for i in range(3):
        _fail(h, 100.0 + i)
    assert h.available(110.0)
    h.end(h.begin())  # e.g. the client left before the answer
    assert h.available(110.1)


def test_only_the_probe_decides_a_breaker_that_is_not_closed() -> None:
    """Attempts that began before the breaker opened end later: their verdicts say
    nothing about the deployment now."""
    h = DeploymentHealth("r")
    early = h.begin()  # starts while closed
    for i in range(3):
        _fail(h, 100.0 + i)
    assert h.state == OPEN
    h.succeeded(103.0, 0.1, early)  # a late success does not close it
    h.end(early)
    assert h.state == OPEN
    assert not h.available(106.0)
    assert h.available(107.1)
    probe, late = h.begin(), False
    h.succeeded(107.2, 0.1, late)  # not the probe's verdict: still half open
    assert h.state == HALF_OPEN
    h.end(late)  # not the probe: the probe is still out
    assert not h.available(107.3)
    h.succeeded(107.4, 0.1, probe)
    h.end(probe)
    assert h.state == CLOSED


def test_breaker_opens_on_failure_ratio_without_consecutive_failures() -> None:
    h = DeploymentHealth("r")
    now = 100.0
    for i in range(20):  # fail, succeed, fail, succeed: never 3 in a row
        now += 0.01
        if i % 2:
            h.succeeded(now, 0.1, False)
        else:
            h.not_before = 0.0
            _fail(h, now)
        if h.state == OPEN:
            break
    assert h.state == OPEN
    assert h.consecutive < BREAKER.failures


def test_retry_after_and_backoff_keep_a_refusing_deployment_out() -> None:
    h = DeploymentHealth("r")
    _fail(h, 100.0, retry_after=2.0)
    assert not h.available(101.9)
    assert h.available(102.01)
    _fail(h, 103.0)  # second in a row, no Retry-After: backoff 0.2 s
    assert not h.available(103.19)
    assert h.available(103.21)


def _deployment(name: str, weight: int = 1, priority: int = 0) -> Deployment:
    return Deployment(
        id=name, provider_id="p", upstream_model="u", weight=weight, priority=priority
    )


def _always(_: Deployment) -> bool:
    return True


def test_weighted_choice_follows_the_weights() -> None:
    random.seed(7)
    route = _route(_deployment("a", 3), _deployment("b", 1))
    health = Health()
    counts = Counter(choose(route, health, 1.0, set(), _always).deployment.id for _ in range(4000))  # type: ignore[union-attr]
    assert 0.72 < counts["a"] / 4000 < 0.78


def test_a_retry_prefers_a_deployment_not_tried_yet() -> None:
    route = _route(_deployment("a"), _deployment("b"))
    for _ in range(50):
        assert choose(route, Health(), 1.0, {"a"}, _always).deployment.id == "b"  # type: ignore[union-attr]
    # everything tried: any available one again
    assert choose(route, Health(), 1.0, {"a", "b"}, _always).deployment is not None


def test_the_next_tier_only_when_the_first_is_unavailable() -> None:
    route = _route(_deployment("a", priority=0), _deployment("b", priority=1))
    health = Health()
    assert {choose(route, health, 1.0, set(), _always).deployment.id for _ in range(50)} == {"a"}  # type: ignore[union-attr]
    for i in range(3):
        _fail(health.of("a", "r"), 1.0 + i)
    assert choose(route, health, 4.0, set(), _always).deployment.id == "b"  # type: ignore[union-attr]
    # over its quota is unavailable too
    fresh = Health()
    picked = choose(route, fresh, 1.0, set(), lambda d: d.id != "a")
    assert picked.deployment is not None
    assert picked.deployment.id == "b"


def test_nothing_available_says_when_something_will_be() -> None:
    route = _route(_deployment("a"))
    health = Health()
    _fail(health.of("a", "r"), 10.0, retry_after=3.0)
    choice = choose(route, health, 10.5, set(), _always)
    assert choice.deployment is None
    assert choice.wait_until == pytest.approx(13.0)
    over = choose(route, Health(), 10.5, set(), lambda d: False)
    assert over.deployment is None
    assert over.over_quota


def test_least_in_flight_and_lowest_latency() -> None:
    route = _route(_deployment("a"), _deployment("b"), strategy="least_in_flight")
    health = Health()
    for _ in range(3):
        health.of("a", "r").begin()
    assert choose(route, health, 1.0, set(), _always).deployment.id == "b"  # type: ignore[union-attr]
    route = _route(_deployment("a"), _deployment("b"), strategy="lowest_latency")
    health = Health()
    health.of("a", "r").succeeded(1.0, 0.5, False)
    # b was never measured: it is tried first
    assert choose(route, health, 1.0, set(), _always).deployment.id == "b"  # type: ignore[union-attr]
    health.of("b", "r").succeeded(1.0, 0.05, False)
    random.seed(3)
    counts = Counter(choose(route, health, 2.0, set(), _always).deployment.id for _ in range(1000))  # type: ignore[union-attr]
    assert counts["b"] > 900
    assert counts["a"] > 0


def _event(payload: object) -> bytes:
    return msgspec.json.encode(payload)


def _chunk(content: str | None = None, finish: str | None = None, **extra: object) -> bytes:
    delta = {} if content is None else {"content": content}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return _event({"id": "c1", "created": 1, "model": "m", "choices": [choice], **extra})


def test_stream_state_finish_malformed_and_usage() -> None:
    state = StreamState(wants_usage=False, keep_text=True)
    out = state.take([_chunk("a"), b'{"id": "c1", "choi', _chunk(" b")])
    assert out.count(b"data: ") == 2
    assert state.malformed == 1
    assert not state.finished
    usage = _event(
        {"id": "c1", "choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}
    )
    out = state.take([_chunk(finish="stop"), usage, b"[DONE]"])
    assert state.finished
    assert out.count(b"data: ") == 1  # the usage event was not asked for; [DONE] is held back
    assert (state.prompt_tokens, state.completion_tokens) == (4, 2)
    assert state.prefill() == "a b"
    assert state.content_events == 2


def test_an_error_event_mid_stream_is_a_failure_after_what_came_before_it() -> None:
    state = StreamState(wants_usage=True, keep_text=True)
    out = state.take([_chunk("a"), _chunk(" b"), _event({"error": {"message": "overloaded"}})])
    assert out.count(b"data: ") == 2  # relayed before the failure is raised
    assert state.error is not None
    assert state.error.code == "upstream_stream_error"
    assert state.take([_chunk(" c")]) == b""  # nothing after it
    assert state.prefill() == "a b"


def test_a_stream_of_several_choices_is_complete_when_every_one_finished() -> None:
    state = StreamState(wants_usage=False, keep_text=False, choices=2)

    def choice(index: int, content: str | None = None, finish: str | None = None) -> bytes:
        delta = {} if content is None else {"content": content}
        return _event({"choices": [{"index": index, "delta": delta, "finish_reason": finish}]})

    state.take([choice(0, "a"), choice(1, "b"), choice(0, finish="stop")])
    assert not state.finished  # choice 1 is still open
    state.take([choice(1, finish="stop")])
    assert state.finished
    one_seen = StreamState(wants_usage=False, keep_text=False, choices=2)
    one_seen.take([choice(0, "a"), choice(0, finish="stop")])
    assert not one_seen.finished  # two were asked for


def test_a_continuation_is_spliced_under_the_first_streams_envelope() -> None:
    state = StreamState(wants_usage=True, keep_text=True)
    state.take([_chunk("x"), _chunk(" y")])
    state.begin_continuation()
    other = {"id": "other", "created": 9, "model": "m2"}
    role = {**other, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
    more = {
        **other,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": " z"}}],
    }
    usage = {
        **other,
        "choices": [],
        "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8},
    }
    out = state.take([_event(role), _event(more), _event(usage)])
    events = [msgspec.json.decode(e[6:]) for e in out.split(b"\n\n") if e]
    assert [e["id"] for e in events] == ["c1", "c1"]
    assert events[0]["choices"][0]["delta"] == {"content": " z"}
    assert events[1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


class _Headers:
    def __init__(self, value: str) -> None:
        self.headers = {"retry-after": value}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2", 2.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("inf", 1.0),
        ("nan", 1.0),
        ("1e12", 3600.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1.0),
    ],
)
def test_retry_after_is_read_as_a_bounded_number_of_seconds(value: str, seconds: float) -> None:
    assert _retry_after(_Headers(value)) == seconds  # type: ignore[arg-type]
