"""The request log: one row per guarded request in PostgreSQL, off unless ``LLMGUARD_REQUEST_LOG_DSN`` is set.

The request never waits for the database. Its finisher captures what the row needs (no prompt
text; the identity is the stack's hash, never a key) and puts it in a bounded queue without
waiting; a full queue drops the row and counts it. One background task takes them in batches (up
to ``LLMGUARD_REQUEST_LOG_BATCH`` rows, or what came within ``LLMGUARD_REQUEST_LOG_FLUSH_MS``),
builds the rows (timestamps, token counts, costs from the price table) and writes each batch with
one ``COPY`` into the table ``llmguard_requests``, which it creates (with its indexes) at its first
connection if it is missing.

When the database is down, at startup or later, requests go on as ever: the writer logs
``llmguard.request_log_unavailable``, leaves the rows in the queue (up to its bound, dropping and
counting beyond), reconnects with a doubling backoff, and writes the backlog once the database is
back. A clean shutdown writes what is queued, waiting a bounded time; rows it could not write are
counted as dropped.

asyncpg is an optional dependency (``pip install 'asgi-llmguard[postgres]'``), imported only when
the log is opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import math
import random
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from ..core.exchange import Exchange
from ..errors import ConfigurationError
from .metrics import price_tokens, token_counts

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..config import Settings
    from .metrics import Metrics

__all__ = ["CAPTURED", "COLUMNS", "TABLE", "RequestLog", "capture", "request_row", "schema_sql", "to_row"]

log = structlog.get_logger("asgi_llmguard")

TABLE = "llmguard_requests"  # a contract: dashboards and the docs' SQL query it by this name
# (column, PostgreSQL type), in the order of a row
SCHEMA: tuple[tuple[str, str], ...] = (
    ("time", "timestamptz NOT NULL"),
    ("request_id", "text NOT NULL"),
    ("identity", "text NOT NULL"),
    ("route", "text NOT NULL"),
    ("model", "text"),
    ("routed_model", "text"),
    ("backend", "text"),
    ("cache", "text"),
    ("similarity", "real"),
    ("stream", "boolean NOT NULL"),
    ("status", "smallint"),
    ("latency_ms", "double precision NOT NULL"),
    ("ttft_ms", "double precision"),
    ("prompt_tokens", "integer"),
    ("completion_tokens", "integer"),
    ("cost_usd", "double precision"),
    ("cost_saved_usd", "double precision"),
    ("disconnected", "boolean NOT NULL"),
    # issue 18, added to older tables by schema_sql: the verifier cut-off in force at a semantic lookup
    # (NULL: no audit machinery, or none trusted), and in shadow mode what the cache would have done
    ("cache_cut", "real"),
    ("shadow", "text"),
)
ADDED_COLUMNS = ("cache_cut", "shadow")  # ALTER TABLE ... ADD COLUMN IF NOT EXISTS: tables made before them
COLUMNS = tuple(name for name, _ in SCHEMA)
INDEXES = (
    ("llmguard_requests_time_idx", "(time)"),
    ("llmguard_requests_model_time_idx", "(model, time)"),
)
# Serialises CREATE TABLE IF NOT EXISTS across workers that start together (it can race otherwise).
_DDL_LOCK_KEY = 0x6C6C6D67_7265716C  # "llmg" "reql"

_YIELD_EVERY = 100  # rows the writer converts before it lets requests run

Row = tuple[Any, ...]
Captured = tuple[Any, ...]


def schema_sql(table: str = TABLE) -> list[str]:
    """The statements that create the table and its indexes when missing."""
    columns = ",\n  ".join(f'"{name}" {kind}' for name, kind in SCHEMA)
    statements = [f"CREATE TABLE IF NOT EXISTS {table} (\n  {columns}\n)"]
    kinds = dict(SCHEMA)
    statements += [f'ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "{name}" {kinds[name]}' for name in ADDED_COLUMNS]
    statements += [f"CREATE INDEX IF NOT EXISTS {name} ON {table} {on}" for name, on in INDEXES]
    return statements


CAPTURED = ("wall", "elapsed", "ttft", "request_id", "identity", "route", "model", "routed_model", "backend",
            "cache", "similarity", "stream", "status", "usage", "priced_model", "disconnected", "cache_cut", "shadow")


def capture(exchange: Exchange, model: str) -> Captured:
    """What a row needs, read off a finished exchange (fields named in ``CAPTURED``).

    This is all the request pays for (well under a microsecond); the writer turns it into a row
    (:func:`to_row`), off the request's path. ``model`` is the model the client asked for.
    """
    now = time.perf_counter()
    observer = exchange.response
    started = exchange.started_at
    first_token = observer.first_token_at
    return (time.time(), now - started, None if first_token is None else first_token - started,
            exchange.request_id, exchange.identity, exchange.scope.get("path", ""), model, exchange.routed_model,
            exchange.backend, exchange.cache_status, exchange.similarity, exchange.request.stream, observer.status,
            observer.usage, exchange.request.model, observer.disconnected and not observer.completed,
            exchange.extras.get("cache.cut"), exchange.extras.get("cache.shadow"))


def to_row(captured: Captured, prices: Mapping[str, Mapping[str, float]],
           aliases: Mapping[str, tuple[str, ...]]) -> Row:
    """The table row (``COLUMNS``) of a captured exchange.

    Costs come from the price table as the metrics compute them (for the model the request had when
    it finished, an alias priced as its cheapest model): a hit's ``cost_usd`` is 0 and its
    ``cost_saved_usd`` what its tokens would have cost; anything else spent ``cost_usd`` and saved 0.
    Both are NULL when the model is not in the table or the response reported no usage.
    """
    (wall, elapsed, ttft, request_id, identity, route, model, routed_model, backend, cache, similarity, stream,
     status, usage, priced_model, disconnected, cache_cut, shadow) = captured
    counts = token_counts(usage)
    cost = saved = None
    if counts:
        priced = price_tokens(counts, priced_model, prices, aliases)
        if priced is not None:
            cost, saved = (0.0, priced[1]) if cache == "hit" else (priced[1], 0.0)
    return (
        datetime.fromtimestamp(wall - elapsed, UTC),  # when the request came
        request_id,
        identity,
        str(route),
        model,
        routed_model,
        backend,
        cache,
        similarity,
        stream,
        status,
        elapsed * 1000,
        None if ttft is None else ttft * 1000,
        counts.get("prompt"),
        counts.get("completion"),
        cost,
        saved,
        disconnected,
        None if cache_cut is None or math.isinf(cache_cut) else cache_cut,
        shadow,
    )


def request_row(exchange: Exchange, model: str, prices: Mapping[str, Mapping[str, float]],
                aliases: Mapping[str, tuple[str, ...]]) -> Row:
    """The row of a finished exchange, at once (the log itself captures now and converts later)."""
    return to_row(capture(exchange, model), prices, aliases)


def _import_asyncpg() -> Any:
    try:
        return importlib.import_module("asyncpg")  # untyped: used through Any
    except ImportError as exc:
        raise ConfigurationError(
            "LLMGUARD_REQUEST_LOG_DSN is set but asyncpg is not installed: "
            "pip install 'asgi-llmguard[postgres]' (or unset LLMGUARD_REQUEST_LOG_DSN)"
        ) from exc


class RequestLog:
    """A bounded queue of request rows and the task that writes them to PostgreSQL in batches.

    ``RequestLog.from_settings(settings, metrics)`` then ``await start()``; ``watch(exchange)`` for each
    guarded request; ``await close()`` at shutdown. ``written``, ``dropped``, ``failures``,
    ``connected`` and ``last_error`` say how it goes (also as ``llmguard_request_log_*`` metrics, and
    ``llmguard_degraded_total{part="request_log"}`` per failed connection or write).
    """

    def __init__(self, dsn: str, *, queue_size: int = 10_000, batch_size: int = 1_000, flush_interval: float = 0.5,
                 prices: Mapping[str, Mapping[str, float]] | None = None,
                 aliases: Mapping[str, tuple[str, ...]] | None = None, metrics: Metrics | None = None,
                 connect_timeout: float = 5.0, write_timeout: float = 30.0, retry_initial: float = 0.25,
                 retry_max: float = 30.0, close_timeout: float = 5.0) -> None:
        self.dsn = dsn
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.prices: Mapping[str, Mapping[str, float]] = prices or {}
        self.aliases: Mapping[str, tuple[str, ...]] = aliases or {}
        self.metrics = metrics
        self.connect_timeout = connect_timeout
        self.write_timeout = write_timeout
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.close_timeout = close_timeout
        self.written = 0  # rows in the table
        self.dropped = 0  # rows lost: queue full, rejected by the database, or unwritten at shutdown
        self.failures = 0  # failed connections and writes
        self.connected = False
        self.last_error: str | None = None
        self._queue: asyncio.Queue[Captured] = asyncio.Queue(maxsize=queue_size)
        self._batch: list[Row] = []  # taken from the queue, being written
        self._wake = asyncio.Event()  # a batch is ready, or closing
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        self._asyncpg: Any = None
        self._outage_logged = False
        self._drops_logged = False

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics | None = None) -> RequestLog:
        if settings.request_log_dsn is None:
            raise ConfigurationError("LLMGUARD_REQUEST_LOG_DSN is not set")
        return cls(settings.request_log_dsn, queue_size=settings.request_log_queue,
                   batch_size=settings.request_log_batch, flush_interval=settings.request_log_flush_ms / 1000,
                   prices=settings.price_table, aliases=settings.router_aliases, metrics=metrics)

    @property
    def pending(self) -> int:
        """Rows not written yet: queued, and the batch being written."""
        return self._queue.qsize() + len(self._batch)

    # -- the request's side: never waits -------------------------------------------------------------

    def watch(self, exchange: Exchange) -> None:
        """Log ``exchange`` when it finishes."""

        async def record(finished: Exchange) -> None:
            self.enqueue(capture(finished, finished.requested_model))

        exchange.on_finish(record)

    def enqueue(self, captured: Captured) -> bool:
        """Queue a captured exchange without waiting; False (and counted) when the queue is full or the log
        is closed."""
        if self._closing.is_set():
            self._drop(1, "closed")
            return False
        try:
            self._queue.put_nowait(captured)
        except asyncio.QueueFull:
            self._drop(1, "queue_full")
            return False
        if self._queue.qsize() >= self.batch_size:
            self._wake.set()
        return True

    def _drop(self, count: int, reason: str) -> None:
        self.dropped += count
        if self.metrics is not None:
            self.metrics.request_log_dropped.inc(count)
        if not self._drops_logged:  # once until a batch is written again
            self._drops_logged = True
            log.warning("llmguard.request_log_dropping", reason=reason, queued=self._queue.qsize())

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the writer; it connects in the background, so a database that is down delays nothing."""
        if self._task is not None:
            return
        self._asyncpg = _import_asyncpg()
        self._task = asyncio.create_task(self._run(), name="llmguard-request-log")

    async def close(self, within: float | None = None) -> None:
        """Write what is queued (waiting at most ``within`` seconds, default ``close_timeout``), then stop;
        rows still unwritten are counted as dropped."""
        self._closing.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), self.close_timeout if within is None else within)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            except Exception:  # the writer never raises; if it did, shutdown still goes on
                log.exception("llmguard.request_log_failed")
        await self._disconnect()
        lost = self.pending
        if lost:
            self._batch.clear()
            while not self._queue.empty():
                self._queue.get_nowait()
            self._drop(lost, "shutdown")
            log.warning("llmguard.request_log_unwritten_at_shutdown", rows=lost)

    # -- the writer ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        """The writer: it outlives every database failure, and even a bug of its own."""
        while True:
            try:
                await self._write_until_closed()
                return
            except Exception:
                log.exception("llmguard.request_log_writer_failed")
                await self._disconnect()
                if self._closing.is_set():
                    return
                await self._sleep(1.0)

    async def _write_until_closed(self) -> None:
        backoff = self.retry_initial
        while True:
            if self._conn is None:
                if not await self._connect():
                    if self._closing.is_set():
                        return
                    await self._sleep(backoff * random.uniform(0.8, 1.2))
                    backoff = min(backoff * 2, self.retry_max)
                    continue
                backoff = self.retry_initial
            if not self._batch:
                if self._queue.qsize() < self.batch_size and not self._closing.is_set():
                    await self._pause()
                await self._take()
                if not self._batch:
                    if self._closing.is_set():
                        return
                    continue
            await self._write(self._batch)

    async def _take(self) -> None:
        """Up to a batch of rows from the queue, converted here rather than on the request's path
        (a few microseconds a row: the loop gets a turn every ``_YIELD_EVERY`` rows)."""
        batch = self._batch
        while len(batch) < self.batch_size:
            try:
                captured = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            try:
                batch.append(to_row(captured, self.prices, self.aliases))
            except Exception as exc:  # a value the row cannot hold: this row only is lost, and counted
                self._reject(1, exc)
            if len(batch) % _YIELD_EVERY == 0:
                await asyncio.sleep(0)

    async def _pause(self) -> None:
        """Wait for the flush interval, or less when a batch fills up or the log closes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.flush_interval)
        self._wake.clear()

    async def _sleep(self, seconds: float) -> None:
        """Back off; only closing cuts it short (a full queue must not hammer a database that is down)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _connect(self) -> bool:
        asyncpg = self._asyncpg
        try:
            conn = await asyncpg.connect(self.dsn, timeout=self.connect_timeout,
                                         server_settings={"application_name": "asgi_llmguard request log"})
        except Exception as exc:
            self._trouble("connect", exc)
            return False
        try:
            await asyncio.wait_for(self._ensure_table(conn), self.write_timeout)
        except Exception as exc:
            self._trouble("create_table", exc)
            conn.terminate()
            return False
        self._conn = conn
        self.connected = True
        if self._outage_logged:
            self._outage_logged = False
            log.info("llmguard.request_log_available", backlog=self.pending)
        return True

    async def _ensure_table(self, conn: Any) -> None:
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", TABLE):
            present = {row[0] for row in await conn.fetch(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 "
                "AND NOT attisdropped", TABLE)}
            if set(COLUMNS) <= present:
                return  # no DDL (nor its privilege) needed when the table is there, whole
            # a table made before ADDED_COLUMNS: the statements below add them (each is idempotent)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK_KEY)
            for statement in schema_sql():
                await conn.execute(statement)
        log.info("llmguard.request_log_table_created", table=TABLE)

    async def _write(self, batch: list[Row]) -> bool:
        """One COPY of ``batch``; True when it is done with (written, or rejected rows counted)."""
        try:
            await self._copy(batch)
        except self._rejections() as exc:
            if len(batch) > 1:  # find the rows at fault, keep the others
                return await self._write_one_by_one(batch)
            self._reject(len(batch), exc)
        except Exception as exc:  # connection lost, timeout, table dropped...: reconnect and retry the batch
            self._trouble("write", exc)
            await self._disconnect()
            return False
        else:
            self._written(len(batch))
        batch.clear()
        return True

    async def _write_one_by_one(self, batch: list[Row]) -> bool:
        while batch:
            try:
                await self._copy(batch[:1])
            except self._rejections() as exc:
                self._reject(1, exc)
            except Exception as exc:
                self._trouble("write", exc)
                await self._disconnect()
                return False
            else:
                self._written(1)
            del batch[0]
        return True

    async def _copy(self, rows: list[Row]) -> None:
        await self._conn.copy_records_to_table(TABLE, records=rows, columns=COLUMNS, timeout=self.write_timeout)

    def _rejections(self) -> tuple[type[BaseException], ...]:
        """Errors about the rows themselves (encoding or constraints): retrying would fail forever."""
        asyncpg = self._asyncpg
        return (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, TypeError, ValueError,
                ArithmeticError)

    def _reject(self, rows: int, exc: BaseException) -> None:
        log.error("llmguard.request_log_rejected", rows=rows, error=type(exc).__name__, message=str(exc))
        self._drop(rows, "rejected")

    def _written(self, count: int) -> None:
        self.written += count
        self._drops_logged = False
        if self.metrics is not None:
            self.metrics.request_log_rows.inc(count)

    def _trouble(self, step: str, exc: BaseException) -> None:
        self.failures += 1
        self.connected = False
        self.last_error = f"{step}: {type(exc).__name__}: {exc}"
        if self.metrics is not None:
            self.metrics.degraded.labels("request_log").inc()
        # Warn once per outage, then quietly retry (the backoff bounds the rate anyway).
        level = log.debug if self._outage_logged else log.warning
        self._outage_logged = True
        level("llmguard.request_log_unavailable", step=step, error=type(exc).__name__, message=str(exc),
              queued=self._queue.qsize(), failures=self.failures)

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        self.connected = False
        if conn is None:
            return
        try:
            await asyncio.wait_for(conn.close(), 1.0)
        except Exception:
            conn.terminate()
