"""Upstream kinds, one module each, registered by provider `kind`."""

from __future__ import annotations

from data_plane.providers import anthropic, azure_openai, bedrock, gemini, openai
from data_plane.providers.base import Adapter, Connection, StreamReader, UpstreamRequest

__all__ = ["ADAPTERS", "Adapter", "Connection", "StreamReader", "UpstreamRequest"]

ADAPTERS: dict[str, Adapter] = {
    "openai": openai.ADAPTER,
    "azure_openai": azure_openai.ADAPTER,
    "anthropic": anthropic.ADAPTER,
    "gemini": gemini.ADAPTER,
    "bedrock": bedrock.ADAPTER,
}
