"""The PostgreSQL request log against the real server on 127.0.0.1:5432 (database ``test``).

Each test gets a fresh schema (the table name ``llmguard_requests`` is a contract, so the schema
isolates runs: the DSN sets ``search_path``), dropped afterwards. A server that is not running
fails these tests, never skips them. The database going down is a small TCP forwarder in front of
the real server, stopped and restarted on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import structlog
from apps import CHAT, FakeLLM, chat, client
from asgi_lifespan import LifespanManager

from asgi_llmguard import ConfigurationError, Guard, Settings
from asgi_llmguard.cache.verify import Verifier
from asgi_llmguard.core.exchange import hash_identity
from asgi_llmguard.observability.request_log import (
    ADDED_COLUMNS,
    CAPTURED,
    COLUMNS,
    SCHEMA,
    TABLE,
    RequestLog,
    capture,
)

PG_DSN = os.environ.get("LLMGUARD_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
API_KEY = "sk-test-S3CRET-key-0123456789"
PRICES = {"gpt-test": {"prompt": 1.0, "completion": 2.0}, "gpt-big": {"prompt": 10.0, "completion": 30.0}}
FAKE_COST = (3 * 1.0 + 7 * 2.0) / 1_000_000  # FakeLLM reports 3 prompt and 7 completion tokens


def with_port(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)
    netloc = (host[0] + "@" if len(host) == 2 else "") + f"{parts.hostname}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class Postgres:
    """The real server, and a schema of this test's own."""

    admin: asyncpg.Connection
    schema: str

    def dsn(self, port: int | None = None) -> str:
        base = PG_DSN if port is None else with_port(PG_DSN, port)
        return f"{base}{'&' if '?' in base else '?'}search_path={self.schema}"

    @property
    def target(self) -> tuple[str, int]:
        parts = urlsplit(PG_DSN)
        return parts.hostname or "127.0.0.1", parts.port or 5432

    async def rows(self) -> list[dict[str, Any]]:
        if not await self.table_exists():
            return []
        records = await self.admin.fetch(f'SELECT * FROM "{self.schema}".{TABLE} ORDER BY time, request_id')
        return [dict(r) for r in records]

    async def count(self) -> int:
        if not await self.table_exists():
            return 0
        value: int = await self.admin.fetchval(f'SELECT count(*) FROM "{self.schema}".{TABLE}')
        return value

    async def table_exists(self) -> bool:
        value: bool = await self.admin.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{self.schema}".{TABLE}')
        return value

    async def wait_for_rows(self, count: int, limit: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + limit
        while (have := await self.count()) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"{have} rows in {self.schema}.{TABLE} after {limit} s, expected {count}")
            await asyncio.sleep(0.02)
        return await self.rows()


@pytest.fixture
async def pg() -> AsyncIterator[Postgres]:
    try:
        admin = await asyncpg.connect(PG_DSN, timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_DSN} ({type(exc).__name__}: {exc}); these tests need the "
                    "real server (trust auth, database 'test'), set LLMGUARD_TEST_POSTGRES_DSN to point elsewhere")
    schema = f"llmguard_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield Postgres(admin, schema)
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


class Forwarder:
    """A TCP forwarder on 127.0.0.1:port in front of PostgreSQL: stopping it is the database going down."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self.target = target
        self.server: asyncio.Server | None = None
        self.transports: set[asyncio.BaseTransport] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def stop(self) -> None:
        """Stop listening and cut every open connection at once (as a crashed server or network would)."""
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        self.server = None
        for transport in list(self.transports):
            transport.abort()
        self.transports.clear()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.transports.add(writer.transport)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.transports.add(up_writer.transport)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            writer.transport.abort()
            up_writer.transport.abort()
            self.tasks.discard(task)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()


@contextlib.asynccontextmanager
async def forwarder(port: int, target: tuple[str, int], *, started: bool = True) -> AsyncIterator[Forwarder]:
    fwd = Forwarder(port, target)
    if started:
        await fwd.start()
    try:
        yield fwd
    finally:
        if fwd.server is not None:
            await fwd.stop()


async def until(condition: Callable[[], bool], limit: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {limit} s")
        await asyncio.sleep(0.01)


def log_guard(dsn: str, **settings: Any) -> Guard:
    defaults: dict[str, Any] = {"cache_semantic": False, "request_log_dsn": dsn, "request_log_flush_ms": 50,
                                "price_table": PRICES}
    return Guard(**{**defaults, **settings})


async def post_many(c: Any, count: int, prefix: str) -> list[float]:
    """``count`` guarded requests; each must be a 200. Returns each one's seconds."""
    took = []
    for i in range(count):
        started = time.perf_counter()
        response = await c.post(CHAT, json=chat(f"{prefix} question {i}"))
        took.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return took


