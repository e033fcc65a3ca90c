"""Provider adapters, one module each, registered by provider `kind`."""

from __future__ import annotations

from data_plane.providers import openai
from data_plane.providers.base import Adapter, UpstreamRequest

__all__ = ["ADAPTERS", "Adapter", "UpstreamRequest"]

ADAPTERS: dict[str, Adapter] = {
    "openai": openai.ADAPTER,
}
