"""One benchmark child process: measures one thing and prints it as JSON.

Run by the parent as ``python -I -S _child.py SPEC`` where ``SPEC`` is a JSON object.
The first thing it does is set ``sys.path`` from the spec (stdlib, the sandbox's
dependency directory and, for discovery, a generated site), so the child sees only
the distributions the benchmark chose. Only the standard library is imported at
module level: what a measurement imports is part of what it measures.

The result is the last line of standard output, prefixed with ``RESULT_MARKER``.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

RESULT_MARKER = "BENCH-RESULT "
FAKE_PREFIX = "demi_fake_plugin_"

perf = time.perf_counter
#: CPU time of the process, all threads: less disturbed by a busy machine.
cpu = time.process_time


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def _phases(
    t0: float, t1: float, t2: float, t3: float, c2: float, c3: float
) -> dict[str, Any]:
    """A fresh-process case's timings: set-up (t0-t1), library import (t1-t2) and
    the operation (t2-t3, wall and CPU), plus the generated modules now imported."""
    return {
        "setup_ms": _ms(t1 - t0),
        "import_ms": _ms(t2 - t1),
        "op_ms": _ms(t3 - t2),
        "op_cpu_ms": _ms(c3 - c2),
        "total_ms": _ms(t3 - t0),
        "modules": _fake_modules(),
    }


def _fake_modules() -> int:
    return sum(1 for name in sys.modules if name.startswith(FAKE_PREFIX))


# -- case 1: discovery, one fresh process per measurement ---------------------


def discovery(spec: dict[str, Any]) -> dict[str, Any]:
    """Discover every entry point of the namespace with one library."""
    namespace = spec["namespace"]
    lib = spec["lib"]
    t0 = perf()
    # Every plugin subclasses demi's BasePlatform, so every mode pays for importing
    # demi's contract before the first plugin imports; it is set-up, not discovery.
    import demi.platforms.base  # noqa: F401

    t1 = perf()
    if lib in ("importlib", "importlib_load"):
        import importlib.metadata

        t2, c2 = perf(), cpu()
        eps = importlib.metadata.entry_points(group=namespace)
        if lib == "importlib_load":
            found = len([ep.load() for ep in eps])
        else:
            found = len(eps)
    elif lib == "stevedore":
        import stevedore

        t2, c2 = perf(), cpu()
        manager: Any = stevedore.ExtensionManager(namespace, invoke_on_load=False)
        found = len(manager.extensions)
    elif lib == "demi":
        from demi.plugins.discovery import discover_plugins

        t2, c2 = perf(), cpu()
        found = len(discover_plugins(namespace))
    else:
        raise ValueError(f"unknown library {lib!r}")
    t3, c3 = perf(), cpu()
    return {**_phases(t0, t1, t2, t3, c2, c3), "found": found}


# -- case 2: load one plugin by name, one fresh process per measurement -------


def load_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Load one plugin by name, initialize it and shut it down."""
    namespace, name, lib = spec["namespace"], spec["name"], spec["lib"]
    t0 = perf()
    import demi.platforms.base  # noqa: F401  (every plugin's contract; set-up)

    t1 = perf()
    import anyio

    if lib == "stevedore":
        import stevedore

        t2, c2 = perf(), cpu()

        async def by_hand() -> None:
            plugin_cls: Any = stevedore.DriverManager(
                namespace, name, invoke_on_load=False
            ).driver
            platform = plugin_cls()
            with anyio.fail_after(30):
                ready = await platform.initialize({})
            if ready is not True:
                raise RuntimeError("initialize did not return True")
            with anyio.move_on_after(10):
                await platform.shutdown()

        anyio.run(by_hand)
    elif lib == "demi":
        from demi.plugins.manager import PluginManager

        t2, c2 = perf(), cpu()

        async def with_demi() -> None:
            async with PluginManager(namespace) as manager:
                await manager.load_plugin(name)
                await manager.unload_plugin(name)

        anyio.run(with_demi)
    else:
        raise ValueError(f"unknown library {lib!r}")
    t3, c3 = perf(), cpu()
    return _phases(t0, t1, t2, t3, c2, c3)


# -- cases 3 to 6: in-process, demi and the floor interleaved -----------------