def sample(guard: Guard, name: str, labels: dict[str, str] | None = None) -> float:
    assert guard.metrics is not None
    return guard.metrics.registry.get_sample_value(name, labels or {}) or 0.0


# --- rows -----------------------------------------------------------------------------------------


async def test_a_miss_and_its_hit_land_as_rows_with_hashed_identity_costs_and_no_key_or_prompt(
        pg: Postgres) -> None:
    llm = FakeLLM()
    guard = log_guard(pg.dsn())
    app = guard.wrap(llm.app)
    prompt = "what is the boiling point of water at sea level"
    async with LifespanManager(app), client(app, authorization=f"Bearer {API_KEY}") as c:
        assert guard.request_log is not None
        miss = await c.post(CHAT, json=chat(prompt))
        hit = await c.post(CHAT, json=chat(prompt))
        assert miss.headers["x-llmguard-cache"] == "miss" and hit.headers["x-llmguard-cache"] == "hit"
        rows = await pg.wait_for_rows(2)
    assert guard.request_log is None  # closed at lifespan shutdown
    by_cache = {row["cache"]: row for row in rows}
    miss_row, hit_row = by_cache["miss"], by_cache["hit"]
    identity = hash_identity("key", API_KEY)
    for row in rows:
        assert set(row) == set(COLUMNS)
        assert row["identity"] == identity
        assert row["route"] == CHAT and row["model"] == "gpt-test" and row["routed_model"] is None
        assert row["status"] == 200 and row["stream"] is False and row["disconnected"] is False
        assert row["prompt_tokens"] == 3 and row["completion_tokens"] == 7
        assert row["latency_ms"] > 0
        assert abs(row["time"].timestamp() - time.time()) < 60 and row["time"].tzinfo is not None
        text = " ".join(str(v) for v in row.values())
        assert API_KEY not in text and "S3CRET" not in text  # no key in clear anywhere
        assert prompt not in text and "boiling" not in text  # no prompt text
    assert miss_row["request_id"] == llm.exchanges[0].request_id
    assert miss_row["cost_usd"] == pytest.approx(FAKE_COST) and miss_row["cost_saved_usd"] == 0
    assert hit_row["cost_usd"] == 0 and hit_row["cost_saved_usd"] == pytest.approx(FAKE_COST)
    assert hit_row["similarity"] is None or hit_row["similarity"] >= 0.99  # exact tier
    assert miss_row["time"] <= hit_row["time"]
    assert sample(guard, "llmguard_request_log_rows_total") == 2


async def test_a_routed_streamed_request_records_the_asked_model_the_routed_one_and_its_price(
        pg: Postgres) -> None:
    llm = FakeLLM()
    guard = log_guard(pg.dsn(), router_aliases={"auto": ["gpt-test", "gpt-big"]}, cache_enabled=False)
    app = guard.wrap(llm.app)
    async with LifespanManager(app), client(app) as c:
        routed = await c.post(CHAT, json=chat("hi", model="auto"))
        streamed = await c.post(CHAT, json=chat("tell me a story", stream=True))
        assert routed.status_code == 200 and streamed.status_code == 200
        rows = await pg.wait_for_rows(2)
    by_stream = {row["stream"]: row for row in rows}
    routed_row, stream_row = by_stream[False], by_stream[True]
    chosen = routed.headers["x-llmguard-model"]
    assert routed_row["model"] == "auto" and routed_row["routed_model"] == chosen
    price = PRICES[chosen]
    assert routed_row["cost_usd"] == pytest.approx((3 * price["prompt"] + 7 * price["completion"]) / 1e6)
    assert routed_row["cache"] is None  # the cache is off: it decided nothing
    assert routed_row["identity"] == hash_identity("addr", "127.0.0.1")
    assert stream_row["ttft_ms"] is not None and 0 < stream_row["ttft_ms"] <= stream_row["latency_ms"]
    assert stream_row["status"] == 200


