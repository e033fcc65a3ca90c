"""Schemathesis over the whole admin API, from the OpenAPI document the server serves,
with all its checks, as the bootstrap platform admin, against a real control plane on
a real PostgreSQL: no request may get a server error, and every answer must be what
the document says (statuses, content types, headers, bodies), schema-valid requests
accepted and schema-invalid ones refused, auth enforced, created objects readable
and deleted ones gone.

One check is narrowed, for a reason the document cannot change (see CONFIG)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.stack import Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
EXAMPLES = 20  # per operation and phase: enough to reach every rule, quick on 2 busy cores
SEED = 1130  # the same cases on every run, so a failure shows again
RUN_LIMIT = 200.0  # seconds: a run that hangs fails instead of holding the suite

# Every check of Schemathesis runs: all are on unless turned off (`--checks all` would say
# so too, but a check named on the command line also overrides the one narrowing below).
# `object_level_authorization` needs two users' tokens as WFC peers: tenant isolation has
# tests of its own (test_tenant_isolation, test_authz_matrix).
CONFIG = """
[checks.positive_data_acceptance]
# Schemathesis's default, and 422. A 422 answers a request that matches the document
# but breaks a rule no schema can state: fields that must agree with each other
# (soft_budget_usd <= budget_usd, since < until), with the time (expires_at in the
# future) or with the state (a provider_id that exists, a position already reached).
# Every rule a schema can state is in the document, and its breach is a 400, which a
# schema-valid request must still never get.
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]

[[operations]]
# A tenant or a key has no policy until one is set: its policy is then a 404 by
# design (tests/test_policies_api.py), though the tenant or key was just created.
include-path-regex = "/policy$"
checks = {{ ensure_resource_availability = {{ enabled = false }} }}

[parameters]
# Objects made before the run, which the document's links cannot lead to.
"path.key_id" = "{key_id}"
"path.deployment_id" = "{deployment_id}"
"""


async def _seed(stack: Stack) -> dict[str, str]:
    """A tenant with a key, a provider and a route to it: the ids the run reuses."""
    tenant = await stack.create_tenant()
    key = await stack.create_key(tenant["id"])
    provider = await stack.create_provider()
    route = await stack.create_route("fuzz-model", provider["id"], "upstream-model")
    return {"key_id": key["id"], "deployment_id": route["deployments"][0]["id"]}


async def test_schemathesis_finds_nothing_wrong(control_plane: Stack, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG.format(**await _seed(control_plane)))
    junit = tmp_path / "junit.xml"
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{control_plane.control_plane_url}/admin/schema/openapi.json",
        "--header",
        f"Authorization: Bearer {control_plane.admin_token}",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--request-timeout",
        "10",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        str(junit),
    ]
    run = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=RUN_LIMIT, cwd=tmp_path
    )
    report = run.stdout + run.stderr
    print(report)  # shown by pytest when the test fails
    suites = ET.parse(junit).getroot()
    counts = {k: int(suites.get(k, "0")) for k in ("tests", "failures", "errors")}
    assert counts["tests"] >= 40, counts  # every operation was tested
    assert (counts["failures"], counts["errors"], run.returncode) == (0, 0, 0), report[-4000:]
