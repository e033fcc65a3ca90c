"""`sluice apply -f FILE` and `sluice export`, run as a user runs them: the plan shown
before it is applied, "no changes" the second time, --dry-run writing nothing, a
refusal printed with the field at fault, secrets never exported, and an export that
applied to an empty database exports the same file again."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.support import declarative
from tests.support.cli import Cli
from tests.support.declarative import event_count, minimal
from tests.support.stack import Stack

fresh, fresh_too = declarative.fresh, declarative.fresh_too
EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "sluice.yaml"

# Every kind of provider, every setting a route has, policies and both kinds of price.
EVERYTHING = """
tenants:
- name: beta
- name: acme
  policy: {rpm: 60, tpm: 100000, max_concurrent: 4, models: [embed, chat], max_tokens: 2048,
           budget_usd: 100, budget_period: day, soft_budget_usd: 80}
providers:
- {name: openai-eu, kind: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: OPENAI_KEY}
- {name: local, kind: openai, base_url: "http://127.0.0.1:9/local/"}
- name: azure
  kind: azure_openai
  base_url: https://example.openai.azure.com
  api_version: 2025-04-01-preview
  api_key_env: AZURE_KEY
- {name: claude, kind: anthropic, api_key_env: ANTHROPIC_KEY}
- {name: gemini, kind: gemini, api_key_env: GEMINI_KEY}
- name: bedrock-us
  kind: bedrock
  region: us-west-2
  aws_access_key_id_env: AWS_ID
  aws_secret_access_key_env: AWS_SECRET
  aws_session_token_env: AWS_TOKEN
routes:
- model: chat
  tenants: [beta, acme]
  strategy: lowest_latency
  deployments:
  - {provider: claude, upstream_model: claude-sonnet, priority: 2}
  - {provider: openai-eu, upstream_model: gpt-4o, rpm: 500, timeouts: {first_token: 8}}
  - provider: azure
    upstream_model: gpt-4o-deployment
    priority: 1
    weight: 2
    tpm: 100000
    continuation: false
  retry: {max_attempts: 2, deadline: 60}
  breaker: {failures: 3}
  continuation: true
  context_fallback: chat-long
- model: chat-long
  deployments:
  - {provider: gemini, upstream_model: gemini-pro}
  - {provider: bedrock-us, upstream_model: anthropic.claude-v2}
- model: embed
  tenants: []
  deployments: [{provider: local, upstream_model: embed-small}]
prices:
  models:
  - {model: chat, input_per_million: 2.5, output_per_million: 10}
  providers:
  - {provider: local, input_per_million: 0, output_per_million: 0.5}
