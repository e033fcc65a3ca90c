"""The admin API, called in-process for one console request, as the session's identity
(its cookie and CSRF token go with every call). The console shows and changes exactly
what the API lets that identity see and change, with the API's own checks and errors:
there is no second copy of a rule here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from litestar import Litestar

from control_plane.auth import CSRF_HEADER, SESSION_COOKIE

__all__ = ["AdminApi", "ApiError", "Reply"]

BASE = "/admin/v1"


@dataclass
class Reply:
    """An answer of the API: its status and decoded body (a problem's details on error)."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status < 400

    def field_errors(self) -> dict[str, str]:
        """A problem's messages by field (`errors[].key`), for the form that sent it;
        a message no field owns is under "" (shown above the form)."""
        if self.ok or not isinstance(self.body, dict):
            return {}
        found: dict[str, str] = {}
        for error in self.body.get("errors") or []:
            key = str(error.get("key") or "")
            found.setdefault(key.rsplit(".", 1)[-1], str(error.get("message") or ""))
        if not found:
            found[""] = str(self.body.get("detail") or self.body.get("title") or self.status)
        return found


class ApiError(Exception):
    """A read the console needed failed: the page answers with the API's status."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


class AdminApi:
    def __init__(self, app: Litestar, cookie: str, csrf: str) -> None:
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
            base_url="http://console.internal",
            cookies={SESSION_COOKIE: cookie},
            headers={CSRF_HEADER: csrf},
            timeout=30,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        resp = await self._client.request(
            method, BASE + path, json=body, params=query, headers=headers
        )
        data: Any = resp.json() if resp.content else None
        return Reply(resp.status_code, data, dict(resp.headers))

    async def get(self, path: str, **params: Any) -> Any:
        """A read's body; `ApiError` when the API refuses it."""
        reply = await self.call("GET", path, params=params)
        if not reply.ok:
            raise ApiError(reply)
        return reply.body
