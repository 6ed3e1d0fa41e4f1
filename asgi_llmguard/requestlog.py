"""Deprecated alias of :mod:`asgi_llmguard.observability.request_log` (moved in 0.2.0; this path goes in 0.3.0)."""

from ._moved import moved
from .observability import request_log as _request_log
from .observability.request_log import *  # noqa: F403

__getattr__ = moved(__name__, _request_log)
