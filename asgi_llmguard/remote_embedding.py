"""Deprecated alias of :mod:`asgi_llmguard.embedding.remote` (moved in 0.2.0; this path goes in 0.3.0)."""

from ._moved import moved
from .embedding import remote as _remote
from .embedding.remote import *  # noqa: F403

__getattr__ = moved(__name__, _remote)
