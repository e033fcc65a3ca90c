"""Checks a request's AWS Signature Version 4 as AWS does: recomputed with botocore.

The request is rebuilt from what was received (method, raw path and query, the headers the
``Authorization`` header names as signed, the body) and signed for service ``bedrock`` at the
request's ``X-Amz-Date``; the signature must match. AWS's refusals: a missing or unreadable
``Authorization`` header, an unknown access key (``UnrecognizedClientException``), a date more
than 15 minutes away, a signature that does not match (``InvalidSignatureException``).
"""

from __future__ import annotations

import datetime
import hmac
import re
from collections.abc import Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

__all__ = ["SERVICE", "Signer"]

SERVICE = "bedrock"
_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your"
    " AWS Secret Access Key and signing method. Consult the service documentation for details."
)
_SKEW = datetime.timedelta(minutes=15)


class Signer:
    """The credentials requests must be signed with."""

    def __init__(self, access_key_id: str, secret_access_key: str, region: str) -> None:
        self.access_key_id, self.region = access_key_id, region
        self.auth = SigV4Auth(Credentials(access_key_id, secret_access_key), SERVICE, region)

    def refusal(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[str, str] | None:
        """``(x-amzn-ErrorType, message)`` of a request AWS would refuse, None if signed well."""
        headers = {name.lower(): value for name, value in headers.items()}
        given = headers.get("authorization")
        if not given:
            return "MissingAuthenticationTokenException", "Missing Authentication Token"
        match = _AUTH.match(given)
        stamp = headers.get("x-amz-date", "")
        if match is None or not re.fullmatch(r"\d{8}T\d{6}Z", stamp):
            message = f"Authorization header requires existence of a valid signature. '{given}'"
            return "IncompleteSignatureException", message
        if match["key"] != self.access_key_id:
            return (
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        when = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        now = datetime.datetime.now(datetime.UTC)
        if abs(now - when) > _SKEW:
            message = f"Signature expired: {stamp} is now earlier than"
            return "InvalidSignatureException", f"{message} {(now - _SKEW):%Y%m%dT%H%M%SZ}"
        scope = (match["date"], match["region"], match["service"])
        signed = match["signed"].split(";")
        if scope != (stamp[:8], self.region, SERVICE) or any(h not in headers for h in signed):
            return "InvalidSignatureException", _MISMATCH
        rebuilt = AWSRequest(method, url, {name: headers[name] for name in signed}, body)
        rebuilt.context["timestamp"] = stamp
        auth = self.auth
        string_to_sign = auth.string_to_sign(rebuilt, auth.canonical_request(rebuilt))
        expected = auth.signature(string_to_sign, rebuilt)
        if not hmac.compare_digest(expected, match["signature"]):
            return "InvalidSignatureException", _MISMATCH
        return None
