"""The OpenTelemetry GenAI metrics, in Prometheus form on /metrics.

Recorded once per request, at accounting (`pipeline/accounting.settle`): tokens used
(`gen_ai.client.token.usage`), the request's duration (`gen_ai.client.operation.duration`)
and, when the client got a first byte, the time to it (`gen_ai.server.time_to_first_token`).
Buckets are the semantic conventions' advice. Beside them, the priced cost in USD by
tenant and model (`sluice_cost_usd_total`).

Labels: operation, model (the route's; "none" when no route answered), deployment
("none" when none was tried), tenant and status class. Tenants are the unbounded label:
the first `tenant_cap` distinct ones are named, any further one counts as "other". The
label sets multiply (operation x model x deployment x tenant x status class), so their
number is capped too, at `label_set_cap`: past it, a new combination records with tenant
and deployment "other"; past twice the cap, with model "other" too (operation and status
class are few, so those last sets stay few).

This is on every request's path, so an observation is a bucket index found by bisection
and two additions to plain numbers (one event loop: no lock); the cumulative buckets
are formed when /metrics is read, into prometheus_client's metric families. A label
set's series are found with two dict lookups.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["OTHER", "GenAIMetrics"]

OTHER = "other"  # the label of tenants (deployments, models) past the caps

_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
_LABELS = ["gen_ai_operation_name", "gen_ai_request_model", "deployment", "tenant", "status_class"]
_STATUS_CLASSES = {n: f"{n}xx" for n in range(1, 6)}
_OPERATIONS = {"chat": "chat", "messages": "chat", "embeddings": "embeddings"}

_Key = tuple[str, str, str, str, int]  # operation, model, deployment, tenant, status class


class _Histogram:
    """One label set's histogram: a count per bucket (not cumulative; the last one is
    +Inf) and the sum of the values."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # the first bound >= value
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        """Prometheus's cumulative buckets, `le` written as prometheus_client writes it."""
        found, total = [], 0
        les = (*map(floatToGoString, self.bounds), "+Inf")
        for le, count in zip(les, self.counts, strict=True):
            total += count
            found.append((le, float(total)))
        return found


class _Cost:
    __slots__ = ("usd",)

    def __init__(self) -> None:
        self.usd = 0.0


class _Bound:
    """The series of one label set (its cost is shared by every set of its tenant and model)."""

    __slots__ = ("cost", "duration", "input_tokens", "labels", "output_tokens", "ttft")

    def __init__(self, labels: list[str], cost: _Cost) -> None:
        self.labels = labels
        self.input_tokens = _Histogram(_TOKEN_BUCKETS)
        self.output_tokens = _Histogram(_TOKEN_BUCKETS)
        self.duration = _Histogram(_DURATION_BUCKETS)
        self.ttft = _Histogram(_TTFT_BUCKETS)
        self.cost = cost


class GenAIMetrics(Collector):
    def __init__(
        self, registry: CollectorRegistry, tenant_cap: int, label_set_cap: int = 2000
    ) -> None:
        self.tenant_cap = tenant_cap
        self.label_set_cap = label_set_cap
        self._tenants: dict[str, str] = {}  # tenant id -> its label
        self._bound: dict[_Key, _Bound] = {}
        self._labelled: dict[tuple[str, ...], _Bound] = {}  # the same, by their labels
        self._costs: dict[tuple[str, str], _Cost] = {}  # (tenant, model) labels -> its cost
        registry.register(self)

    def record(
        self,
        operation: str,
        model: str,
        deployment: str,
        tenant_id: str,
        status: int,
        tokens: tuple[int, int],
        duration: float,
        ttft: float | None,
        cost: float,
    ) -> None:
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            tenant = self._tenant(tenant_id)
        key = (operation, model, deployment, tenant, status // 100)
        bound = self._bound.get(key)
        if bound is None:
            bound = self._bind(key)
        bound.input_tokens.observe(tokens[0])
        bound.output_tokens.observe(tokens[1])
        bound.duration.observe(duration)
        if ttft is not None:
            bound.ttft.observe(ttft)
        if cost > 0:  # a counter only grows
            bound.cost.usd += cost

    def _tenant(self, tenant_id: str) -> str:
        """The label of a tenant not seen before: its id while under the cap."""
        if len(self._tenants) >= self.tenant_cap:
            return OTHER  # not kept: the map stays at the cap
        self._tenants[tenant_id] = tenant_id
        return tenant_id

    def _bind(self, key: _Key) -> _Bound:
        if len(self._labelled) >= self.label_set_cap:  # `key` itself is never kept past the cap
            operation, model, _, _, status_class = key
            key = (operation, model, OTHER, OTHER, status_class)
            bound = self._bound.get(key)
            if bound is not None:
                return bound
            if len(self._labelled) >= 2 * self.label_set_cap:
                key = (operation, OTHER, OTHER, OTHER, status_class)
                bound = self._bound.get(key)
                if bound is not None:
                    return bound
        operation, model, deployment, tenant, status_class = key
        labels = [
            _OPERATIONS.get(operation, operation),
            model,
            deployment,
            tenant,
            _STATUS_CLASSES.get(status_class, "5xx"),
        ]
        bound = self._labelled.get(tuple(labels))  # e.g. "messages" is a chat too
        if bound is None:
            cost = self._costs.get((tenant, model))
            if cost is None:
                cost = self._costs[tenant, model] = _Cost()
            bound = self._labelled[tuple(labels)] = _Bound(labels, cost)
        self._bound[key] = bound
        return bound

    def collect(self) -> Iterator[HistogramMetricFamily | CounterMetricFamily]:
        tokens = HistogramMetricFamily(
            "gen_ai_client_token_usage",
            "Tokens used per request (gen_ai.client.token.usage), by gen_ai_token_type.",
            labels=[*_LABELS, "gen_ai_token_type"],
        )
        duration = HistogramMetricFamily(
            "gen_ai_client_operation_duration_seconds",
            "Request duration, to the last byte (gen_ai.client.operation.duration).",
            labels=_LABELS,
        )
        ttft = HistogramMetricFamily(
            "gen_ai_server_time_to_first_token_seconds",
            "Time to the first byte of the answer (gen_ai.server.time_to_first_token).",
            labels=_LABELS,
        )
        for bound in list(self._labelled.values()):
            labels = bound.labels
            for kind, series in (("input", bound.input_tokens), ("output", bound.output_tokens)):
                tokens.add_metric([*labels, kind], series.buckets(), series.sum)
            duration.add_metric(labels, bound.duration.buckets(), bound.duration.sum)
            ttft.add_metric(labels, bound.ttft.buckets(), bound.ttft.sum)
        cost = CounterMetricFamily(
            "sluice_cost_usd",
            "Cost of the requests in USD, at the route's price for the deployment used.",
            labels=["tenant", "model"],
        )
        for (tenant, model), usd in list(self._costs.items()):
            cost.add_metric([tenant, model], usd.usd)
        yield from (tokens, duration, ttft, cost)
