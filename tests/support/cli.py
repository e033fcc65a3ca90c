"""Running `sluice`: as the console script in a process of its own, as a user would,
or (faster, for the many calls of a test) in this process through typer's runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from control_plane.cli.app import build
from tests.support.stack import Stack

__all__ = ["SLUICE", "Cli", "Ran"]

SLUICE = Path(sys.executable).with_name("sluice")


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def ok(self) -> str:
        assert self.code == 0, f"exit {self.code}\n{self.err}\n{self.out}"
        assert "Traceback" not in self.err, self.err
        return self.out

    def json(self) -> Any:
        return json.loads(self.ok())

    def failed(self) -> str:
        """Its error output, after checking it failed readably: exit 1, no traceback."""
        assert self.code == 1, f"exit {self.code}\n{self.err}\n{self.out}"
        assert "Traceback" not in self.err + self.out, self.err
        return self.err


@dataclass
class Cli:
    """`sluice` with an environment of its own: no `SLUICE_*` variable of the test
    process, a profiles file under `home`, and `env` on top. `process`: run the console
    script as a subprocess; else the same app in this process (an exception it does not
    handle fails the test, as a traceback would)."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)
    process: bool = False

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        return {**env, "SLUICE_PROFILES": str(self.home / "profiles.yaml"), **self.env}

    def __call__(self, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> Ran:
        if not self.process:
            return self._in_process(args, stdin, env or {})
        done = subprocess.run(
            [str(SLUICE), *args],
            env={**self.base_env(), **(env or {})},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return Ran(done.returncode, done.stdout, done.stderr)

    def _in_process(self, args: tuple[str, ...], stdin: str, env: dict[str, str]) -> Ran:
        wanted = {**self.base_env(), **env}
        unset: dict[str, str | None] = {k: None for k in os.environ if k not in wanted}
        done = CliRunner().invoke(
            build(), list(args), input=stdin, env={**unset, **wanted}, catch_exceptions=False
        )
        return Ran(done.exit_code, done.stdout, done.stderr)

    def as_process(self) -> Cli:
        return Cli(self.home, self.env, process=True)

    @classmethod
    def against(cls, stack: Stack, home: Path) -> Cli:
        """Connected to `stack`'s control plane with its bootstrap token."""
        env = {"SLUICE_URL": stack.control_plane_url, "SLUICE_TOKEN": stack.admin_token}
        return cls(home, env)