async def test_the_table_and_its_indexes_are_created_when_missing_and_reused_when_there(pg: Postgres) -> None:
    assert not await pg.table_exists()
    first = RequestLog(pg.dsn())
    await first.start()
    await until(lambda: first.connected, what="first connection")
    assert await pg.table_exists()
    columns = await pg.admin.fetch(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 "
        "ORDER BY ordinal_position", pg.schema, TABLE)
    assert tuple(c["column_name"] for c in columns) == COLUMNS
    types = {c["column_name"]: c["data_type"] for c in columns}
    assert types["time"] == "timestamp with time zone" and types["cost_saved_usd"] == "double precision"
    indexes = {r["indexname"] for r in await pg.admin.fetch(
        "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = $2", pg.schema, TABLE)}
    assert {"llmguard_requests_time_idx", "llmguard_requests_model_time_idx"} <= indexes
    second = RequestLog(pg.dsn())  # a second worker on the same table
    await second.start()
    await until(lambda: second.connected, what="second connection")
    assert second.failures == 0 and first.failures == 0
    await first.close()
    await second.close()


async def test_shutdown_writes_what_is_queued_without_waiting_for_the_flush_interval(pg: Postgres) -> None:
    guard = log_guard(pg.dsn(), request_log_flush_ms=60_000, cache_enabled=False, metrics_enabled=False)
    await guard.startup()
    log = guard.request_log
    assert log is not None
    await until(lambda: log.connected, what="connection")
    async with client(guard.wrap(FakeLLM().app)) as c:
        await post_many(c, 7, "flush")
    assert log.pending == 7 and await pg.count() == 0  # still waiting for its interval
    started = time.monotonic()
    await guard.shutdown()
    assert time.monotonic() - started < 2.0
    assert await pg.count() == 7 and log.written == 7 and log.dropped == 0


async def test_without_lifespan_the_first_guarded_request_opens_the_log(pg: Postgres) -> None:
    guard = log_guard(pg.dsn(), cache_enabled=False)  # as under Django's ASGI handler: no lifespan
    async with client(guard.wrap(FakeLLM().app)) as c:
        await post_many(c, 3, "lazy")
    assert guard.request_log is not None
    await pg.wait_for_rows(3)
    await guard.shutdown()


async def test_no_dsn_means_no_request_log() -> None:
    guard = Guard(cache_semantic=False)
    await guard.startup()
    try:
        assert guard.request_log is None
        async with client(guard.wrap(FakeLLM().app)) as c:
            await post_many(c, 1, "off")
    finally:
        await guard.shutdown()


# --- trouble --------------------------------------------------------------------------------------


async def test_a_full_queue_drops_and_counts_and_the_queued_rows_land_when_the_database_comes(
        pg: Postgres, free_port: int) -> None:
    guard = log_guard(pg.dsn(free_port), request_log_queue=5, cache_enabled=False)
    async with forwarder(free_port, pg.target, started=False) as fwd:
        await guard.startup()
        log = guard.request_log
        assert log is not None
        log.retry_max = 0.2
        async with client(guard.wrap(FakeLLM().app)) as c:
            took = await post_many(c, 8, "full")
        assert max(took) < 0.5
        assert log.dropped == 3 and log.pending == 5
        assert sample(guard, "llmguard_request_log_dropped_total") == 3
        await fwd.start()
        rows = await pg.wait_for_rows(5)
        assert len(rows) == 5 and log.written == 5
        await guard.shutdown()
    assert await pg.count() == 5


