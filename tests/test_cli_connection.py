"""Where `sluice` connects (flags beat the environment beat the profile), the profiles
file, the server commands handed through, and what the admin commands import."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.support.cli import SLUICE, Cli
from tests.support.processes import free_port
from tests.support.stack import NOWHERE, Stack


def test_flags_beat_the_environment_beat_the_profile(control_plane: Stack, tmp_path: Path) -> None:
    cli = Cli(tmp_path)  # no SLUICE_* at all
    good, url = control_plane.admin_token, control_plane.control_plane_url
    saved = cli("profile", "set", "local", "--url", url, "--token-env", "T", "--default",
                env={"T": good}).ok()  # fmt: skip
    assert good not in saved
    cli("profile", "set", "far", "--url", NOWHERE).ok()
    file = tmp_path / "profiles.yaml"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert yaml.safe_load(file.read_text())["profiles"]["local"] == {"url": url, "token": good}
    listed = cli("profile", "list", "-o", "json").json()
    assert listed == [
        {"name": "far", "url": NOWHERE, "token": False, "default": False},
        {"name": "local", "url": url, "token": True, "default": True},
    ]
    assert good not in cli("profile", "list").ok()

    def who(*args: str, **env: str) -> str:
        ran = cli(*args, "whoami", "-o", "json", env=env)
        return "ok" if ran.code == 0 else ran.failed()

    assert who() == "ok"  # the default profile
    assert "cannot reach" in who("--profile", "far")
    assert "cannot reach" in who(SLUICE_PROFILE="far")
    assert who("--profile", "local", SLUICE_PROFILE="far") == "ok"  # the flag wins
    assert "no profile 'gone'" in who("--profile", "gone")
    # the URL from the environment, the token from nowhere: `far` has none
    assert "error 401" in who("--profile", "far", SLUICE_URL=url)
    assert "error 401" in who(SLUICE_TOKEN="wrong")  # the environment beats the profile
    assert who("--token", good, SLUICE_TOKEN="wrong") == "ok"  # the flag beats it
    assert "cannot reach" in who("--url", NOWHERE, SLUICE_URL=url)
    # SLUICE_ADMIN_TOKEN (what `make run` sets) comes after a profile's token...
    assert who(SLUICE_ADMIN_TOKEN="wrong") == "ok"
    # ...and is used when nothing else gives one
    assert who("--profile", "far", SLUICE_URL=url, SLUICE_ADMIN_TOKEN=good) == "ok"
    cli("profile", "delete", "local").ok()
    assert cli("profile", "list", "-o", "json").json() == [listed[0]]  # no default left
    assert who(SLUICE_URL=url, SLUICE_TOKEN=good) == "ok"


def test_server_commands_take_their_arguments(tmp_path: Path) -> None:
    help_text = subprocess.run(
        [str(SLUICE), "control-plane", "--help"], capture_output=True, text=True, timeout=30
    )
    assert help_text.returncode == 0
    assert help_text.stdout.startswith("usage: sluice control-plane")  # the server's own
    port = free_port()
    with (tmp_path / "fake.log").open("wb") as log:
        fake = subprocess.Popen(
            [str(SLUICE), "fake-provider", "--port", str(port), "--tokens", "3"],
            stdout=log,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert fake.poll() is None, (tmp_path / "fake.log").read_text()
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/_fake/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, (tmp_path / "fake.log").read_text()
                time.sleep(0.1)
        assert answer.status_code == 200  # on the port it was given
    finally:
        fake.terminate()
        fake.wait(10)
    checked = subprocess.run([str(SLUICE), "check-sql"], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert "queries OK" in checked.stdout + checked.stderr
    bare = subprocess.run([str(SLUICE)], capture_output=True, text=True, timeout=30)
    assert bare.returncode == 0
    assert "tenants" in bare.stdout
    assert (
        "_SLUICE_COMPLETE"
        in subprocess.run(
            [str(SLUICE), "--show-completion", "bash"], capture_output=True, text=True, timeout=30
        ).stdout
    )


def test_the_admin_commands_import_no_server_code() -> None:
    probe = (
        "import sys; from control_plane.cli.app import build; build();"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('litestar', 'asyncpg', 'uvicorn', 'data_plane')"
        " or m.startswith(('control_plane.api', 'control_plane.app', 'control_plane.store')))))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == ""
