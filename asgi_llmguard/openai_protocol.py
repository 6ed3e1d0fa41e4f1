"""Deprecated alias of :mod:`asgi_llmguard.core.openai_protocol` (moved in 0.2.0; this path goes in 0.3.0)."""

from ._moved import moved
from .core import openai_protocol as _openai_protocol
from .core.openai_protocol import *  # noqa: F403

__getattr__ = moved(__name__, _openai_protocol)
