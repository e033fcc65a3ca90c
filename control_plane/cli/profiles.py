"""Named connection profiles: `~/.config/sluice/profiles.yaml` (or `$SLUICE_PROFILES`).

    default: local            # the profile used when none is named
    profiles:
      local: {url: "http://127.0.0.1:8081", token: "..."}

A profile's token is sent only to its own URL (`http://127.0.0.1:8081` when it names
none), never to one given by `--url` or `SLUICE_URL`. The file holds admin tokens, so it
is written with mode 0600.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from control_plane.cli.errors import CliError

__all__ = ["Profile", "ProfileError", "Profiles", "load", "path", "save"]


class ProfileError(CliError):
    """The profiles file cannot be read, or names no such profile."""


class Profile(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    url: str | None = None
    token: str | None = None


class Profiles(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    profiles: dict[str, Profile] = {}
    default: str | None = None


def path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    given = env.get("SLUICE_PROFILES")
    if given:
        return Path(given).expanduser()
    return Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "sluice" / "profiles.yaml"


def load(file: Path) -> Profiles:
    """The profiles in `file`; none when it does not exist."""
    try:
        text = file.read_text()
    except FileNotFoundError:
        return Profiles()
    except OSError as exc:
        raise ProfileError(f"cannot read {file}: {exc.strerror}") from None
    try:
        raw: Any = yaml.safe_load(text)
        return msgspec.convert(raw or {}, Profiles)
    except (yaml.YAMLError, msgspec.ValidationError) as exc:
        raise ProfileError(f"{file} is not a valid profiles file: {exc}") from None


def save(file: Path, profiles: Profiles) -> None:
    """Write `profiles` to `file`, readable by its owner only."""
    file.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(msgspec.to_builtins(profiles), sort_keys=True)
    partial = file.with_name(file.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(partial, 0o600)
    partial.replace(file)
