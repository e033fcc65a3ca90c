"""Errors located in the document: a refusal names the field at fault by its path in
the document (`routes[2].deployments[0].provider`), wherever it was raised."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from control_plane.errors import AdminError, VersionConflict
from control_plane.store import Decide
from shared.events import Payload
from shared.state import State

__all__ = ["ROUTE_FIELDS", "at", "located"]

# The routes API's field names and the document's for the same thing.
ROUTE_FIELDS = {"provider_id": "provider", "tenant_ids": "tenants"}


@contextmanager
def at(path: str, renames: Mapping[str, str] | None = None) -> Iterator[None]:
    """An `AdminError` raised inside names `path`, or the field it named inside `path`
    (with the API's field names changed to the document's by `renames`)."""
    try:
        yield
    except VersionConflict:
        raise
    except AdminError as exc:
        exc.field = _join(path, exc.field, renames or {})
        raise


def located(decide: Decide, path: str, renames: Mapping[str, str] | None = None) -> Decide:
    """`decide`, its refusals naming fields inside `path`."""

    def run(state: State) -> Sequence[Payload]:
        with at(path, renames):
            return decide(state)

    return run


def _join(path: str, field: str | None, renames: Mapping[str, str]) -> str:
    if field is None:
        return path
    for api, doc in renames.items():
        field = field.replace(api, doc)
    return f"{path}.{field}"
