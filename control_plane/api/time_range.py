"""The `since` and `until` query parameters of the listings that take a time range
(`/usage`, `/events`): their definition, which documents the range, and the one check
of both.

A time needs a time zone (a `Z` or an offset), as RFC 3339's date-time does: without
one, the request breaks the document (400). And it must fall in the range the server
can count with, which a schema cannot state (422): a day inside each end of the years
1 to 9999 (UTC), so that a default `since` a day before `until`, or `until` rounded up
to a whole bucket, is still a time."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar.params import QueryParameter

from control_plane.errors import BadRequest, Invalid, ProblemError, describe

__all__ = ["EARLIEST", "LATEST", "checked_range", "time_parameter"]

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)  # the first time taken
LATEST = datetime(9999, 12, 31, tzinfo=UTC)  # the first time refused
_SHOWN = {EARLIEST: "0001-01-02T00:00:00Z", LATEST: "9999-12-31T00:00:00Z"}
_RANGE = (
    f"A time with a time zone (`Z` or an offset), at or after {_SHOWN[EARLIEST]}"
    f" and before {_SHOWN[LATEST]}."
)


def time_parameter(description: str) -> QueryParameter:
    """A time query parameter: `description`, then what times it takes."""
    return QueryParameter(description=f"{description} {_RANGE}")


class _OutOfRange(Invalid):
    """`since`, `until` or both out of range: each named in `errors`."""

    def __init__(self, errors: list[ProblemError]) -> None:
        super().__init__(describe(errors))
        self._errors = errors

    def errors(self) -> list[ProblemError]:
        return self._errors


def checked_range(since: datetime | None, until: datetime | None) -> None:
    """400 naming a time without a time zone; else 422 naming each time out of range."""
    given = [(name, t) for name, t in (("since", since), ("until", until)) if t is not None]
    for name, moment in given:
        if moment.tzinfo is None:
            raise BadRequest(
                f"{name} needs a time zone, e.g. 2026-01-31T12:00:00Z", field=name, source="query"
            )
    errors = [
        ProblemError(name, _out_of_range(moment), "query")
        for name, moment in given
        if not EARLIEST <= moment < LATEST  # compared as instants, whatever the offset
    ]
    if errors:
        raise _OutOfRange(errors)


def _out_of_range(moment: datetime) -> str:
    if moment < EARLIEST:
        return f"must be at or after {_SHOWN[EARLIEST]}"
    return f"must be before {_SHOWN[LATEST]}"
