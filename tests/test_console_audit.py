"""The console's audit log: the page over `/admin/v1/events` with its filters, the live
stream of new rows (server-sent events fed by LISTEN/NOTIFY, read as the session's
identity), and the state after an event (time travel, platform identities only)."""

from __future__ import annotations

import asyncio
import re
import secrets
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.authz import create_token
from tests.support.console import csrf_of, login
from tests.support.own_postgres import OwnPostgres
from tests.support.processes import Server, free_port
from tests.support.stack import Stack, start_control_plane

Message = dict[str, str]

WITHIN = 20.0  # seconds a stream may take to show what the test waits for (a bound, not a check)


async def _messages(resp: httpx.Response) -> AsyncIterator[Message]:
    """A response's server-sent events as their fields (`event`, `id`, `data`, `retry`);
    comments are skipped."""
    fields: dict[str, list[str]] = {}
    async for line in resp.aiter_lines():
        if not line:
            if fields:
                yield {name: "\n".join(values) for name, values in fields.items()}
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value.removeprefix(" "))


@asynccontextmanager
async def _console(stack: Stack, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser logged in to the console with `token`."""
    client = await login(stack.control_plane_url, token)
    try:
        yield client
    finally:
        await client.aclose()


@asynccontextmanager
async def _stream(
    client: httpx.AsyncClient, **params: Any
) -> AsyncIterator[AsyncIterator[Message]]:
    """The audit log's stream, once it listens (its first message, the retry delay,
    comes after it has noted where it starts)."""
    async with client.stream("GET", "/console/audit/stream", params=params) as resp:
        assert resp.status_code == 200, await resp.aread()
        assert resp.headers["content-type"].startswith("text/event-stream")
        messages = _messages(resp)
        async with asyncio.timeout(WITHIN):
            first = await anext(messages)
        assert first == {"retry": "5000"}
        yield messages


async def _until(
    messages: AsyncIterator[Message], found: Callable[[Message], bool]
) -> list[Message]:
    """The messages read up to and with the first that `found` accepts."""
    read: list[Message] = []
    async with asyncio.timeout(WITHIN):
        async for message in messages:
            read.append(message)
            if found(message):
                return read
    raise AssertionError(f"the stream ended without it; read {read}")


def _row_with(text: str) -> Callable[[Message], bool]:
    return lambda m: m.get("event") == "row" and text in m["data"]


def _rows(messages: list[Message]) -> list[Message]:
    return [m for m in messages if m.get("event") == "row"]


async def _position(stack: Stack, stream: str, type: str) -> int:
    async with stack.admin() as admin:
        resp = await admin.get("/events", params={"stream": stream, "type": type})
    assert resp.status_code == 200, resp.text
    [event] = resp.json()["data"]
    position: int = event["position"]
    return position


async def _tenant_admin(stack: Stack, tenant_id: str) -> str:
    token: str = (await create_token(stack, "tenant_admin", tenant_id))["token"]
    return token


async def test_the_page_lists_events_made_through_the_api(control_plane: Stack) -> None:
    name, first = "audited-" + secrets.token_hex(4), "first-" + secrets.token_hex(4)
    await control_plane.create_tenant(first)
    tenant = await control_plane.create_tenant(name)
    position = await _position(control_plane, f"tenant:{tenant['id']}", "tenant.created")
    async with _console(control_plane, control_plane.admin_token) as client:
        resp = await client.get("/console/audit")
        assert resp.status_code == 200, resp.text
        row = re.search(rf'<tr id="event-{position}".*?</tr>', resp.text, re.S)
        assert row is not None, resp.text
        for shown in ("tenant.created", "admin:bootstrap", f"name={name}", tenant["id"][:8]):
            assert shown in row.group(0)
        assert f'href="/console/state/{position}"' in row.group(0)
        assert 'data-live="/console/audit/stream?after=' in resp.text

        by_type = await client.get("/console/audit", params={"type": "tenant.created"})
        assert f'id="event-{position}"' in by_type.text
        other_type = await client.get("/console/audit", params={"type": "key.created"})
        assert f'id="event-{position}"' not in other_type.text
        nobody = await client.get("/console/audit", params={"actor": "token:nobody"})
        assert nobody.status_code == 200
        assert "No events match these filters" in nobody.text

        one = await client.get("/console/audit", params={"type": "tenant.created", "limit": 1})
        assert f"name={name}" in one.text
        assert f"name={first}" not in one.text
        link = re.search(r'<a class="button secondary" href="([^"]+)">Older events</a>', one.text)
        assert link is not None, one.text
        assert link[1] == f"/console/audit?type=tenant.created&amp;limit=1&amp;before={position}"
        next_page = await client.get(link[1].replace("&amp;", "&"))
        assert f"name={first}" in next_page.text
        assert f"name={name}" not in next_page.text

        older = await client.get("/console/audit", params={"before": position})
        assert f'id="event-{position}"' not in older.text
        assert "data-live=" not in older.text  # an older page stays as it is
        at_it = await client.get("/console/audit", params={"before": position + 1})
        top = re.search(r'<tbody id="audit-rows">\s*<tr id="event-(\d+)"', at_it.text)
        assert top is not None, at_it.text
        assert top[1] == str(position)


async def test_a_bad_filter_shows_the_api_error_next_to_its_field(control_plane: Stack) -> None:
    async with _console(control_plane, control_plane.admin_token) as client:
        unreadable = await client.get("/console/audit", params={"since": "yesterday"})
        assert unreadable.status_code == 400, unreadable.text
        error = re.search(
            r'<p id="f-since-error" class="field-error" role="alert">([^<]+)', unreadable.text
        )
        assert error is not None, unreadable.text
        assert 'id="f-since" name="since" type="datetime-local"' in unreadable.text
        assert 'aria-invalid="true"' in unreadable.text

        too_late = await client.get("/console/audit", params={"until": "9999-12-31T10:00"})
        assert too_late.status_code == 422, too_late.text
        error = re.search(
            r'<p id="f-until-error" class="field-error" role="alert">([^<]+)', too_late.text
        )
        assert error is not None, too_late.text
        assert "must be before 9999-12-31" in error[1]
        assert "data-live=" not in too_late.text


async def test_the_stream_delivers_a_new_event_once(control_plane: Stack) -> None:
    name, then = "live-" + secrets.token_hex(4), "next-" + secrets.token_hex(4)
    async with (
        _console(control_plane, control_plane.admin_token) as client,
        _stream(client) as messages,
    ):
        tenant = await control_plane.create_tenant(name)
        read = await _until(messages, _row_with(f"name={name}"))
        await control_plane.create_tenant(then)  # anything sent twice comes before it
        read += await _until(messages, _row_with(f"name={then}"))
    position = await _position(control_plane, f"tenant:{tenant['id']}", "tenant.created")
    rows = _rows(read)
    [row] = [m for m in rows if f"name={name}" in m["data"]]
    assert row["id"] == str(position)
    assert f'<tr id="event-{position}"' in row["data"]
    assert "tenant.created" in row["data"]
    ids = [int(m["id"]) for m in rows]
    assert ids == sorted(set(ids))


async def test_the_stream_reads_from_where_the_page_was(control_plane: Stack) -> None:
    """The page's newest row (`after`) or a reconnecting browser's last event id."""
    start = await control_plane.last_position()
    tenant = await control_plane.create_tenant()
    position = await _position(control_plane, f"tenant:{tenant['id']}", "tenant.created")
    async with _console(control_plane, control_plane.admin_token) as client:
        async with _stream(client, after=start, type="tenant.created") as messages:
            read = await _until(messages, lambda m: m.get("id") == str(position))
        assert [m["id"] for m in _rows(read)] == [str(position)]
        assert "tenant.created" in read[-1]["data"]
        client.headers["last-event-id"] = str(position - 1)  # it wins over `after`
        async with _stream(client, after=0, type="tenant.created") as messages:
            read = await _until(messages, lambda m: m.get("event") == "row")
        assert [m["id"] for m in _rows(read)] == [str(position)]
        # an id that is no position (a digit Python reads as one, a huge number) is
        # ignored: the stream starts after `after`, as for a browser without one
        for odd in ("\u00b2", "9" * 40):
            client.headers["last-event-id"] = odd
            async with _stream(client, after=position - 1, type="tenant.created") as messages:
                read = await _until(messages, lambda m: m.get("event") == "row")
            assert [m["id"] for m in _rows(read)] == [str(position)]


async def test_a_tenant_admin_streams_its_own_tenant_only(control_plane: Stack) -> None:
    own, other = await control_plane.create_tenant(), await control_plane.create_tenant()
    token = await _tenant_admin(control_plane, own["id"])
    async with _console(control_plane, token) as client:
        async with _stream(client) as messages:
            other_key = await control_plane.create_key(other["id"])
            own_key = await control_plane.create_key(own["id"])
            read = await _until(messages, _row_with(f"key:{own_key['id']}"))
        rows = _rows(read)
        assert "key.created" in rows[-1]["data"]
        for row in rows:  # the other tenant's key came first: it would be here
            assert other["id"] not in row["data"]
            assert other_key["id"] not in row["data"]
            assert "/console/state/" not in row["data"]

        listed = await client.get("/console/audit")
        assert f"key:{own_key['id']}" in listed.text
        assert other_key["id"] not in listed.text
        assert other["id"] not in listed.text


async def test_the_state_at_an_event(control_plane: Stack) -> None:
    name = "travelled-" + secrets.token_hex(4)
    earlier = await control_plane.last_position()
    tenant = await control_plane.create_tenant(name)
    created = await _position(control_plane, f"tenant:{tenant['id']}", "tenant.created")
    await control_plane.create_key(tenant["id"])  # an event after it
    async with _console(control_plane, control_plane.admin_token) as client:
        before = await client.get(f"/console/state/{earlier}")
        assert before.status_code == 200, before.text
        assert name not in before.text
        at = await client.get(f"/console/state/{created}")
        assert at.status_code == 200, at.text
        assert f"<td>{name}</td>" in at.text
        assert "tenant.created" in at.text
        assert f'href="/console/state/{earlier}"' in at.text
        assert f'href="/console/state/{created + 1}"' in at.text
        assert f"#event-{created}" in at.text
        past = await client.get(f"/console/state/{created + 10**6}")
        assert past.status_code == 400 or past.status_code == 422, past.text
    token = await _tenant_admin(control_plane, tenant["id"])
    async with _console(control_plane, token) as client:
        refused = await client.get(f"/console/state/{created}")
        assert refused.status_code == 403, refused.text
        assert name not in refused.text


async def test_the_stream_ends_after_logout(control_plane: Stack) -> None:
    name = "after-logout-" + secrets.token_hex(4)
    async with _console(control_plane, control_plane.admin_token) as client:
        csrf = csrf_of((await client.get("/console/audit")).text)
        async with _stream(client) as messages:
            out = await client.post("/console/logout", data={"csrf": csrf})
            assert out.status_code == 303
            await control_plane.create_tenant(name)  # rings the stream
            async with asyncio.timeout(WITHIN):
                rest = [message async for message in messages]  # to its end
        assert rest, "the stream ended without saying why"
        assert rest[-1]["event"] == "end", rest
        assert "session ended" in rest[-1]["data"]
        assert not any(name in m.get("data", "") for m in rest)
        again = await client.get("/console/audit/stream")
        assert again.status_code == 303
        assert again.headers["location"] == "/console/login"


async def _logged(server: Server, since: int, text: str) -> str:
    """The server's log from byte `since`, once it holds `text`."""
    async with asyncio.timeout(WITHIN):
        while True:
            lines = server.log_path.read_bytes()[since:].decode(errors="replace")
            if text in lines:
                return lines
            await asyncio.sleep(0.2)


