"""Settings from `SLUICE_*` environment variables, one place for all of them."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

__all__ = ["ConfigError", "Settings"]


class ConfigError(ValueError):
    """A missing or malformed setting; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = "postgresql://sluice@127.0.0.1:55432/sluice"
    admin_token: str = ""
    secret_key: str = ""
    notify_channel: str = "sluice_events"
    control_plane_host: str = "127.0.0.1"
    control_plane_port: int = 8081
    data_plane_host: str = "127.0.0.1"
    data_plane_port: int = 8080
    sync_poll_interval: float = 5.0
    max_request_bytes: int = 8 * 1024 * 1024
    log_level: str = "info"
    log_format: str = "text"  # or "json": one JSON object per line (shared/logs.py)
    snapshot_every_events: int = 1000
    snapshot_every_seconds: float = 60.0
    snapshot_cache: str = ".sluice/cache/snapshot.msgpack"
    snapshot_cache_interval: float = 10.0
    debug_endpoints: bool = False
    usage_spool: str = ".sluice/spool/usage.jsonl"
    usage_buffer: int = 50_000
    usage_flush_interval: float = 0.25
    fleet_sync_interval: float = 0.25
    budget_check_interval: float = 1.0
    # OpenTelemetry traces over OTLP/HTTP (off unless set), e.g. http://127.0.0.1:4318;
    # GenAI metrics on /metrics count at most this many tenants, the rest as "other", and
    # at most this many label sets: past it new ones record with tenant and deployment "other".
    otlp_endpoint: str = ""
    metrics_tenant_cap: int = 200
    metrics_label_set_cap: int = 2000
    # On SIGTERM: readiness turns 503 at once, new connections are accepted for
    # `drain_delay_seconds` more, then requests in flight get `drain_grace_seconds`.
    drain_delay_seconds: float = 5.0
    drain_grace_seconds: float = 30.0
    # Slow or idle clients (both planes): a request's header block must arrive within
    # `header_timeout_seconds` and its body within `body_timeout_seconds` (408, else the
    # connection is closed); connections past `max_connections` are closed at once.
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    max_connections: int = 4096
    keep_alive_seconds: float = 5.0
    # OIDC for the admin API (off unless an issuer is set): JWTs from `oidc_issuer`
    # for `oidc_audience`, keys from a JWKS URL or file, role and tenant from claims.
    oidc_issuer: str = ""
    oidc_audience: str = ""
    oidc_jwks_url: str = ""
    oidc_jwks_file: str = ""
    oidc_role_claim: str = "sluice_role"
    oidc_tenant_claim: str = "sluice_tenant"
    oidc_algorithms: str = "RS256,ES256"
    oidc_leeway_seconds: float = 30.0
    oidc_jwks_cache_seconds: float = 300.0
    # The console's single sign-on (the authorization code flow with PKCE): on when a
    # client id and the provider's two endpoints are set (and OIDC is on).
    oidc_client_id: str = ""
    oidc_client_secret: str = ""  # for providers that want one (client_secret_post)
    oidc_authorization_endpoint: str = ""
    oidc_token_endpoint: str = ""
    oidc_redirect_uri: str = ""  # default: <this request's address>/console/login/oidc/callback
    # The console's cookies are `Secure` when a request came over HTTPS; set this when
    # TLS ends at a proxy in front of the control plane, so that they always are.
    console_secure_cookies: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for name, field_type in _FIELDS.items():
            raw = env.get("SLUICE_" + name.upper())
            if raw is None or raw == "":
                continue
            try:
                values[name] = _parse_bool(raw) if field_type is bool else field_type(raw)
            except ValueError:
                raise ConfigError(
                    f"SLUICE_{name.upper()}={raw!r} is not a valid {field_type.__name__}"
                ) from None
        return msgspec.convert(values, cls)

    def require(self, *names: str) -> None:
        """Fail with a clear message when settings a process needs are empty."""
        missing = [f"SLUICE_{n.upper()}" for n in names if not getattr(self, n)]
        if missing:
            raise ConfigError("missing setting(s): " + ", ".join(missing))
        if "secret_key" in names and len(self.secret_key) < 16:
            raise ConfigError("SLUICE_SECRET_KEY must be at least 16 characters")


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


_FIELDS: dict[str, type] = {f.name: f.type for f in msgspec.structs.fields(Settings)}
