"""What a command can fail with, and how `sluice` prints it: one line for the problem,
one per entry of its `errors` list, exit code 1, never a traceback."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

__all__ = ["ApiError", "CliError", "Unreachable", "report"]


class CliError(Exception):
    """A problem found without the API's help (a bad argument, an unknown name)."""


class Unreachable(CliError):
    """No answer at all: refused, timed out, or not JSON."""


class ApiError(Exception):
    """A non-2xx answer; `problem` is its RFC 9457 body (or one made up from the status)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status}: {problem.get('detail') or problem.get('title')}")
        self.status = status
        self.problem = problem


def report(exc: ApiError | CliError, console: Console) -> None:
    if isinstance(exc, CliError):
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        return
    problem = exc.problem
    title = problem.get("title") or "error"
    detail = problem.get("detail")
    line = f"[bold red]error {exc.status}[/] {escape(str(title))}"
    if detail and detail != title:
        line += f": {escape(str(detail))}"
    elif problem.get("instance"):
        line += f": {escape(str(problem['instance']))}"
    console.print(line)
    for entry in problem.get("errors") or []:
        console.print(f"  - {escape(_entry(entry))}")


def _entry(entry: Any) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    where = entry.get("key") or entry.get("field") or entry.get("loc")
    message = entry.get("message") or entry.get("detail") or ""
    return f"{where}: {message}" if where else str(message)
