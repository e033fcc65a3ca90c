"""Console: the audit log (the event log, newest first, filtered, a page at a time),
kept live by a server-sent event stream, and the state as it was after any event.

The stream waits on the process's one LISTEN connection (`console.live`) and, on
each ring, reads the events after the last one it sent through the admin API as
the session's identity, with the page's filters: a tenant admin's stream carries
its own tenant's events only, and a session that ended (the API's 401) ends it.
A wait without a ring sends a comment (keeping proxies from closing the stream)
and reads again, which doubles as the session check and a safety poll."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, get
from litestar.params import FromPath, FromQuery
from litestar.response import ServerSentEvent, ServerSentEventMessage, Template

from control_plane.console.api import AdminApi, ApiError, Reply
from control_plane.console.base import admin_api, is_platform, page
from control_plane.console.live import Ring, live_of

__all__ = ["HANDLERS"]

PAGE_SIZE = 50
HEARTBEAT_SECONDS = 15.0
RETRY_MS = 5000  # how long a browser waits before reconnecting a dropped stream
_BATCH = 100  # events read per call when catching up
_CATCH_UP = 500  # new events one read takes in at most; past that the page reloads
_FILTERS = ("actor", "type", "stream", "tenant_id", "since", "until")
_LOCAL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?")
_SUMMARY_VALUE = 40
_SUMMARY = 200


def _filters(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The filters the page was asked for, as typed (for the form and the links)."""
    query = request.query_params
    return {name: query[name].strip() for name in _FILTERS if query.get(name, "").strip()}


def _as_utc(value: str) -> str:
    """A `datetime-local` input's value (no time zone) read as UTC; anything else is
    passed on as it is, for the API to accept or refuse."""
    if not _LOCAL_TIME.fullmatch(value):
        return value
    return value + (":00" if len(value) == 16 else "") + "Z"


def _api_params(filters: Mapping[str, str]) -> dict[str, str]:
    return {
        name: _as_utc(value) if name in ("since", "until") else value
        for name, value in filters.items()
    }


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
    return text if len(text) <= _SUMMARY_VALUE else text[: _SUMMARY_VALUE - 1] + "…"


def _row(event: dict[str, Any]) -> dict[str, Any]:
    """An event as a row: its time readable and its data in one short line (the API
    has already taken the secrets out)."""
    stream = str(event["stream"])
    summary = " · ".join(
        f"{key}={_shown(value)}"
        for key, value in event["data"].items()
        if not (key == "id" and stream.endswith(f":{value}"))  # the stream column says it
    )
    if len(summary) > _SUMMARY:
        summary = summary[: _SUMMARY - 1] + "…"
    created = str(event["created_at"])
    return {**event, "time": created[:19].replace("T", " "), "summary": summary}


def _stream_url(filters: Mapping[str, str], after: int) -> str:
    return "/console/audit/stream?" + urlencode({**filters, "after": str(after)})


def _form_errors(reply: Reply) -> dict[str, str]:
    """The API's messages by form field; one about anything else (the paging
    position, the limit) above the form."""
    errors: dict[str, str] = {}
    for key, message in reply.field_errors().items():
        errors.setdefault(key if key in _FILTERS else "", message)
    return errors


@get("/audit")
async def audit(request: Request[Any, Any, Any]) -> Template:
    filters = _filters(request)
    query = request.query_params
    before = query.get("before", "").strip()
    size = {"limit": query["limit"].strip()} if query.get("limit", "").strip() else {}
    async with admin_api(request) as api:
        reply = await api.call(
            "GET",
            "/events",
            params={**_api_params(filters), "before": before, "limit": PAGE_SIZE, **size},
        )
    if reply.status in (401, 403):
        raise ApiError(reply)
    found = reply.body if reply.ok else {"data": [], "next_before": None}
    rows = [_row(event) for event in found["data"]]
    older = found["next_before"]
    return page(
        request,
        "console/audit.html",
        status=reply.status,
        title="Audit log",
        rows=rows,
        form=filters,
        errors=_form_errors(reply),
        filtered=bool(filters),
        paged=bool(before),
        older=None if older is None else _page_url({**filters, **size, "before": str(older)}),
        newest_page=_page_url({**filters, **size}),
        live=None
        if before or not reply.ok
        else _stream_url(filters, rows[0]["position"] if rows else 0),
    )


def _page_url(params: Mapping[str, str]) -> str:
    return "/console/audit?" + urlencode(params)


