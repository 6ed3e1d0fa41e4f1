"""A stand-in OpenAI embeddings server whose answer delay is set while it runs (for the slow-server tests).

    run_server(["uvicorn", "embedding_doubles:app", "--app-dir", "tests"], port)

``POST /v1/embeddings`` answers after ``delay_ms`` with a fixed pseudo-random unit vector per text
(no model: these tests are about time, not meaning); ``POST /control`` sets ``delay_ms`` and returns
the state; ``GET /health`` answers at once; ``GET /control`` reads ``calls`` (embedding requests seen).
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DIMENSIONS = 8
state: dict[str, Any] = {"delay_ms": 0.0, "calls": 0}


def vector_for(text: str) -> list[float]:
    values = np.random.default_rng(zlib.crc32(text.encode())).standard_normal(DIMENSIONS)
    return [float(v) for v in values / np.linalg.norm(values)]


async def embeddings(request: Request) -> JSONResponse:
    payload = await request.json()
    texts = payload["input"] if isinstance(payload["input"], list) else [payload["input"]]
    state["calls"] += 1
    await asyncio.sleep(float(state["delay_ms"]) / 1000)
    return JSONResponse({"object": "list", "model": payload.get("model", "double"),
                         "data": [{"object": "embedding", "index": i, "embedding": vector_for(t)}
                                  for i, t in enumerate(texts)]})


async def control(request: Request) -> JSONResponse:
    if request.method == "POST":
        state.update(await request.json())
    return JSONResponse(state)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/control", control, methods=["GET", "POST"]),
    Route("/health", health, methods=["GET"]),
])
