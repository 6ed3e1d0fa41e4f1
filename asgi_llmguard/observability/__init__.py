"""Observability: Prometheus metrics and the /stats summary, the dashboard, the per-request log
event, and the PostgreSQL request log. (The spans every layer opens are :mod:`asgi_llmguard.core.tracing`.)"""
