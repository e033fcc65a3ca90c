"""`python -m data_plane [--host H] [--port P] [--workers N]`: one data-plane replica
under uvicorn, or N of them on one port under a supervisor (`data_plane/workers.py`)."""

from __future__ import annotations

import argparse
import sys

from data_plane.app import DataPlane
from data_plane.workers import die_with_parent, reuse_port_socket, supervise, worker_settings
from shared.config import ConfigError, Settings
from shared.serve import serve

PROG = "sluice data-plane"


def _flags() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes on this port, each a replica of its own (default 1: no supervisor)",
    )
    flags.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    return flags


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    flags = _flags()
    known, _ = flags.parse_known_args(argv)
    asks_help = "-h" in argv or "--help" in argv
    if known.workers < 1:
        flags.exit(2, f"{PROG}: --workers must be at least 1\n")
    if known.workers > 1 and known.worker_index is None and not asks_help:
        _refuse_any_port(argv)
        sys.exit(supervise(argv, known.workers))
    index: int | None = known.worker_index
    if index is not None:
        die_with_parent()
    serve(
        PROG,
        DataPlane if index is None else lambda s: DataPlane(worker_settings(s, index)),
        lambda s: (s.data_plane_host, s.data_plane_port),
        argv=argv,
        parents=[flags],
        listen=None if index is None else reuse_port_socket,
    )


def _refuse_any_port(argv: list[str]) -> None:
    """Workers share a port only if it is named: port 0 would give each its own."""
    parser = argparse.ArgumentParser(add_help=False)
    try:
        parser.add_argument("--port", type=int, default=Settings.from_env().data_plane_port)
    except ConfigError as exc:
        parser.exit(2, f"{PROG}: {exc}\n")
    if parser.parse_known_args(argv)[0].port == 0:
        parser.exit(2, f"{PROG}: --workers needs a port other than 0\n")


if __name__ == "__main__":
    main()
