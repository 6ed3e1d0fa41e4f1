"""The storage twins, in one table (as the limits library's tests/utils.py ``ALL_STORAGES``).

Every suite that runs over both kinds of store takes its parameters from here, so each kind has
one id and one set of marks: ``-m "not redis"`` skips exactly the Redis cases (``-m "not cluster"``
the Redis Cluster ones), and a fixture asks for the ``redis_url`` (or ``cluster_url``) fixture only
in its case (``request.getfixturevalue``).
"""

from __future__ import annotations

import pytest

MEMORY = pytest.param("memory", id="memory")
REDIS = pytest.param("redis", id="redis", marks=pytest.mark.redis)
CLUSTER = pytest.param("cluster", id="cluster", marks=pytest.mark.cluster)
ALL_STORAGES = [MEMORY, REDIS, CLUSTER]

__all__ = ["ALL_STORAGES", "CLUSTER", "MEMORY", "REDIS"]
