"""In-process cache storage: LRU by use, bounded in entries and bytes, TTL checked on read."""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict

from .base import CacheEntry


class MemoryCacheStore:
    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[int, CacheEntry] = OrderedDict()
        self._exact: dict[str, int] = {}
        self._namespaces: dict[str, set[int]] = {}
        self._bytes = 0
        self._ids = itertools.count(1)

    async def next_id(self, namespace: str | None = None) -> int:
        return next(self._ids)

    async def put(self, entry: CacheEntry) -> list[CacheEntry]:
        removed: list[CacheEntry] = []
        previous = self._exact.get(entry.exact_key)
        if previous is not None:
            old = self._remove(previous)
            if old is not None:
                removed.append(old)
        self._entries[entry.id] = entry
        self._exact[entry.exact_key] = entry.id
        self._namespaces.setdefault(entry.namespace, set()).add(entry.id)
        self._bytes += entry.size
        while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
            oldest = next(iter(self._entries))
            evicted = self._remove(oldest)
            if evicted is not None:
                removed.append(evicted)
        return removed

    async def get(self, entry_id: int, *, touch: bool = True) -> CacheEntry | None:
        entry = self._entries.get(entry_id)
        if entry is None:
            return None
        if entry.expires_at <= time.time():
            self._remove(entry_id)
            return None
        if touch:
            self._entries.move_to_end(entry_id)
        return entry

    async def touch(self, entry_id: int) -> None:
        if entry_id in self._entries:
            self._entries.move_to_end(entry_id)

    async def get_exact(self, exact_key: str) -> CacheEntry | None:
        entry_id = self._exact.get(exact_key)
        return None if entry_id is None else await self.get(entry_id)

    async def delete(self, entry_id: int) -> CacheEntry | None:
        return self._remove(entry_id)

    async def delete_namespace(self, namespace: str) -> list[CacheEntry]:
        ids = list(self._namespaces.get(namespace, ()))
        return [entry for entry in map(self._remove, ids) if entry is not None]

    async def flush(self) -> None:
        self._entries.clear()
        self._exact.clear()
        self._namespaces.clear()
        self._bytes = 0

    async def count(self) -> int:
        return len(self._entries)

    async def close(self) -> None:
        return None

    def _remove(self, entry_id: int) -> CacheEntry | None:
        entry = self._entries.pop(entry_id, None)
        if entry is None:
            return None
        if self._exact.get(entry.exact_key) == entry_id:
            del self._exact[entry.exact_key]
        members = self._namespaces.get(entry.namespace)
        if members is not None:
            members.discard(entry_id)
            if not members:
                del self._namespaces[entry.namespace]
        self._bytes -= entry.size
        return entry