async def test_the_stream_outlives_a_database_outage(
    own_pg: OwnPostgres, log_dir: Path, handed_out: list[str]
) -> None:
    """PostgreSQL restarts under an open stream: the listening connection comes back
    (one log line when it goes, one when it is back, no traceback) and the stream
    goes on delivering."""
    stack = start_control_plane(own_pg.url(), log_dir, handed_out)
    [server] = stack.servers
    name = "after-outage-" + secrets.token_hex(4)
    try:
        async with _console(stack, stack.admin_token) as client, _stream(client) as messages:
            since = server.log_path.stat().st_size
            own_pg.stop()
            own_pg.start()
            await _logged(server, since, "audit log notifications (database) available again")
            async with stack.admin() as admin, asyncio.timeout(WITHIN):
                while True:  # the pool finds its connections dead first
                    if (await admin.post("/tenants", json={"name": name})).status_code == 201:
                        break
                    await asyncio.sleep(0.2)
            read = await _until(messages, _row_with(f"name={name}"))
        assert len(_rows(read)) == 1
        lines = await _logged(server, since, "")
        assert lines.count("audit log notifications (database) unavailable") == 1, lines
        assert "Traceback" not in lines
    finally:
        stack.stop()


async def test_a_drain_ends_the_open_streams(
    database_url: str, log_dir: Path, handed_out: list[str]
) -> None:
    """SIGTERM: the open streams end when the drain begins, not when its grace is over
    (an open page must not hold the process up); quietly, with no `end` event, so that
    the browser reconnects (to another replica)."""
    stack = Stack(database_url=database_url, log_dir=log_dir, handed_out=handed_out)
    handed_out += [stack.admin_token, stack.secret_key]
    port = free_port()
    env = {**stack.env, "SLUICE_DRAIN_DELAY_SECONDS": "60", "SLUICE_DRAIN_GRACE_SECONDS": "60"}
    server = Server(f"drain-console-{port}", "control_plane", ["--port", str(port)], env, log_dir)
    stack.servers.append(server)
    stack.control_plane_url = f"http://127.0.0.1:{port}"
    try:
        server.wait_http(stack.control_plane_url + "/readyz")
        async with _console(stack, stack.admin_token) as client, _stream(client) as messages:
            server.proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(WITHIN):  # far less than the drain's 120 s
                rest = [message async for message in messages]
        assert all(m.get("event") != "end" for m in rest), rest
    finally:
        stack.stop()  # a second SIGTERM skips the rest of the delay
