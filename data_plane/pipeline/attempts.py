"""Attempts up to the commit point.

A request is sent to one deployment after another until one commits: a stream
commits at its first upstream event, a non-stream with its whole answer. Before
that nothing has reached the client, so a failure that another attempt may
mend (connect errors, timeouts, resets, 408/409/429, 5xx, malformed answers) is
retried: on a deployment this request has not tried if there is one, else on
the same one after its backoff or Retry-After. Other 4xx are the client's
answer, except `context_length_exceeded` on a route with a `context_fallback`,
which moves the request to that route. Bounded by the route's `max_attempts`
and `deadline`; each attempt by its deployment's timeouts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp

from data_plane.limits import Admission, Limiter
from data_plane.pipeline.call import Call
from data_plane.pipeline.translation import Relayed, prepare
from data_plane.policy import check_model, policies_for
from data_plane.providers import ADAPTERS, Adapter, Connection
from data_plane.routing.health import DeploymentHealth, Health
from data_plane.routing.plan import choose
from data_plane.transport.attempt import Opened, fetch_whole, open_stream, transport_error
from data_plane.transport.stream import StreamState
from shared.errors import GatewayError, ModelNotAllowed, NoDeployment, RateLimited, UpstreamError
from shared.routing import Deployment
from shared.secrets import SecretBox, SecretKeyError
from shared.state import Policy, Provider, Route, State

__all__ = ["Committed", "Relayed", "Upstreams"]

log = logging.getLogger("sluice.data_plane.attempts")

# seconds: less of the deadline left is no time for an attempt (the timeout that ended
# the previous one may fire a timer tick early)
_NO_TIME = 0.01
_FAIR_CHANCE = 1.0  # seconds: an attempt cut by the deadline sooner says nothing of its deployment


class Committed:
    """An attempt past its commit point."""

    __slots__ = ("adapter", "body", "deployment", "health", "opened", "probe", "state")

    def __init__(
        self,
        deployment: Deployment,
        health: DeploymentHealth,
        probe: bool,
        adapter: Adapter,
        opened: Opened | None,
        body: bytes = b"",
        state: Relayed | None = None,
    ) -> None:
        self.deployment, self.health, self.probe, self.adapter = deployment, health, probe, adapter
        self.opened, self.body, self.state = opened, body, state

    def end(self) -> None:
        """The attempt is over (a stream, once relayed)."""
        self.health.end(self.probe)


class _OutOfTime(Exception):
    """The request's deadline, not the deployment, cut the attempt short."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


