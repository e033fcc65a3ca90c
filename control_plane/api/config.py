"""The whole configuration as one document (`control_plane.declarative`): exported,
planned against the state, and applied in one transaction.

`POST /config/plan` says what applying a document would create, change and remove,
checking every change as applying it would, and writes nothing. `POST /config/apply`
plans again under the append lock and appends every event in one transaction, or
none. Both take the document as JSON, with the secrets that its `*_env` fields name
(`sluice apply` reads them from its environment)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import JSONBody, QueryParameter

from control_plane.api.common import actor_of, get_store
from control_plane.authz import PLATFORM_READ, PLATFORM_WRITE, needs
from control_plane.declarative.changes import Change
from control_plane.declarative.document import Document
from control_plane.declarative.export import export
from control_plane.declarative.plan import plan
from control_plane.errors import Conflict
from control_plane.store import Decide, Step
from shared.events import Event, Payload
from shared.secrets import SecretBox
from shared.state import State

__all__ = ["ConfigController"]

# The stream of an apply's first step, which only checks the plan (it appends nothing).
CHECK_STREAM = "config"

Digest = Annotated[
    str | None,
    QueryParameter(
        pattern=r"^[0-9a-f]{64}$",
        description="The `digest` of the plan that was shown: if the plan is another by"
        " now, nothing is applied (409).",
    ),
]


class PlanView(msgspec.Struct):
    """`events`: how many events applying it appends; `digest` names the changes."""

    changes: list[Change]
    events: int
    digest: str


class Applied(PlanView):
    """The changes applied; `position`: the last event's (null: none was appended)."""

    position: int | None


class ConfigController(Controller):
    path = "/config"
    tags = ["config"]

    @get(summary="The configuration as a document (no secrets)", opt=needs(PLATFORM_READ))
    async def export_config(self, request: Request[Any, Any, Any]) -> Document:
        """Tenants, providers, routes and prices by name, in a stable order and without
        defaults; each provider's secrets are named by the variables `sluice apply` reads
        them from (`SLUICE_PROVIDER_<NAME>_API_KEY`, ...)."""
        return export(await get_store(request).current_state(), _box(request))

    @post(
        "/plan",
        status_code=200,
        summary="What applying a document would change (nothing is written)",
        opt=needs(PLATFORM_WRITE),
    )
    async def plan_config(
        self, request: Request[Any, Any, Any], data: JSONBody[Document]
    ) -> PlanView:
        state = await get_store(request).current_state()
        planned = plan(state, data, _box(request))
        events = planned.rehearse(state)
        return PlanView(changes=planned.changes, events=len(events), digest=planned.digest)

    @post(
        "/apply",
        status_code=200,
        summary="Make the configuration what a document says, in one transaction",
        opt=needs(PLATFORM_WRITE),
    )
    async def apply_config(
        self, request: Request[Any, Any, Any], data: JSONBody[Document], digest: Digest = None
    ) -> Applied:
        """What the database has and the document has not is removed. With `digest`,
        only the plan that digest names is applied."""
        store, box = get_store(request), _box(request)
        planned = plan(await store.current_state(), data, box)
        expected = digest or planned.digest
        if expected != planned.digest:
            raise _changed()
        events: list[Event] = []
        if planned.steps:  # else in sync: nothing to lock for
            check = Step(CHECK_STREAM, _same_plan(data, box, expected))
            events = await store.append_all([check, *planned.steps], actor=actor_of(request))
        return Applied(
            changes=planned.changes,
            events=len(events),
            digest=planned.digest,
            position=events[-1].position if events else None,
        )


def _same_plan(document: Document, box: SecretBox, digest: str) -> Decide:
    """Under the append lock: the plan for the state as it is now is still the one
    made before the lock was taken (else nothing is applied)."""

    def decide(state: State) -> list[Payload]:
        if plan(state, document, box).digest != digest:
            raise _changed()
        return []

    return decide


def _changed() -> Conflict:
    return Conflict("the configuration changed since this plan was made: plan again")


def _box(request: Request[Any, Any, Any]) -> SecretBox:
    box: SecretBox = request.app.state.secret_box
    return box
