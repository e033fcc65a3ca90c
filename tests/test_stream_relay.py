"""The stream relay against a real upstream (the fake provider) and a minimal
ASGI server side: a client that leaves ends the relay quietly; a server shutdown
that cancels the request is never mistaken for a client that left."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from data_plane.providers.openai import ADAPTER
from data_plane.upstream import Outcome, relay
from tests.support.fake import API_KEY, chat_body


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


async def _start_slow_stream(
    fake_url: str, session: aiohttp.ClientSession, server: _ServerSide, outcome: Outcome
) -> asyncio.Task[None]:
    request = ADAPTER.chat_request(fake_url + "/v1", API_KEY, "gpt-test", chat_body(stream=True))
    request.headers["x-fake-delay-ms"] = "300"
    task = asyncio.create_task(
        relay(
            session,
            ADAPTER,
            request,
            stream=True,
            client_wants_usage=False,
            receive=server.receive,
            send=server.send,
            extra_headers=[],
            outcome=outcome,
        )
    )
    await asyncio.wait_for(server.first_event.wait(), 10)
    return task


async def test_a_client_that_leaves_ends_the_relay_quietly(fake_url: str) -> None:
    server, outcome = _ServerSide(), Outcome()
    async with aiohttp.ClientSession() as session:
        task = await _start_slow_stream(fake_url, session, server, outcome)
        server.left.set()
        await asyncio.wait_for(task, 5)  # returns normally: the request is then recorded
    assert outcome.disconnected
    assert task.cancelling() == 0


async def test_a_shutdown_is_not_mistaken_for_a_client_that_left(fake_url: str) -> None:
    server, outcome = _ServerSide(), Outcome()
    async with aiohttp.ClientSession() as session:
        task = await _start_slow_stream(fake_url, session, server, outcome)
        server.left.set()  # the client leaves and, in the same instant,
        task.cancel()  # the server cancels the request (shutdown)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
    assert task.cancelled()
