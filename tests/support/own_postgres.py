"""A PostgreSQL server of a test's own, which the test may stop and start."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.database import ROOT
from tests.support.processes import free_port

__all__ = ["OwnPostgres"]


class OwnPostgres:
    def __init__(self) -> None:
        # Under /var/tmp: the `postgres` user must reach it when the tests run as root.
        self.base = Path(tempfile.mkdtemp(prefix="sluice-test-pg-", dir="/var/tmp"))
        self.base.chmod(0o755)
        self.port = free_port()
        self._env = {
            **os.environ,
            "SLUICE_PG_DATA": str(self.base / "data"),
            "SLUICE_PG_PORT": str(self.port),
            "SLUICE_PG_FAST": "1",  # durability off: a server for tests
        }

    def _pg(self, *args: str) -> None:
        subprocess.run(
            [str(ROOT / "scripts" / "pg.sh"), *args], env=self._env, check=True, capture_output=True
        )

    def start(self, database: str = "sluice") -> None:
        self._pg("start", database)

    def stop(self) -> None:
        self._pg("stop")

    def url(self, database: str = "sluice") -> str:
        return f"postgresql://sluice@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
