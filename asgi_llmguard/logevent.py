"""Deprecated alias of :mod:`asgi_llmguard.observability.log_event` (moved in 0.2.0; this path goes in 0.3.0)."""

from ._moved import moved
from .observability import log_event as _log_event
from .observability.log_event import *  # noqa: F403

__getattr__ = moved(__name__, _log_event)
