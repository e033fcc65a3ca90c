"""OpenTelemetry traces of model requests, exported over OTLP/HTTP (protobuf); off
unless `SLUICE_OTLP_ENDPOINT` is set. docs/decisions/0010-opentelemetry.md.

Off, none of this exists: the gateway holds None and the request path tests that
once per request (`Gateway._serve`) and once per attempt (`Upstreams.commit`).

On, a request is one SERVER span, continued from the client's `traceparent` when it
sent one, and each attempt upstream one CLIENT span under it, whose context goes to
the upstream as `traceparent` (aiohttp's `on_request_start`, so the adapters build
their headers unchanged). A failed attempt's span ends with it; an attempt that
commits ends with the request, after its answer was relayed. Attributes follow the
GenAI semantic conventions (`gen_ai.*`), plus `sluice.*` for the tenant, key,
deployment and request. Spans are exported in batches by a background thread
(BatchSpanProcessor; `OTEL_BSP_*` tune it), never on the request path.
"""

from __future__ import annotations

from collections.abc import Awaitable
from types import SimpleNamespace
from typing import Any, TypeVar

import aiohttp
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from data_plane.asgi import Scope
from data_plane.pipeline.call import Call
from shared.errors import GatewayError
from shared.routing import Deployment

__all__ = ["RequestTrace", "Tracing"]

T = TypeVar("T")

_PROPAGATOR = TraceContextTextMapPropagator()
_CARRIED = (b"traceparent", b"tracestate")
_OPERATIONS = {"chat": "chat", "messages": "chat", "embeddings": "embeddings"}
# gen_ai.provider.name, by provider kind
_PROVIDERS = {
    "openai": "openai",
    "azure_openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock",
}
# gen_ai.request.* read from the client's body, when it has them
_REQUEST_FIELDS = (
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("max_completion_tokens", "gen_ai.request.max_tokens"),
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("seed", "gen_ai.request.seed"),
)


class Tracing:
    """The tracer provider and its exporter, made in the data plane's lifespan."""

    def __init__(self, endpoint: str, service: str = "sluice-data-plane") -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces", timeout=5)
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer: Tracer = self.provider.get_tracer("sluice.data_plane")

    def trace_config(self) -> aiohttp.TraceConfig:
        """For the upstream session: every request carries the current span's context."""
        config = aiohttp.TraceConfig()
        config.on_request_start.append(_inject)
        return config

    async def request(self, call: Call, scope: Scope, served: Awaitable[None]) -> None:
        """Serve (`served`) inside the request's span."""
        carrier = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _CARRIED
        }
        parent = _PROPAGATOR.extract(carrier) if carrier else None
        operation = _OPERATIONS.get(call.operation, call.operation)
        span = self.tracer.start_span(operation, context=parent, kind=SpanKind.SERVER)
        trace = call.trace = RequestTrace(self.tracer, span, operation)
        try:
            await served
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            trace.finish(call)

    def shutdown(self) -> None:
        """Export what is left (blocking: run it off the event loop)."""
        self.provider.shutdown()


class RequestTrace:
    """One request's span and its attempts' spans."""

    __slots__ = ("committed", "context", "operation", "span", "tracer")

    def __init__(self, tracer: Tracer, span: Span, operation: str) -> None:
        self.tracer, self.span, self.operation = tracer, span, operation
        self.context: Context = set_span_in_context(span)
        self.committed: list[Span] = []  # attempts that answered: they end with the request

    async def attempt(
        self, call: Call, deployment: Deployment, body: dict[str, Any], run: Awaitable[T]
    ) -> T:
        """Run one attempt (`run`) inside its span; the upstream gets its context."""
        model = deployment.upstream_model
        provider = call.state.providers.get(deployment.provider_id)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": self.operation,
            "gen_ai.request.model": model,
            "sluice.deployment.id": deployment.id,
            "sluice.attempt": call.attempts,
        }
        if provider is not None:
            attributes["gen_ai.provider.name"] = _PROVIDERS.get(provider.kind, provider.kind)
        _request_fields(attributes, body)
        span = self.tracer.start_span(
            f"{self.operation} {model}",
            context=self.context,
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        token = otel_context.attach(set_span_in_context(span, self.context))
        try:
            result = await run
        except BaseException as exc:
            _failed(span, exc)
            span.end()
            raise
        finally:
            otel_context.detach(token)
        span.set_attribute("gen_ai.response.model", model)
        self.committed.append(span)
        return result

    def finish(self, call: Call) -> None:
        """End the request's span (after accounting: the tokens are those counted)."""
        span = self.span
        route, deployment = call.route, call.deployment
        model = route.model if route is not None else "unknown"  # never the raw string
        span.update_name(f"{self.operation} {model}")
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": self.operation,
            "gen_ai.request.model": model,
            "sluice.tenant.id": call.key.tenant_id,
            "sluice.key.id": call.key.id,
            "sluice.request.id": str(call.request_id),
            "sluice.attempts": call.attempts,
            "http.response.status_code": call.status or 500,
        }
        usage: dict[str, Any] = {}
        if call.prompt_tokens is not None:
            usage["gen_ai.usage.input_tokens"] = call.prompt_tokens
        if call.completion_tokens is not None:
            usage["gen_ai.usage.output_tokens"] = call.completion_tokens
        attributes.update(usage)
        if deployment is not None:
            attributes["sluice.deployment.id"] = deployment.id
            provider = call.state.providers.get(deployment.provider_id)
            if provider is not None:
                attributes["gen_ai.provider.name"] = _PROVIDERS.get(provider.kind, provider.kind)
            if self.committed:
                attributes["gen_ai.response.model"] = deployment.upstream_model
        if call.error_code is not None:
            attributes["error.type"] = call.error_code
            span.set_status(Status(StatusCode.ERROR, call.error_code))
        span.set_attributes(attributes)
        if len(self.committed) == 1:  # one upstream answered it all
            self.committed[0].set_attributes(usage)
        for answered in self.committed:
            answered.end()
        span.end()


def _request_fields(attributes: dict[str, Any], body: dict[str, Any]) -> None:
    for field, name in _REQUEST_FIELDS:
        value = body.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[name] = value


def _failed(span: Span, exc: BaseException) -> None:
    if isinstance(exc, GatewayError):
        span.set_attributes({"error.type": exc.code, "http.response.status_code": exc.status})
        span.set_status(Status(StatusCode.ERROR, exc.code))
    else:
        span.set_attribute("error.type", type(exc).__name__)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


async def _inject(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestStartParams,
) -> None:
    _PROPAGATOR.inject(params.headers)
