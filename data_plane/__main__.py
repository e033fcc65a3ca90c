"""`python -m data_plane [--host H] [--port P]`: one data-plane replica under uvicorn."""

from __future__ import annotations

from data_plane.app import DataPlane
from shared.serve import serve


def main(argv: list[str] | None = None) -> None:
    serve(
        "sluice data-plane",
        DataPlane,
        lambda s: (s.data_plane_host, s.data_plane_port),
        argv=argv,
    )


if __name__ == "__main__":
    main()
