"""``demi run``: the conductor, its supervisor and the HTTP face, until a signal.

SIGINT or SIGTERM: stop accepting, drain, shut down in reverse start order, all
bounded by ``stop_timeout``; a second one cuts the stop short. SIGHUP: reload.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import anyio

from ..conductor import Conductor
from ..core.config import DemiSettings
from ..core.logger import get_logger
from ..exceptions import DemiError
from ..supervision import Supervisor
from ._watchdog import Watchdog

LOG = get_logger("demi.run")

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How often the loop proves it is alive, for /healthz.
_TICK = 1.0
# How long the HTTP server may take to close its connections once stopping.
_HTTP_GRACE = 3.0
# Past stop_timeout and the HTTP grace, how long before the watchdog ends the process.
_WATCHDOG_MARGIN = 2.0


async def serve(
    settings: DemiSettings,
    config_file: str | None,
    bind: tuple[str, int] | None,
    backend: str = "asyncio",
) -> int:
    """Run until stopped by a signal; return the exit code."""
    conductor = Conductor(settings, config_file=config_file)
    with anyio.open_signal_receiver(*_STOP_SIGNALS, signal.SIGHUP) as signals:
        interrupted = await _start_unless_signalled(conductor, signals)
        if interrupted is not None:
            LOG.info("%s received during start-up: stopping", interrupted)
            await conductor.stop()
            LOG.info("stopped")
            return 0
        supervisor = Supervisor(conductor)
        last_tick = time.monotonic()

        ticking = anyio.CancelScope()

        async def tick() -> None:
            nonlocal last_tick
            with ticking:
                while True:
                    last_tick = time.monotonic()
                    await anyio.sleep(_TICK)

        http_stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(tick)
            supervising = anyio.CancelScope()

            async def supervise() -> None:
                with supervising:
                    await supervisor.run()

            group.start_soon(supervise)
            if bind is not None:
                await _start_http(group, conductor, supervisor, bind, backend,
                                  lambda: last_tick, http_stop)  # fmt: skip
            names = ", ".join(s.instance for s in conductor.instances()) or "none"
            LOG.info("demi running on %s with platforms: %s", backend, names)
            received = await _wait_for_stop(signals, conductor, supervisor)
            LOG.info(
                "%s received: stopping (bounded by %gs)",
                received,
                settings.stop_timeout,
            )
            supervising.cancel()
            watchdog = Watchdog(settings.stop_timeout + _HTTP_GRACE + _WATCHDOG_MARGIN)
            async with anyio.create_task_group() as stopping:
                stopping.start_soon(_abort_on_second_signal, signals, conductor)
                await conductor.stop()
                stopping.cancel_scope.cancel()
            # Let the server finish its own graceful shutdown; cancelling it midway
            # trips hypercorn's asyncio worker.
            http_stop.set()
            ticking.cancel()
            group.cancel_scope.deadline = anyio.current_time() + _HTTP_GRACE
    watchdog.cancel()
    LOG.info("stopped")
    return 0


async def _start_unless_signalled(conductor: Conductor, signals: Any) -> str | None:
    """Start the conductor, unless a stop signal comes first (an orchestrator may
    give up on a slow start); return that signal's name if it did."""
    interrupted: str | None = None
    async with anyio.create_task_group() as starting:

        async def watch() -> None:
            nonlocal interrupted
            async for signum in signals:
                if signum in _STOP_SIGNALS:
                    interrupted = signal.Signals(signum).name
                    starting.cancel_scope.cancel()
                    return
                LOG.warning("SIGHUP during start-up ignored: nothing to reload yet")

        starting.start_soon(watch)
        await conductor.start()
        starting.cancel_scope.cancel()
    return interrupted


async def _start_http(
    group: Any,
    conductor: Conductor,
    supervisor: Supervisor,
    bind: tuple[str, int],
    backend: str,
    heartbeat: Any,
    stop: anyio.Event,
) -> None:
    from ..http import create_app, serve_http

    token = conductor.settings.http_token
    app = create_app(
        conductor,
        supervisor,
        token=token.get_secret_value() if token else None,
        heartbeat=heartbeat,
    )
    await group.start(lambda task_status: serve_http(
        app, bind[0], bind[1], backend=backend, stop=stop, task_status=task_status))  # fmt: skip


async def _wait_for_stop(
    signals: Any, conductor: Conductor, supervisor: Supervisor
) -> str:
    async for signum in signals:
        if signum == signal.SIGHUP:
            LOG.info("SIGHUP received: reloading configuration")
            try:
                result = await conductor.reload()
            except DemiError as err:
                LOG.error("reload refused, nothing changed: %s", err)
                continue
            supervisor.reset()
            if result.failed:
                LOG.error("reload: could not apply %s", result.failed)
            continue
        return signal.Signals(signum).name
    return "end of signals"


async def _abort_on_second_signal(signals: Any, conductor: Conductor) -> None:
    async for signum in signals:
        if signum in _STOP_SIGNALS:
            LOG.warning(
                "second %s: cutting the stop short", signal.Signals(signum).name
            )
            conductor.abort()
            return
