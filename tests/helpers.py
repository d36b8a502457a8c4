"""Helpers that several test modules share (``from helpers import ...``).

Not a test module and not a conftest: pytest puts tests/ on sys.path (its default
"prepend" import mode, the same under tox), so the test modules import this by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio

from demi import DemiSettings, PlatformSettings, PluginManager, SyncPlatform
from demi.conductor import Conductor
from demi.inbox import Handler
from demi.platforms import BasePlatform, HealthStatus, PluginHealth
from demi.supervision import Supervisor


class MinimalPlatform(BasePlatform):
    """The least a platform can be: the four coroutine methods, nothing else."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    async def shutdown(self) -> None:
        pass


class SyncEcho(SyncPlatform):
    """A blocking platform that answers with the request."""

    def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    def health_check(self) -> PluginHealth:
        return PluginHealth(HealthStatus.HEALTHY)

    def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return dict(request)

    def shutdown(self) -> None:
        pass


def install_distribution(
    site: Path,
    name: str,
    version: str,
    *,
    module: str,
    source: str,
    platforms: Mapping[str, str],
) -> None:
    """Write a distribution into ``site`` as an installer would leave it.

    The module ``module`` (a top-level ``<module>.py`` holding ``source``) and
    ``<name>-<version>.dist-info`` with its METADATA and, in the ``demi.platforms``
    group, an entry point per item of ``platforms`` (entry-point name to target).
    """
    (site / f"{module}.py").write_text(source)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )
    entry_points = "".join(f"{ep} = {target}\n" for ep, target in platforms.items())
    (info / "entry_points.txt").write_text(f"[demi.platforms]\n{entry_points}")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def signal_when_ready(
    cwd: Path,
    command: list[str],
    ready: str,
    signum: int,
    env: Mapping[str, str],
    timeout: float = 30.0,
) -> tuple[int, str, str, float]:
    """Run ``command`` in ``cwd`` with exactly ``env``; once its stderr shows
    ``ready``, send it ``signum``. Return its exit code, stdout, stderr, and the
    seconds from the signal to its exit (it is killed after ``timeout``)."""
    out, err = cwd / "signalled.out", cwd / "signalled.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            command, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
            stdout=stdout, stderr=stderr,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while ready not in err.read_text(errors="replace"):
                assert process.poll() is None, err.read_text(errors="replace")
                assert time.monotonic() < deadline, f"never saw {ready!r}"
                time.sleep(0.05)
            sent = time.monotonic()
            process.send_signal(signal.Signals(signum))
            code = process.wait(timeout=timeout)
            took = time.monotonic() - sent
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return code, out.read_text(errors="replace"), err.read_text(errors="replace"), took


def sigterm_once(
    tmp_path: Path, args: list[str], ready: str, **environment: str
) -> tuple[int, str]:
    """Start ``demi *args`` in ``tmp_path`` with ``environment`` (no other DEMI_*
    variable), send SIGTERM once its log shows ``ready``, and return its exit code
    and output (standard output, then standard error)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    env.update(environment)
    demi = str(Path(sys.executable).with_name("demi"))
    code, out, err, _ = signal_when_ready(
        tmp_path, [demi, *args], ready, signal.SIGTERM, env
    )
    return code, out + err


#: Generous bound on anything a test waits for; a healthy run takes milliseconds.
PATIENCE = 20.0


def make_settings(
    platforms: Mapping[str, PlatformSettings | str], **overrides: Any
) -> DemiSettings:
    """Settings with the given instances (a bare string is a driver name) and short,
    test-friendly timeouts unless overridden."""
    values: dict[str, Any] = {
        "init_timeout": 5.0,
        "request_timeout": 5.0,
        "shutdown_timeout": 5.0,
        "stop_timeout": 10.0,
    }
    values.update(overrides)
    specs = {
        name: PlatformSettings(driver=spec) if isinstance(spec, str) else spec
        for name, spec in platforms.items()
    }
    return DemiSettings(platforms=specs, **values)


def with_classes(
    settings: DemiSettings,
    classes: Mapping[str, type[BasePlatform]],
    handler: Handler | None = None,
) -> Conductor:
    """A conductor whose drivers are the given classes, not entry points."""
    return Conductor(
        settings,
        handler=handler,
        manager=PluginManager.from_classes(classes, settings=settings),
    )


async def wait_until(predicate: Callable[[], bool], timeout: float = PATIENCE) -> None:
    """Poll ``predicate`` at every turn of the event loop until it holds."""
    with anyio.fail_after(timeout):
        # A predicate over plain state has no event to wait on: polling is the point.
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(0.001)


class StartsAndStops:
    """A test service used as ``with Service() as service:``: ``start()`` on
    entering, ``stop()`` on leaving, however the block ends."""

    def start(self) -> None:
        """Start the service (it answers once this returns)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop it and wait until it has."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def quick_spec(driver: str, **values: Any) -> PlatformSettings:
    """One instance of ``driver`` whose restarts back off for a few milliseconds."""
    return PlatformSettings(
        driver=driver, backoff_initial=0.01, backoff_max=0.02, **values
    )


@asynccontextmanager
async def supervised(conductor: Conductor) -> AsyncIterator[Supervisor]:
    """Run ``conductor`` and a supervisor over it (no jitter) for the block."""
    supervisor = Supervisor(conductor, rng=lambda: 1.0)
    async with conductor, anyio.create_task_group() as group:
        await group.start(supervisor.run)
        yield supervisor
        group.cancel_scope.cancel()
