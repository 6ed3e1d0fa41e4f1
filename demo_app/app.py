"""The demo app: a FastAPI app whose own LLM endpoint is the mock LLM, behind the whole guard stack.

``create_app()`` builds it; ``create_app(guarded=False)`` is the same app without the stack (the
baseline for benchmarks). The stack is in memory by default and shares Redis when
``LLMGUARD_REDIS_URL`` is set (read by ``Settings.from_env``).

The demo turns on ``/stats``, the dashboard and the metrics path, and routes the model alias
``auto`` between ``mock-small`` and ``mock-large``; an ``LLMGUARD_*`` variable that is set wins
over these demo defaults, and a keyword argument wins over both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp

from demo_app.logging_setup import configure_logging
from demo_app.mock_llm import Delays, MockLLM

if TYPE_CHECKING:
    from asgi_llmguard import Settings

__all__ = [
    "DEMO_SETTINGS",
    "create_app",
    "create_guarded_app",
    "create_proxy_app",
    "create_unguarded_app",
    "demo_settings",
]

DEMO_SETTINGS: Mapping[str, Any] = {
    "stats_path": "/stats",
    "dashboard_path": "/dashboard",
    "metrics_path": "/metrics",
    "router_aliases": {"auto": ("mock-small", "mock-large")},
    # USD per 1M tokens, so the dashboard and /stats can show money saved (OpenAI's list prices of the
    # models the mock names stand in for).
    "price_table": {
        "mock-small": {"prompt": 0.15, "completion": 0.6},
        "mock-large": {"prompt": 2.5, "completion": 10.0},
        "gpt-4o-mini": {"prompt": 0.15, "completion": 0.6},
        "gpt-4o": {"prompt": 2.5, "completion": 10.0},
    },
}

# The local model folder `llmguard build-model` builds: the demo uses it when it exists, so the
# README's demo command works on machines that cannot reach fastembed's model hub.
LOCAL_MODEL_DIR = Path(__file__).resolve().parent.parent / ".models" / "all-MiniLM-L6-v2"

INDEX_HTML = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>asgi_llmguard demo</title></head>
<body style="font-family: sans-serif; max-width: 44rem; margin: 2rem auto; line-height: 1.5">
<h1>asgi_llmguard demo</h1>
<p>A FastAPI app whose own OpenAI-compatible endpoint (<code>POST /v1/chat/completions</code>,
<code>POST /v1/completions</code>) is a mock LLM that streams its answer token by token. The answer
repeats the last user message verbatim, so you can tell which prompt it was made for.</p>
<p>When guarded, the endpoint sits behind asgi_llmguard's middleware stack: rate limits, a semantic
cache (watch the <code>X-LLMGuard-Cache</code> header), a model router (ask for the model
<code>auto</code>) and metrics. Point any OpenAI client at <code>/v1</code> of this server.</p>
<ul>
<li><a href="/stats">/stats</a>: cache, router and rate-limit statistics</li>
<li><a href="/dashboard">/dashboard</a>: the same, as a page</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="/docs">/docs</a>: the app's API</li>
<li><a href="/health">/health</a>: liveness (never guarded)</li>
</ul>
</body>
</html>
"""


def _env_name(setting: str) -> str:
    return "LLMGUARD_" + setting.upper()


def demo_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings for the demo: demo defaults unless their ``LLMGUARD_*`` variable is set; keywords win."""
    from asgi_llmguard import Settings

    env = os.environ if environ is None else environ
    demo_defaults = dict(DEMO_SETTINGS)
    if (LOCAL_MODEL_DIR / "model.onnx").is_file():
        demo_defaults["embedding_model_dir"] = str(LOCAL_MODEL_DIR)
    defaults = {
        name: value for name, value in demo_defaults.items() if _env_name(name) not in env and name not in overrides
    }
    return Settings.from_env(env, **defaults, **overrides)


def _build_fastapi_app() -> FastAPI:
    app = FastAPI(
        title="asgi_llmguard demo",
        description="A mock OpenAI-compatible LLM endpoint, guarded by asgi_llmguard.",
        version="0.1.0",
    )
    llm = MockLLM(delays=Delays.resolve(), state=app.state)
    app.state.mock = llm
    app.add_api_route("/v1/chat/completions", llm.chat_completions, methods=["POST"], tags=["llm"])
    app.add_api_route("/v1/completions", llm.completions, methods=["POST"], tags=["llm"])
    app.add_api_route("/v1/models", llm.list_models, methods=["GET"], tags=["llm"])
    app.add_api_route("/v1/models/{model:path}", llm.retrieve_model, methods=["GET"], tags=["llm"])
    app.add_api_route("/mock/stats", llm.stats, methods=["GET"], tags=["mock"])
    app.add_api_route("/mock/fault", llm.set_fault, methods=["POST"], tags=["mock"])
    app.add_api_route("/health", _health, methods=["GET"], tags=["demo"])
    app.add_api_route("/", _index, methods=["GET"], include_in_schema=False)
    return app


async def _health(request: Request) -> JSONResponse:
    """Liveness: answers without touching the stack's resources."""
    return JSONResponse({"status": "ok"})


async def _index(request: Request) -> HTMLResponse:
    return HTMLResponse(INDEX_HTML)


def create_app(*, guarded: bool = True, **settings_overrides: Any) -> ASGIApp:
    """The demo app; with ``guarded`` (the default) wrapped in the whole asgi_llmguard stack.

    ``settings_overrides`` are ``Settings`` keyword arguments; they need ``guarded``.
    """
    app = _build_fastapi_app()
    if not guarded:
        if settings_overrides:
            raise TypeError(f"settings {sorted(settings_overrides)} given for an unguarded demo app")
        return app
    from asgi_llmguard import Guard

    guard = Guard(demo_settings(**settings_overrides))
    app.state.guard = guard
    guard.install(app)
    return app


def create_guarded_app() -> ASGIApp:
    """Factory for ``uvicorn --factory demo_app.app:create_guarded_app`` (the whole stack)."""
    configure_logging()
    return create_app(guarded=True)


def create_unguarded_app() -> ASGIApp:
    """Factory for ``uvicorn --factory demo_app.app:create_unguarded_app`` (no stack: the baseline)."""
    configure_logging()
    return create_app(guarded=False)


class _ProxyDemo:
    """LLMProxy with the demo's ``/health`` beside it (liveness never touches the upstreams)."""

    def __init__(self, proxy: ASGIApp) -> None:
        self.proxy = proxy

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/health":
            await JSONResponse({"status": "ok"})(scope, receive, send)
            return
        await self.proxy(scope, receive, send)


def create_proxy_app(**settings_overrides: Any) -> ASGIApp:
    """LLMProxy forwarding to ``LLMGUARD_UPSTREAMS``, behind the whole stack (``python -m demo_app --proxy``)."""
    from asgi_llmguard import Guard, LLMProxy

    guard = Guard(demo_settings(**settings_overrides))
    return guard.wrap(_ProxyDemo(LLMProxy(guard=guard)))


def create_proxy_app_factory() -> ASGIApp:
    """Factory for ``uvicorn --factory demo_app.app:create_proxy_app_factory``."""
    configure_logging()
    return create_proxy_app()
