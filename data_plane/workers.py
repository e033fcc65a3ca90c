"""`sluice data-plane --workers N`: N data-plane processes on one port, each a
replica of its own, under a small supervisor.

Each worker is `python -m data_plane ... --worker-index I`: its own process with
its own listening socket bound with SO_REUSEPORT, so the kernel spreads new
connections over the workers (no shared socket, no accept loop in the parent).
Everything else is per replica as with separate pods: its own snapshot, fleet
replica id (a fresh one per process), counters and usage buffer. What lives on disk:

- the usage spool is `<SLUICE_USAGE_SPOOL>.<I>`: a worker spools and replays only
  its own file (a file left by worker I is replayed by worker I on a later start
  with at least I + 1 workers);
- the snapshot cache file is shared: every write goes to a temporary file named
  after the writer's pid and is renamed over the cache (`data_plane/cache.py`), so
  a reader sees one whole snapshot or another, never a mix.

The supervisor starts the workers, forwards SIGTERM and SIGINT to them (each
drains by itself, see `shared/serve.py`), restarts none, and exits once all have
exited: 0 when they stopped after a forwarded signal, 1 when one exited on its own
(it then stops the others first). Workers are in their own process groups, so a
terminal's Ctrl-C reaches them once, through the supervisor; each asks the kernel
for SIGTERM should the supervisor die without forwarding.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
from types import FrameType

import msgspec

from shared.config import ConfigError, Settings
from shared.logs import setup_logging

__all__ = ["die_with_parent", "reuse_port_socket", "supervise", "worker_settings"]

log = logging.getLogger("sluice.workers")

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def worker_settings(settings: Settings, index: int) -> Settings:
    """A worker's settings: the usage spool of its own."""
    if not settings.usage_spool:
        return settings
    return msgspec.structs.replace(settings, usage_spool=f"{settings.usage_spool}.{index}")


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket that other workers bind to the same address too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def die_with_parent() -> None:
    """Have the kernel send this process SIGTERM (a drain) when its parent dies."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class _Supervisor:
    def __init__(self, args: list[str], workers: int) -> None:
        self.args = args
        self.workers = workers
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.forwarded: int | None = None  # the signal the workers were asked to stop with

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._forward)
        for index in range(self.workers):
            command = [sys.executable, "-m", "data_plane", *self.args]
            proc = subprocess.Popen([*command, "--worker-index", str(index)], process_group=0)
            self.children[proc.pid] = proc
        if self.forwarded is not None:  # a signal came while starting: every worker gets it
            self._stop(self.forwarded)
        log.info("started %d data-plane workers: %s", self.workers, sorted(self.children))
        failed = False
        while self.children:
            try:
                pid, status = os.waitpid(-1, 0)  # the signal handler runs during the wait
            except ChildProcessError:  # none left to wait for: all were collected already
                self.children.clear()
                break
            if pid not in self.children:
                continue
            proc = self.children.pop(pid)
            proc.returncode = code = os.waitstatus_to_exitcode(status)
            if self.forwarded is None:
                log.error("data-plane worker %d exited (%d); stopping the others", pid, code)
                failed = True
                self._stop(signal.SIGTERM)
            elif code not in (0, -self.forwarded):
                log.error("data-plane worker %d exited with %d while stopping", pid, code)
                failed = True
        return 1 if failed else 0

    def _forward(self, sig: int, frame: FrameType | None) -> None:
        self._stop(sig)

    def _stop(self, sig: int) -> None:
        self.forwarded = sig
        for proc in self.children.values():
            # os.kill, not send_signal: that polls, and could reap a worker the wait expects
            with contextlib.suppress(ProcessLookupError):  # exited: the wait collects it
                os.kill(proc.pid, sig)


def supervise(args: list[str], workers: int) -> int:
    """Run `workers` data-plane processes with `args` until they have all exited."""
    try:
        setup_logging("info", Settings.from_env().log_format)
    except ConfigError:  # every worker refuses the setting, with its message
        setup_logging("info")
    return _Supervisor(args, workers).run()
