"""Shared fixtures: the local embedding model, the real Redis server, free ports.

The tests mirror the package (tests/cache/, tests/ratelimit/...); helpers shared by several
folders (``apps``, ``servers``, ``storages``, ``embedding_doubles``) live here beside this file,
which pytest puts on ``sys.path``. A test that asks for ``redis_url`` is marked ``redis``, so
``-m "not redis"`` runs what needs no Redis server.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = ROOT / ".models" / "all-MiniLM-L6-v2"
REDIS_URL = os.environ.get("LLMGUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# The hub client retries for tens of seconds before it gives up on a machine
# without a hub; the local folder needs no hub at all.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "redis_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.redis)
        if {"cluster_url", "local_cluster"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[Any]:
    """A real 3-master Redis Cluster on free ports, started once per session and stopped by PID after."""
    from redis_cluster import LocalCluster

    cluster = LocalCluster(masters=3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_url(local_cluster: Any) -> Iterator[str]:
    """The local cluster, emptied before and after the test (any node's URL: the guard finds the others)."""
    local_cluster.flush()
    yield local_cluster.url
    local_cluster.flush()


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The local model folder; a missing folder fails the test, never skips it."""
    path = Path(os.environ.get("LLMGUARD_EMBEDDING_MODEL_DIR", DEFAULT_MODEL_DIR))
    if not (path / "model.onnx").is_file():
        pytest.fail(f"no embedding model at {path}: run `llmguard build-model` first")
    return path


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A clean logical database on the real Redis server (db 15 unless overridden)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
async def start_guard() -> AsyncIterator[Any]:
    """Start Guards with the given settings; every one is shut down when the test ends."""
    from asgi_llmguard import Guard  # imported here: a test module decides what loads first

    guards: list[Guard] = []

    async def start(**settings: Any) -> Guard:
        guard = Guard(**settings)
        await guard.startup()
        guards.append(guard)
        return guard

    yield start
    for guard in guards:
        await guard.shutdown()
