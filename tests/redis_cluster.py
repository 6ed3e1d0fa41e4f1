"""A real local Redis Cluster for tests: ``LocalCluster`` (3 masters on free ports, in a temp dir).

    cluster = LocalCluster(masters=3); cluster.start()     # redis-cli --cluster create
    cluster.kill(0); cluster.restart(0)                    # kill -9 one master by PID, start it again
    cluster.stop()                                         # every process it started, by PID

The servers run without persistence (``--save "" --appendonly no``), with
``cluster-require-full-coverage no`` (a dead master costs only its slots) and a short
``cluster-node-timeout``. A restarted master keeps its node id and slots (its nodes.conf stays in
the temp dir) but comes back empty. The machine's own Redis on 6379 is never touched.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from servers import wait_for_ping

from demo_app.processes import HOST

__all__ = ["LocalCluster", "cluster_port"]


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000, so port <= 55535) is free too."""
    for _ in range(1000):
        port = random.randint(20000, 45000)
        if _free(port) and _free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


class LocalCluster:
    def __init__(self, masters: int = 3, *, node_timeout_ms: int = 1000) -> None:
        binary = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        if binary is None or cli is None:
            raise RuntimeError("redis-server and redis-cli must be on PATH")
        self.binary, self.cli = binary, cli
        self.masters = masters
        self.node_timeout_ms = node_timeout_ms
        self.ports: list[int] = []
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.dir = Path(tempfile.mkdtemp(prefix="llmguard-cluster-"))

    @property
    def url(self) -> str:
        """A plain URL of one node: the guard detects the cluster with ``INFO cluster``."""
        return f"redis://{HOST}:{self.ports[0]}"

    def start(self) -> None:
        while len(self.ports) < self.masters:
            port = cluster_port()
            if port not in self.ports:
                self.ports.append(port)
        for i in range(self.masters):
            self._spawn(i)
        subprocess.run([self.cli, "--cluster", "create", *(f"{HOST}:{p}" for p in self.ports),
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        self.wait_ok()

    def _spawn(self, i: int) -> None:
        port = self.ports[i]
        proc = subprocess.Popen(
            [self.binary, "--port", str(port), "--bind", HOST, "--cluster-enabled", "yes",
             "--cluster-config-file", str(self.dir / f"nodes-{port}.conf"), "--cluster-node-timeout",
             str(self.node_timeout_ms), "--cluster-require-full-coverage", "no", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--logfile", str(self.dir / f"node-{port}.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir)
        self.procs[i] = proc
        wait_for_ping(port, proc)

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until every node says ``cluster_state:ok`` and knows every master."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                ok = True
                for port in self.ports:
                    with redis.Redis(host=HOST, port=port, socket_timeout=0.5) as node:
                        info = node.cluster("info")
                        ok = ok and info.get("cluster_state") == "ok" and \
                            int(info.get("cluster_known_nodes", 0)) == self.masters
                if ok:
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the local cluster did not reach cluster_state:ok")
            time.sleep(0.1)

    def master_of(self, key: str) -> int:
        """The index (in ``ports``) of the master holding ``key``'s slot."""
        from redis.crc import key_slot

        slot = key_slot(key.encode())
        with redis.Redis(host=HOST, port=self.ports[0], socket_timeout=2) as node:
            for start, end, master, *_ in node.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return self.ports.index(int(master[1]))
        raise LookupError(slot)

    def keys_per_master(self, pattern: str) -> list[int]:
        counts = []
        for port in self.ports:
            with redis.Redis(host=HOST, port=port, socket_timeout=5) as node:
                counts.append(sum(1 for _ in node.scan_iter(match=pattern, count=1000)))
        return counts

    def flush(self) -> None:
        for port in self.ports:
            with redis.Redis(host=HOST, port=port, socket_timeout=5) as node:
                node.flushall()

    def kill(self, i: int) -> None:
        """kill -9 master ``i`` (by its PID) and wait until it is gone."""
        proc = self.procs.pop(i, None)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def restart(self, i: int) -> None:
        """Start master ``i`` again at its port (empty, same node id and slots), then wait for the cluster."""
        self._spawn(i)
        self.wait_ok()

    def stop(self) -> None:
        for i in list(self.procs):
            self.kill(i)
        if not os.environ.get("LLMGUARD_TEST_KEEP_CLUSTER_LOGS"):
            shutil.rmtree(self.dir, ignore_errors=True)
