"""The fake upstream's command line: ``python -m tests.fakes.provider --port 9090 ...``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

import msgspec
from aiohttp import web

from tests.fakes.provider import FakeConfig, build_app

__all__ = ["main", "serve"]


async def serve(host: str, port: int, config: FakeConfig) -> None:
    """Serve the fake on ``host:port`` until cancelled."""
    runner = web.AppRunner(build_app(config), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        print(f"fake provider listening on http://{host}:{bound}", file=sys.stderr, flush=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def _run_until_signal(host: str, port: int, config: FakeConfig) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(serve(host, port, config))
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake upstream provider of every kind.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--tokens", type=int, default=20, help="completion tokens per response")
    parser.add_argument("--delay-ms", type=float, default=0, help="sleep between stream chunks")
    parser.add_argument("--latency-ms", type=float, default=0, help="sleep before answering")
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    parser.add_argument(
        "--fail-after", type=int, default=-1, help="break every stream after N content chunks"
    )
    parser.add_argument(
        "--context-window", type=int, default=None, help="refuse prompts past N tokens"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the random failures")
    parser.add_argument("--aws-access-key-id", default=None, help="Bedrock: check SigV4")
    parser.add_argument("--aws-secret-access-key", default=None, help="with this secret")
    parser.add_argument("--aws-region", default="us-east-1", help="and this region")
    args = parser.parse_args(argv)
    config = FakeConfig(
        args.tokens,
        args.delay_ms,
        args.latency_ms,
        args.api_key,
        args.fail_after,
        args.context_window,
        args.seed,
        args.aws_access_key_id,
        args.aws_secret_access_key,
        args.aws_region,
    )
    try:
        config.faults()
    except msgspec.ValidationError as exc:
        parser.error(str(exc))
    try:
        import uvloop
    except ImportError:
        asyncio.run(_run_until_signal(args.host, args.port, config))
    else:
        uvloop.run(_run_until_signal(args.host, args.port, config))
