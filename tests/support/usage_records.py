"""A usage record as the data plane makes one, for tests of the recorder itself."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from data_plane.usage import UsageRecord

__all__ = ["usage_record"]


def usage_record(model: str) -> UsageRecord:
    """A fresh record (new ids) of 3 + 5 tokens for `model`, answered with 200."""
    return UsageRecord(
        request_id=uuid.uuid4(),
        created_at=datetime.now(UTC),
        tenant_id=uuid.uuid4(),
        key_id=uuid.uuid4(),
        model=model,
        provider_id=None,
        upstream_model=None,
        prompt_tokens=3,
        completion_tokens=5,
        cost_usd=0.0,
        status=200,
        latency_ms=1.0,
        ttft_ms=None,
        stream=False,
        disconnected=False,
        error_code=None,
    )
