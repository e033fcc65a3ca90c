"""Single sign-on to the console: the authorization code flow with PKCE against a local
identity provider, its ID token checked as the admin API checks a JWT; a wrong state,
a wrong nonce or a refused code give no session."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.oidc import AUDIENCE, ISSUER, JwksServer, claims, jwks, mint, rsa_key
from tests.support.oidc_provider import CodeFlowProvider
from tests.support.stack import Stack, another_control_plane

KEY = rsa_key("sso")
NONCES: dict[str, str] = {}  # what the provider puts in the next ID token, if set


def _id_token(nonce: str) -> str:
    sent = NONCES.pop("override", nonce)
    return mint(claims(role="viewer", tenant="*", sub="erin@example.test", nonce=sent), KEY)


def _env(keys: JwksServer, provider: CodeFlowProvider) -> dict[str, str]:
    return {
        "SLUICE_OIDC_ISSUER": ISSUER,
        "SLUICE_OIDC_AUDIENCE": AUDIENCE,
        "SLUICE_OIDC_JWKS_URL": keys.url,
        "SLUICE_OIDC_CLIENT_ID": "sluice-console",
        "SLUICE_OIDC_AUTHORIZATION_ENDPOINT": provider.authorization_endpoint,
        "SLUICE_OIDC_TOKEN_ENDPOINT": provider.token_endpoint,
    }


@pytest.fixture(scope="module")
def provider() -> Iterator[CodeFlowProvider]:
    found = CodeFlowProvider(_id_token)
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture(scope="module")
def sso_url(control_plane: Stack, provider: CodeFlowProvider) -> Iterator[str]:
    with (
        JwksServer(jwks(KEY)) as keys,
        another_control_plane(control_plane, "sso", _env(keys, provider)) as url,
    ):
        yield url


async def _sign_in(client: httpx.AsyncClient) -> httpx.Response:
    """Follows the browser's way: to the provider and back to the callback."""
    start = await client.get("/console/login/oidc")
    assert start.status_code == 303
    at_provider = await client.get(start.headers["location"])
    assert at_provider.status_code == 302
    return await client.get(at_provider.headers["location"])


async def test_signing_in_through_the_provider(sso_url: str, provider: CodeFlowProvider) -> None:
    async with httpx.AsyncClient(base_url=sso_url, timeout=10) as client:
        login_page = await client.get("/console/login")
        assert 'href="/console/login/oidc"' in login_page.text
        back = await _sign_in(client)
        assert back.status_code == 200, back.text
        assert 'url=/console"' in back.text, "moves on with a page of ours, not a redirect"
        asked = provider.authorized[-1]
        assert asked["client_id"] == "sluice-console"
        assert asked["code_challenge_method"] == "S256"
        assert asked["redirect_uri"] == sso_url + "/console/login/oidc/callback"
        assert "code_verifier" not in asked
        assert provider.exchanges[-1]["code_verifier"], "the token request proves PKCE"
        page = await client.get("/console/tenants")
        assert page.status_code == 200
        assert "oidc:erin@example.test" in page.text
        assert "Create tenant" not in page.text, "a viewer gets no forms"


async def test_a_callback_that_did_not_start_here_is_refused(
    sso_url: str, provider: CodeFlowProvider
) -> None:
    async with httpx.AsyncClient(base_url=sso_url, timeout=10) as client:
        start = await client.get("/console/login/oidc")
        at_provider = await client.get(start.headers["location"])
        back = urlsplit(at_provider.headers["location"])
        code = parse_qs(back.query)["code"][0]
        forged = await client.get(
            "/console/login/oidc/callback", params={"code": code, "state": "another-state"}
        )
        assert forged.status_code == 400
        assert "sluice_session" not in client.cookies
    async with httpx.AsyncClient(base_url=sso_url, timeout=10) as stranger:
        # no flow cookie at all: a link from elsewhere
        resp = await stranger.get(
            "/console/login/oidc/callback", params={"code": "x", "state": "y"}
        )
        assert resp.status_code == 400
        assert "sluice_session" not in stranger.cookies


async def test_a_wrong_nonce_or_a_refusal_gives_no_session(sso_url: str) -> None:
    async with httpx.AsyncClient(base_url=sso_url, timeout=10) as client:
        NONCES["override"] = "not-the-one-sent"
        back = await _sign_in(client)
        assert back.status_code == 401
        assert "nonce" in back.text
        assert "sluice_session" not in client.cookies
        # a refusal is shown only for a sign-in that started here
        stranger = await client.get(
            "/console/login/oidc/callback",
            params={"error": "access_denied", "error_description": "call +1 555 0100"},
        )
        assert stranger.status_code == 400
        assert "555" not in stranger.text
        start = await client.get("/console/login/oidc")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        refused = await client.get(
            "/console/login/oidc/callback",
            params={
                "error": "access_denied",
                "error_description": "not in the group",
                "state": state,
            },
        )
        assert refused.status_code == 401
        assert "not in the group" in refused.text
        assert "sluice_session" not in client.cookies
        # odd values are refused, not a server error
        for odd in ("é", "x" * 5000, ""):
            resp = await client.get(
                "/console/login/oidc/callback", params={"code": "c", "state": odd}
            )
            assert resp.status_code == 400, odd


async def test_without_a_client_id_there_is_no_sign_on(control_plane: Stack) -> None:
    async with httpx.AsyncClient(base_url=control_plane.control_plane_url) as client:
        assert "/console/login/oidc" not in (await client.get("/console/login")).text
        assert (await client.get("/console/login/oidc")).status_code == 404


async def test_a_configured_redirect_uri_is_the_one_sent(
    control_plane: Stack, provider: CodeFlowProvider
) -> None:
    """Behind a proxy the browser's address is not the control plane's own."""
    public = "https://console.example.test/console/login/oidc/callback"
    with JwksServer(jwks(KEY)) as keys:
        env = {**_env(keys, provider), "SLUICE_OIDC_REDIRECT_URI": public}
        with another_control_plane(control_plane, "sso-proxy", env) as url:
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                start = await client.get("/console/login/oidc")
    sent = parse_qs(urlsplit(start.headers["location"]).query)
    assert sent["redirect_uri"] == [public]
