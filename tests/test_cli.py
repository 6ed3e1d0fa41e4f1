"""The ``llmguard`` command: ``check`` names the setting at fault and never hangs; the entry points run."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from asgi_llmguard import cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No LLMGUARD_* variable of the machine leaks in; the semantic tier off unless a test turns it on."""
    import os

    for name in list(os.environ):
        if name.startswith("LLMGUARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LLMGUARD_CACHE_SEMANTIC", "false")
    return monkeypatch


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(["check", "--timeout", "1", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture
def upstream() -> Iterator[str]:
    """A tiny OpenAI-compatible upstream: GET /v1/models answers, with or without a key."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("authorization") == "Bearer wrong":
                self.send_response(401)
                self.end_headers()
                return
            body = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


class TestCheck:
    def test_a_stopped_redis_fails_naming_llmguard_redis_url(self, env: pytest.MonkeyPatch, free_port: int,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
        env.setenv("LLMGUARD_REDIS_URL", f"redis://127.0.0.1:{free_port}/0")  # nothing listens there
        code, out = run_check(capsys)
        assert code == 1
        assert "FAIL  LLMGUARD_REDIS_URL" in out
        assert "problem: LLMGUARD_REDIS_URL" in out

    @pytest.mark.redis
    def test_a_good_config_exits_0(self, env: pytest.MonkeyPatch, redis_url: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
        env.setenv("LLMGUARD_REDIS_URL", redis_url)
        env.setenv("LLMGUARD_RATE_LIMIT_RPM", "60")
        code, out = run_check(capsys)
        assert code == 0, out
        assert "ok    LLMGUARD_REDIS_URL" in out
        assert "all checks passed" in out
        assert "* LLMGUARD_RATE_LIMIT_RPM" in out  # the settings, marked where the environment set them

    @pytest.mark.model
    def test_the_local_model_folder_is_loaded_and_a_missing_one_is_named(
            self, env: pytest.MonkeyPatch, model_dir: Path, tmp_path: Path,
            capsys: pytest.CaptureFixture[str]) -> None:
        env.setenv("LLMGUARD_CACHE_SEMANTIC", "true")
        env.setenv("LLMGUARD_EMBEDDING_MODEL_DIR", str(model_dir))
        code, out = run_check(capsys)
        assert code == 0, out
        assert "ok    LLMGUARD_EMBEDDING_MODEL_DIR" in out and "(384 numbers)" in out
        env.setenv("LLMGUARD_EMBEDDING_MODEL_DIR", str(tmp_path / "nothing"))
        code, out = run_check(capsys)
        assert code == 1
        assert "FAIL  LLMGUARD_EMBEDDING_MODEL_DIR" in out and "does not exist" in out

    @pytest.mark.parametrize(("variable", "value"), [
        ("LLMGUARD_CACHE_THRESHOLD", "2"),
        ("LLMGUARD_REDIS_URL", "http://127.0.0.1:6379"),
        ("LLMGUARD_RATE_LIMIT_RPM", "many"),
        ("LLMGUARD_UPSTREAMS", "[{\"url\": 1}]"),
        ("LLMGUARD_REQUEST_LOG_DSN", "mysql://db"),
    ], ids=["threshold", "redis-scheme", "rpm", "upstreams", "dsn-scheme"])
    def test_an_unusable_setting_exits_2_naming_it(self, env: pytest.MonkeyPatch, variable: str, value: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
        env.setenv(variable, value)
        code, out = run_check(capsys)
        assert code == 2
        assert f"FAIL  {variable}:" in out
        assert f"problem: {variable}" in out

    def test_secrets_are_masked(self, env: pytest.MonkeyPatch, free_port: int,
                                capsys: pytest.CaptureFixture[str]) -> None:
        env.setenv("LLMGUARD_REDIS_URL", f"redis://:redis-secret@127.0.0.1:{free_port}/0")
        env.setenv("LLMGUARD_ADMIN_TOKEN", "admin-secret")
        env.setenv("LLMGUARD_EMBEDDING_API_KEY", "embedding-secret")
        env.setenv("LLMGUARD_REQUEST_LOG_DSN", f"postgresql://u:pg-secret@127.0.0.1:{free_port}/db")
        code, out = run_check(capsys)
        assert code == 1
        assert "secret" not in out
        assert f"redis://:****@127.0.0.1:{free_port}/0" in out
        assert "FAIL  LLMGUARD_REQUEST_LOG_DSN" in out

    def test_a_redis_that_never_answers_fails_within_the_timeout(self, env: pytest.MonkeyPatch, silent_port: int,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
        env.setenv("LLMGUARD_REDIS_URL", f"redis://127.0.0.1:{silent_port}/0")
        started = time.monotonic()
        code, out = run_check(capsys)
        assert code == 1 and "FAIL  LLMGUARD_REDIS_URL" in out
        assert time.monotonic() - started < 10

    def test_an_embedding_server_that_is_down_is_named(self, env: pytest.MonkeyPatch, free_port: int,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
        env.setenv("LLMGUARD_CACHE_SEMANTIC", "true")
        env.setenv("LLMGUARD_EMBEDDING_URL", f"http://127.0.0.1:{free_port}/v1")
        code, out = run_check(capsys)
        assert code == 1
        assert "FAIL  LLMGUARD_EMBEDDING_URL" in out

    def test_each_upstream_is_asked(self, env: pytest.MonkeyPatch, upstream: str, free_port: int,
                                    capsys: pytest.CaptureFixture[str]) -> None:
        env.setenv("LLMGUARD_UPSTREAMS", json.dumps([{"url": upstream}]))
        code, out = run_check(capsys)
        assert code == 0, out
        assert "ok    LLMGUARD_UPSTREAMS" in out and "HTTP 200" in out
        env.setenv("LLMGUARD_UPSTREAMS", json.dumps([{"url": upstream},
                                                     {"url": f"http://127.0.0.1:{free_port}/v1"},
                                                     {"url": upstream + "/", "api_key_env": "LLMGUARD_TEST_NO_KEY"}]))
        env.delenv("LLMGUARD_TEST_NO_KEY", raising=False)
        code, out = run_check(capsys)
        assert code == 1
        assert out.count("FAIL  LLMGUARD_UPSTREAMS") == 2
        assert "LLMGUARD_TEST_NO_KEY, which is not set" in out

    def test_a_refused_upstream_key_fails(self, env: pytest.MonkeyPatch, upstream: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
        env.setenv("UPSTREAM_KEY_FOR_TEST", "wrong")
        env.setenv("LLMGUARD_UPSTREAMS", json.dumps([{"url": upstream, "api_key_env": "UPSTREAM_KEY_FOR_TEST"}]))
        code, out = run_check(capsys)
        assert code == 1 and "refused the key (HTTP 401)" in out

    def test_unknown_llmguard_variables_are_noted_not_failed(self, env: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
        env.setenv("LLMGUARD_REDIS_ULR", "redis://typo")
        code, out = run_check(capsys)
        assert code == 0
        assert "ignored by it: LLMGUARD_REDIS_ULR" in out


class TestEntryPoints:
    def test_python_m_asgi_llmguard_check_exits_non_zero_naming_the_setting(self, free_port: int) -> None:
        env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "LLMGUARD_CACHE_SEMANTIC": "false",
               "LLMGUARD_REDIS_URL": f"redis://127.0.0.1:{free_port}/0"}
        result = subprocess.run([sys.executable, "-m", "asgi_llmguard", "check", "--timeout", "1"], cwd=ROOT,
                                env=env, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "problem: LLMGUARD_REDIS_URL" in result.stderr

    def test_the_console_script_is_installed(self) -> None:
        script = Path(sys.executable).parent / "llmguard"
        result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0 and result.stdout.startswith("asgi_llmguard ")

    def test_serve_embeddings_takes_the_embedding_servers_options(self) -> None:
        result = subprocess.run([sys.executable, "-m", "asgi_llmguard", "serve-embeddings", "--help"], cwd=ROOT,
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0
        assert result.stdout.startswith("usage: llmguard serve-embeddings") and "--max-inputs" in result.stdout

    def test_an_unknown_command_option_is_refused(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as exited:
            cli.main(["check", "--no-such-option"])
        assert exited.value.code == 2
