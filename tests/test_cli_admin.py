"""The `sluice` admin commands against a real control plane: secrets printed once,
`--output json` for every read, readable errors, and writes that do what they say."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Cli
from tests.support.stack import NOWHERE, Stack

KEY = re.compile(r"^(sk-sluice-[\w-]+)$", re.M)
TOKEN = re.compile(r"^(sluice-admin-[\w-]+)$", re.M)


@pytest.fixture
def cli(control_plane: Stack, tmp_path: Path) -> Cli:
    return Cli.against(control_plane, tmp_path)


def test_a_key_secret_is_printed_once_and_never_again(control_plane: Stack, cli: Cli) -> None:
    cli("tenants", "create", "cli-keys").ok()
    shown = cli("keys", "create", "cli-keys", "--name", "ci").ok()
    found = KEY.search(shown)
    assert found, shown
    secret = found.group(1)
    control_plane.handed_out.append(secret)
    assert shown.count(secret) == 1
    assert "shown only this once" in shown
    listed = cli("keys", "list", "cli-keys", "-o", "json").json()
    assert [k["name"] for k in listed] == ["ci"]
    assert secret.startswith(listed[0]["key_prefix"])
    key_id = listed[0]["id"]
    for args in (
        ("keys", "list", "cli-keys"),
        ("keys", "list", "cli-keys", "-o", "json"),
        ("keys", "get", key_id),
        ("keys", "get", key_id, "-o", "json"),
        ("audit", "--limit", "1000"),
        ("audit", "--limit", "1000", "-o", "json"),
    ):
        assert secret not in cli(*args).ok(), args
    created = cli("keys", "create", "cli-keys", "-o", "json").json()  # for scripts: JSON
    control_plane.handed_out.append(created["key"])
    assert created["key"].startswith(created["key_prefix"])
    assert cli("keys", "revoke", key_id, "--yes").ok()
    assert cli("keys", "get", key_id, "-o", "json").json()["revoked_at"] is not None


def _everything(cli: Cli, stack: Stack) -> dict[str, Any]:
    """One of each kind of object, made with the CLI; their ids."""
    tenant = cli("tenants", "create", "cli-json", "-o", "json").json()
    key = cli("keys", "create", "cli-json", "-o", "json").json()
    stack.handed_out.append(key["key"])
    env = {"UPSTREAM_KEY": stack.upstream_key}
    provider = cli(
        "providers", "create", "cli-json-p", "--base-url", NOWHERE + "/v1",
        "--api-key-env", "UPSTREAM_KEY", "-o", "json", env=env,
    ).json()  # fmt: skip
    route = cli(
        "routes", "create", "cli-json-m", "-d", "provider=cli-json-p,model=up-1", "-o", "json"
    ).json()
    deployment = route["deployments"][0]
    cli("policies", "set", "tenant", "cli-json", "--rpm", "5").ok()
    cli("policies", "set", "key", key["id"], "--max-tokens", "10").ok()
    cli("prices", "set", "cli-json-m", "--input-per-million", "1", "--output-per-million", "2").ok()
    token = cli("tokens", "create", "cli-json-viewer", "--role", "viewer", "-o", "json").json()
    stack.handed_out.append(token["token"])
    return {
        "tenant": tenant["id"],
        "key": key["id"],
        "provider": provider["id"],
        "route": route["id"],
        "deployment": deployment["id"],
        "token": token["id"],
    }


def test_every_read_command_speaks_json(control_plane: Stack, cli: Cli) -> None:
    ids = _everything(cli, control_plane)
    t, k, p, r, d = ids["tenant"], ids["key"], ids["provider"], ids["route"], ids["deployment"]

    def has(field: str, value: object) -> Callable[[Any], bool]:
        return lambda data: any(item[field] == value for item in data)

    reads: list[tuple[tuple[str, ...], Callable[[Any], bool]]] = [
        (("tenants", "list"), has("id", t)),
        (("tenants", "get", "cli-json"), lambda data: data["id"] == t),
        (("keys", "list", t), has("id", k)),
        (("keys", "get", k), lambda data: data["tenant_id"] == t),
        (("providers", "list"), has("id", p)),
        (("providers", "get", "cli-json-p"), lambda data: data["has_api_key"] is True),
        (("routes", "list"), has("model", "cli-json-m")),
        (("routes", "get", "cli-json-m"), lambda data: data["id"] == r),
        (("deployments", "list", "cli-json-m"), has("upstream_model", "up-1")),
        (("deployments", "get", r, d), lambda data: data["provider_id"] == p),
        (("deployments", "health", d), lambda data: data["replicas"] == []),
        (("policies", "get", "tenant", t), lambda data: data["rpm"] == 5),
        (("policies", "get", "key", k), lambda data: data["max_tokens"] == 10),
        (("prices", "list"), has("model", "cli-json-m")),
        (("prices", "get", "cli-json-m"), lambda data: data["output_per_million"] == 2),
        (("usage",), lambda data: data["totals"]["requests"] == 0),
        (("usage", "--by", "model"), lambda data: data["rows"] == []),
        (("audit", "--tenant", t), lambda page: {e["tenant_id"] for e in page["data"]} == {t}),
        (
            ("audit", "--type", "route.created"),
            lambda page: has("stream", f"route:{r}")(page["data"]),
        ),
        (("tokens", "list"), has("name", "cli-json-viewer")),
        (("tokens", "get", ids["token"]), lambda data: data["role"] == "viewer"),
        (("whoami",), lambda data: data["actor"] == "admin:bootstrap"),
        (("profile", "list"), lambda data: data == []),
    ]
    for args, check in reads:
        data = cli(*args, "--output", "json").json()
        assert check(data), (args, data)
    # `--output` also goes before the command, and a table is the default
    assert cli("-o", "json", "tenants", "get", t).json()["name"] == "cli-json"
    assert "cli-json" in cli("tenants", "get", t).ok()


def test_errors_print_the_problem_and_exit_1(control_plane: Stack, cli: Cli) -> None:
    cli = cli.as_process()  # the console script itself: its exit code, no traceback
    missing = str(uuid.uuid4())
    err = cli("tenants", "get", missing).failed()
    assert "error 404" in err
    assert f"tenant {missing} does not exist" in err
    cli("tenants", "create", "cli-errors").ok()
    err = cli("policies", "set", "tenant", "cli-errors", "--rpm", "0").failed()
    assert "error 400" in err
    assert re.search(r"^  - rpm: .*>= 1", err, re.M), err  # the problem's errors[], each named
    err = cli("routes", "create", "cli-errors-m", "-d", "provider=no-such-provider").failed()
    assert "no provider has the name 'no-such-provider'" in err
    err = cli("keys", "get", "not-an-id").failed()
    assert "error 404" in err
    assert "/admin/v1/keys/not-an-id" in err
    err = cli("--token", "wrong", "whoami").failed()
    assert "error 401" in err
    err = cli("--url", NOWHERE, "tenants", "list").failed()
    assert "cannot reach the control plane at http://127.0.0.1:9" in err
    version = cli("tenants", "get", "cli-errors", "-o", "json").json()["version"]
    err = cli("tenants", "rename", "cli-errors", "x", "--if-match", str(version + 5)).failed()
    assert "error 409" in err
    err = cli("usage", "--since", "yesterday-ish").failed()
    assert "neither a time" in err
    assert cli("tenants", "get", "cli-errors", "-o", "json").json()["name"] == "cli-errors"


def test_writes(control_plane: Stack, cli: Cli) -> None:
    cli("tenants", "create", "cli-w").ok()
    cli("tenants", "create", "cli-w-other").ok()
    renamed = cli("tenants", "rename", "cli-w", "cli-w2", "-o", "json").json()
    assert renamed["name"] == "cli-w2"
    cli("providers", "create", "cli-w-p", "--base-url", NOWHERE + "/v1").ok()
    cli("routes", "create", "cli-w-m", "-d", "provider=cli-w-p", "--tenant", "cli-w2").ok()
    route = cli("routes", "get", "cli-w-m", "-o", "json").json()
    assert route["deployments"][0]["upstream_model"] == "cli-w-m"  # the route's model
    assert route["tenant_ids"] == [renamed["id"]]
    changed = cli(
        "routes", "update", "cli-w-m", "--strategy", "least_in_flight", "--all-tenants",
        "--retry", "max_attempts=2", "--if-match", str(route["version"]), "-o", "json",
    ).json()  # fmt: skip
    assert changed["strategy"] == "least_in_flight"
    assert changed["tenant_ids"] is None
    assert changed["retry"]["max_attempts"] == 2
    assert changed["retry"]["deadline"] == route["retry"]["deadline"]  # the rest as it was
    added = cli(
        "deployments", "add", "cli-w-m", "--provider", "cli-w-p", "--upstream-model", "up-2",
        "--weight", "3", "--rpm", "60", "-o", "json",
    ).json()  # fmt: skip
    assert (added["weight"], added["rpm"]) == (3, 60)
    updated = cli(
        "deployments", "update", "cli-w-m", added["id"], "--unset", "rpm", "--timeout",
        "first_token=4", "-o", "json",
    ).json()  # fmt: skip
    assert updated["rpm"] is None
    assert updated["timeouts"]["first_token"] == 4
    cli("deployments", "remove", "cli-w-m", added["id"], "-y").ok()
    assert len(cli("deployments", "list", "cli-w-m", "-o", "json").json()) == 1
    # asked before deleting: no answer, nothing deleted
    assert "Aborted" in cli("tenants", "delete", "cli-w-other", stdin="n\n").err
    assert cli("tenants", "get", "cli-w-other", "-o", "json").ok()
    cli("tenants", "delete", "cli-w-other", stdin="y\n").ok()
    assert "no tenant has the name 'cli-w-other'" in cli("tenants", "get", "cli-w-other").failed()
    cli("routes", "delete", "cli-w-m", "-y").ok()
    cli("providers", "delete", "cli-w-p", "-y").ok()
    assert "cli-w-p" not in {p["name"] for p in cli("providers", "list", "-o", "json").json()}
    cli("prices", "set", "cli-w-m", "--input-per-million", "1", "--output-per-million", "1").ok()
    cli("prices", "clear", "cli-w-m", "-y").ok()
    assert "error 404" in cli("prices", "get", "cli-w-m").failed()


def test_provider_credentials_come_from_the_environment_or_stdin(
    control_plane: Stack, cli: Cli
) -> None:
    first, second = "sk-cli-" + uuid.uuid4().hex, "sk-cli-" + uuid.uuid4().hex
    control_plane.handed_out += [first, second]
    base = ("--base-url", NOWHERE + "/v1")
    made = cli("providers", "create", "cli-s", *base, "--api-key-env", "K", env={"K": first})
    assert first not in made.ok() + made.err
    assert "has_api_key" in made.out
    err = cli("providers", "create", "cli-s2", *base, "--api-key-env", "UNSET_VAR").failed()
    assert "UNSET_VAR is not set" in err
    rotated = cli("providers", "update", "cli-s", "--ask-api-key", "-o", "json", stdin=second)
    assert second not in rotated.ok() + rotated.err
    assert rotated.json()["has_api_key"] is True
    assert rotated.json()["version"] == 2  # a new key is a change
    removed = cli("providers", "update", "cli-s", "--remove-api-key", "-o", "json").json()
    assert removed["has_api_key"] is False
    events = cli("audit", "--stream", f"provider:{removed['id']}", "-o", "json").ok()
    assert first not in events
    assert second not in events


def test_admin_tokens_are_printed_once_and_work(control_plane: Stack, cli: Cli) -> None:
    cli("tenants", "create", "cli-tok").ok()
    shown = cli("tokens", "create", "cli-tok-admin", "--role", "tenant_admin", "--tenant",
                "cli-tok", "--expires-in", "7d").ok()  # fmt: skip
    found = TOKEN.search(shown)
    assert found, shown
    token = found.group(1)
    control_plane.handed_out.append(token)
    assert shown.count(token) == 1
    listed = cli("tokens", "list", "-o", "json").json()
    mine = next(t for t in listed if t["name"] == "cli-tok-admin")
    assert token not in cli("tokens", "list").ok() + cli("tokens", "get", mine["id"]).ok()
    as_it = Cli(cli.home, {**cli.env, "SLUICE_TOKEN": token})
    me = as_it("whoami", "-o", "json").json()
    assert me == {"actor": "token:cli-tok-admin", "role": "tenant_admin",
                  "tenant_id": mine["tenant_id"]}  # fmt: skip
    assert [t["name"] for t in as_it("tenants", "list", "-o", "json").json()] == ["cli-tok"]
    assert "error 403" in as_it("tenants", "rename", "cli-tok", "other").failed()
    cli("tokens", "revoke", mine["id"], "--yes").ok()
    assert "error 401" in as_it("whoami").failed()