async def test_database_down_mid_traffic_serves_requests_fast_and_the_backlog_lands_when_it_returns(
        pg: Postgres, free_port: int) -> None:
    llm = FakeLLM()
    guard = log_guard(pg.dsn(free_port), cache_enabled=False)
    with structlog.testing.capture_logs() as events:
        async with forwarder(free_port, pg.target) as fwd:
            await guard.startup()
            log = guard.request_log
            assert log is not None
            log.retry_max = 0.3
            async with client(guard.wrap(llm.app)) as c:
                await post_many(c, 5, "before")
                await pg.wait_for_rows(5)
                # The writer has its answer too: no COPY is cut half-way (that batch would be retried,
                # and written twice if the server had committed it before the cut).
                await until(lambda: log.written == 5, what="the first batch acknowledged")
                await fwd.stop()  # the database goes away, with the writer's connection
                took = await post_many(c, 30, "during")
                assert max(took) < 0.5, took  # the request never waits for the database
                await until(lambda: log.failures > 0 and not log.connected, what="the writer noticing")
                await asyncio.sleep(0.3)  # a few failed reconnects
                assert log.pending == 30 and log.written == 5 and log.dropped == 0
                assert await pg.count() == 5
                took += await post_many(c, 10, "still down")
                await fwd.start()  # back, on the same port
                rows = await pg.wait_for_rows(45)
            await guard.shutdown()
    assert len(rows) == 45
    assert {row["request_id"] for row in rows} == {ex.request_id for ex in llm.exchanges}  # nothing lost
    assert log.written == 45 and log.dropped == 0
    assert sample(guard, "llmguard_request_log_rows_total") == 45
    assert sample(guard, "llmguard_degraded_total", {"part": "request_log"}) >= 2
    names = [e["event"] for e in events]
    assert "llmguard.request_log_unavailable" in names and "llmguard.request_log_available" in names
    warnings = [e for e in events if e["event"] == "llmguard.request_log_unavailable" and e["log_level"] == "warning"]
    assert len(warnings) == 1  # once per outage, not once per retry


async def test_nothing_listening_serves_requests_and_shows_the_trouble(pg: Postgres, free_port: int) -> None:
    guard = log_guard(pg.dsn(free_port), cache_enabled=False)
    with structlog.testing.capture_logs() as events:
        await guard.startup()  # does not wait for, nor fail on, the database
        log = guard.request_log
        assert log is not None
        async with client(guard.wrap(FakeLLM().app)) as c:
            took = await post_many(c, 10, "nowhere")
        assert max(took) < 0.5
        await until(lambda: log.failures > 0, what="a failed connection")
        assert not log.connected and log.last_error is not None and log.last_error.startswith("connect")
        assert sample(guard, "llmguard_degraded_total", {"part": "request_log"}) >= 1
        started = time.monotonic()
        await guard.shutdown()
        assert time.monotonic() - started < log.close_timeout + 1
    assert log.dropped == 10 and log.pending == 0  # unwritten at shutdown, and counted
    assert sample(guard, "llmguard_request_log_dropped_total") == 10
    unavailable = [e for e in events if e["event"] == "llmguard.request_log_unavailable"]
    assert unavailable and unavailable[0]["log_level"] == "warning" and unavailable[0]["step"] == "connect"
    assert any(e["event"] == "llmguard.request_log_unwritten_at_shutdown" for e in events)


async def test_a_row_the_database_refuses_is_dropped_and_counted_and_the_others_are_written(
        pg: Postgres) -> None:
    log = RequestLog(pg.dsn(), flush_interval=0.05)
    await log.start()
    await until(lambda: log.connected, what="connection")
    good = await finished_exchanges(2)
    status = CAPTURED.index("status")
    bad = (*good[0][:status], 70_000, *good[0][status + 1:])  # a status beyond smallint
    for captured in (good[0], bad, good[1]):
        assert log.enqueue(captured)
    await pg.wait_for_rows(2)
    await until(lambda: log.dropped == 1, what="the bad row counted")
    assert log.written == 2 and log.connected
    await log.close()


