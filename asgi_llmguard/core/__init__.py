"""The core every capability shares, and that knows none of them.

``types`` (ASGI aliases and the shared protocols), ``asgi`` (body read and replay, small
responses), ``openai_protocol`` (request parsing, answers as JSON or SSE), ``observer`` (the one
response observer), ``exchange`` (the per-request object), ``tokens`` (token estimates),
``tracing`` (the spans every layer opens), ``layer`` (the base of the stack's middlewares) and
``version``. Nothing here imports a capability (cache, embedding, ratelimit, routing, streaming,
observability) or ``guard.py``.
"""
