"""The child process of an isolated platform:
``python -m demi.isolation.host NAMESPACE DRIVER FD``.

It imports only that driver, runs its own event loop (asyncio, unless the platform's
``supported_backends`` rules it out), says ``hello`` with its pid and its driver's
version and the shape of its platform (whether it listens, takes webhooks, is
exclusive: demi never imports the driver itself), then serves the requests that arrive on the socket ``FD`` through demi's own
fault boundary, so whatever the platform raises is an error reply, never the child's
end. ``run`` is a request like the others that lasts as long as the connection: its
readiness comes back as ``ready``, and the events it (or ``handle_webhook``) sends as
``event`` messages that demi answers with ``ack``. Log records go to demi as ``log``
messages. The child exits when the socket closes, or when a thread of its own sees that
its parent died.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import anyio
from anyio.abc import UNIXSocketStream
from anyio.streams.memory import MemoryObjectSendStream

from ..core.prepare import prepare_config
from ..core.secrets import scrub
from ..exceptions import PlatformFatalError
from ..platforms.base import (
    BasePlatform,
    PluginHealth,
    is_exclusive,
    listens,
    takes_webhooks,
)
from ..plugins._calls import DEFAULT_BLOCK_THRESHOLD, call, describe, run_watched
from ._child_inbox import ChildInbox, ChildReady
from ._shapes import request_from_wire, response_to_wire
from ._wire import Channel, Message, WireError

__all__ = ["main"]

#: Seconds between two looks at whether demi is still this process's parent.
PARENT_POLL = 0.2


def _die_with_parent() -> None:
    """End this process within :data:`PARENT_POLL` seconds of demi's death,
    whatever the platform does meanwhile (a blocked loop included): a thread looks
    whether the parent changed, as it does once init or a subreaper adopts an orphan.

    Not Linux's parent-death signal: it follows the *thread* that forked, and trio
    forks from a worker thread of its cache, which ends after 10 s idle and took
    every child it had started with it.
    """
    # No "parent is 1, so demi is gone" shortcut: demi may be PID 1 (a container's
    # entry point). Had demi died before this line, the socket's end-of-file ends us.
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os._exit(1)

    threading.Thread(target=watch, name="demi-parent-watch", daemon=True).start()


def _backend(plugin: type[BasePlatform]) -> str:
    wanted = plugin.supported_backends
    return "asyncio" if not wanted or "asyncio" in wanted else wanted[0]


class _Forward(logging.Handler):
    """Sends every log record of the child to the parent as a ``log`` message."""

    def __init__(self, send: MemoryObjectSendStream[Message]) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # Scrubbed here, where the platform's configured secrets are known
            # (demi scrubs again with its own).
            text = scrub(self.format(record))
            params = {"name": record.name, "level": record.levelno, "text": text}
            self._send.send_nowait(Message("log", params=params))
        except Exception:  # a lost log line must not break the platform
            pass


class _Host:
    """Serves one platform object over one channel."""

    def __init__(self, plugin: type[BasePlatform], channel: Channel, label: str):
        self.plugin = plugin
        self.channel = channel
        self.label = label
        self.platform: BasePlatform | None = None
        self.calls: dict[int, anyio.CancelScope] = {}
        # Everything the child says on its own (logs, readiness, events) goes out
        # through one queue, in order.
        self.outbox, self._queued = _outgoing()
        self.inbox = ChildInbox(label, self.outbox)
        # Requests go to worker tasks that stay for the next one: starting a task
        # per request would cost more than the rest of the call.
        self._requests, self._to_work = _work_queue()
        self._idle = 0

    async def serve(self) -> None:
        root = logging.getLogger()
        root.addHandler(_Forward(self.outbox))
        root.setLevel(logging.INFO)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._send_queued, self._queued)
            while True:
                try:
                    message = await self.channel.receive()
                except (
                    anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError,
                    OSError, WireError,
                ):  # fmt: skip
                    break  # demi is gone (or talks nonsense): so are we
                if message.t == "req":
                    scope = self.calls[message.id] = anyio.CancelScope()
                    if self._idle:
                        self._idle -= 1  # that worker is this request's
                    else:
                        tasks.start_soon(self._work)
                    self._requests.send_nowait((message, scope))
                elif message.t == "cancel":
                    running = self.calls.get(message.id)
                    if running is not None:
                        running.cancel()
                elif message.t == "ack":
                    self.inbox.answer(message.id, message.params)
            tasks.cancel_scope.cancel()

    async def _send_queued(self, queued: Any) -> None:
        async for message in queued:
            try:
                await self.channel.send(message)
            except WireError as err:
                if message.t == "event":  # its sender learns why, a log line is lost
                    self.inbox.refuse(message.id, str(err))
                continue
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                return

    async def _work(self) -> None:
        """Answer requests one after another, for as long as the child lives."""
        while True:
            message, scope = await self._to_work.receive()
            await self._answer(message, scope)
            self._idle += 1

    async def _answer(self, request: Message, scope: anyio.CancelScope) -> None:
        reply: Message | None = None
        try:
            with scope:
                result = await self._call(
                    request.method, request.params or {}, request.id
                )
                reply = Message("ok", params=result)
        except TimeoutError as err:
            reply = Message("err", params={"kind": "timeout", "text": str(err)})
        except Exception as err:
            # Fatal stays fatal across the boundary: the supervisor must not retry.
            kind = "fatal" if isinstance(err, PlatformFatalError) else "raised"
            reply = Message("err", params={"kind": kind, "text": describe(err)})
        finally:
            self.calls.pop(request.id, None)
        if reply is None:  # the scope caught demi's cancellation
            reply = Message("err", params={"kind": "cancelled", "text": "cancelled"})
        reply.id = request.id
        try:
            await self.channel.send(reply)
        except WireError as err:
            text = f"its {request.method} reply {err}"
            failed = Message("err", request.id, params={"kind": "codec", "text": text})
            await self.channel.send(failed)

    async def _call(self, method: str, params: Mapping[str, Any], ident: int) -> Any:
        timeout = float(params.get("timeout") or 1e9)
        if method == "handle_request" and self.platform is not None:  # the hot path
            args = params.get("request")
            return await call(self.platform, "handle_request", args, timeout=timeout)
        if method == "initialize":
            self.platform = self.plugin()
            self.platform._demi_name = self.label
            options = prepare_config(
                self.plugin.config_model,
                params.get("config") or {},
                instance=self.label,
            )
            return await call(self.platform, "initialize", options, timeout=timeout)
        if self.platform is None:
            raise RuntimeError(f"{method} before initialize")
        if method == "health_check":
            health = await call(self.platform, "health_check", timeout=timeout)
            if not isinstance(health, PluginHealth):
                return {"status": "unhealthy", "error": f"returned {type(health)}"}
            return {"status": health.status.value, "error": health.error_message}
        if method == "shutdown":
            return await call(self.platform, "shutdown", timeout=timeout)
        if method == "run":
            ready = ChildReady(self.outbox, ident)
            await run_watched(
                self.platform, self.inbox, ready, owner=self.label,
                block_threshold=DEFAULT_BLOCK_THRESHOLD,
            )  # fmt: skip
            return None
        if method == "handle_webhook":
            request = request_from_wire(params.get("request") or {})
            response = await call(
                self.platform, "handle_webhook", request, self.inbox, timeout=timeout
            )
            return response_to_wire(response)
        raise ValueError(f"no method {method!r}")


def _work_queue() -> Any:
    return anyio.create_memory_object_stream[tuple[Message, anyio.CancelScope]](
        math.inf
    )


def _outgoing() -> Any:
    return anyio.create_memory_object_stream[Message](math.inf)


async def _serve(plugin: type[BasePlatform], fd: int, label: str, version: Any) -> None:
    stream = await UNIXSocketStream.from_socket(socket.socket(fileno=fd))
    channel = Channel(stream)
    shape = {
        "listens": listens(plugin),
        "webhooks": takes_webhooks(plugin),
        "exclusive": is_exclusive(plugin),
    }
    hello = {"pid": os.getpid(), "version": version, "shape": shape}
    await channel.send(Message("hello", params=hello))
    await _Host(plugin, channel, label).serve()


def main(argv: list[str] | None = None) -> int:
    """Run the child: ``NAMESPACE DRIVER FD [LABEL]``."""
    _die_with_parent()
    # demi stops the child with SIGTERM after its shutdown; Ctrl-C in the terminal
    # reaches demi, which decides (the child is in a session of its own anyway).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    namespace, driver, fd_text, *rest = argv if argv is not None else sys.argv[1:]
    label = rest[0] if rest else driver
    from ..plugins.discovery import installed_version, load_driver

    plugin = load_driver(driver, namespace)
    version = installed_version(driver, namespace)
    anyio.run(_serve, plugin, int(fd_text), label, version, backend=_backend(plugin))
    return 0


if __name__ == "__main__":
    sys.exit(main())
