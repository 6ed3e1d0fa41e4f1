"""The SSE passthrough layer: the innermost guard, next to the app's endpoint.

The response observer (installed with the exchange) already sees every byte
without holding any back, so this layer never touches the response. Its job is
the client that leaves: once the app has its body, a small watcher waits on the
server's ``receive``; an ``http.disconnect`` before the app is done cancels the
app at its next ``await`` (an upstream call, a generator's sleep) instead of
when it next tries to send, and marks the exchange disconnected so nothing is
cached and the metrics count a 499.
"""

from __future__ import annotations

import asyncio

from ..core.exchange import Exchange
from ..core.layer import GuardLayer, LayerHost
from ..core.observer import ResponseObserver
from ..core.types import Message, Receive, Scope, Send


class _DisconnectWatch:
    """Owns the server's ``receive`` once the app has read its body; cancels ``task`` on a disconnect.

    Only one party may wait on a server's ``receive``: after the body the app's
    own calls are answered from what the watcher received.
    """

    __slots__ = ("_inbox", "_listening", "_observer", "_receive", "_task", "_watcher", "cancelled", "disconnected",
                 "done", "final_sent", "send_failed")

    def __init__(self, receive: Receive, task: asyncio.Task[object], observer: ResponseObserver) -> None:
        self._receive = receive
        self._task = task
        self._observer = observer
        self._inbox: asyncio.Queue[Message] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._listening = 0  # app calls waiting on receive(): such an app handles the disconnect itself
        self.disconnected = False
        self.cancelled = False  # whether the watcher cancelled the task (and so owes it an uncancel)
        self.done = False
        self.final_sent = False  # the app handed over its last body message
        self.send_failed = False

    async def receive(self) -> Message:
        """The app's ``receive``: the body straight through, then what the watcher saw."""
        if self._inbox is None:
            message = await self._receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                self.start()
            return message
        self._listening += 1
        try:
            return await self._inbox.get()
        finally:
            self._listening -= 1

    def wrap_send(self, send: Send) -> Send:
        """Start watching when the app answers without reading its body first."""

        async def watched_send(message: Message) -> None:
            if self._inbox is None:
                self.start()
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.final_sent = True
            try:
                await send(message)
            except BaseException:
                self.send_failed = True
                raise

        return watched_send

    def start(self) -> None:
        if self._inbox is None and not self.done:
            self._inbox = asyncio.Queue()
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        assert self._inbox is not None
        while True:
            message = await self._receive()
            self._inbox.put_nowait(message)
            if message["type"] == "http.disconnect":
                self.disconnected = True
                if self.final_sent:
                    # Servers (uvicorn) answer receive() with a disconnect once the response is complete:
                    # the end of the exchange, not a client that left. A failed send says so itself.
                    if not self.send_failed:
                        self._observer.disconnected = False
                    return
                if not self.done and not self._listening:
                    self.cancelled = True
                    self._task.cancel()
                return

    def stop(self) -> None:
        self.done = True
        if self._watcher is not None and not self._watcher.done():
            self._watcher.cancel()


class SSEPassthroughMiddleware(GuardLayer[LayerHost]):
    """Streams the app's response straight through; a client that leaves cancels the app promptly."""

    async def handle(self, exchange: Exchange, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # not under asyncio (a trio server): nothing to cancel with
            task = None
        if task is None:
            await self.app(scope, receive, send)
            return
        watch = _DisconnectWatch(receive, task, exchange.response)
        try:
            await self.app(scope, watch.receive, watch.wrap_send(send))
        except asyncio.CancelledError:
            watch.done = True
            if not watch.cancelled or task.uncancel() > 0:
                raise  # the server (or an outer layer) cancelled us: not ours to swallow
            exchange.response.disconnected = True
        finally:
            watch.stop()
        if watch.cancelled and not exchange.response.disconnected:
            # The app caught our cancellation and returned: settle the count, it was still a disconnect.
            task.uncancel()
            exchange.response.disconnected = True