def _platform_classes() -> dict[str, type[Any]]:
    import anyio

    from demi.platforms.base import BasePlatform, HealthStatus, PluginHealth

    class SleepyHealth(BasePlatform):
        """health_check awaits 10 ms."""

        async def initialize(self, config: Any) -> bool:
            return True

        async def health_check(self) -> PluginHealth:
            await anyio.sleep(0.01)
            return PluginHealth(HealthStatus.HEALTHY)

        async def handle_request(self, request: Any) -> dict[str, Any]:
            return dict(request)

        async def shutdown(self) -> None:
            return None

    class SlowLife(BasePlatform):
        """initialize and shutdown each await 10 ms."""

        async def initialize(self, config: Any) -> bool:
            await anyio.sleep(0.01)
            return True

        async def health_check(self) -> PluginHealth:
            return PluginHealth(HealthStatus.HEALTHY)

        async def handle_request(self, request: Any) -> dict[str, Any]:
            return dict(request)

        async def shutdown(self) -> None:
            await anyio.sleep(0.01)

    class Minimal(BasePlatform):
        """Allocates nothing of its own: the memory case's platform."""

        async def initialize(self, config: Any) -> bool:
            return True

        async def health_check(self) -> PluginHealth:
            return PluginHealth(HealthStatus.HEALTHY)

        async def handle_request(self, request: Any) -> dict[str, Any]:
            return dict(request)

        async def shutdown(self) -> None:
            return None

    from demi.platforms.echo import EchoPlatform

    return {
        "sleepy": SleepyHealth,
        "slow": SlowLife,
        "minimal": Minimal,
        "echo": EchoPlatform,
    }


async def _timed(func: Callable[[], Awaitable[Any]]) -> float:
    gc.collect()
    start = perf()
    await func()
    return _ms(perf() - start)