"""
SECRETS = {
    "OPENAI_KEY": "sk-openai-secret-1",
    "AZURE_KEY": "azure-secret-2",
    "ANTHROPIC_KEY": "sk-ant-secret-3",
    "GEMINI_KEY": "gemini-secret-4",
    "AWS_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET": "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY",
    "AWS_TOKEN": "session-token-secret-5",
}
# The variables an export names, holding the same secrets.
EXPORTED = {
    "SLUICE_PROVIDER_OPENAI_EU_API_KEY": SECRETS["OPENAI_KEY"],
    "SLUICE_PROVIDER_AZURE_API_KEY": SECRETS["AZURE_KEY"],
    "SLUICE_PROVIDER_CLAUDE_API_KEY": SECRETS["ANTHROPIC_KEY"],
    "SLUICE_PROVIDER_GEMINI_API_KEY": SECRETS["GEMINI_KEY"],
    "SLUICE_PROVIDER_BEDROCK_US_AWS_ACCESS_KEY_ID": SECRETS["AWS_ID"],
    "SLUICE_PROVIDER_BEDROCK_US_AWS_SECRET_ACCESS_KEY": SECRETS["AWS_SECRET"],
    "SLUICE_PROVIDER_BEDROCK_US_AWS_SESSION_TOKEN": SECRETS["AWS_TOKEN"],
}


def _minimal_file(where: Path) -> Path:
    doc = minimal()
    del doc["providers"][0]["api_key"]
    doc["providers"][0]["api_key_env"] = "PRIMARY_KEY"
    file = where / "sluice.yaml"
    file.write_text(yaml.safe_dump(doc, sort_keys=False))
    return file


async def test_export_applied_to_an_empty_database_exports_the_same_file(
    fresh: Stack, fresh_too: Stack, tmp_path: Path
) -> None:
    first, second = Cli.against(fresh, tmp_path), Cli.against(fresh_too, tmp_path)
    (tmp_path / "everything.yaml").write_text(EVERYTHING)
    fresh.handed_out.extend(SECRETS.values())
    first("apply", "-f", str(tmp_path / "everything.yaml"), env=SECRETS).ok()
    exported = first("export").ok()
    for secret in SECRETS.values():
        assert secret not in exported
    for variable in EXPORTED:
        assert f"_env: {variable}\n" in exported
    written = await event_count(fresh)
    (tmp_path / "exported.yaml").write_text(exported)
    again = first("apply", "-f", str(tmp_path / "exported.yaml"), env=EXPORTED).ok()
    assert again.strip() == "no changes"
    assert await event_count(fresh) == written

    second("apply", "-f", str(tmp_path / "exported.yaml"), env=EXPORTED).ok()
    second("export", "-f", str(tmp_path / "again.yaml")).ok()
    assert (tmp_path / "again.yaml").read_bytes() == exported.encode()
    # the providers work with the same secrets: the file named them all
    async with fresh_too.admin() as admin:
        providers = (await admin.get("/providers")).json()
    assert {p["name"] for p in providers if p["has_api_key"]} == {
        "openai-eu",
        "azure",
        "claude",
        "gemini",
        "bedrock-us",
    }
    assert (
        "no changes" in second("apply", "-f", str(tmp_path / "everything.yaml"), env=SECRETS).ok()
    )


async def test_apply_shows_the_plan_then_applies_it_once(fresh: Stack, tmp_path: Path) -> None:
    cli, file = Cli.against(fresh, tmp_path), _minimal_file(tmp_path)
    env = {"PRIMARY_KEY": "sk-primary-cli"}
    fresh.handed_out.append(env["PRIMARY_KEY"])
    shown = cli("apply", "-f", str(file), env=env).ok()
    lines = shown.splitlines()
    assert lines[:4] == [
        "+ tenant acme",
        "    policy.rpm: 60",
        '    policy.models: ["chat"]',
        "+ provider primary",
    ]
    assert "    api_key: (secret)" in lines
    assert "+ deployment chat: primary/gpt-a" in lines
    assert lines[-1] == "applied: 7 changes, 6 events (position 6)"
    assert env["PRIMARY_KEY"] not in shown
    assert await event_count(fresh) == 6

    assert cli("apply", "-f", str(file), env=env).ok().strip() == "no changes"
    assert await event_count(fresh) == 6
    changed = yaml.safe_load(file.read_text())
    changed["routes"][0]["deployments"][0]["weight"] = 1
    changed["tenants"] = []
    changed["routes"][0].pop("tenants")
    file.write_text(yaml.safe_dump(changed))
    shown = cli("apply", "-f", "-", stdin=file.read_text(), env=env).ok()
    assert shown.splitlines() == [
        "~ route chat",
        '    tenants: ["acme"] → (none)',
        "~ deployment chat: primary/gpt-a",
        "    weight: 3 → 1",
        "- tenant acme",
        "applied: 3 changes, 3 events (position 9)",
    ]


async def test_a_dry_run_shows_the_plan_and_writes_nothing(fresh: Stack, tmp_path: Path) -> None:
    cli, file = Cli.against(fresh, tmp_path), _minimal_file(tmp_path)
    shown = cli("apply", "--dry-run", "-f", str(file), env={"PRIMARY_KEY": "sk-dry"}).ok()
    assert shown.startswith("+ tenant acme\n")
    assert shown.splitlines()[-1] == "dry run: 7 changes, 6 events, not applied"
    planned = cli("apply", "--dry-run", "-o", "json", "-f", str(file), env={"PRIMARY_KEY": "k"})
    assert len(planned.json()["changes"]) == 7
    assert await event_count(fresh) == 0


async def test_a_refusal_is_printed_with_its_field_and_nothing_is_applied(
    fresh: Stack, tmp_path: Path
) -> None:
    cli, file = Cli.against(fresh, tmp_path), _minimal_file(tmp_path)
    doc = yaml.safe_load(file.read_text())
    doc["routes"][0]["deployments"][1]["provider"] = "nowhere"
    file.write_text(yaml.safe_dump(doc))
    err = cli("apply", "-f", str(file), env={"PRIMARY_KEY": "sk-x"}).failed()
    assert "error 422" in err
    assert "routes[0].deployments[1].provider" in err
    assert "nowhere" in err

    err = cli("apply", "-f", str(_minimal_file(tmp_path))).failed()  # PRIMARY_KEY unset
    assert "PRIMARY_KEY is not set" in err
    doc = minimal()  # a secret written in the file
    file.write_text(yaml.safe_dump(doc))
    assert "providers[0].api_key" in cli("apply", "-f", str(file)).failed()
    file.write_text("- just\n- a list\n")
    assert "must hold a mapping" in cli("apply", "-f", str(file)).failed()
    assert await event_count(fresh) == 0


async def test_the_readme_example_applies_to_what_make_run_sets_up(
    fresh: Stack, tmp_path: Path
) -> None:
    """`make run` seeds a `demo` tenant (with a key), the `fake` provider on port 9090 and
    a `demo-model` route (shared/tools/devseed.py); the example keeps them and adds to
    them, so the demo key goes on working."""
    tenant = await fresh.create_tenant("demo")
    key = await fresh.create_key(tenant["id"])
    async with fresh.admin() as admin:
        body = {"name": "fake", "kind": "openai", "base_url": "http://127.0.0.1:9090/v1"}
        provider = (await admin.post("/providers", json=body)).json()
        body = {"model": "demo-model", "provider_id": provider["id"], "upstream_model": "fake-1"}
        assert (await admin.post("/routes", json=body)).status_code == 201
    cli = Cli.against(fresh, tmp_path)
    planned = cli("apply", "--dry-run", "-o", "json", "-f", str(EXAMPLE)).json()
    assert {c["action"] for c in planned["changes"]} == {"create", "change"}
    cli("apply", "-f", str(EXAMPLE)).ok()
    assert cli("apply", "-f", str(EXAMPLE)).ok().strip() == "no changes"
    async with fresh.admin() as admin:
        assert (await admin.get(f"/keys/{key['id']}")).json()["revoked_at"] is None
        policy = (await admin.get(f"/tenants/{tenant['id']}/policy")).json()
        (route,) = (await admin.get("/routes")).json()
        price = (await admin.get("/prices/demo-model")).json()
    assert (policy["rpm"], policy["budget_usd"]) == (600, 50)
    assert [(d["upstream_model"], d["priority"]) for d in route["deployments"]] == [
        ("fake-1", 0),
        ("fake-2", 1),
    ]
    assert {d["provider_id"] for d in route["deployments"]} == {provider["id"]}
    assert route["retry"]["max_attempts"] == 2
    assert (price["input_per_million"], price["output_per_million"]) == (0.5, 1.5)
    exported = yaml.safe_load(cli("export").ok())
    assert exported == yaml.safe_load(EXAMPLE.read_text())


def test_the_readme_shows_the_example_file_as_it_is() -> None:
    readme = (EXAMPLE.parents[2] / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    assert EXAMPLE.read_text() in blocks
