"""One client request as it goes through the pipeline, and what became of it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from data_plane.limits import Admission
from data_plane.translate import openai_embeddings
from data_plane.translate.dialect import Dialect
from data_plane.translate.model import EmbeddingsRequest, Request
from shared.routing import Deployment
from shared.state import ApiKey, Route, State

if TYPE_CHECKING:
    from data_plane.tracing import RequestTrace

__all__ = ["Call"]


@dataclass(slots=True)
class Call:
    request_id: uuid.UUID
    started: float  # time.monotonic()
    created_at: datetime
    state: State  # read once, at the start: a swap meanwhile does not change this request
    key: ApiKey
    dialect: Dialect  # the API the client speaks
    operation: str  # "chat", "messages" or "embeddings"
    model: str = ""
    stream: bool = False
    wants_usage: bool = False
    choices: int = 1  # `n`: a stream is complete once this many choices have finished
    route: Route | None = None  # the route that answers (a context fallback changes it)
    estimate: int = 0  # prompt tokens, estimated
    in_flight_cost: float = 0.0
    admission: Admission | None = None  # the tenant's and key's limits
    # per attempt: the deployment's quota admission (None: no quota), settled at the end
    quotas: list[tuple[Deployment, Admission | None]] = field(default_factory=list)
    deployment: Deployment | None = None  # the one that answered, else the last tried
    attempts: int = 0
    # the attempts that committed (a continuation adds one): (index in `quotas`,
    # content events the answer had before that attempt began)
    answered: list[tuple[int, int]] = field(default_factory=list)
    # what became of it
    status: int = 0
    error_code: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    content_events: int = 0
    first_byte: float | None = None  # time.monotonic() of the first byte to the client
    disconnected: bool = False
    trace: RequestTrace | None = None  # its spans, when tracing is on
    # the client's body read into the canonical model, once, when a deployment needs it
    _canonical: Request | None = None
    _embeddings: EmbeddingsRequest | None = None
    embeddings_body: dict[str, Any] | None = None
    encoding_format: str = "float"

    def canonical(self, body: dict[str, Any]) -> Request:
        if self._canonical is None:
            self._canonical = self.dialect.request(body)
        return self._canonical

    def embeddings_request(self) -> EmbeddingsRequest:
        if self._embeddings is None:
            assert self.embeddings_body is not None
            self._embeddings = openai_embeddings.read_request(self.embeddings_body)
        return self._embeddings

    def id_headers(self) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"x-request-id", str(self.request_id).encode()),
            (b"x-sluice-attempts", b"%d" % self.attempts),
        ]
        if self.deployment is not None:
            headers.append((b"x-sluice-deployment", self.deployment.id.encode()))
        return headers

    def log_ids(self) -> dict[str, str | None]:
        """The ids a log record about this request carries (`extra=`, see shared/logs.py)."""
        return {
            "request_id": str(self.request_id),
            "tenant_id": self.key.tenant_id,
            "key_id": self.key.id,
            "deployment_id": None if self.deployment is None else self.deployment.id,
        }
