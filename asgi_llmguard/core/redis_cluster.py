"""Redis Cluster: telling one from a single Redis, opening redis-py's ``RedisCluster``, and health per node.

**Detection.** ``LLMGUARD_REDIS_URL`` may name any node of a cluster. ``redis+cluster://`` (or
``rediss+cluster://``) says so explicitly and costs no round trip; a plain ``redis://`` URL is
probed once at startup with ``INFO cluster`` (``cluster_enabled:1``). A server that does not answer
the probe is taken for a single Redis (and logged): name the scheme when the cluster may be down
while replicas start.

**Failover.** redis-py's asyncio cluster client marks its slot map stale on a connection error
or a ``MOVED`` reply and reads ``CLUSTER SLOTS`` again before the next command, so a replica
promoted to master (or a master restarted at its address) is used again without a restart. The
client is opened with ``require_full_coverage=False``: a cluster missing one master still serves
the others' slots (the servers need ``cluster-require-full-coverage no`` for the same reason).

**Health per node.** A single Redis has one :class:`~asgi_llmguard.core.health.Health`; on a
cluster a dead master must cost only its own slots, so each node has its own, found through the
slot of the key a call is about (:class:`NodeHealth`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from redis.asyncio import Redis, RedisCluster

from .health import Health
from .redis_client import HEALTH_CHECK_SECONDS, retry_once

if TYPE_CHECKING:
    from redis.asyncio.cluster import ClusterNode

__all__ = ["CLUSTER_SCHEMES", "NodeHealth", "connect_cluster", "is_cluster", "plain_url", "probe_cluster"]

log = structlog.get_logger("asgi_llmguard")

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

#: Connections per node: each partition's index sync holds one in a blocking read.
MAX_CONNECTIONS_PER_NODE = 1000


def plain_url(url: str) -> str:
    """``url`` with a ``+cluster`` scheme turned into the one redis-py reads."""
    scheme, sep, rest = url.partition("://")
    return CLUSTER_SCHEMES.get(scheme, scheme) + sep + rest


def is_cluster(url: str) -> bool:
    """Whether ``url`` names a cluster explicitly (``redis+cluster://``, ``rediss+cluster://``)."""
    return url.partition("://")[0] in CLUSTER_SCHEMES


async def probe_cluster(client: Redis) -> bool | None:
    """Whether the server behind ``client`` runs in cluster mode; None when it did not answer."""
    try:
        info = await client.info("cluster")
    except Exception as exc:
        log.warning("llmguard.redis_mode_unknown", error=type(exc).__name__,
                    hint="use redis+cluster:// to name a cluster that may be down at startup")
        return None
    return bool(int(info.get("cluster_enabled", 0)))


def connect_cluster(url: str, *, timeout: float) -> RedisCluster:
    """A cluster client for any node's ``url``; socket calls give up after ``timeout`` seconds.

    It reads the slot map on first use, so a cluster that is down at startup does not stop the app.
    """
    client: RedisCluster = RedisCluster.from_url(
        plain_url(url), socket_timeout=timeout, socket_connect_timeout=timeout, retry=retry_once(),
        health_check_interval=HEALTH_CHECK_SECONDS, require_full_coverage=False,
        max_connections=MAX_CONNECTIONS_PER_NODE)
    return client


class NodeHealth:
    """One :class:`Health` per cluster node, found by key: one dead master pauses only its own calls."""

    def __init__(self, client: RedisCluster) -> None:
        self._client = client
        self._nodes: dict[str, Health] = {}
        self._unknown = Health()  # before the client has read its slot map

    def for_key(self, key: str) -> Health:
        node: ClusterNode | None
        try:
            node = self._client.get_node_from_key(key)
        except Exception:  # no slot map yet, or the slot is not covered right now
            node = None
        if node is None:
            return self._unknown
        health = self._nodes.get(node.name)
        if health is None:
            health = self._nodes[node.name] = Health()
        return health
