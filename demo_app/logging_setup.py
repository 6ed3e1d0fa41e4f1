"""The demo's structlog setup: the demo is an app, so it configures logging (the library never does)."""

from __future__ import annotations

import logging
import os

import structlog


def configure_logging(level: str | None = None) -> None:
    """JSON lines at the server's log level; loggers cached after first use, so an event costs microseconds."""
    name = (level or os.environ.get("LLMGUARD_DEMO_LOG_LEVEL", "info")).upper()
    numeric = logging.INFO if name == "TRACE" else getattr(logging, name, logging.INFO)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
