"""``demi run``: the conductor, its supervisor and the HTTP face, until a signal.

SIGINT or SIGTERM: stop accepting, drain, shut down in reverse start order, all
bounded by ``stop_timeout``; a second one cuts the stop short. SIGHUP: reload.
From the first stop signal on, during start-up and reloads too, a watchdog bounds
how long the process may take to end, whatever a plugin does.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn

import anyio

from ..conductor import Conductor
from ..core.config import DemiSettings
from ..core.logger import get_logger
from ..exceptions import DemiError
from ..supervision import Supervisor
from ._startup_report import named, start_and_report
from ._watchdog import MARGIN, Watchdog

if TYPE_CHECKING:
    from ..coordination import Coordinator

LOG = get_logger("demi.run")

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How often the loop proves it is alive, for /healthz.
_TICK = 1.0
# How long the HTTP server may take to close its connections once stopping.
_HTTP_GRACE = 3.0


class _StopBound:
    """The watchdog of one stop, armed at the first stop signal (once)."""

    def __init__(self, stop_timeout: float) -> None:
        self.seconds = stop_timeout + _HTTP_GRACE + MARGIN
        self._watchdog: Watchdog | None = None

    def arm(self) -> None:
        """Start counting, unless already counting."""
        if self._watchdog is None:
            self._watchdog = Watchdog(self.seconds)

    def cancel(self) -> None:
        """The stop finished in time."""
        if self._watchdog is not None:
            self._watchdog.cancel()


async def serve(
    settings: DemiSettings,
    config_file: str | None,
    listener: socket.socket | None,
    backend: str = "asyncio",
) -> int:
    """Run until stopped by a signal; return the exit code.

    :param listener: a bound socket to serve the HTTP face on (``None``: no HTTP).
    """
    conductor = Conductor(settings, config_file=config_file)
    coordinator = _coordinator_for(conductor)
    supervisor = Supervisor(conductor)
    # Built before the session, so its metrics observe every inbound event.
    ticker = _Ticker()
    app = (
        _http_app(conductor, supervisor, ticker, coordinator)
        if listener is not None
        else None
    )
    bound = _StopBound(settings.stop_timeout)
    # The session hosts the listening platforms' connections and the handler; its
    # end stops what is left (nothing, after the bounded stop below). The
    # membership of a coordination group ends after the stop: locks are released
    # only once what they guard has stopped.
    async with conductor.session(), _membership(coordinator):
        with anyio.open_signal_receiver(*_STOP_SIGNALS, signal.SIGHUP) as signals:
            await _serve_until_stopped(
                conductor, coordinator, supervisor, signals, bound, ticker, listener,
                app, backend,
            )  # fmt: skip
    bound.cancel()
    LOG.info("stopped")
    return 0


def _coordinator_for(conductor: Conductor) -> Coordinator | None:
    """The coordination of this replica when ``coordination_url`` is set."""
    if conductor.settings.coordination_url is None:
        return None
    from ..coordination import Coordinator

    return Coordinator(conductor)


@asynccontextmanager
async def _membership(coordinator: Coordinator | None) -> AsyncIterator[None]:
    if coordinator is None:
        yield
        return
    async with coordinator.membership():
        yield


async def _start(conductor: Conductor, coordinator: Coordinator | None) -> None:
    """Join the group first (when coordinated): only this replica's share starts."""
    if coordinator is not None:
        await coordinator.join()
    await start_and_report(conductor, LOG)


async def _serve_until_stopped(
    conductor: Conductor,
    coordinator: Coordinator | None,
    supervisor: Supervisor,
    signals: Any,
    bound: _StopBound,
    ticker: _Ticker,
    listener: socket.socket | None,
    app: Any,
    backend: str,
) -> None:
    """Start, supervise and serve until a stop signal; then stop, bounded."""
    settings = conductor.settings
    starting = partial(_start, conductor, coordinator)
    interrupted = await _unless_stopped(starting, "start-up", signals, bound)
    if interrupted is not None:
        await conductor.stop()
        return
    ticking = anyio.CancelScope()

    async def tick() -> None:
        with ticking:
            await ticker.run()

    http_stop = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        supervising = anyio.CancelScope()

        async def supervise() -> None:
            with supervising:
                await supervisor.run()

        group.start_soon(supervise)
        rebalancing = anyio.CancelScope()
        if coordinator is not None:
            group.start_soon(_rebalance, coordinator, rebalancing)
        if listener is not None:
            await _start_http(group, app, listener, backend, http_stop)
        names = named([status.instance for status in conductor.instances()])
        LOG.info("demi running on %s with platforms: %s", backend, names)
        received = await _wait_for_stop(signals, conductor, supervisor, bound)
        bound.arm()
        LOG.info(
            "%s received: stopping (bounded by %gs)", received, settings.stop_timeout
        )
        supervising.cancel()
        rebalancing.cancel()  # nothing starts once the stop has begun
        async with anyio.create_task_group() as stopping:
            stopping.start_soon(_abort_on_second_signal, signals, conductor)
            await conductor.stop()
            stopping.cancel_scope.cancel()
        # Let the server finish its own graceful shutdown; cancelling it midway
        # trips hypercorn's asyncio worker.
        http_stop.set()
        ticking.cancel()
        group.cancel_scope.deadline = anyio.current_time() + _HTTP_GRACE


