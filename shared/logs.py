"""Process-wide logging setup: one line per record, to stderr, never request bodies or headers.

`SLUICE_LOG_FORMAT=text` (the default) writes readable lines; `json` writes one JSON
object per line: `ts` (RFC 3339, UTC), `level`, `logger`, `message`, the ids a record
was given with `extra=` (`request_id`, `tenant_id`, `key_id`, `deployment_id`) and
`exc`, the traceback of a logged exception. No other record attribute is written.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from shared.config import ConfigError

__all__ = ["FORMATS", "JsonFormatter", "setup_logging", "uvicorn_log_config"]

FORMATS = ("text", "json")
_IDS = ("request_id", "tenant_id", "key_id", "deployment_id")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _IDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = str(value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False)


def setup_logging(level: str, log_format: str = "text") -> None:
    if log_format not in FORMATS:
        raise ConfigError(f"SLUICE_LOG_FORMAT={log_format!r} is not one of {', '.join(FORMATS)}")
    # httpx logs every request at INFO; here those are the console's in-process calls to
    # the admin API (and the data plane's to nothing): only its warnings are news
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if log_format == "text":
        logging.basicConfig(level=level.upper(), format=_TEXT)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler])


def uvicorn_log_config(log_format: str) -> dict[str, Any] | None:
    """uvicorn's own logging setup for `log_format`: its default for text; for JSON none,
    so that its loggers reach the root handler (its access log stays off)."""
    if log_format == "json":
        return None
    return LOGGING_CONFIG
