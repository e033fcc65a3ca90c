"""Where `sluice` connects (flags beat the environment beat the profile, and a token goes
only to the URL it came with), the profiles file, the server commands handed through,
and what the admin commands import."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from control_plane.cli.connection import DEFAULT_URL, resolve
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
    # SLUICE_ADMIN_TOKEN (what `make run` sets) comes after a profile's token
    assert who(SLUICE_ADMIN_TOKEN="wrong") == "ok"
    cli("profile", "delete", "local").ok()
    assert cli("profile", "list", "-o", "json").json() == [listed[0]]  # no default left
    assert who(SLUICE_URL=url, SLUICE_TOKEN=good) == "ok"


def test_a_token_goes_only_to_the_url_it_came_with(control_plane: Stack, tmp_path: Path) -> None:
    """A profile's token and SLUICE_ADMIN_TOKEN are good for the control plane here, so a
    401 shows they were not sent; a token given by flag or SLUICE_TOKEN goes anywhere."""
    cli = Cli(tmp_path)
    good, url = control_plane.admin_token, control_plane.control_plane_url
    cli("profile", "set", "away", "--url", NOWHERE, "--token-env", "T", "--default",
        env={"T": good}).ok()  # fmt: skip
    cli("profile", "set", "here", "--url", url).ok()  # no token of its own

    def who(*args: str, **env: str) -> str:
        ran = cli(*args, "whoami", "-o", "json", env=env)
        return "ok" if ran.code == 0 else ran.failed()

    refused = [
        who("--url", url),  # not the default profile's token
        who("--profile", "away", "--url", url),  # nor a named one's
        who(SLUICE_URL=url),
        who("--profile", "here", SLUICE_ADMIN_TOKEN=good),  # not the local token
        who("--url", url, SLUICE_ADMIN_TOKEN=good),
        who(SLUICE_URL=url, SLUICE_ADMIN_TOKEN=good),
    ]
    for err in refused:
        assert "error 401" in err
        assert "no token was sent" in err
    assert good not in "".join(refused)
    # a token given explicitly is a deliberate choice, whatever the URL's source
    assert who("--url", url, "--token", good) == "ok"
    assert who("--url", url, SLUICE_TOKEN=good) == "ok"
    assert who("--token", good, SLUICE_URL=url) == "ok"
    assert who("--profile", "here", "--token", good) == "ok"
    assert who("--profile", "here", SLUICE_TOKEN=good) == "ok"
    # and a profile's own URL with its own token still works
    cli("profile", "set", "here", "--token-env", "T", env={"T": good}).ok()
    assert who("--profile", "here", SLUICE_ADMIN_TOKEN="wrong") == "ok"


PROFILES = {
    "far": {"url": "https://far.test", "token": "f-token"},
    "token-only": {"token": "p-token"},
}
X = "https://x.test"

# id, the file's default profile, resolve's keywords (the flags), the environment, the pair
RESOLVED: list[tuple[str, str | None, dict[str, str], dict[str, str], tuple[str, str | None]]] = [
    ("nothing: the local plane and its token", None, {}, {}, (DEFAULT_URL, "admin")),
    ("a profile's token, no URL: the local plane", "token-only", {}, {}, (DEFAULT_URL, "p-token")),
    ("the default profile", "far", {}, {}, ("https://far.test", "f-token")),
    ("the flag's URL: no profile token", "far", {"url": X}, {}, (X, None)),
    ("SLUICE_URL: no profile token", "far", {}, {"SLUICE_URL": X}, (X, None)),
    ("SLUICE_URL: no local token", None, {}, {"SLUICE_URL": X}, (X, None)),
    ("SLUICE_URL with SLUICE_TOKEN", None, {}, {"SLUICE_URL": X, "SLUICE_TOKEN": "t"}, (X, "t")),
    ("the flag's token, the profile's URL", "far", {"token": "t"}, {}, ("https://far.test", "t")),
    ("the flag's token, the local URL", None, {"token": "t"}, {}, (DEFAULT_URL, "t")),
]


@pytest.mark.parametrize(
    ("default", "flags", "env", "pair"), [c[1:] for c in RESOLVED], ids=[c[0] for c in RESOLVED]
)
def test_url_and_token_are_a_pair(
    tmp_path: Path,
    default: str | None,
    flags: dict[str, str],
    env: dict[str, str],
    pair: tuple[str, str | None],
) -> None:
    """What `resolve` picks, including the local plane, which no test can reach."""
    file = tmp_path / "profiles.yaml"
    file.write_text(yaml.safe_dump({"default": default, "profiles": PROFILES}))
    chosen = resolve(
        url=flags.get("url"),
        token=flags.get("token"),
        profile=None,
        env={"SLUICE_PROFILES": str(file), "SLUICE_ADMIN_TOKEN": "admin", **env},
    )
    assert (chosen.url, chosen.token) == pair


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
