"""The stream relay against a real upstream (the fake provider) and a minimal
ASGI server side: a client that leaves ends the relay quietly; a server shutdown
that cancels the request is never mistaken for a client that left."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from immutables import Map

from data_plane.drain import OpenStreams
from data_plane.limits import Limiter
from data_plane.pipeline.attempts import Upstreams
from data_plane.pipeline.call import Call
from data_plane.pipeline.relay import relay_stream
from data_plane.routing.health import Health
from data_plane.translate.dialects import OPENAI
from shared.errors import ServiceUnavailable
from shared.routing import Deployment
from shared.secrets import SecretBox
from shared.state import ApiKey, Provider, Route, State
from tests.support.fake import API_KEY, chat_body

BOX = SecretBox("a-secret-key-for-these-tests")


class _ServerSide:
    """What uvicorn gives an ASGI app: `receive` (blocks until the client leaves)
    and `send` (records the messages)."""

    def __init__(self) -> None:
        self.left = asyncio.Event()
        self.bodies: list[bytes] = []
        self.first_event = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message["body"]:
            self.bodies.append(message["body"])
            self.first_event.set()


def _call(fake_url: str) -> Call:
    provider = Provider("p1", "fake", "openai", fake_url + "/v1", BOX.encrypt(API_KEY))
    deployment = Deployment(id="d1", provider_id="p1", upstream_model="gpt-test")
    route = Route(id="r1", model="m", tenant_ids=None, deployments=(deployment,))
    state = State(providers=Map({"p1": provider}), routes=Map({"r1": route}))
    key = ApiKey("k1", "t1", "key", "sk-", "hash")
    call = Call(uuid.uuid4(), time.monotonic(), datetime.now(UTC), state, key, OPENAI, "chat")
    call.route, call.stream = route, True
    return call


async def _start_slow_stream(
    fake_url: str,
    session: aiohttp.ClientSession,
    server: _ServerSide,
    call: Call,
    streams: OpenStreams | None = None,
) -> asyncio.Task[None]:
    upstreams = Upstreams(session, Health(), Limiter(), BOX)
    open_streams = streams or OpenStreams()

    async def run() -> None:
        body = chat_body(stream=True)
        committed = await upstreams.commit(call, body)
        await relay_stream(
            upstreams, call, committed, None, server.receive, server.send, [], open_streams
        )

    session.headers["x-fake-delay-ms"] = "300"
    task = asyncio.create_task(run())
    await asyncio.wait_for(server.first_event.wait(), 10)
    return task


async def test_a_client_that_leaves_ends_the_relay_quietly(fake_url: str) -> None:
    server, call = _ServerSide(), _call(fake_url)
    async with aiohttp.ClientSession() as session:
        task = await _start_slow_stream(fake_url, session, server, call)
        server.left.set()
        await asyncio.wait_for(task, 5)  # returns normally: the request is then recorded
    assert call.disconnected
    assert task.cancelling() == 0


async def test_a_shutdown_is_not_mistaken_for_a_client_that_left(fake_url: str) -> None:
    server, call = _ServerSide(), _call(fake_url)
    async with aiohttp.ClientSession() as session:
        task = await _start_slow_stream(fake_url, session, server, call)
        server.left.set()  # the client leaves and, in the same instant,
        task.cancel()  # the server cancels the request (shutdown)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
    assert task.cancelled()


async def test_a_drain_cut_ends_the_stream_with_an_error(fake_url: str) -> None:
    server, call, streams = _ServerSide(), _call(fake_url), OpenStreams()
    async with aiohttp.ClientSession() as session:
        task = await _start_slow_stream(fake_url, session, server, call, streams)
        assert streams.open == {task}
        await streams.cut(5)
        assert task.done()
        with pytest.raises(ServiceUnavailable) as raised:
            task.result()  # the handler sends it as the final error event and records it
    assert raised.value.code == "shutting_down"
    assert not streams.open
    assert not call.disconnected