async def finished_exchanges(count: int) -> list[tuple[Any, ...]]:
    """Exchanges captured as the finisher captures them, from a stack without a database."""
    llm = FakeLLM()
    guard = Guard(cache_enabled=False)
    async with client(guard.wrap(llm.app)) as c:
        await post_many(c, count, "rows")
    return [capture(ex, ex.request.model) for ex in llm.exchanges]


# --- configuration --------------------------------------------------------------------------------


async def test_a_dsn_without_asyncpg_fails_startup_naming_the_variable_and_the_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # as if it were not installed
    guard = Guard(cache_semantic=False, request_log_dsn="postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(ConfigurationError) as caught:
        await guard.startup()
    assert "LLMGUARD_REQUEST_LOG_DSN" in str(caught.value) and "asgi-llmguard[postgres]" in str(caught.value)
    assert not guard.started and guard.request_log is None


def test_request_log_settings_parse_and_validate_without_echoing_a_password() -> None:
    settings = Settings.from_env({"LLMGUARD_REQUEST_LOG_DSN": "postgres://u@db/x", "LLMGUARD_REQUEST_LOG_QUEUE": "50",
                                  "LLMGUARD_REQUEST_LOG_BATCH": "20", "LLMGUARD_REQUEST_LOG_FLUSH_MS": "250"})
    assert (settings.request_log_queue, settings.request_log_batch, settings.request_log_flush_ms) == (50, 20, 250)
    defaults = Settings()
    assert defaults.request_log_dsn is None and defaults.request_log_queue == 10_000
    assert "hunter2" not in repr(Settings(request_log_dsn="postgresql://u:hunter2@db/x"))
    with pytest.raises(ConfigurationError, match="LLMGUARD_REQUEST_LOG_DSN") as caught:
        Settings(request_log_dsn="mysql://user:hunter2@db/x")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="LLMGUARD_REQUEST_LOG_DSN") as caught:
        Settings(request_log_dsn="user:hunter2@db/x")
    assert "hunter2" not in str(caught.value)
    for name in ("request_log_queue", "request_log_batch", "request_log_flush_ms"):
        with pytest.raises(ConfigurationError, match=name.upper()):
            Settings(**{name: 0})


async def test_a_table_made_before_the_audit_columns_gets_them_and_shadow_rows_fill_them(
        pg: Postgres, model_dir: Path) -> None:
    old = ",\n  ".join(f'"{name}" {kind}' for name, kind in SCHEMA if name not in ADDED_COLUMNS)
    await pg.admin.execute(f'CREATE TABLE "{pg.schema}".{TABLE} (\n  {old}\n)')
    llm = FakeLLM()
    guard = log_guard(pg.dsn(), cache_semantic=True, embedding_model_dir=str(model_dir), cache_mode="shadow")
    app = guard.wrap(llm.app)
    async with LifespanManager(app), client(app) as c:
        first = await c.post(CHAT, json=chat("What is the capital of France?"))
        again = await c.post(CHAT, json=chat("What's the capital city of France?"))
        assert first.headers["x-llmguard-shadow"] == "miss" and again.headers["x-llmguard-shadow"] == "hit"
        rows = await pg.wait_for_rows(2)
    columns = await pg.admin.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 "
        "ORDER BY ordinal_position", pg.schema, TABLE)
    assert tuple(c["column_name"] for c in columns) == COLUMNS  # added at the end, in the rows' order
    by_shadow = {row["shadow"]: row for row in rows}
    assert set(by_shadow) == {"miss", "hit"} and all(row["cache"] == "miss" for row in rows)
    balanced_cut = Verifier().cut
    assert by_shadow["hit"]["cache_cut"] == pytest.approx(balanced_cut, abs=1e-6)  # the balanced point's, in force