class Upstreams:
    """What attempts need: the HTTP session, this replica's health of every
    deployment, the limiter (for deployments' quotas) and the provider keys."""

    def __init__(
        self, session: aiohttp.ClientSession, health: Health, limiter: Limiter, box: SecretBox
    ) -> None:
        self.session, self.health, self.limiter, self.box = session, health, limiter, box
        # ciphertext -> key, decrypted once; forgotten when the providers change
        self._connections: dict[str, Connection] = {}
        self._providers_seen: object = None
        self._quota_policies: dict[Deployment, tuple[str, Policy]] = {}

    async def commit(
        self,
        call: Call,
        body: dict[str, Any],
        continuing: StreamState | None = None,
        avoid: str | None = None,
    ) -> Committed:
        """Attempt until one commits; raise the last failure when none may. For a
        continuation (`continuing`, the stream so far), `avoid` is the deployment
        that just failed and only deployments that continue answers are tried."""
        route = call.route
        assert route is not None
        last: GatewayError | None = None
        tried: set[str] = set() if avoid is None else {avoid}
        allowed = None if avoid is None else self._continues(call.state, avoid)
        visited = {route.id}  # context fallbacks: each route once
        deadline = time.monotonic() + route.retry.deadline
        made = 0
        while made < route.retry.max_attempts:
            now = time.monotonic()
            if last is not None and deadline - now < _NO_TIME:
                raise last  # no time for another attempt (which would blame its deployment)
            choice = choose(route, self.health, now, tried, self._admitter(call), allowed)
            if choice.deployment is None or choice.health is None:
                wait = None if choice.wait_until is None else choice.wait_until - now
                if wait is None or wait > route.retry.max_retry_after or now + wait > deadline:
                    raise last or _unavailable(choice.over_quota, wait)
                await asyncio.sleep(wait)
                continue
            deployment, health = choice.deployment, choice.health
            made += 1
            call.attempts += 1
            call.deployment = deployment
            tried.add(deployment.id)
            attempt = self._attempt(call, deployment, health, body, continuing, deadline)
            try:
                trace = call.trace
                committed = await (
                    attempt if trace is None else trace.attempt(call, deployment, body, attempt)
                )
            except _OutOfTime as out:
                log.warning(
                    "request %s: attempt %d on deployment %s ran out of the request's time",
                    call.request_id,
                    call.attempts,
                    deployment.id,
                    extra=call.log_ids(),
                )
                raise out.error from None
            except GatewayError as exc:
                log.warning(
                    "request %s: attempt %d on deployment %s failed: %s %s",
                    call.request_id,
                    call.attempts,
                    deployment.id,
                    exc.code,
                    exc.detail or exc.message,
                    extra=call.log_ids(),
                )
                if exc.retryable:
                    last = exc
                    continue
                fallback = self._context_fallback(call, exc, visited)
                if fallback is None:
                    raise
                visited.add(fallback.id)
                route, call.route, tried, made = fallback, fallback, set(), 0
                deadline = time.monotonic() + route.retry.deadline
                continue
            part = committed.state
            call.answered.append(
                (len(call.quotas) - 1, part.prefill_events if part and part.continuing else 0)
            )
            return committed
        assert last is not None
        raise last

    async def _attempt(
        self,
        call: Call,
        deployment: Deployment,
        health: DeploymentHealth,
        body: dict[str, Any],
        continuing: StreamState | None,
        deadline: float,
    ) -> Committed:
        state = call.state
        provider = state.providers.get(deployment.provider_id)
        adapter = None if provider is None else ADAPTERS.get(provider.kind)
        if provider is None or adapter is None:
            raise UpstreamError("The deployment has no usable provider.", code="no_provider")
        # what the client asked, for this kind (a field it cannot express: a 400, which
        # says nothing of the deployment)
        prepared = prepare(call, adapter, self._connection(state, provider), deployment, body)
        request = prepared.request
        timeouts = deployment.timeouts
        started = time.monotonic()
        limit = timeouts.first_token if call.stream else timeouts.response
        # the request's deadline leaves this attempt too little time to blame its
        # deployment for not answering in it
        cut = deadline - started < min(limit, _FAIR_CHANCE)
        capped = deadline - started < limit
        limit = max(min(limit, deadline - started), 0.001)
        probe = health.begin()
        try:
            if call.stream:
                stream = continuing if continuing is not None else prepared.stream()
                async with asyncio.timeout(limit):
                    opened = await open_stream(self.session, adapter, request, timeouts, stream)
                health.succeeded(opened.first_at, opened.first_at - started, probe)
                return Committed(deployment, health, probe, adapter, opened, state=stream)
            answer, call.prompt_tokens, call.completion_tokens = await fetch_whole(
                self.session, adapter, request, timeouts, prepared.read, limit if capped else None
            )
        except GatewayError as exc:
            health.end(probe)
            self._blame(call, health, probe, exc)
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            health.end(probe)
            what = (
                f"{'no first event' if call.stream else 'no answer'} within {round(limit, 2):g} s"
            )
            error = transport_error(exc, answered=False, what=what)
            if cut and isinstance(exc, TimeoutError):
                raise _OutOfTime(error) from None
            self._blame(call, health, probe, error)
            raise error from None
        except BaseException:
            health.end(probe)
            raise
        health.end(probe)
        health.succeeded(time.monotonic(), time.monotonic() - started, probe)
        return Committed(deployment, health, probe, adapter, None, answer)

    @staticmethod
    def _blame(call: Call, health: DeploymentHealth, probe: bool, exc: GatewayError) -> None:
        """A failure that another attempt may mend counts against the deployment; any
        other answer shows it working (the request is at fault)."""
        route = call.route
        assert route is not None
        if exc.retryable:
            health.failed(
                time.monotonic(),
                f"{exc.code}: {exc.message}",
                route.breaker,
                route.retry,
                exc.retry_after,
                probe,
            )
        else:
            health.succeeded(time.monotonic(), None, probe)

    def _admitter(self, call: Call) -> Any:
        def admit(deployment: Deployment) -> bool:
            if deployment.rpm is None and deployment.tpm is None:
                call.quotas.append((deployment, None))
                return True
            try:
                admission: Admission = self.limiter.admit(
                    [self._quota(deployment)], call.estimate, time.time()
                )
            except RateLimited:
                return False
            call.quotas.append((deployment, admission))
            return True

        return admit

    def _quota(self, deployment: Deployment) -> tuple[str, Policy]:
        found = self._quota_policies.get(deployment)
        if found is None:
            if len(self._quota_policies) > 10_000:
                self._quota_policies.clear()
            found = self._quota_policies[deployment] = (
                f"deployment:{deployment.id}",
                Policy(rpm=deployment.rpm, tpm=deployment.tpm),
            )
        return found

    def _continues(self, state: State, avoid: str) -> Any:
        def allowed(deployment: Deployment) -> bool:
            if deployment.id == avoid:  # another deployment continues
                return False
            if deployment.continuation is not None:
                return deployment.continuation
            provider = state.providers.get(deployment.provider_id)
            adapter = None if provider is None else ADAPTERS.get(provider.kind)
            return adapter is not None and adapter.continues and adapter.wire == "openai"

        return allowed

    def _context_fallback(self, call: Call, exc: GatewayError, visited: set[str]) -> Route | None:
        """The route to move to when the prompt is too long for this one, if any (never
        one this request has been on)."""
        route = call.route
        if exc.code != "context_length_exceeded" or route is None or not route.context_fallback:
            return None
        fallback = call.state.route_for_model(route.context_fallback)
        if fallback is None or fallback.id in visited or not fallback.allows(call.key.tenant_id):
            return None
        try:
            check_model(policies_for(call.state, call.key), fallback.model)
        except ModelNotAllowed:
            return None
        log.info(
            "request %s: context too long for %s, on to %s",
            call.request_id,
            route.model,
            fallback.model,
            extra=call.log_ids(),
        )
        return fallback

    def _connection(self, state: State, provider: Provider) -> Connection:
        """How to reach the provider, its credential decrypted once; forgotten when the
        providers change (a key may have been replaced)."""
        if state.providers is not self._providers_seen:
            self._connections.clear()
            self._providers_seen = state.providers
        known = self._connections.get(provider.id)
        if known is not None:
            return known
        secret = None
        if provider.api_key_ciphertext is not None:
            try:
                secret = self.box.decrypt(provider.api_key_ciphertext)
            except SecretKeyError:
                raise UpstreamError(
                    "The provider's key cannot be decrypted.", code="no_provider"
                ) from None
        made = Connection(provider.base_url, secret, dict(provider.options))
        self._connections[provider.id] = made
        return made


def _unavailable(over_quota: bool, wait: float | None) -> GatewayError:
    retry_after = max(round(wait), 1) if wait is not None else 1
    if over_quota:
        return RateLimited(
            "Every deployment of this model is at its quota. Try again shortly.",
            code="deployment_quota_exceeded",
            retry_after=retry_after,
        )
    return NoDeployment(
        "No deployment of this model is available right now. Try again shortly.",
        headers=((b"retry-after", b"%d" % retry_after),),
    )
