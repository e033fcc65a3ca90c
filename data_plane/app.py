"""The data plane: a plain ASGI app (no framework on the request path)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import Awaitable, Callable

import aiohttp
import msgspec
from prometheus_client import CollectorRegistry

from data_plane.asgi import JSON, Receive, Responder, Scope, Send, send_error, send_response
from data_plane.budgets import Budgets
from data_plane.cache import SnapshotCache
from data_plane.fleet import FleetSync
from data_plane.genai_metrics import GenAIMetrics
from data_plane.handlers import Gateway
from data_plane.limits import Limiter
from data_plane.metrics import (
    CONTENT_TYPE,
    BudgetCollector,
    Load,
    LoadCollector,
    SyncCollector,
    UsageCollector,
    render,
)
from data_plane.pipeline.attempts import Upstreams
from data_plane.routing.health import Health
from data_plane.routing.report import HealthCollector
from data_plane.snapshot import SnapshotHolder
from data_plane.sync import Follower
from data_plane.tracing import Tracing
from data_plane.translate.dialect import Dialect
from data_plane.translate.dialects import ANTHROPIC, OPENAI
from data_plane.transport.attempt import client_timeout
from data_plane.usage import UsageRecord, UsageRecorder
from shared.config import Settings
from shared.errors import (
    GatewayError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
)
from shared.event_log import Unreadable
from shared.routing import Timeouts
from shared.secrets import SecretBox
from shared.serve import CUT_SECONDS
from shared.snapshot_codec import state_digest

__all__ = ["DataPlane"]

log = logging.getLogger("sluice.data_plane")

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]

# The cyclic collector's young generation, in net new container objects. At
# Python's default of 700, the objects of the requests in flight were scanned
# over a thousand times a second under load (about a tenth of the data plane's
# CPU); requests free their objects by reference counting, so collections can be
# rare. Measurements: docs/benchmarks.md.
GC_YOUNG_THRESHOLD = 20_000


def _blocked(blocked: Unreadable) -> dict[str, object]:
    """What /readyz says of the event the snapshot is stopped at (an OpenAI-style error)."""
    error = {
        "message": str(blocked),
        "type": "server_error",
        "param": None,
        "code": "snapshot_blocked",
    }
    where = {"position": blocked.position, "type": blocked.type, "schema": blocked.schema}
    return {"error": error, "blocked": {**where, "reason": blocked.reason}}


class DataPlane:
    """ASGI application. Everything stateful is created in the lifespan."""

    def __init__(self, settings: Settings) -> None:
        settings.require("database_url", "secret_key")
        self.settings = settings
        self.holder = SnapshotHolder()
        self.cache = SnapshotCache(settings.snapshot_cache, settings.snapshot_cache_interval)
        self.follower = Follower(
            settings.database_url,
            settings.notify_channel,
            self.holder,
            self.cache,
            poll_interval=settings.sync_poll_interval,
        )
        self.limiter = Limiter()
        self.health = Health()  # this replica's view of every deployment
        self.budgets = Budgets()
        self.usage = UsageRecorder(
            settings.database_url,
            settings.usage_spool,
            max_buffer=settings.usage_buffer,
            interval=settings.usage_flush_interval,
            on_written=self._usage_written,
        )
        self.fleet = FleetSync(
            settings.database_url,
            self.limiter,
            self.budgets,
            self.holder,
            settings.fleet_sync_interval,
            self.health,
            self.follower.counters,
        )
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(SyncCollector(self.holder, self.follower, self.cache))
        self.registry.register(HealthCollector(self.health, self.holder))
        self.box = SecretBox(settings.secret_key)
        self.gateway: Gateway | None = None
        self.load = Load()
        self.registry.register(LoadCollector(self.load, self._open_streams))
        self.registry.register(UsageCollector(self.usage))
        self.registry.register(BudgetCollector(self.holder))
        self.genai = GenAIMetrics(
            self.registry, settings.metrics_tenant_cap, settings.metrics_label_set_cap
        )
        self._routes: dict[str, dict[str, Handler]] = {}
        # the paths whose clients speak another dialect than OpenAI's
        self._dialects: dict[str, Dialect] = {
            "/v1/messages": ANTHROPIC,
            "/v1/messages/count_tokens": ANTHROPIC,
        }
        self._need_snapshot: set[Handler] = set()  # refused until a snapshot is loaded
        self.draining = False  # SIGTERM came: not ready, finishing what is in flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        methods = self._routes.get(path)
        dialect = self._dialects.get(path, OPENAI)  # errors speak the client's API
        out = Responder(send)
        try:
            if methods is None:
                raise NotFound(f"Unknown path {scope['path']}.")
            handler = methods.get(scope["method"])
            if handler is None:
                raise MethodNotAllowed(
                    f"{scope['method']} is not allowed here.",
                    headers=((b"allow", ", ".join(methods).encode()),),
                )
            if handler in self._need_snapshot and not self.holder.loaded:
                raise ServiceUnavailable("The gateway is starting; try again shortly.")
            await handler(scope, receive, out)
        except GatewayError as exc:
            await send_error(out, exc, dialect)
        except OSError:
            pass  # the client left before we could answer
        except Exception:
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            error = InternalError("The gateway failed to handle the request.")
            await send_error(out, error, dialect)

    async def _healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Alive; says which process and fleet replica answered (`--workers` shares a port)."""
        body = {"status": "ok", "pid": os.getpid(), "replica": str(self.fleet.replica)}
        await send_response(send, 200, msgspec.json.encode(body), (JSON,))

    async def _readyz(self, scope: Scope, receive: Receive, send: Send) -> None:
        """200 once there is a snapshot to serve: "ready" when it came from the
        database, "stale" while it comes from the disk cache; 503 "starting" before."""
        holder, follower = self.holder, self.follower.counters
        body = {
            "status": holder.status,
            "position": holder.state.position,
            "lag": max(follower.latest_known - holder.state.position, 0),
            "seconds_since_sync": holder.seconds_since_sync(),
            "connected": follower.connected,
            "reconnects": follower.reconnects,
            "cache_position": self.cache.position,
        }
        status = 200 if holder.loaded and not self.draining else 503
        if self.draining:
            body["status"] = "draining"
        if follower.blocked is not None:  # still serving, but no longer following the log
            status, body["status"] = 503, "blocked"
            body.update(_blocked(follower.blocked))
        await send_response(send, status, msgspec.json.encode(body), (JSON,))

    def drain(self) -> None:
        """`shared.serve.Drains`: readiness turns 503; requests are still served."""
        self.draining = True

    async def cut(self) -> None:
        """`shared.serve.Drains`: the streams still open end with an error event."""
        if self.gateway is not None:
            await self.gateway.streams.cut(CUT_SECONDS)

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_response(send, 200, render(self.registry), ((b"content-type", CONTENT_TYPE),))

    async def _debug_snapshot(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The snapshot's position, event count and digest (only with debug endpoints on)."""
        state = self.holder.state
        body = {
            "position": state.position,
            "event_count": state.event_count,
            "digest": state_digest(state),
        }
        await send_response(send, 200, msgspec.json.encode(body), (JSON,))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        gc.collect()
        gc.freeze()  # what was imported and built at start is never garbage
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        # every attempt brings its deployment's timeouts; these only back them up
        timeout = client_timeout(Timeouts(), True)
        otlp = self.settings.otlp_endpoint
        tracing = Tracing(otlp) if otlp else None
        session = aiohttp.ClientSession(
            timeout=timeout,
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            cookie_jar=aiohttp.DummyCookieJar(),  # an upstream's cookies are no tenant's
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
            trace_configs=None if tracing is None else [tracing.trace_config()],
        )
        self.gateway = Gateway(
            self.holder,
            Upstreams(session, self.health, self.limiter, self.box),
            self.settings.max_request_bytes,
            self.settings.body_timeout_seconds,
            self.limiter,
            self.budgets,
            self.usage,
            self.load,
            self.genai,
            tracing,
        )
        self._routes = {
            "/healthz": {"GET": self._healthz},
            "/readyz": {"GET": self._readyz},
            "/metrics": {"GET": self._metrics},
            "/v1/chat/completions": {"POST": self.gateway.chat_completions},
            "/v1/embeddings": {"POST": self.gateway.embeddings},
            "/v1/messages": {"POST": self.gateway.messages},
            "/v1/messages/count_tokens": {"POST": self.gateway.count_tokens},
            "/v1/models": {"GET": self.gateway.models},
        }
        self._need_snapshot = {
            self.gateway.chat_completions,
            self.gateway.embeddings,
            self.gateway.messages,
            self.gateway.count_tokens,
            self.gateway.models,
        }
        if self.settings.debug_endpoints:
            self._routes["/debug/snapshot"] = {"GET": self._debug_snapshot}
        follow = asyncio.create_task(self.follower.run(), name="sluice-follower")
        record = asyncio.create_task(self.usage.run(), name="sluice-usage")
        share = asyncio.create_task(self.fleet.run(), name="sluice-fleet")
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        for task in (follow, record, share):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.usage.close()  # in-flight requests are done: write or spool their records
        await self.cache.close()
        await session.close()
        if tracing is not None:
            await asyncio.to_thread(tracing.shutdown)
        await send({"type": "lifespan.shutdown.complete"})

    def _open_streams(self) -> int:
        return 0 if self.gateway is None else len(self.gateway.streams.open)

    def _usage_written(self, records: list[UsageRecord]) -> None:
        self.budgets.written([r.request_id for r in records])
