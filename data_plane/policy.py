"""The checks a tenant's and a key's policies put on one request (pure functions)."""

from __future__ import annotations

from typing import Any

from shared.errors import BadRequest, ModelNotAllowed
from shared.state import ApiKey, Policy, State

__all__ = ["apply_max_tokens", "check_model", "estimate_prompt_tokens", "policies_for"]


def policies_for(state: State, key: ApiKey) -> list[tuple[str, Policy]]:
    """(scope, policy) for the key's tenant and the key, where they have one."""
    found = []
    tenant_policy = state.tenant_policies.get(key.tenant_id)
    if tenant_policy is not None:
        found.append((f"tenant:{key.tenant_id}", tenant_policy))
    key_policy = state.key_policies.get(key.id)
    if key_policy is not None:
        found.append((f"key:{key.id}", key_policy))
    return found


def check_model(policies: list[tuple[str, Policy]], model: str) -> None:
    for scope, policy in policies:
        if policy.models is not None and model not in policy.models:
            kind = scope.partition(":")[0]
            raise ModelNotAllowed(
                f"This {kind}'s policy does not allow the model `{model}`.", param="model"
            )


_OPENAI_CAPS = ("max_completion_tokens", "max_tokens")


def apply_max_tokens(
    policies: list[tuple[str, Policy]],
    body: dict[str, Any],
    names: tuple[str, ...] = _OPENAI_CAPS,
) -> dict[str, Any]:
    """Refuse a request asking for more completion tokens than the policies allow;
    cap one that does not say (with the first of the dialect's field `names`)."""
    caps = [(p.max_tokens, scope) for scope, p in policies if p.max_tokens is not None]
    if not caps:
        return body
    cap, scope = min(caps)  # the narrowest refuses, and is named
    whose = "the tenant's" if scope.startswith("tenant:") else "this key's"
    said = False
    for name in names:
        asked = body.get(name)
        if asked is None:
            continue
        said = True
        if not isinstance(asked, int) or isinstance(asked, bool) or asked < 1:
            raise BadRequest(f"'{name}' must be a positive integer.", param=name)
        if asked > cap:
            raise BadRequest(
                f"'{name}' is {asked}, above {whose} limit of {cap}.",
                param=name,
                code="max_tokens_exceeded",
            )
    return body if said else {**body, names[0]: cap}


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """A cheap estimate (about four characters a token), settled with the real usage:
    the text of the messages (OpenAI's or Anthropic's), a system prompt given apart
    (Anthropic's), and an embeddings request's `input`."""
    chars = _text_length(body.get("system")) + _text_length(body.get("input"))
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                chars += _text_length(message.get("content")) + 16  # role and framing
    return max(chars // 4, 1)


def _text_length(content: Any, inner: bool = True) -> int:
    """Characters of text in a string, or in a list of strings or content parts (a
    tool result's own content included, one level down)."""
    if isinstance(content, str):
        return len(content)
    if not isinstance(content, list):
        return 0
    chars = 0
    for part in content:
        if isinstance(part, str):
            chars += len(part)
        elif isinstance(part, dict):
            text = part.get("text")
            if isinstance(text, str):
                chars += len(text)
            nested = part.get("content")
            if inner and isinstance(nested, str | list):
                chars += _text_length(nested, inner=False)
    return chars
