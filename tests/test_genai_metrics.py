"""The GenAI metrics as /metrics shows them: cumulative buckets with prometheus_client's
`le` labels, sums and counts, and the cost shared by a tenant and model's label sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from data_plane.genai_metrics import GenAIMetrics


def _samples(registry: CollectorRegistry) -> list[Sample]:
    text = generate_latest(registry).decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    (found,) = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    return found


def test_buckets_are_cumulative_and_bounds_inclusive() -> None:
    registry = CollectorRegistry()
    metrics = GenAIMetrics(registry, tenant_cap=10)
    for prompt, took in ((1, 0.01), (5, 0.5), (5_000_000, 100.0)):
        metrics.record("chat", "m", "d", "t", 200, (prompt, 0), took, None, 0.0)
    samples = _samples(registry)
    tokens = "gen_ai_client_token_usage_bucket"
    assert _value(samples, tokens, gen_ai_token_type="input", le="1.0") == 1
    assert _value(samples, tokens, gen_ai_token_type="input", le="4.0") == 1
    assert _value(samples, tokens, gen_ai_token_type="input", le="16.0") == 2
    assert _value(samples, tokens, gen_ai_token_type="input", le="4.194304e+06") == 2
    assert _value(samples, tokens, gen_ai_token_type="input", le="+Inf") == 3
    assert _value(samples, tokens, gen_ai_token_type="output", le="1.0") == 3
    assert _value(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="input") == (
        5_000_006
    )
    duration = "gen_ai_client_operation_duration_seconds"
    assert _value(samples, duration + "_bucket", le="0.01") == 1
    assert _value(samples, duration + "_bucket", le="81.92") == 2
    assert _value(samples, duration + "_count") == 3
    assert _value(samples, duration + "_sum") == 100.51
    # no first byte, no time to it; the label set is there with nothing counted
    assert _value(samples, "gen_ai_server_time_to_first_token_seconds_count") == 0


def test_labels_and_cost() -> None:
    registry = CollectorRegistry()
    metrics = GenAIMetrics(registry, tenant_cap=10)
    metrics.record("messages", "m", "d1", "t", 201, (3, 4), 0.2, 0.05, 0.25)
    metrics.record("chat", "m", "d2", "t", 503, (0, 0), 0.1, None, 0.0)
    metrics.record("chat", "m", "d1", "t", 200, (3, 4), 0.2, 0.07, 0.5)
    samples = _samples(registry)
    count = "gen_ai_client_operation_duration_seconds_count"
    assert _value(samples, count, deployment="d1", status_class="2xx") == 2
    assert _value(samples, count, deployment="d2", status_class="5xx") == 1
    labels = {s.labels["gen_ai_operation_name"] for s in samples if s.name == count}
    assert labels == {"chat"}, "an Anthropic message is a chat operation"
    ttft = "gen_ai_server_time_to_first_token_seconds"
    assert _value(samples, ttft + "_count", deployment="d1") == 2
    assert _value(samples, ttft + "_bucket", deployment="d1", le="0.06") == 1
    assert _value(samples, "sluice_cost_usd_total", tenant="t", model="m") == 0.75
