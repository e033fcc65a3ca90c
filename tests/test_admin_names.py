"""Names of tenants, providers and keys: stored NFC and trimmed, so names that look
the same are the same (a second one is a 409), and refused with a problem naming
the field when they hold a control or invisible character: a 400 for those the
schema's pattern names (control characters), a 422 for the other invisible ones
(Unicode categories, which a pattern cannot name)."""

from __future__ import annotations

import uuid

import pytest

from tests.support.problems import assert_refused, nothing_appended
from tests.support.stack import Stack

UNSEEN = [
    ("esc\x1b[31mred", 400),
    ("bell\x07", 400),
    ("del\x7f", 400),
    ("trailing newline\n", 400),
    ("zero\u200bwidth", 422),
    ("bidi\u202eevil", 422),
    ("line\u2028separator", 422),
]


@pytest.mark.parametrize(("name", "status"), UNSEEN, ids=[repr(n) for n, _ in UNSEEN])
async def test_control_and_invisible_characters_are_refused(
    control_plane: Stack, name: str, status: int
) -> None:
    async with control_plane.admin() as admin, nothing_appended(control_plane):
        tenant = await admin.post("/tenants", json={"name": name})
        provider = await admin.post(
            "/providers", json={"name": name, "base_url": "http://127.0.0.1:9/v1"}
        )
    assert_refused(tenant, status, "name")
    assert_refused(provider, status, "name")


async def test_names_that_look_the_same_are_the_same(control_plane: Stack) -> None:
    base = "café-" + uuid.uuid4().hex[:6]
    async with control_plane.admin() as admin:
        first = await admin.post("/tenants", json={"name": base})
        assert first.status_code == 201, first.text
        assert first.json()["name"] == base
        decomposed = base.replace("é", "e\u0301")  # NFD: the same to the eye
        for twin in (decomposed, base + " ", "  " + base):
            again = await admin.post("/tenants", json={"name": twin})
            assert again.status_code == 409, (twin, again.text)
        renamed = await admin.patch(f"/tenants/{first.json()['id']}", json={"name": " x-" + base})
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["name"] == "x-" + base


async def test_key_names_are_cleaned_too(control_plane: Stack) -> None:
    async with control_plane.admin() as admin:
        tenant = await admin.post("/tenants", json={"name": "keys-" + uuid.uuid4().hex[:6]})
        tid = tenant.json()["id"]
        refused = await admin.post(f"/tenants/{tid}/keys", json={"name": "ci\u200b"})
        assert_refused(refused, 422, "name")
        made = await admin.post(f"/tenants/{tid}/keys", json={"name": " ci "})
        assert made.status_code == 201, made.text
        assert made.json()["name"] == "ci"
