"""Deprecated alias of :mod:`asgi_llmguard.observability.metrics`, ``.stats`` and ``.middleware``
(moved in 0.2.0; this path goes in 0.3.0)."""

from ._moved import moved
from .observability import metrics as _metrics
from .observability import middleware as _middleware
from .observability import stats as _stats
from .observability.metrics import *  # noqa: F403
from .observability.middleware import *  # noqa: F403
from .observability.stats import *  # noqa: F403

__getattr__ = moved(__name__, _metrics, _stats, _middleware)
