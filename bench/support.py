"""What every benchmark script needs: free ports, server processes (optionally
pinned to a core), resident memory, percentiles, a scratch database, and the
machine's load average (to wait for a quiet machine before measuring)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx

from shared.migrate import migrate

__all__ = [
    "ROOT",
    "Proc",
    "free_port",
    "load_average",
    "pct",
    "process_tree",
    "rss_kib",
    "scratch_database",
    "wait_quiet",
]

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (taskset execs; uvicorn or node may fork)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            children = []
        todo += [int(c) for c in children]
    return found


def rss_kib(pid: int) -> int:
    """Resident memory of `pid` and its descendants."""
    total = 0
    for p in process_tree(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


class Proc:
    """A server process logging to `log`, pinned to `core` when one is given."""

    def __init__(
        self, name: str, cmd: list[str], env: dict[str, str], log: Path, core: str | None = None
    ) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = log
        self.started = time.monotonic()
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            ["taskset", "-c", core, *cmd] if core is not None else cmd,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_http(self, url: str, timeout: float = 90, ready_below: int = 300) -> float:
        """Seconds from process start until `url` answered with a status below `ready_below`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log}")
            try:
                if httpx.get(url, timeout=2).status_code < ready_below:
                    return time.monotonic() - self.started
            except httpx.TransportError:
                pass
            time.sleep(0.01)
        raise TimeoutError(f"{self.name} not ready at {url}")

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in process_tree(self.proc.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            except (OSError, IndexError):
                pass
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


def scratch_database(prefix: str) -> tuple[str, Callable[[], None]]:
    """A new, migrated database on the local server (scripts/pg.sh), and how to drop it."""
    pg = str(ROOT / "scripts" / "pg.sh")
    fast = {**os.environ, "SLUICE_PG_FAST": "1"}  # durability off: a server for benchmarks
    subprocess.run([pg, "start"], check=True, capture_output=True, env=fast)
    admin = subprocess.run([pg, "url", "postgres"], check=True, capture_output=True, text=True)
    admin_url = admin.stdout.strip()
    database = f"{prefix}_{os.getpid()}"
    url = admin_url.rsplit("/", 1)[0] + f"/{database}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    asyncio.run(execute(f'CREATE DATABASE "{database}"'))
    migrate(url)
    return url, lambda: asyncio.run(execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def load_average() -> tuple[float, float, float]:
    """The 1-, 5- and 15-minute load averages (runnable and waiting tasks)."""
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


def wait_quiet(below: float, max_seconds: float, every: float = 15) -> dict[str, object]:
    """Wait until the 1-minute load average is below `below`, for at most
    `max_seconds`; what was seen (`quiet` false: measured on a busy machine)."""
    started = time.monotonic()
    load = load_average()
    while load[0] >= below and time.monotonic() - started < max_seconds:
        print(f"waiting for a quiet machine: load average {load}", file=sys.stderr)
        time.sleep(min(every, max(0.0, max_seconds - (time.monotonic() - started))))
        load = load_average()
    return {
        "below": below,
        "waited_s": round(time.monotonic() - started, 1),
        "quiet": load[0] < below,
        "load_average": load,
    }


def save_results(name: str, data: object) -> Path:
    """`data` as indented JSON in `bench/results/<name>` (the newest run of a benchmark)."""
    out = ROOT / "bench" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n")
    return out
