"""Form fields to the admin API's JSON, and the policy form shared by tenants and keys.
Only shapes are converted here (text to numbers, lists); every rule is the API's, and
its errors come back next to the field that sent them."""

from __future__ import annotations

from typing import Any

__all__ = ["POLICY_FIELDS", "number", "policy_body", "policy_values"]

# (field, label, kind, help): the policy form, in the API's field names
POLICY_FIELDS = [
    ("rpm", "Requests per minute", "int", "Empty: no limit."),
    ("tpm", "Tokens per minute", "int", "Prompt and completion tokens together."),
    ("max_concurrent", "Requests at once", "int", "Requests in flight at the same time."),
    ("max_tokens", "Largest max_tokens", "int", "The most a request may ask for."),
    ("models", "Models allowed", "list", "Comma-separated route names; empty: all."),
    ("budget_usd", "Budget (USD)", "float", "Requests are refused once it is spent."),
    ("budget_period", "Budget period", "period", "UTC day, UTC month, or all time."),
    ("soft_budget_usd", "Alert at (USD)", "float", "An audit-log event when spend reaches it."),
]


def number(text: str, kind: str) -> Any:
    """A number when the text is one; the text itself otherwise, so that the API's
    type check names the field."""
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        return text


def policy_body(fields: dict[str, str]) -> dict[str, Any]:
    """A policy form as the API's JSON: empty fields are left out (no limit)."""
    body: dict[str, Any] = {}
    for name, _label, kind, _help in POLICY_FIELDS:
        text = fields.get(name, "").strip()
        if not text:
            continue
        if kind == "list":
            body[name] = [m.strip() for m in text.split(",") if m.strip()]
        elif kind in ("int", "float"):
            body[name] = number(text, kind)
        else:
            body[name] = text
    return body


def policy_values(policy: dict[str, Any] | None) -> dict[str, str]:
    """A policy from the API as the form's text values."""
    if not policy:
        return {}
    values = {}
    for name, _label, kind, _help in POLICY_FIELDS:
        value = policy.get(name)
        if value is None:
            continue
        values[name] = ", ".join(value) if kind == "list" else str(value)
    return values
