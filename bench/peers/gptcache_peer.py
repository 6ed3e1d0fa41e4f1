"""GPTCache as the peer bench runs it: its own OpenAI proxy server, or its cache driven pair by pair.

Runs in ``bench/peers/.venv-gptcache`` (GPTCache and openai<1 live there, not in the project venv):

    .venv-gptcache/bin/python gptcache_peer.py serve --port P --upstream http://127.0.0.1:M/v1 --data-dir D
    .venv-gptcache/bin/python gptcache_peer.py quality < pairs.json > served.json

``serve`` is ``gptcache_server``'s own app and ``/v1/chat/completions`` route (the one
``gptcache_server -o True`` serves), with the cache that route's ``-o`` flag builds
(``init_similar_cache(pre_func=last_content)``: sqlite + faiss, ``SearchDistanceEvaluation()``,
``Config()``'s ``similarity_threshold=0.8``). One thing differs, and has to: GPTCache's default
embedding (``Onnx()``, an albert model) is downloaded from the Hugging Face hub, which this machine
cannot reach, so the embedding is all-MiniLM-L6-v2 from the local model folder through fastembed,
the same model file and runtime the other tools use. Its token counter (on by default) needs
tiktoken's cl100k file, which the setup step copies from LiteLLM's wheel (``TIKTOKEN_CACHE_DIR``).

``quality`` reads ``[[prompt_a, prompt_b], ...]`` and, for each pair, in a fresh cache with the same
configuration, stores an answer for A (``gptcache.adapter.api.put``), asks for B
(``gptcache.adapter.api.get``) and writes whether B was served: a JSON list of booleans.

This file imports GPTCache, openai 0.28 and fastembed, which are not in the project venv: it is not
type-checked with the project (mypy covers asgi_llmguard and demo_app only).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
from typing import Any

import numpy as np

DEFAULT_MODEL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".models", "all-MiniLM-L6-v2")


class LocalMiniLM:
    """A GPTCache embedding (``to_embeddings`` and ``dimension``): all-MiniLM-L6-v2 from a local folder."""

    def __init__(self, model_dir: str, threads: int = 1) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from fastembed import TextEmbedding

        self.model = TextEmbedding("sentence-transformers/all-MiniLM-L6-v2", specific_model_path=model_dir,
                                   threads=threads, local_files_only=True)
        self.memo: dict[str, np.ndarray] | None = None  # the quality run embeds each prompt once
        self.dimension = len(self.to_embeddings("warm up"))

    def to_embeddings(self, data: str, **_: Any) -> np.ndarray:
        if self.memo is not None and data in self.memo:
            return self.memo[data]
        vector = np.asarray(next(iter(self.model.embed([data]))), dtype="float32")
        vector /= max(float(np.linalg.norm(vector)), 1e-12)
        if self.memo is not None:
            self.memo[data] = vector
        return vector


def build_cache(embedding: LocalMiniLM, data_dir: str, pre_func: Any) -> Any:
    """A Cache as ``init_similar_cache`` builds it by default, with the local embedding."""
    from gptcache import Cache
    from gptcache.adapter.api import init_similar_cache

    cache_obj = Cache()
    init_similar_cache(data_dir=data_dir, cache_obj=cache_obj, pre_func=pre_func, embedding=embedding)
    return cache_obj


def serve(args: argparse.Namespace) -> None:
    import openai
    import uvicorn
    from gptcache.processor.pre import last_content
    from gptcache_server import server
    from starlette.middleware.cors import CORSMiddleware

    openai.api_base = args.upstream
    embedding = LocalMiniLM(args.model_dir)
    # What gptcache_server's main() does for "-o True", with our embedding.
    server.openai_cache = build_cache(embedding, args.data_dir, last_content)
    server.app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=True, allow_methods=["*"],
                              allow_headers=["*"])

    @server.app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(server.app, host=args.host, port=args.port, log_level="warning", access_log=False)


def quality(args: argparse.Namespace) -> None:
    from gptcache.adapter.api import get, put
    from gptcache.processor.pre import get_prompt

    pairs = json.load(sys.stdin)
    embedding = LocalMiniLM(args.model_dir)
    embedding.memo = {}
    served = []
    # GPTCache flushes every Cache at exit (atexit); registered first, the clean-up runs after those flushes.
    root = tempfile.mkdtemp(prefix="gptcache-quality-")
    atexit.register(shutil.rmtree, root, True)
    for i, (prompt_a, prompt_b) in enumerate(pairs):
        data_dir = os.path.join(root, str(i))
        os.makedirs(data_dir)
        cache_obj = build_cache(embedding, data_dir, get_prompt)
        put(prompt_a, f"answer to: {prompt_a}", cache_obj=cache_obj)
        served.append(get(prompt_b, cache_obj=cache_obj) is not None)
    json.dump(served, sys.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["serve", "quality"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8300)
    parser.add_argument("--upstream", default="http://127.0.0.1:8001/v1", help="the OpenAI-compatible upstream")
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "gptcache-peer"))
    parser.add_argument("--model-dir", default=os.environ.get("LLMGUARD_EMBEDDING_MODEL_DIR", DEFAULT_MODEL_DIR))
    args = parser.parse_args()
    serve(args) if args.mode == "serve" else quality(args)


if __name__ == "__main__":
    main()
