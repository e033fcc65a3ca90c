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
class are few, so those last sets stay few). The children of each
label set are bound once and kept, so a request costs two dict lookups and the
observations (the cost's child is kept with them).
"""

from __future__ import annotations

from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

__all__ = ["OTHER", "GenAIMetrics"]

OTHER = "other"  # the label of tenants (deployments, models) past the caps

_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
_LABELS = ("gen_ai_operation_name", "gen_ai_request_model", "deployment", "tenant", "status_class")
_STATUS_CLASSES = {n: f"{n}xx" for n in range(1, 6)}
_OPERATIONS = {"chat": "chat", "messages": "chat", "embeddings": "embeddings"}


class _Bound(NamedTuple):
    """The histograms' children for one label set."""

    input_tokens: Histogram
    output_tokens: Histogram
    duration: Histogram
    ttft: Histogram
    cost: Counter


class GenAIMetrics:
    def __init__(
        self, registry: CollectorRegistry, tenant_cap: int, label_set_cap: int = 2000
    ) -> None:
        # no `_created` series: a timestamp per label set that no query here reads
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.tenant_cap = tenant_cap
        self.label_set_cap = label_set_cap
        self._tenants: dict[str, str] = {}  # tenant id -> its label
        self._bound: dict[tuple[str, str, str, str, int], _Bound] = {}
        self.tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens used per request (gen_ai.client.token.usage), by gen_ai_token_type.",
            (*_LABELS, "gen_ai_token_type"),
            registry=registry,
            buckets=_TOKEN_BUCKETS,
        )
        self.duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Request duration, to the last byte (gen_ai.client.operation.duration).",
            _LABELS,
            registry=registry,
            buckets=_DURATION_BUCKETS,
        )
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time to the first byte of the answer (gen_ai.server.time_to_first_token).",
            _LABELS,
            registry=registry,
            buckets=_TTFT_BUCKETS,
        )
        self.cost = Counter(
            "sluice_cost_usd",
            "Cost of the requests in USD, at the route's price for the deployment used.",
            ("tenant", "model"),
            registry=registry,
        )

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
            bound.cost.inc(cost)

    def _tenant(self, tenant_id: str) -> str:
        """The label of a tenant not seen before: its id while under the cap."""
        if len(self._tenants) >= self.tenant_cap:
            return OTHER  # not kept: the map stays at the cap
        self._tenants[tenant_id] = tenant_id
        return tenant_id

    def _bind(self, key: tuple[str, str, str, str, int]) -> _Bound:
        if len(self._bound) >= self.label_set_cap:  # `key` itself is never kept past the cap
            operation, model, _, _, status_class = key
            key = (operation, model, OTHER, OTHER, status_class)
            bound = self._bound.get(key)
            if bound is not None:
                return bound
            if len(self._bound) >= 2 * self.label_set_cap:
                key = (operation, OTHER, OTHER, OTHER, status_class)
                bound = self._bound.get(key)
                if bound is not None:
                    return bound
        operation, model, deployment, tenant, status_class = key
        labels = (
            _OPERATIONS.get(operation, operation),
            model,
            deployment,
            tenant,
            _STATUS_CLASSES.get(status_class, "5xx"),
        )
        bound = self._bound[key] = _Bound(
            self.tokens.labels(*labels, "input"),
            self.tokens.labels(*labels, "output"),
            self.duration.labels(*labels),
            self.ttft.labels(*labels),
            self.cost.labels(tenant, model),
        )
        return bound