async def _newest(api: AdminApi, params: Mapping[str, str]) -> int:
    found = await api.get("/events", **params, limit=1)
    return int(found["data"][0]["position"]) if found["data"] else 0


async def _events_after(
    api: AdminApi, params: Mapping[str, str], last: int
) -> tuple[list[dict[str, Any]], bool]:
    """The events after position `last`, oldest first, and whether there were more
    than `_CATCH_UP` of them (then only the newest are read)."""
    found: list[dict[str, Any]] = []
    before: int | None = None
    while len(found) < _CATCH_UP:
        batch = await api.get("/events", **params, before=before, limit=_BATCH)
        newer = [event for event in batch["data"] if event["position"] > last]
        found.extend(newer)
        if len(newer) < len(batch["data"]) or batch["next_before"] is None:
            return found[::-1], False
        before = batch["next_before"]
    return found[::-1], True


def _start(request: Request[Any, Any, Any], after: int | None) -> int | None:
    """Where a stream starts: after the last event a reconnecting browser had, or
    after the page's newest row; None: after the newest event now."""
    resumed = request.headers.get("last-event-id", "")
    if resumed.isascii() and resumed.isdigit() and len(resumed) <= 19:
        return int(resumed)
    return after


def _ended(exc: ApiError) -> ServerSentEventMessage:
    reply = exc.reply
    if reply.status == 401:
        why = "The session ended. Log in again to see new events."
    else:
        detail = reply.body.get("detail") if isinstance(reply.body, dict) else None
        why = f"The admin API refused the live updates ({reply.status}): {detail or 'no detail'}"
    return ServerSentEventMessage(data=why, event="end")


async def _live_rows(
    request: Request[Any, Any, Any], filters: Mapping[str, str], after: int | None
) -> AsyncIterator[ServerSentEventMessage]:
    params = _api_params(filters)
    engine = request.app.template_engine
    assert engine is not None, "the console's templates are configured with it"
    template = engine.get_template("console/audit_rows.html")
    platform = is_platform(request)
    async with live_of(request.app).subscribe() as bell, admin_api(request) as api:
        try:
            last = after if after is not None else await _newest(api, params)
            yield ServerSentEventMessage(data=None, comment="listening", retry=RETRY_MS)
            while True:
                try:
                    events, cut = await _events_after(api, params, last)
                except ApiError as exc:
                    if exc.reply.status < 500:
                        raise
                    events, cut = [], False  # the database is away: read again on the next ring
                if cut:  # more than a page should take in: it reloads instead
                    yield ServerSentEventMessage(data="More events arrived.", event="reload")
                    return
                for event in events:
                    html = template.render(event=_row(event), platform=platform)
                    yield ServerSentEventMessage(data=html, event="row", id=event["position"])
                    last = event["position"]
                ring = await bell.wait(HEARTBEAT_SECONDS)
                if ring is Ring.CLOSED:  # draining: the browser reconnects, elsewhere
                    return
                if ring is Ring.QUIET:
                    yield ServerSentEventMessage(data=None, comment="heartbeat")
        except ApiError as exc:
            if exc.reply.status < 500:
                yield _ended(exc)
            # else the database is away: closed quietly, the browser tries again


@get("/audit/stream")
async def audit_stream(
    request: Request[Any, Any, Any], after: FromQuery[int | None] = None
) -> ServerSentEvent:
    """New events, as rows of the audit page's table (`row` events, their position as
    the event id), with the page's filters."""
    filters = _filters(request)
    return ServerSentEvent(_live_rows(request, filters, _start(request, after)))


@get("/state/{position:int}")
async def state(request: Request[Any, Any, Any], position: FromPath[int]) -> Template:
    async with admin_api(request) as api:
        found = await api.get("/state", at=position)  # platform only: the API's 403 otherwise
        around = (await api.get("/events", before=position + 1, limit=2))["data"]
        newest = await _newest(api, {})
    event = around[0] if around and around[0]["position"] == position else None
    earlier = [e["position"] for e in around if e["position"] < position]
    providers = {p["id"]: p["name"] for p in found["providers"]}
    tenants = {t["id"]: t["name"] for t in found["tenants"]}
    return page(
        request,
        "console/state.html",
        title=f"State after event {position}",
        position=position,
        state=found,
        event=None if event is None else _row(event),
        previous=earlier[0] if earlier else None,
        next=position + 1 if position < newest else None,
        provider_names=providers,
        tenant_names=tenants,
        event_link=f"/console/audit?{urlencode({'before': str(position + 1)})}#event-{position}",
    )


HANDLERS = [audit, audit_stream, state]
