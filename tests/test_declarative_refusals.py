"""Documents the admin API refuses: a problem naming the field by its path in the
document, for the plan and the apply alike, and nothing written, not even the valid
items before the one at fault."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.declarative import Doc, apply, event_count, minimal, plan
from tests.support.problems import assert_refused
from tests.support.stack import NOWHERE, Stack


@pytest.fixture(scope="module")
async def configured(control_plane: Stack) -> Stack:
    """The module's control plane with the minimal document applied."""
    resp = await apply(control_plane, minimal())
    assert resp.status_code == 200, resp.text
    return control_plane


def _new_first(doc: Doc) -> None:
    """Valid new items ahead of the fault: they must not be written either."""
    doc["tenants"].insert(0, {"name": "early"})
    doc["providers"].insert(0, {"name": "early", "kind": "openai", "base_url": NOWHERE})


def _unknown_provider(doc: Doc) -> None:
    _new_first(doc)
    doc["routes"].append(
        {"model": "later", "deployments": [{"provider": "early", "upstream_model": "x"}]}
    )
    doc["routes"][1]["deployments"].append({"provider": "nowhere", "upstream_model": "y"})


def _cycle(doc: Doc) -> None:
    doc["routes"].append(
        {
            "model": "other",
            "deployments": [{"provider": "primary", "upstream_model": "z"}],
            "context_fallback": "chat",
        }
    )
    doc["routes"][0]["context_fallback"] = "other"


def _kind_change(doc: Doc) -> None:
    doc["providers"][1] = {"name": "backup", "kind": "anthropic", "api_key": "sk-ant"}


CASES: list[tuple[str, Callable[[Doc], None], int, str]] = [
    ("unknown provider", _unknown_provider, 422, "routes[1].deployments[1].provider"),
    (
        "unknown tenant",
        lambda d: d["routes"][0].update(tenants=["acme", "ghost"]),
        422,
        "routes[0].tenants[1]",
    ),
    ("tenant twice", lambda d: d["tenants"].append({"name": " acme "}), 422, "tenants[1].name"),
    (
        "route twice",
        lambda d: d["routes"].append(dict(d["routes"][0])),
        422,
        "routes[1].model",
    ),
    (
        "bad weight",
        lambda d: d["routes"][0]["deployments"][0].update(weight=0),
        400,
        "routes[0].deployments[0].weight",
    ),
    (
        "unknown field",
        lambda d: d["routes"][0]["deployments"][0].update(wieght=2),
        400,
        "routes[0].deployments[0].wieght",
    ),
    ("section left out", lambda d: d.pop("prices"), 400, "prices"),
    (
        "invisible character",
        lambda d: d["tenants"].append({"name": "zero\u200bwidth"}),
        422,
        "tenants[1].name",
    ),
    (
        "new provider without its key",
        lambda d: d["providers"].append({"name": "claude", "kind": "anthropic"}),
        422,
        "providers[2].api_key",
    ),
    (
        "variable named but not sent",
        lambda d: d["providers"][1].update(api_key_env="BACKUP_KEY"),
        400,
        "providers[1].api_key",
    ),
    ("kind changed", _kind_change, 422, "providers[1].kind"),
    (
        "budget period alone",
        lambda d: d["tenants"][0].update(policy={"budget_period": "day"}),
        422,
        "tenants[0].policy.budget_period",
    ),
    ("fallback circle", _cycle, 422, "routes[0].context_fallback"),
    (
        "fallback to nothing",
        lambda d: d["routes"][0].update(context_fallback="missing"),
        422,
        "routes[0].context_fallback",
    ),
    (
        "price of an unknown provider",
        lambda d: d["prices"]["providers"].append(
            {"provider": "ghost", "input_per_million": 1, "output_per_million": 1}
        ),
        422,
        "prices.providers[0].provider",
    ),
]


@pytest.mark.parametrize(
    ("edit", "status", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_a_refused_document_names_the_field_and_writes_nothing(
    configured: Stack, edit: Callable[[Doc], None], status: int, field: str
) -> None:
    doc = minimal()
    edit(doc)
    written = await event_count(configured)
    assert_refused(await plan(configured, doc), status, field)
    assert_refused(await apply(configured, doc), status, field)
    assert await event_count(configured) == written


async def test_a_default_price_cannot_be_left_out(configured: Stack) -> None:
    """The admin API can replace a provider's default price, not remove it: a document
    without it is refused rather than applied in part."""
    doc = minimal()
    price = {"provider": "backup", "input_per_million": 0.5, "output_per_million": 1}
    doc["prices"]["providers"] = [price]
    assert (await apply(configured, doc)).status_code == 200
    written = await event_count(configured)
    _new_first(doc)
    doc["prices"]["providers"] = []
    assert_refused(await apply(configured, doc), 422, "prices.providers")
    assert await event_count(configured) == written
    doc["prices"]["providers"] = [price]
    del doc["tenants"][0], doc["providers"][0]
    planned = await plan(configured, doc)
    assert planned.json()["changes"] == [], planned.text