async def _rebalance(coordinator: Coordinator, scope: anyio.CancelScope) -> None:
    with scope:
        await coordinator.rebalancing()


def open_listener(host: str, port: int, settings: DemiSettings) -> socket.socket:
    """Bind the HTTP face's socket now, before any platform starts, so that an address
    in use fails ``demi run`` with nothing started.

    :raises OSError: the address cannot be bound.
    """
    from ..http import address_of, bind_socket, is_loopback

    sock = bind_socket(host, port)
    if settings.http_token is None and not is_loopback(host):
        LOG.warning(
            "HTTP on %s without a token (DEMI_HTTP_TOKEN): anyone who can reach the "
            "port can read /health and /metrics and restart platforms",
            address_of(host, port),
        )
    return sock


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` once demi has stopped.

    Everything demi owns is finished by then (the event loop, hypercorn, trio), but a
    blocking platform's abandoned worker thread or a thread a plugin left behind would
    hold an ordinary interpreter exit forever; those are not worth waiting for.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or gone: nothing left to flush
            pass
    os._exit(code)


async def _unless_stopped(
    work: Callable[[], Awaitable[None]], during: str, signals: Any, bound: _StopBound
) -> str | None:
    """Run ``work`` (the start-up, a reload) unless a stop signal comes first: an
    orchestrator may give up on a slow start, and a reload may start a platform that
    hangs. Then abandon it and return the signal's name, the watchdog armed: the
    plugin being cancelled may swallow the cancellation forever."""
    interrupted: str | None = None
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            nonlocal interrupted
            async for signum in signals:
                if signum in _STOP_SIGNALS:
                    interrupted = signal.Signals(signum).name
                    LOG.info("%s received during %s: stopping", interrupted, during)
                    bound.arm()
                    group.cancel_scope.cancel()
                    return
                LOG.warning("SIGHUP during %s ignored", during)

        group.start_soon(watch)
        await work()
        group.cancel_scope.cancel()
    return interrupted


class _Ticker:
    """Proves the loop is alive for ``/healthz``: ticks every ``_TICK`` seconds."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def last_tick(self) -> float:
        """The monotonic time of the latest tick."""
        return self.last

    async def run(self) -> None:
        """Tick until cancelled."""
        while True:
            self.last = time.monotonic()
            await anyio.sleep(_TICK)


def _http_app(
    conductor: Conductor,
    supervisor: Supervisor,
    ticker: _Ticker,
    coordinator: Coordinator | None,
) -> Any:
    from ..http import create_app

    token = conductor.settings.http_token
    return create_app(
        conductor,
        supervisor,
        token=token.get_secret_value() if token else None,
        heartbeat=ticker.last_tick,
        coordinator=coordinator,
    )


async def _start_http(
    group: Any, app: Any, listener: socket.socket, backend: str, stop: anyio.Event
) -> None:
    from ..http import serve_http

    await group.start(lambda task_status: serve_http(
        app, listener, backend=backend, stop=stop, task_status=task_status))  # fmt: skip


async def _wait_for_stop(
    signals: Any, conductor: Conductor, supervisor: Supervisor, bound: _StopBound
) -> str:
    """Reload on each SIGHUP until a stop signal comes; return its name."""
    async for signum in signals:
        if signum == signal.SIGHUP:
            interrupted = await _unless_stopped(
                partial(_reload, conductor, supervisor), "a reload", signals, bound
            )
            if interrupted is not None:
                return interrupted
            continue
        return signal.Signals(signum).name
    return "end of signals"


async def _reload(conductor: Conductor, supervisor: Supervisor) -> None:
    LOG.info("SIGHUP received: reloading configuration")
    try:
        result = await conductor.reload()
    except DemiError as err:
        # ConfigError included: a configuration file that vanished, became a
        # directory or cannot be read changes nothing; demi keeps what it has.
        LOG.error("reload refused, nothing changed: %s", err)
        return
    supervisor.reset()
    for instance in result.upgraded:
        supervisor.restarted(instance, reason="upgrade")
    if result.failed:
        LOG.error("reload: could not apply %s", result.failed)


async def _abort_on_second_signal(signals: Any, conductor: Conductor) -> None:
    async for signum in signals:
        if signum in _STOP_SIGNALS:
            LOG.warning(
                "second %s: cutting the stop short", signal.Signals(signum).name
            )
            conductor.abort()
            return
