"""The local PostgreSQL keeps its durability for `sluice run` (what `make run` starts)
and trades it for speed only when asked (SLUICE_PG_FAST=1, as the tests do): on a
server of the test's own, started by the dev runner, then by scripts/pg.sh."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.support.database import ROOT
from tests.support.processes import free_port

pytestmark = pytest.mark.timeout(120)

PG = str(ROOT / "scripts" / "pg.sh")
SETTINGS = ("fsync", "full_page_writes", "synchronous_commit")


@pytest.fixture
def pg_env() -> Iterator[dict[str, str]]:
    """The environment of a server of its own: no SLUICE_ settings but its folder and port."""
    # Under /var/tmp: the `postgres` user must reach it when the tests run as root.
    base = Path(tempfile.mkdtemp(prefix="sluice-test-pg-", dir="/var/tmp"))
    base.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env |= {"SLUICE_PG_DATA": str(base / "data"), "SLUICE_PG_PORT": str(free_port())}
    yield env
    subprocess.run([PG, "stop"], env=env, check=False, capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def _settings(env: dict[str, str]) -> dict[str, str]:
    async def show() -> dict[str, str]:
        conn = await asyncpg.connect(_url(env, "postgres"))
        try:
            return {name: await conn.fetchval(f"SHOW {name}") for name in SETTINGS}
        finally:
            await conn.close()

    return asyncio.run(show())


def _url(env: dict[str, str], database: str) -> str:
    return f"postgresql://sluice@127.0.0.1:{env['SLUICE_PG_PORT']}/{database}"


def _pg_start(env: dict[str, str]) -> None:
    subprocess.run([PG, "start"], env=env, check=True, capture_output=True)


def test_the_dev_runner_keeps_durability_and_tests_may_trade_it(
    pg_env: dict[str, str], tmp_path: Path
) -> None:
    ports = {name: free_port() for name in ("CONTROL_PLANE", "DATA_PLANE", "FAKE_PROVIDER")}
    env = pg_env | {f"SLUICE_{name}_PORT": str(port) for name, port in ports.items()}
    env |= {"SLUICE_STATE_DIR": str(tmp_path / "state")}  # no database URL: it starts its own
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shared.tools.cli", "run"], env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 90
        while not (tmp_path / "state" / "dev.json").exists():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        info = json.loads((tmp_path / "state" / "dev.json").read_text())
        assert info["database_url"] == _url(pg_env, "sluice")
        assert _settings(pg_env) == dict.fromkeys(SETTINGS, "on")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0, log.read_text()

    # the runner stopped the server it started; the tests' way starts it fast
    _pg_start(pg_env | {"SLUICE_PG_FAST": "1"})
    assert _settings(pg_env) == dict.fromkeys(SETTINGS, "off")
    # and a start without it, on the running server, gives the durability back
    _pg_start(pg_env)
    assert _settings(pg_env) == dict.fromkeys(SETTINGS, "on")
