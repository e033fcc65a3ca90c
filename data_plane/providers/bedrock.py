"""Amazon Bedrock's Converse API, signed with AWS Signature Version 4.

The connection's secret is JSON: `access_key_id`, `secret_access_key` and, for
temporary credentials, `session_token`; its options name the `region`. Requests
are signed with botocore's SigV4 signer (service `bedrock`) over exactly the
bytes sent, and over the URL as the HTTP client sends it (its path normalised as
yarl does), so the signature holds whatever the client does to the path's escapes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple
from urllib.parse import quote

import msgspec
import yarl
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from data_plane.providers.base import Adapter, Connection, UpstreamRequest
from data_plane.translate import bedrock, bedrock_stream
from data_plane.translate.model import Request
from data_plane.translate.upstream_errors import from_upstream
from shared.errors import GatewayError, UpstreamError
from shared.state import AwsCredentials as Credentials

__all__ = ["ADAPTER", "Credentials", "credentials", "sign"]

SERVICE = "bedrock"
_encode = msgspec.json.Encoder().encode


@lru_cache(maxsize=256)
def credentials(secret: str | None) -> Credentials:
    """The connection's secret, read once per secret."""
    try:
        creds: Credentials | None = Credentials.from_secret(secret or "")
    except (msgspec.DecodeError, msgspec.ValidationError):
        creds = None
    if creds is None or not creds.access_key_id or not creds.secret_access_key:
        raise UpstreamError(
            "The provider's AWS credentials are missing or not JSON with "
            "`access_key_id` and `secret_access_key`.",
            code="no_provider",
        )
    return creds


class Signed(NamedTuple):
    url: str
    headers: dict[str, str]


@lru_cache(maxsize=256)
def _signer(creds: Credentials, region: str) -> SigV4Auth:
    return SigV4Auth(
        BotoCredentials(creds.access_key_id, creds.secret_access_key, creds.session_token),
        SERVICE,
        region,
    )


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    creds: Credentials,
    region: str,
) -> Signed:
    """SigV4 by botocore's signer: the URL as it will be sent, and `headers` plus
    host, x-amz-date, x-amz-security-token and authorization."""
    url = str(yarl.URL(url))
    aws = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    _signer(creds, region).add_auth(aws)
    signed = {name.lower(): str(value) for name, value in aws.headers.items()}
    return Signed(url, signed)


def _base(conn: Connection, region: str) -> str:
    return (conn.base_url or f"https://bedrock-runtime.{region}.amazonaws.com").rstrip("/")


def request(conn: Connection, model: str, req: Request) -> UpstreamRequest:
    creds = credentials(conn.secret)
    region = conn.options.get("region")
    if not region:
        raise UpstreamError("The Bedrock provider names no `region`.", code="no_provider")
    body = _encode(bedrock.write_request(req, model))
    action = "converse-stream" if req.stream else "converse"
    url = f"{_base(conn, region)}/model/{quote(model, safe='')}/{action}"
    accept = "application/vnd.amazon.eventstream" if req.stream else "application/json"
    headers = {
        "content-type": "application/json",
        "accept": accept,
        "accept-encoding": "identity",
    }
    signed = sign("POST", url, headers, body, creds, region)
    return UpstreamRequest(signed.url, signed.headers, body)


def error_from_upstream(status: int, body: bytes, retry_after: float | None) -> GatewayError:
    return from_upstream(status, bedrock.said(body), body, retry_after)


ADAPTER = Adapter(
    wire="bedrock",
    request=request,
    response=bedrock.read_response,
    stream_reader=bedrock_stream.Reader,
    error_from_upstream=error_from_upstream,
)
