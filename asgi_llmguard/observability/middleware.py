"""The metrics layer: records and logs each exchange; serves the metrics path, /stats and the dashboard."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from prometheus_client import CONTENT_TYPE_LATEST

from ..core.asgi import send_bytes, send_json
from ..core.exchange import Exchange
from ..core.layer import GuardLayer, LayerHost
from ..core.types import Receive, Scope, Send
from .dashboard import serve_dashboard
from .log_event import log_finisher
from .metrics import Metrics
from .request_log import RequestLog

__all__ = ["MetricsHost", "MetricsMiddleware"]


class MetricsHost(LayerHost, Protocol):
    """What the metrics layer needs of its guard: the metrics and the request log, when on."""

    @property
    def metrics(self) -> Metrics | None: ...

    @property
    def request_log(self) -> RequestLog | None: ...

    async def insight(self) -> dict[str, Any]:
        """Figures /stats shows beyond the metrics (per-namespace audit outcomes); {} when none."""
        ...


class MetricsMiddleware(GuardLayer[MetricsHost]):
    """Records and logs each guarded exchange; serves the metrics path, /stats and the dashboard."""

    async def serve_endpoint(self, scope: Scope, receive: Receive, send: Send) -> bool:
        settings = self.guard.settings
        metrics = self.guard.metrics
        path = scope["path"]
        if metrics is None or scope["method"] not in ("GET", "HEAD"):
            return False
        if path == settings.metrics_path:
            await send_bytes(send, 200, metrics.exposition(), content_type=CONTENT_TYPE_LATEST.encode())
            return True
        if path == settings.stats_path:
            await send_json(send, 200, await self.stats(), headers=[("cache-control", "no-store")])
            return True
        if settings.dashboard_path is not None and path.startswith(settings.dashboard_path):
            return await serve_dashboard(settings, metrics, scope, send, self.stats)
        return False

    async def stats(self) -> dict[str, Any]:
        """What /stats answers (and the dashboard's JSON extends): the metrics' figures and, with audits on,
        the per-namespace outcomes and cuts."""
        metrics = self.guard.metrics
        assert metrics is not None
        stats = metrics.stats()
        if "audit" in stats:
            stats["audit"].update(await self.guard.insight())
        return stats

    async def handle(self, exchange: Exchange, scope: Scope, receive: Receive, send: Send) -> None:
        metrics = self.guard.metrics
        settings = self.guard.settings
        if metrics is not None:
            exchange.on_finish(_record(metrics))
        exchange.on_finish(log_finisher(settings.log_prompts))
        if self.guard.request_log is not None:  # the PostgreSQL request log (request_log.py)
            self.guard.request_log.watch(exchange)
        with structlog.contextvars.bound_contextvars(llmguard_request_id=exchange.request_id):
            await self.app(scope, receive, send)


def _record(metrics: Metrics) -> Callable[[Exchange], Awaitable[None]]:
    async def record(exchange: Exchange) -> None:
        metrics.observe(exchange)

    return record
