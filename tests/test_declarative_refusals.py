"""Documents the admin API refuses: a problem naming the field by its path in the
document, for the plan and the apply alike, and nothing written, not even the valid
items before the one at fault."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable

import pytest

from control_plane.declarative.secret_env import env_names
from tests.support import declarative
from tests.support.declarative import Doc, apply, event_count, minimal, plan
from tests.support.problems import assert_refused
from tests.support.stack import NOWHERE, Stack

fresh = declarative.fresh


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


def _shared_variable(first: str, second: str) -> Callable[[Doc], None]:
    """Both providers' keys named by one variable (as `sluice apply` sends them, one
    value for both): the backup would silently take the primary's key."""

    def edit(doc: Doc) -> None:
        doc["providers"][0].update(api_key_env=first)
        doc["providers"][1].update(api_key_env=second, api_key="sk-one")

    return edit


def _aws_in_one_variable(doc: Doc) -> None:
    doc["providers"].append(
        {
            "name": "aws",
            "kind": "bedrock",
            "region": "us-east-1",
            "aws_access_key_id_env": "AWS_KEY",
            "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
            "aws_secret_access_key_env": "AWS_KEY",
            "aws_secret_access_key": "AKIAIOSFODNN7EXAMPLE",
        }
    )


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
        "one variable for two providers' keys",
        _shared_variable("SHARED_KEY", "SHARED_KEY"),
        422,
        "providers[1].api_key_env",
    ),
    (
        "one variable in two spellings",
        _shared_variable("Shared_Key", "SHARED_KEY"),
        422,
        "providers[1].api_key_env",
    ),
    (
        "one variable for two parts of a key",
        _aws_in_one_variable,
        422,
        "providers[2].aws_secret_access_key_env",
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


# Names that read the same once upper-cased with `_` for every other character, one alone,
# and one too long for a variable of its own: each with a key of its own.
KEYS = {
    "p-x": "sk-dash",
    "P_X": "sk-underscore",
    "café": "sk-accent",
    "caf!": "sk-bang",
    "solo": "sk-solo",
    "long-" + "n" * 195: "sk-long",
}


async def test_an_export_names_a_variable_of_its_own_for_each_secret(fresh: Stack) -> None:
    """Applied with each variable an export names holding that provider's key, as
    `sluice apply` sends them, the export changes nothing: no provider takes
    another's key."""
    doc = {
        "tenants": [],
        "providers": [
            {"name": name, "kind": "openai", "base_url": NOWHERE, "api_key": key}
            for name, key in KEYS.items()
        ],
        "routes": [],
        "prices": {"models": [], "providers": []},
    }
    assert (await apply(fresh, doc)).status_code == 200
    async with fresh.admin() as admin:
        exported = (await admin.get("/config")).json()
        again = (await admin.get("/config")).json()
    assert again == exported  # the same names on every export
    variables = {p["name"]: p["api_key_env"] for p in exported["providers"]}
    assert len(set(variables.values())) == len(KEYS), variables
    assert variables["solo"] == "SLUICE_PROVIDER_SOLO_API_KEY"
    for name, stem in (("p-x", "P_X"), ("P_X", "P_X"), ("café", "CAF_"), ("caf!", "CAF_")):
        assert re.fullmatch(f"SLUICE_PROVIDER_{stem}_[0-9A-F]{{8}}_API_KEY", variables[name])
    assert all(len(v) <= 200 for v in variables.values())
    environment = {variables[name]: key for name, key in KEYS.items()}
    for provider in exported["providers"]:
        provider["api_key"] = environment[provider["api_key_env"]]
    planned = await plan(fresh, exported)
    assert planned.status_code == 200, planned.text
    assert planned.json()["changes"] == []


def test_a_name_like_another_s_tag_gets_a_variable_of_its_own() -> None:
    tagged = env_names(["p-x", "P_X"])["p-x", "api_key"]
    lookalike = tagged.removeprefix("SLUICE_PROVIDER_").removesuffix("_API_KEY").lower()
    variables = env_names(["p-x", "P_X", lookalike])
    assert len(set(variables.values())) == len(variables) == 3 * 4


def test_the_cli_reads_the_secret_fields_without_the_server_code() -> None:
    """`sluice apply` knows the secret fields from the module the server reads them from,
    and imports no server code (Litestar, the database driver, the API) to do so."""
    script = (
        "import sys, control_plane.cli.declarative as cli;"
        "from control_plane.declarative.document import SECRET_ENV;"
        "assert cli.SECRET_ENV is SECRET_ENV"
    )
    loaded = (
        "import sys, control_plane.cli.declarative;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('litestar', 'asyncpg')"
        " or m.startswith(('control_plane.api', 'control_plane.declarative.document'))))"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    heavy = subprocess.run(
        [sys.executable, "-c", loaded], check=True, capture_output=True, text=True
    )
    assert heavy.stdout.strip() == "[]"
