"""Structured logs: one JSON object per line, every line naming its node, in ``<data>/logs/<node>.log``.

    log = get_logger("transport")
    log.info("peer connected", peer="sn-b1", attempt=3)
    -> {"ts": 1732480000123.4, "level": "info", "node": "sn-a1", "logger": "ddb.transport",
        "msg": "peer connected", "peer": "sn-b1", "attempt": 3}
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, TextIO

import orjson

ROOT_LOGGER = "ddb"
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created * 1000.0, 1),
            "level": record.levelname.lower(),
            "node": self.node,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=repr).decode()


class StructLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger whose keyword arguments become fields of the JSON line."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        passthrough = {k: kwargs.pop(k) for k in ("exc_info", "stack_info", "stacklevel") if k in kwargs}
        fields = {k: kwargs.pop(k) for k in list(kwargs)}
        passthrough["extra"] = fields
        return msg, passthrough


def get_logger(name: str) -> StructLogger:
    return StructLogger(logging.getLogger(f"{ROOT_LOGGER}.{name}"), {})


def setup_logging(node: str, path: Path | None, level: str = "INFO", console: TextIO | None = None) -> None:
    """Send every ``ddb.*`` log line of this process to ``path`` (and optionally a console stream)."""
    root = logging.getLogger(ROOT_LOGGER)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level.upper())
    root.propagate = False
    formatter = JsonFormatter(node)
    handlers: list[logging.Handler] = []
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, encoding="utf-8"))
    if console is not None:
        handlers.append(logging.StreamHandler(console))
    if not handlers:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
