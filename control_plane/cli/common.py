"""Options and parsing that several commands share."""

from __future__ import annotations

import os
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
import yaml

from control_plane.cli.errors import CliError

__all__ = [
    "IfMatch",
    "Moment",
    "Yes",
    "age",
    "confirm",
    "from_env",
    "if_match",
    "moment",
    "secret",
    "settings",
]

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
IfMatch = Annotated[
    int | None,
    typer.Option(
        "--if-match", metavar="VERSION", help="Only if the object is still at this version."
    ),
]

Moment = Annotated[
    str | None,
    typer.Option(
        metavar="WHEN",
        help="A time (2026-01-31T12:00:00Z; UTC unless it says) or an age (90m, 24h, 7d).",
    ),
]
_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def age(text: str) -> timedelta | None:
    """`text` as a duration (`90m`, `24h`, `7d`), None when it is not one."""
    found = _AGE.match(text)
    if found is None:
        return None
    return timedelta(**{_UNIT[found.group(2)]: int(found.group(1))})


def moment(text: str | None) -> str | None:
    """`text` (a time, or an age before now) as an ISO 8601 time with a time zone."""
    if text is None:
        return None
    ago = age(text)
    if ago is not None:
        return (datetime.now(UTC) - ago).isoformat()
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"{text!r} is neither a time (2026-01-31T12:00:00Z) nor an age (7d)"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()


def from_env(var: str, what: str) -> str:
    """The value of the environment variable `var`, which holds the `what`."""
    value = os.environ.get(var)
    if not value:
        raise CliError(f"{var} is not set: it should hold the {what}")
    return value


def secret(var: str | None, ask: bool, what: str) -> str | None:
    """A secret from the environment variable `var`, or else, when `ask`, from a prompt
    that does not echo it (or, when standard input is not a terminal, its first line).
    None: no variable, not asked, or an empty answer."""
    if var:
        return from_env(var, what)
    if not ask:
        return None
    if sys.stdin.isatty():
        answer: str = typer.prompt(what, hide_input=True, default="", show_default=False)
    else:
        answer = sys.stdin.readline().strip()
    return answer or None


def if_match(version: int | None) -> dict[str, str]:
    """The `If-Match` header for `version` (none for None)."""
    return {} if version is None else {"if-match": f'"{version}"'}


def confirm(yes: bool, question: str) -> None:
    """Ask `question` unless `--yes`; no (or no terminal to ask at) aborts."""
    if not yes:
        typer.confirm(question, abort=True)


def settings(pairs: list[str] | None, option: str) -> dict[str, Any]:
    """`KEY=VALUE` pairs as a dict, each value read as a YAML scalar (`3`, `0.5`, `true`,
    `null`, `text`)."""
    found: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"{option} takes KEY=VALUE, not {pair!r}")
        try:
            found[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            found[key.strip()] = value
    return found
