"""The admin API's deadline for a request body: once the headers are in, the whole
body must arrive within `seconds`, else the request fails with 408 (a problem
details body, by the app's `HTTPException` handler) and the connection closes."""

from __future__ import annotations

import asyncio

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

__all__ = ["BodyDeadline"]


class BodyDeadline:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        complete = False

        async def receive_in_time() -> ReceiveMessage:
            nonlocal complete
            if complete:  # after the body, a wait for the disconnect has no deadline
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(
                    status_code=408,
                    detail=f"The request body did not arrive within {self.seconds:g} s.",
                    headers={"connection": "close"},
                ) from None
            complete = not message.get("more_body", False)
            return message

        await self.app(scope, receive_in_time, send)
