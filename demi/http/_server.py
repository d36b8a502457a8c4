"""Serving the app with hypercorn, on whichever anyio backend is running."""

from __future__ import annotations

from typing import Any

import anyio
from anyio.abc import TaskStatus

from ..core.logger import get_logger

__all__ = ["serve_http"]

LOG = get_logger(__name__)


async def serve_http(
    app: Any,
    host: str,
    port: int,
    *,
    backend: str,
    stop: anyio.Event,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``host:port`` until ``stop`` is set.

    hypercorn has one entry point per event loop, both driven from here, so the HTTP
    face runs on asyncio and on trio alike.
    """
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = LOG
    config.graceful_timeout = 1.0
    if backend == "trio":
        from hypercorn.trio import serve as trio_serve

        serving = trio_serve
    else:
        from hypercorn.asyncio import serve as asyncio_serve

        serving = asyncio_serve  # type: ignore[assignment]
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: serving(app, config, shutdown_trigger=stop.wait))
        # Report "started" only once the port answers, so callers (and probes) never
        # race the bind; a failed bind ends the group with its OSError instead.
        await _wait_until_listening(host, port)
        LOG.info("serving http://%s", config.bind[0])
        task_status.started()


async def _wait_until_listening(host: str, port: int, patience: float = 10.0) -> None:
    with anyio.fail_after(patience):
        while True:
            try:
                stream = await anyio.connect_tcp(host, port)
            except OSError:
                await anyio.sleep(0.02)
            else:
                await stream.aclose()
                return
