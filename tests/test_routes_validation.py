"""Bad routes and bad changes to routes through the admin API: problem details
naming the field, and nothing appended."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import routes_admin
from tests.support.problems import assert_refused, nothing_appended
from tests.support.routes_admin import Body, create_route, deployment_body, new_model
from tests.support.stack import Stack

# module-scoped: one provider each for the module's routes
provider, other_provider = routes_admin.provider, routes_admin.other_provider


def _set(path: str, value: Any) -> Callable[[Body], None]:
    """Set `value` at a dotted path (numbers index lists); `...` removes the key."""

    def change(body: Body) -> None:
        *parents, last = path.split(".")
        node: Any = body
        for part in parents:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        if value is ...:
            del node[last]
        else:
            node[last] = value

    return change


def _older_shape_without_provider(body: Body) -> None:
    del body["deployments"]
    body["upstream_model"] = "u"


CREATE_REFUSALS = [
    ("no deployments", _set("deployments", []), 400, "deployments"),
    ("neither shape", _set("deployments", ...), 422, "deployments"),
    ("both shapes", _set("provider_id", "PROVIDER"), 422, "provider_id"),
    ("both shapes, upstream", _set("upstream_model", "u"), 422, "upstream_model"),
    ("older shape, no provider", _older_shape_without_provider, 422, "provider_id"),
    ("weight zero", _set("deployments.0.weight", 0), 400, "deployments[0].weight"),
    ("weight negative", _set("deployments.1.weight", -2), 400, "deployments[1].weight"),
    (
        "unknown provider",
        _set("deployments.1.provider_id", "UNKNOWN"),
        422,
        "deployments[1].provider_id",
    ),
    (
        "zero timeout",
        _set("deployments.0.timeouts", {"connect": 0}),
        400,
        "deployments[0].timeouts.connect",
    ),
    (
        "negative timeout",
        _set("deployments.1.timeouts", {"total": -1}),
        400,
        "deployments[1].timeouts.total",
    ),
    ("unknown strategy", _set("strategy", "fastest"), 400, "strategy"),
    ("no attempts", _set("retry", {"max_attempts": 0}), 400, "retry.max_attempts"),
    ("breaker ratio zero", _set("breaker", {"ratio": 0}), 400, "breaker.ratio"),
    ("breaker ratio over one", _set("breaker", {"ratio": 1.5}), 400, "breaker.ratio"),
    ("negative priority", _set("deployments.0.priority", -1), 400, "deployments[0].priority"),
    ("rpm zero", _set("deployments.0.rpm", 0), 400, "deployments[0].rpm"),
    ("tpm zero", _set("deployments.1.tpm", 0), 400, "deployments[1].tpm"),
    ("fallback to itself", _set("context_fallback", "MODEL"), 422, "context_fallback"),
    ("fallback unrouted", _set("context_fallback", "no-such-model"), 422, "context_fallback"),
    ("unknown tenant", _set("tenant_ids", ["UNKNOWN"]), 422, "tenant_ids"),
    ("unknown field", _set("surprise", 1), 400, "surprise"),
    ("unknown deployment field", _set("deployments.0.region", "eu"), 400, "deployments[0].region"),
    (
        "unknown timeout",
        _set("deployments.0.timeouts", {"read": 1}),
        400,
        "deployments[0].timeouts.read",
    ),
    (
        "bad upstream name",
        _set("deployments.0.upstream_model", "a b"),
        400,
        "deployments[0].upstream_model",
    ),
    (
        "upstream missing",
        _set("deployments.0.upstream_model", ...),
        400,
        "deployments[0].upstream_model",
    ),
    (
        "too many",
        _set("deployments", [{"provider_id": "PROVIDER", "upstream_model": "u"}] * 65),
        400,
        "deployments",
    ),
]


def _filled(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _filled(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, names) for v in value]
    return names.get(value, value) if isinstance(value, str) else value


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [c[1:] for c in CREATE_REFUSALS],
    ids=[c[0] for c in CREATE_REFUSALS],
)
async def test_bad_routes_are_refused_and_append_nothing(
    control_plane: Stack,
    provider: Body,
    other_provider: Body,
    change: Callable[[Body], None],
    status: int,
    field: str,
) -> None:
    model = new_model()
    body: Body = {
        "model": model,
        "deployments": [deployment_body(provider["id"]), deployment_body(other_provider["id"])],
    }
    change(body)
    names = {"PROVIDER": provider["id"], "UNKNOWN": str(uuid.uuid4()), "MODEL": model}
    async with control_plane.admin() as admin, nothing_appended(control_plane):
        resp = await admin.post("/routes", json=_filled(body, names))
        assert_refused(resp, status, field)
        assert model not in {r["model"] for r in (await admin.get("/routes")).json()}


CHANGE_REFUSALS = [
    ("route", {"strategy": "random"}, 400, "strategy"),
    ("route", {"retry": {"max_attempts": 0}}, 400, "retry.max_attempts"),
    ("route", {"breaker": {"ratio": 2}}, 400, "breaker.ratio"),
    ("route", {"context_fallback": "MODEL"}, 422, "context_fallback"),
    ("route", {"tenant_ids": ["UNKNOWN"]}, 422, "tenant_ids"),
    ("route", {"model": "renamed"}, 400, "model"),
    ("route", {"deployments": []}, 400, "deployments"),
    ("add", {"provider_id": "UNKNOWN", "upstream_model": "u"}, 422, "provider_id"),
    ("add", {"provider_id": "PROVIDER", "upstream_model": "u", "weight": 0}, 400, "weight"),
    (
        "add",
        {"provider_id": "PROVIDER", "upstream_model": "u", "timeouts": {"idle": 0}},
        400,
        "timeouts.idle",
    ),
    ("add", {"provider_id": "PROVIDER"}, 400, "upstream_model"),
    ("deployment", {"priority": -1}, 400, "priority"),
    ("deployment", {"rpm": 0}, 400, "rpm"),
    ("deployment", {"weight": -1}, 400, "weight"),
    ("deployment", {"provider_id": "UNKNOWN"}, 422, "provider_id"),
    ("deployment", {"timeouts": {"first_token": -3}}, 400, "timeouts.first_token"),
    ("deployment", {"id": "mine"}, 400, "id"),
]


@pytest.mark.parametrize(("target", "body", "status", "field"), CHANGE_REFUSALS)
async def test_bad_changes_are_refused_and_append_nothing(
    control_plane: Stack, provider: Body, target: str, body: Body, status: int, field: str
) -> None:
    route, _ = await create_route(
        control_plane, {"model": new_model(), "deployments": [deployment_body(provider["id"])]}
    )
    names = {"PROVIDER": provider["id"], "UNKNOWN": str(uuid.uuid4()), "MODEL": route["model"]}
    deployments = f"/routes/{route['id']}/deployments"
    async with control_plane.admin() as admin, nothing_appended(control_plane):
        if target == "route":
            resp = await admin.patch(f"/routes/{route['id']}", json=_filled(body, names))
        elif target == "add":
            resp = await admin.post(deployments, json=_filled(body, names))
        else:
            path = f"{deployments}/{route['deployments'][0]['id']}"
            resp = await admin.patch(path, json=_filled(body, names))
        assert_refused(resp, status, field)
        assert (await admin.get(f"/routes/{route['id']}")).json() == route