async def _interleaved(
    modes: dict[str, Callable[[], Awaitable[Any]]], repeats: int
) -> dict[str, list[float]]:
    """Run every mode ``repeats`` times, alternating their order each round, after
    one untimed warm-up round."""
    names = list(modes)
    for name in names:
        await modes[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(repeats):
        order = names if round_no % 2 == 0 else names[::-1]
        for name in order:
            samples[name].append(await _timed(modes[name]))
    return samples


def _settings(**kwargs: Any) -> Any:
    from demi.core.config import DemiSettings

    return DemiSettings(**kwargs)


def health(spec: dict[str, Any]) -> dict[str, Any]:
    """Case 3: one health round over N active plugins whose checks await 10 ms."""
    import anyio

    from demi.plugins.manager import PluginManager

    classes = _platform_classes()
    out: dict[str, Any] = {}

    async def at_size(n: int) -> dict[str, list[float]]:
        settings = _settings(platforms={})
        manager = PluginManager.from_classes(
            {"sleepy": classes["sleepy"]}, settings=settings
        )
        names = [f"p{i:04d}" for i in range(n)]
        for name in names:
            await manager.load_plugin("sleepy", instance=name)
        platforms = [(name, manager.get_plugin(name)) for name in names]
        timeout = settings.health_timeout

        async def floor() -> dict[str, Any]:
            results: dict[str, Any] = {}

            async def check(name: str, platform: Any) -> None:
                with anyio.move_on_after(timeout):
                    results[name] = await platform.health_check()

            async with anyio.create_task_group() as group:
                for name, platform in platforms:
                    group.start_soon(check, name, platform)
            return results

        async def demi() -> dict[str, Any]:
            results = await manager.health_check_all()
            if len(results) != n:
                raise RuntimeError(f"{len(results)} results for {n} plugins")
            return results

        samples = await _interleaved({"demi": demi, "floor": floor}, spec["repeats"])
        await manager.unload_all()
        return samples

    async def main() -> None:
        for n in spec["sizes"]:
            out[str(n)] = await at_size(n)

    anyio.run(main, backend=spec["backend"])
    return out


def dispatch(spec: dict[str, Any]) -> dict[str, Any]:
    """Case 4: conductor dispatch to echo, sequential and concurrent callers."""
    import anyio

    from demi.conductor import Conductor
    from demi.core.config import PlatformSettings
    from demi.handlers import log
    from demi.plugins.manager import PluginManager

    classes = _platform_classes()
    calls, callers = spec["calls"], spec["callers"]
    out: dict[str, Any] = {}

    async def main() -> None:
        settings = _settings(platforms={"echo": PlatformSettings(driver="echo")})
        manager = PluginManager.from_classes(
            {"echo": classes["echo"]}, settings=settings
        )
        request = {"text": "hi"}
        timeout = settings.request_timeout
        # The handler by object: the sandbox holds no metadata of demi's own, so
        # its entry points (demi.handlers) are not there to name one by.
        async with Conductor(settings, handler=log, manager=manager) as conductor:
            platform = manager.get_plugin("echo")

            async def floor_one() -> None:
                with anyio.fail_after(timeout):
                    await platform.handle_request(request)

            async def demi_one() -> None:
                await conductor.dispatch("echo", request)

            async def floor_seq() -> None:
                for _ in range(calls):
                    with anyio.fail_after(timeout):
                        await platform.handle_request(request)

            async def demi_seq() -> None:
                for _ in range(calls):
                    await conductor.dispatch("echo", request)

            async def floor_conc() -> None:
                async with anyio.create_task_group() as group:
                    for _ in range(callers):
                        group.start_soon(floor_one)

            async def demi_conc() -> None:
                async with anyio.create_task_group() as group:
                    for _ in range(callers):
                        group.start_soon(demi_one)

            out["sequential"] = await _interleaved(
                {"demi": demi_seq, "floor": floor_seq}, spec["repeats"]
            )
            out["concurrent"] = await _interleaved(
                {"demi": demi_conc, "floor": floor_conc}, spec["repeats"]
            )

    anyio.run(main, backend=spec["backend"])
    return out


def lifecycle(spec: dict[str, Any]) -> dict[str, Any]:
    """Case 5: start and stop N platforms whose initialize and shutdown await 10 ms.

    Besides ``Conductor.stop``, it times the manager's ``unload_plugin`` run for every
    instance at once in a task group (``demi_unload_concurrent``): what stopping
    costs in demi's own code once the order of shutdowns is not awaited one by one.

    Start and stop are timed apart, each after a full garbage collection (as
    :func:`_timed` does for every round of cases 3 and 4), for demi and the floor
    alike. Timed back to back, the stop paid for a full collection that the start's
    allocations had made due: at N=1000 the floor's stop did on trio, demi's on both
    backends, so the stop ratio measured where that collection fell.
    """
    import anyio

    from demi.conductor import Conductor
    from demi.core.config import PlatformSettings
    from demi.plugins.manager import PluginManager

    slow = _platform_classes()["slow"]

    def settings_for(n: int) -> Any:
        names = [f"p{i:04d}" for i in range(n)]
        return _settings(
            platforms={name: PlatformSettings(driver="slow") for name in names}
        )

    n = spec["size"]
    settings = settings_for(n)
    samples: dict[str, list[float]] = {
        name: []
        for name in (
            "demi_start",
            "demi_stop",
            "demi_start_stop",
            "demi_unload_concurrent",
            "floor_start",
            "floor_stop",
        )
    }

    async def floor_round(n: int) -> tuple[float, float]:
        platforms: list[Any] = []

        async def start_one() -> None:
            platform = slow()
            with anyio.fail_after(settings.init_timeout):
                if await platform.initialize({}) is not True:
                    raise RuntimeError("initialize did not return True")
            platforms.append(platform)

        async def stop_one(platform: Any) -> None:
            with anyio.move_on_after(settings.shutdown_timeout):
                await platform.shutdown()

        gc.collect()
        t0 = perf()
        async with anyio.create_task_group() as group:
            for _ in range(n):
                group.start_soon(start_one)
        t1 = perf()
        gc.collect()
        t2 = perf()
        async with anyio.create_task_group() as group:
            for platform in reversed(platforms):
                group.start_soon(stop_one, platform)
        t3 = perf()
        return _ms(t1 - t0), _ms(t3 - t2)

    async def demi_round(
        settings: Any, concurrent: bool = False
    ) -> tuple[float, float]:
        n = len(settings.platforms)
        manager = PluginManager.from_classes({"slow": slow}, settings=settings)
        conductor = Conductor(settings, manager=manager)
        gc.collect()
        t0 = perf()
        await conductor.start()
        t1 = perf()
        active = manager.active_names()
        gc.collect()
        t2 = perf()
        if concurrent:
            async with anyio.create_task_group() as group:
                for name in reversed(active):
                    group.start_soon(manager.unload_plugin, name)
        else:
            await conductor.stop()
        t3 = perf()
        if concurrent:
            await conductor.stop()
        if len(active) != n or manager.active_names():
            raise RuntimeError(f"{len(active)} of {n} platforms started")
        return _ms(t1 - t0), _ms(t3 - t2)

    async def main() -> None:
        warm = settings_for(min(n, 50))
        await floor_round(min(n, 50))
        await demi_round(warm)
        await demi_round(warm, concurrent=True)
        # Every round pairs the floor with a Conductor start (stopped by concurrent
        # unloads); the first ``stop_repeats`` rounds also time Conductor.stop.
        for round_no in range(spec["repeats"]):
            modes = ["floor", "demi"]
            if round_no < spec["stop_repeats"]:
                modes.append("demi_stop")
            for mode in _rotate(modes, round_no):
                if mode == "floor":
                    start, stop = await floor_round(n)
                    samples["floor_start"].append(start)
                    samples["floor_stop"].append(stop)
                elif mode == "demi":
                    start, stop = await demi_round(settings, concurrent=True)
                    samples["demi_start"].append(start)
                    samples["demi_unload_concurrent"].append(stop)
                else:
                    start, stop = await demi_round(settings)
                    samples["demi_start_stop"].append(start + stop)
                    samples["demi_stop"].append(stop)

    anyio.run(main, backend=spec["backend"])
    return samples


def _rotate(names: list[str], round_no: int) -> list[str]:
    shift = round_no % len(names)
    return [*names[shift:], *names[:shift]]


def memory(spec: dict[str, Any]) -> dict[str, Any]:
    """Case 6: bytes per active platform held by manager and conductor."""
    import tracemalloc

    import anyio

    from demi.conductor import Conductor
    from demi.core.config import PlatformSettings
    from demi.plugins.manager import PluginManager

    minimal = _platform_classes()["minimal"]
    out: dict[str, Any] = {}

    def traced() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    async def measure(n: int) -> dict[str, float]:
        names = [f"p{i:04d}" for i in range(n)]
        settings = _settings(
            platforms={name: PlatformSettings(driver="minimal") for name in names}
        )
        base = traced()
        bare = [minimal() for _ in names]
        platform_bytes = (traced() - base) / n
        del bare
        manager = PluginManager.from_classes({"minimal": minimal}, settings=settings)
        conductor = Conductor(settings, manager=manager)
        before = traced()
        await conductor.start()
        after = traced()
        if len(manager.active_names()) != n:
            raise RuntimeError("not every platform started")
        held = (after - before) / n
        await conductor.stop()
        return {
            "platform_bytes": platform_bytes,
            "held_bytes": held,
            "overhead_bytes": held - platform_bytes,
        }

    async def main() -> None:
        tracemalloc.start()
        await measure(10)  # warm-up: first-use caches are not per platform
        for n in spec["sizes"]:
            out[str(n)] = await measure(n)
        tracemalloc.stop()

    anyio.run(main, backend=spec["backend"])
    return out


def _beside(name: str) -> Any:
    """The module ``name`` from this file's directory, loaded from its file: the
    child's ``sys.path`` holds only what the benchmark chose, not this directory."""
    import importlib.util
    from pathlib import Path

    where = Path(__file__).with_name(f"{name}.py")
    found = importlib.util.spec_from_file_location(name, where)
    if found is None or found.loader is None:
        raise ImportError(f"cannot load {where}")
    module = importlib.util.module_from_spec(found)
    # Registered, so a module loaded this way can import one loaded before it.
    sys.modules[name] = module
    found.loader.exec_module(module)
    return module


def inbox(spec: dict[str, Any]) -> dict[str, Any]:
    """Case 8: inbound events through demi's inbox vs the anyio floor (in
    ``_inbox_child.py``)."""
    result: dict[str, Any] = _beside("_inbox_child").inbox(spec)
    return result


def isolated(spec: dict[str, Any]) -> dict[str, Any]:
    """Cases 9 to 11: a process-isolated echo vs bare processes (in
    ``_isolation_child.py``)."""
    _beside("_isolation_floor")
    result: dict[str, Any] = _beside("_isolation_child").run(spec)
    return result


MODES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "discovery": discovery,
    "load_one": load_one,
    "health": health,
    "dispatch": dispatch,
    "lifecycle": lifecycle,
    "memory": memory,
    "inbox": inbox,
    "isolated_dispatch": isolated,
    "isolated_spawn": isolated,
    "isolated_memory": isolated,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    sys.path[:] = spec["path"]
    result = MODES[spec["mode"]](spec)
    sys.stdout.write("\n" + RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
