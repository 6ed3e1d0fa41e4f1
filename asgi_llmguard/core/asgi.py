"""Body read and replay, header helpers and small responses, in plain ASGI."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..errors import RequestError
from .openai_protocol import dump_json
from .types import Message, Receive, Scope, Send


class ClientDisconnected(Exception):
    """The client went away while the stack was still reading its request."""


def get_header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (``name`` in lower case)."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


def set_request_header(scope: Scope, name: bytes, value: bytes) -> None:
    """Replace a request header in ``scope`` (a new list: the old one may be shared)."""
    headers = [(k, v) for k, v in scope.get("headers", ()) if k.lower() != name]
    headers.append((name, value))
    scope["headers"] = headers


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """Read the whole request body, refusing more than ``limit`` bytes with a 413."""
    declared = get_header(scope, b"content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise RequestError("The Content-Length header is not a number.") from None
        if length > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        if message["type"] != "http.request":
            continue
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limit: int) -> RequestError:
    return RequestError(
        f"The request body is larger than the {limit} bytes this endpoint accepts.",
        status=413,
        code="request_too_large",
    )


class BodyReplay:
    """A ``receive`` that hands the app the (current) body once, then defers to the server.

    The body is fetched when the app first asks, so a layer that rewrote the
    request after this replay was made still reaches the app. After the body,
    calls go to the server's ``receive``: it blocks until a disconnect, which is
    what a streaming response's disconnect watcher needs (answering at once
    would spin the event loop).
    """

    __slots__ = ("_body", "_receive", "_sent", "on_disconnect")

    def __init__(self, body: Callable[[], bytes], receive: Receive) -> None:
        self._body = body
        self._receive = receive
        self._sent = False
        self.on_disconnect: Callable[[], None] | None = None

    async def __call__(self) -> Message:
        if not self._sent:
            self._sent = True
            return {"type": "http.request", "body": self._body(), "more_body": False}
        message = await self._receive()
        if message["type"] == "http.disconnect" and self.on_disconnect is not None:
            self.on_disconnect()
        return message


def encode_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = b"application/json",
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    raw.extend(encode_headers(headers))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_json(send: Send, status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
    body = dump_json(payload)
    await send_bytes(send, status, body, headers=headers)


async def send_error(send: Send, error: RequestError, headers: Iterable[tuple[str, str]] = ()) -> None:
    await send_json(send, error.status, error.to_payload(), headers)


def bearer_token(scope: Scope) -> str | None:
    raw = get_header(scope, b"authorization")
    if raw is None:
        return None
    scheme, _, token = raw.decode("latin-1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
