"""The live dashboard: one self-contained HTML page and the JSON it polls.

Off unless ``dashboard_path`` is set. The page (``dashboard.html`` beside this module) loads
nothing from elsewhere (no CDN: gateways often have no internet) and draws its
charts as inline SVG from ``<dashboard_path>/stats.json``, which is ``/stats``
plus the configured limits, so the page works whether or not ``stats_path`` is
on. Both show aggregate numbers only: no prompt, identity or key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..core.asgi import send_bytes, send_json
from ..core.types import Scope, Send

if TYPE_CHECKING:
    from ..config import Settings
    from .metrics import Metrics

STATS_SUFFIX = "/stats.json"


@cache
def _template() -> str:
    return resources.files("asgi_llmguard.observability").joinpath("dashboard.html").read_text(encoding="utf-8")


def render_page(stats_url: str) -> bytes:
    """The page, told where its figures come from."""
    return _template().replace("__STATS_URL__", stats_url).encode()


def dashboard_stats(settings: Settings, metrics: Metrics, stats: dict[str, Any]) -> dict[str, Any]:
    """``/stats`` (``stats``) plus what the page shows beside the figures: the configured limits."""
    s = settings
    return {
        **stats,
        "limits": {"rpm": s.rate_limit_rpm, "tpm": s.rate_limit_tpm, "global_rpm": s.global_rpm,
                   "window_seconds": s.rate_limit_window_seconds},
        "cache_enabled": s.cache_enabled,
        "multiprocess": metrics.multiprocess,
    }


async def serve_dashboard(settings: Settings, metrics: Metrics, scope: Scope, send: Send,
                          stats: Callable[[], Awaitable[dict[str, Any]]]) -> bool:
    """Answer the page or its JSON; False for any other path under the dashboard's. ``stats``: what
    ``/stats`` answers, which the page's JSON extends."""
    base = (settings.dashboard_path or "").rstrip("/")
    path = scope["path"]
    if path in (base, base + "/"):
        await send_bytes(send, 200, render_page(base + STATS_SUFFIX), content_type=b"text/html; charset=utf-8",
                         headers=[("cache-control", "no-store")])
        return True
    if path == base + STATS_SUFFIX:
        await send_json(send, 200, dashboard_stats(settings, metrics, await stats()),
                        headers=[("cache-control", "no-store")])
        return True
    return False
