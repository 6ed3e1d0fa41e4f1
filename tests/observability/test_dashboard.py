"""The dashboard page: served only when enabled, self-contained, and live in a real headless Chromium.

The browser test drives Debian's ``chromium`` over the Chrome DevTools protocol with a
minimal websocket client (no driver, no downloaded browser): it opens the demo's
dashboard, checks the figures after traffic, sends more traffic and watches the page
update, then saves a screenshot to ``test-artifacts/dashboard.png``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from apps import CHAT, FakeLLM, chat, client
from servers import ROOT, run_server

from asgi_llmguard import Guard

ARTIFACTS = ROOT / "test-artifacts"
WAIT = 30.0


# --- in process ------------------------------------------------------------------------------------


async def test_the_dashboard_is_off_unless_a_path_is_set() -> None:
    async with client(Guard(cache_semantic=False).wrap(FakeLLM().app)) as c:
        assert (await c.get("/dashboard")).status_code == 404  # the app's own 404: the stack served nothing


async def test_the_page_loads_nothing_from_elsewhere_and_its_figures_come_from_its_own_json() -> None:
    guard = Guard(cache_semantic=False, dashboard_path="/ops/llm", rate_limit_rpm=60)
    async with client(guard.wrap(FakeLLM().app)) as c:
        await c.post(CHAT, json=chat("count me"))
        page = await c.get("/ops/llm")
        figures = await c.get("/ops/llm/stats.json")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '"/ops/llm/stats.json"' in html
    for external in ("<link", "src=", "@import", "url(", "//cdn", "https://"):
        assert external not in html, external
    assert figures.json()["requests"] == 1
    assert figures.json()["limits"]["rpm"] == 60


# --- a real Chromium ---------------------------------------------------------------------------------


class DevTools:
    """Just enough of a websocket client for the DevTools protocol: text frames, one call at a time."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.sock = socket.create_connection((parsed.hostname, parsed.port), timeout=WAIT)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {parsed.path} HTTP/1.1\r\nHost: {parsed.hostname}:{parsed.port}\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(4096)
        head, self.buffer = head.split(b"\r\n\r\n", 1)
        assert b" 101 " in head.split(b"\r\n", 1)[0], head
        self.next_id = 0

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("DevTools closed the connection")
            self.buffer += data
        chunk, self.buffer = self.buffer[:size], self.buffer[size:]
        return chunk

    def _send(self, text: str) -> None:
        data = text.encode()
        header = bytearray([0x81])
        if len(data) < 126:
            header.append(0x80 | len(data))
        elif len(data) < 65536:
            header += bytes([0x80 | 126]) + len(data).to_bytes(2, "big")
        else:
            header += bytes([0x80 | 127]) + len(data).to_bytes(8, "big")
        mask = os.urandom(4)
        self.sock.sendall(bytes(header) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _receive(self) -> dict[str, Any]:
        message = b""
        while True:
            first, second = self._exactly(2)
            size = second & 0x7F
            if size == 126:
                size = int.from_bytes(self._exactly(2), "big")
            elif size == 127:
                size = int.from_bytes(self._exactly(8), "big")
            payload = self._exactly(size)
            if first & 0x0F in (0x1, 0x0):
                message += payload
                if first & 0x80:
                    result: dict[str, Any] = json.loads(message)
                    return result

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self._send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = self._receive()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, what: str) -> Any:
        deadline = time.monotonic() + WAIT
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"the page never showed {what} (last: {value!r})")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@contextlib.contextmanager
def chromium() -> Iterator[DevTools]:
    """A headless Chromium of our own (its process group is ours to stop), driven over DevTools."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium (see .ci/run)")
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={profile}", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
             "--window-size=1400,1000", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        devtools: DevTools | None = None
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + WAIT
            while not port_file.is_file() or not port_file.read_text().strip():
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"chromium did not start (exit code {proc.poll()})")
                time.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=WAIT).json()
            page = next(t for t in targets if t["type"] == "page")
            devtools = DevTools(page["webSocketDebuggerUrl"])
            devtools.call("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1,
                          mobile=False)
            yield devtools
        finally:
            if devtools is not None:
                devtools.close()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _traffic(base_url: str, prompts: list[str]) -> None:
    with httpx.Client(base_url=base_url, timeout=WAIT) as c:
        for prompt in prompts:
            body = chat(prompt, model="auto", stream=True, stream_options={"include_usage": True})
            with c.stream("POST", CHAT, json=body) as response:
                assert response.status_code == 200
                response.read()


def _text(element_id: str) -> str:
    return f"document.getElementById({element_id!r}).textContent"


@pytest.mark.slow
def test_the_dashboard_shows_live_figures_in_a_real_browser(free_port: int, model_dir: Path) -> None:
    env = {"LLMGUARD_EMBEDDING_MODEL_DIR": str(model_dir), "LLMGUARD_DEMO_TTFT_MS": "60",
           "LLMGUARD_DEMO_TOKEN_MS": "4", "LLMGUARD_CACHE_AUDIT_RATE": "1"}
    with run_server(["demo_app", "--no-access-log", "--log-level", "warning"], free_port, env=env) as base_url:
        prompts = ["How do I reset my password?", "What is the refund policy?", "Where is my order 1234?"]
        _traffic(base_url, prompts + prompts)  # three misses, then the same three as hits
        with chromium() as page:
            page.call("Page.enable")
            page.call("Page.navigate", url=base_url + "/dashboard?interval=0.5")
            page.wait_for("Number(document.body.dataset.updates) >= 1", "its first figures")
            assert page.evaluate(_text("requests")) == "6"
            assert page.evaluate(_text("hit-rate")) == "50.0%"
            assert page.evaluate(_text("tokens-saved")) != "0"
            assert page.evaluate(_text("money-saved")).startswith("$")
            assert page.evaluate("document.getElementById('status').className") != "bad"

            # More traffic while the page is open: it follows without a reload.
            more = ["Can I change my delivery address?", "Do you ship abroad?"]
            _traffic(base_url, more + more + more)
            page.wait_for(f"{_text('requests')} === '12'", "the new request count")
            page.wait_for(f"{_text('hit-rate')} === '58.3%'", "the new hit rate")  # 7 hits of 12
            page.wait_for("document.querySelectorAll('#chart-hit-rate polyline').length === 2", "the hit-rate lines")
            page.wait_for("document.querySelectorAll('#chart-requests rect').length > 0", "the request bars")
            hit, miss = page.evaluate(f"{_text('p50')}.split(' / ')")
            assert float(hit) < float(miss)  # served from the cache vs made by the (slow) mock
            assert page.evaluate(_text("audits")) == "no semantic hit judged yet"  # exact hits are not audited

            # A reworded question: a semantic hit, audited upstream in the background, shows in the panel.
            _traffic(base_url, ["What is the capital of France?", "What's the capital city of France?"])
            page.wait_for(f"{_text('audits')}.includes('of 1')", "the audited hit in the audits panel")
            assert "%" in page.evaluate(_text("audits"))  # its rate and upper bound
            page.wait_for(f"{_text('audits')}.includes('of 1 judged')", "the served entry's own outcome")
            assert "cut · " in page.evaluate(_text("audits"))  # its namespace's cut in force

            ARTIFACTS.mkdir(exist_ok=True)
            shot = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
            (ARTIFACTS / "dashboard.png").write_bytes(shot)
    assert shot.startswith(b"\x89PNG") and len(shot) > 10_000
