"""Accounting, once a request has ended however it ended: the limits it held are
settled with the tokens it used, its cost counts against budgets, its usage record
is buffered and its GenAI metrics observed. Failed attempts used no tokens (nothing
was streamed before the commit point) and cost nothing."""

from __future__ import annotations

import functools
import time
import uuid

from data_plane.budgets import Budgets
from data_plane.genai_metrics import GenAIMetrics
from data_plane.limits import Limiter
from data_plane.pipeline.call import Call
from data_plane.pipeline.gate import budget_scopes
from data_plane.usage import UsageRecord, UsageRecorder

__all__ = ["begin", "settle"]

_INT4 = 2**31 - 1
# ids in the snapshot are strings; usage records want UUIDs, parsed once per id
_as_uuid = functools.lru_cache(maxsize=65_536)(uuid.UUID)


def _clean(code: str | None) -> str | None:
    """An error code fit to store (an upstream's code is anything it says)."""
    return None if code is None else code.replace("\0", "")[:100]


def _shares(call: Call, prompt: int, completion: int) -> dict[int, int]:
    """Tokens each committed attempt used, by its index in `call.quotas`: the first
    the prompt and what it streamed, a continuation what it streamed. Failed attempts
    used none (nothing was streamed before the commit point)."""
    if call.first_byte is None:
        return {}
    starts = [before for _, before in call.answered] + [completion]
    return {
        index: (prompt if n == 0 else 0) + max(starts[n + 1] - before, 0)
        for n, (index, before) in enumerate(call.answered)
    }


def begin(call: Call, budgets: Budgets) -> None:
    """Count the request's estimated cost against budgets while it runs."""
    route = call.route
    if route is None or not route.deployments:
        return
    price = call.state.price_for(route.model, route.deployments[0].provider_id)
    if price is not None:
        call.in_flight_cost = price.cost(call.estimate, 0)
        budgets.add(budget_scopes(call.key), call.in_flight_cost)


def settle(
    call: Call, limiter: Limiter, budgets: Budgets, usage: UsageRecorder, metrics: GenAIMetrics
) -> None:
    prompt = call.prompt_tokens
    if prompt is None:
        prompt = call.estimate if call.first_byte is not None else 0
    completion = call.completion_tokens
    if completion is None:
        completion = call.content_events
    prompt, completion = min(prompt, _INT4), min(completion, _INT4)
    call.prompt_tokens, call.completion_tokens = prompt, completion  # as counted, for a trace
    if call.admission is not None:
        limiter.settle(call.admission, prompt + completion)
    used = _shares(call, prompt, completion)
    for i, (_, admission) in enumerate(call.quotas):
        if admission is not None:
            limiter.settle(admission, used.get(i, 0))
    route, deployment = call.route, call.deployment
    price = (
        None
        if route is None or deployment is None
        else call.state.price_for(route.model, deployment.provider_id)
    )
    cost = 0.0 if price is None else price.cost(prompt, completion)
    budgets.pending(call.request_id, budget_scopes(call.key), cost, call.in_flight_cost)
    status = call.status or 500
    took = time.monotonic() - call.started
    ttft = None if call.first_byte is None else call.first_byte - call.started
    metrics.record(
        call.operation,
        "none" if route is None else route.model,
        "none" if deployment is None else deployment.id,
        call.key.tenant_id,
        status,
        (prompt, completion),
        took,
        ttft,
        cost,
    )
    usage.record(
        UsageRecord(
            request_id=call.request_id,
            created_at=call.created_at,
            tenant_id=_as_uuid(call.key.tenant_id),
            key_id=_as_uuid(call.key.id),
            model=route.model if route is not None else call.model[:200].replace("\0", ""),
            provider_id=None if deployment is None else _as_uuid(deployment.provider_id),
            upstream_model=None if deployment is None else deployment.upstream_model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=cost,
            status=status,
            latency_ms=took * 1000,
            ttft_ms=None if ttft is None else ttft * 1000,
            stream=call.stream,
            disconnected=call.disconnected,
            error_code=_clean(call.error_code),
            deployment_id=None if deployment is None else _as_uuid(deployment.id),
            attempts=call.attempts,
            operation=call.operation,
            dialect=call.dialect.name,
        )
    )
