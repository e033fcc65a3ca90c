"""Where the CLI connects, and the admin API client every command uses.

The control plane's URL and its token are taken as a pair from one source, the first
that gives a URL: the `--url` flag (with `--token`); `SLUICE_URL` (with `SLUICE_TOKEN`);
the profile (`--profile NAME`, else `SLUICE_PROFILE`, else the profiles file's default:
its URL, or `http://127.0.0.1:8081` when it has none, with its token); else the local
control plane, `http://127.0.0.1:8081` with `SLUICE_ADMIN_TOKEN` (the bootstrap token
`make run` sets). A token given explicitly, by `--token` or `SLUICE_TOKEN`, is a
deliberate choice and goes to whichever URL that gives; a profile's token and
`SLUICE_ADMIN_TOKEN` never go to a URL from another source, so `--url elsewhere` does
not hand the default profile's token to `elsewhere`, nor a profile's remote URL get a
local shell's bootstrap token.

A command reaches the API through `api(ctx)`:

    @app.command()
    def show(ctx: typer.Context) -> None:
        emit(ctx, api(ctx).get("/admin/v1/tenants"))
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx
import typer

from control_plane.cli import profiles
from control_plane.cli.errors import ApiError, CliError, Unreachable

__all__ = [
    "DEFAULT_URL",
    "OUTPUT_KEY",
    "Api",
    "ApiError",
    "CliError",
    "Options",
    "Output",
    "Session",
    "Unreachable",
    "api",
    "output",
    "resolve",
    "session",
]

DEFAULT_URL = "http://127.0.0.1:8081"
NO_TOKEN = (
    "no token was sent: give --token or SLUICE_TOKEN; a profile's token and "
    "SLUICE_ADMIN_TOKEN go only to their own URL"
)
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
OUTPUT_KEY = "sluice.output"  # in the click context's `meta`, shared by every context


class Output(StrEnum):
    table = "table"
    json = "json"


class Api:
    """A small synchronous client of the admin API. Paths are the control plane's own
    (`/admin/v1/tenants`); answers are decoded JSON (None when there is no body). A
    non-2xx answer raises `ApiError`, no answer `Unreachable`."""

    def __init__(
        self, url: str, token: str | None, *, transport: httpx.BaseTransport | None = None
    ):
        headers = {"accept": "application/json, application/problem+json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self.url = url.rstrip("/")
        self._tokenless = not token
        self._client = httpx.Client(
            base_url=self.url, headers=headers, timeout=TIMEOUT, transport=transport
        )

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            answer = self._client.request(
                method, path, json=json, params=query, headers=dict(headers or {})
            )
        except httpx.HTTPError as exc:
            raise Unreachable(f"cannot reach the control plane at {self.url}: {exc}") from None
        body = _decoded(answer)
        if answer.is_success:
            return body
        problem = body if isinstance(body, dict) else {}
        problem.setdefault("status", answer.status_code)
        problem.setdefault("title", answer.reason_phrase or "error")
        problem.setdefault("instance", path)
        if answer.status_code == 401 and self._tokenless:
            problem["detail"] = f"{problem.get('detail') or 'unauthorized'} ({NO_TOKEN})"
        raise ApiError(answer.status_code, problem)

    # each verb takes `request`'s keywords: json, params, headers
    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


def _decoded(answer: httpx.Response) -> Any:
    if not answer.content:
        return None
    try:
        return answer.json()
    except ValueError:
        if answer.is_success:
            raise Unreachable(f"{answer.url} answered with a body that is not JSON") from None
        return {"detail": answer.text[:500]}


@dataclass
class Session:
    """Where this invocation connects."""

    url: str
    token: str | None
    profile: str | None = None
    _api: Api | None = field(default=None, repr=False)

    def api(self) -> Api:
        if self._api is None:
            self._api = Api(self.url, self.token)
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()


@dataclass
class Options:
    """The root command's connection flags, kept as the typer context's `obj`; the
    session is resolved from them (and the environment and profiles) when first needed,
    so that commands that do not connect never read the profiles file."""

    url: str | None = None
    token: str | None = None
    profile: str | None = None
    _session: Session | None = field(default=None, repr=False)

    def close(self) -> None:
        """Close the API client, if one was made."""
        if self._session is not None:
            self._session.close()


def resolve(
    *,
    url: str | None,
    token: str | None,
    profile: str | None,
    env: Mapping[str, str] | None = None,
) -> Session:
    """Apply the precedence above. Raises `profiles.ProfileError` for a named profile
    that does not exist, or a profiles file that cannot be read."""
    env = os.environ if env is None else env
    name, chosen = _profile(profile, env)
    explicit = token or env.get("SLUICE_TOKEN") or None
    if url or env.get("SLUICE_URL"):
        return Session(url or env["SLUICE_URL"], explicit)
    if chosen is not None:
        return Session(chosen.url or DEFAULT_URL, explicit or chosen.token, profile=name)
    return Session(DEFAULT_URL, explicit or env.get("SLUICE_ADMIN_TOKEN") or None)


def _profile(
    given: str | None, env: Mapping[str, str]
) -> tuple[str | None, profiles.Profile | None]:
    """The profile in effect: the one named (by flag or `SLUICE_PROFILE`), else the
    file's default, else none."""
    file = profiles.path(env)
    stored = profiles.load(file)
    name = given or env.get("SLUICE_PROFILE") or None
    if name is not None and name not in stored.profiles:
        raise profiles.ProfileError(f"no profile {name!r} in {file}")
    if name is None and stored.default in stored.profiles:
        name = stored.default
    return (name, stored.profiles[name]) if name is not None else (None, None)


def session(ctx: typer.Context) -> Session:
    """The session of this invocation (from a command's own context or any other)."""
    options = ctx.find_root().obj
    if not isinstance(options, Options):
        options = ctx.find_root().obj = Options()
    if options._session is None:
        options._session = resolve(url=options.url, token=options.token, profile=options.profile)
    return options._session


def api(ctx: typer.Context) -> Api:
    """The API client for this invocation."""
    return session(ctx).api()


def output(ctx: typer.Context) -> Output:
    """`--output`, given to the command or to `sluice` itself; `table` by default."""
    chosen = ctx.meta.get(OUTPUT_KEY)
    return chosen if isinstance(chosen, Output) else Output.table
