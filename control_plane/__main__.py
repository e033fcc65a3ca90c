"""`python -m control_plane [--host H] [--port P]`: the admin API under uvicorn."""

from __future__ import annotations

from control_plane.app import create_app
from shared.serve import serve


def main(argv: list[str] | None = None) -> None:
    serve(
        "sluice control-plane",
        create_app,
        lambda s: (s.control_plane_host, s.control_plane_port),
        graceful_seconds=10,
        argv=argv,
    )


if __name__ == "__main__":
    main()
