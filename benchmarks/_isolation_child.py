"""Cases 9 to 11 in the benchmark's child process: a process-isolated echo, demi
against the floor of two bare processes.

Loaded by ``_child.py`` from its own file, so, like it, it imports only the standard
library at module level.

demi's side is the real path: a ``Conductor`` whose one instance has ``isolation =
"process"``, so its platform runs in ``python -m demi.isolation.host`` (the driver
``fake0000`` of the sandbox's generated site, an echo). The floors are the same
interpreter and the same environment without demi's machinery:

* per call (case 9): a socket pair to ``_wire_echo.py``, which answers each request
  inline; both ends use demi's own ``Channel`` and ``Message``, so codec and framing
  are exactly demi's. One caller sends and reads; 100 callers share the channel
  with one reader task that wakes each caller's event, as demi's proxy does.
* spawn (case 10): ``python -c "import the_driver_module"`` that writes one byte on
  its end of a socket pair when the import is done.
* memory (case 11, for information): that same process kept alive, idle.

The children inherit ``PYTHONPATH`` (the generated site): demi's child finds the
driver by its entry point there, the floor imports its module from there.
"""

from __future__ import annotations

import functools
import gc
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

# Loaded from its file by _child.py, before this module (see there).
import _isolation_floor as bare

perf = time.perf_counter


def _settings(driver: str, names: list[str], **spec: Any) -> Any:
    from demi.core.config import DemiSettings, PlatformSettings

    return DemiSettings(
        platforms={
            name: PlatformSettings(driver=driver, isolation="process", **spec)
            for name in names
        }
    )


def _conductor(settings: Any) -> Any:
    from demi.conductor import Conductor
    from demi.handlers import log

    # The handler by object: the sandbox holds no metadata of demi's own.
    return Conductor(settings, handler=log)


async def _measure(run: Callable[[], Awaitable[Any]], pid: int) -> dict[str, float]:
    """Run ``run`` once; its wall time, the CPU time of this process and that of
    the child ``pid`` that answers it, in ms."""
    gc.collect()
    start, used, child = perf(), time.process_time(), bare.on_cpu(pid)
    await run()
    return {
        "wall": 1000 * (perf() - start),
        "cpu_parent": 1000 * (time.process_time() - used),
        "cpu_child": 1000 * (bare.on_cpu(pid) - child),
    }


def dispatch(spec: dict[str, Any]) -> dict[str, Any]:
    """Case 9: per-call cost to a process-isolated echo, 1 and many callers, against
    the floor (an inline echo) and, for information, the floor whose echo answers
    each request in a task and a cancel scope of its own (``tasks``).

    Each round starts a conductor of its own (untimed, followed by 100 untimed
    calls): on trio, demi's child is killed about 10 s after it started (see
    README.md), so one conductor cannot serve every round. The floors' processes
    serve every round. Round 0 is the warm-up.
    """
    import anyio

    calls, callers = spec["calls"], spec["callers"]
    per_caller = max(calls // callers, 1)
    request = {"text": "hi"}
    names = ("demi", "floor", "tasks")
    out: dict[str, Any] = {
        shape: {
            metric: {name: [] for name in names}
            for metric in ("wall", "cpu_parent", "cpu_child")
        }
        for shape in ("sequential", "concurrent")
    }

    def sequential(send: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            for _ in range(calls):
                if await send() != request:
                    raise RuntimeError(f"the echo answered wrong: {spec}")

        return run

    def concurrent(send: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        async def caller() -> None:
            for _ in range(per_caller):
                await send()

        async def run() -> None:
            async with anyio.create_task_group() as group:
                for _ in range(callers):
                    group.start_soon(caller)

        return run

    def shared(floor: Any) -> Callable[[], Awaitable[None]]:
        """The floor's concurrent callers, with its reader task for the round."""

        async def call() -> Any:
            return await floor.shared_call(request, timeout)

        async def run() -> None:
            async with anyio.create_task_group() as group:
                group.start_soon(floor.read)
                await concurrent(call)()
                group.cancel_scope.cancel()

        return run

    # As many requests in flight as the floor has: with the default max_concurrency
    # (64), 36 of 100 callers would wait for a token, which the floor never does.
    settings = _settings(spec["driver"], ["echo"], max_concurrency=callers)
    timeout = settings.request_timeout

    async def round_of(round_no: int, floors: dict[str, Any]) -> None:
        async with _conductor(settings) as conductor:
            child = conductor.instances()[0].pid
            if child is None:
                raise RuntimeError(f"the isolated echo did not start: {spec}")

            async def demi_call() -> Any:
                return await conductor.dispatch("echo", request)

            for _ in range(100):
                await demi_call()
            for shape, run_demi in (
                ("sequential", sequential(demi_call)),
                ("concurrent", concurrent(demi_call)),
            ):
                modes = {"demi": (run_demi, child)}
                for name, floor in floors.items():
                    if shape == "sequential":
                        run = sequential(
                            functools.partial(floor.call, request, timeout)
                        )
                    else:
                        run = shared(floor)
                    modes[name] = (run, floor.process.pid)
                order = list(names) if round_no % 2 == 0 else list(names)[::-1]
                for name in order:
                    measured = await _measure(*modes[name])
                    if round_no:
                        for metric, value in measured.items():
                            out[shape][metric][name].append(value)

    async def main() -> None:
        floors = {
            "floor": await bare.Floor.open(),
            "tasks": await bare.Floor.open("--tasks"),
        }
        for round_no in range(spec["repeats"] + 1):
            await round_of(round_no, floors)
        for floor in floors.values():
            await floor.close()
        out["calls"] = {"sequential": calls, "concurrent": per_caller * callers}

    anyio.run(main, backend=spec["backend"])
    return out


def spawn(spec: dict[str, Any]) -> dict[str, Any]:
    """Case 10: Conductor.start of one isolated echo until it is active, against a
    fresh interpreter importing the driver's module."""
    import anyio

    async def demi() -> None:
        conductor = _conductor(_settings(spec["driver"], ["echo"]))
        async with conductor.session():
            start = perf()
            await conductor.start()
            samples["demi"].append(1000 * (perf() - start))
            if conductor.instances()[0].pid is None:
                raise RuntimeError(f"the isolated echo did not start: {spec}")
            await conductor.stop()

    async def floor() -> None:
        start = perf()
        process, stream = await bare.ready_floor(spec["module"])
        samples["floor"].append(1000 * (perf() - start))
        await bare.ended(process, stream)

    samples: dict[str, list[float]] = {"demi": [], "floor": []}

    async def main() -> None:
        modes = {"demi": demi, "floor": floor}
        for round_no in range(spec["repeats"] + 1):
            order = list(modes) if round_no % 2 == 0 else list(modes)[::-1]
            for name in order:
                gc.collect()
                await modes[name]()
            if round_no == 0:  # warm-up
                samples["demi"].clear()
                samples["floor"].clear()

    anyio.run(main, backend=spec["backend"])
    return samples


def memory(spec: dict[str, Any]) -> dict[str, Any]:
    """Case 11: the conductor's resident memory per isolated instance, and each idle
    child's; the idle floor process's for comparison.

    Resident memory grows by whole pages and arenas, and what the warm-up freed is
    reused, so a last round also counts the bytes Python allocated and still holds
    per instance (``tracemalloc``, as case 6), with tracing on for that round only.
    """
    import tracemalloc

    import anyio

    n = spec["size"]
    out: dict[str, list[Any]] = {
        "per_instance": [], "traced_per_instance": [], "children": [], "floor": [],
    }  # fmt: skip

    def traced() -> float:
        gc.collect()
        return float(tracemalloc.get_traced_memory()[0])

    async def once(size: int) -> tuple[float, float, list[dict[str, float]]]:
        conductor = _conductor(
            _settings(spec["driver"], [f"e{i}" for i in range(size)])
        )
        async with conductor.session():
            gc.collect()
            before, before_traced = bare.resident(), traced()
            await conductor.start()
            await anyio.sleep(0.2)  # idle: whatever start-up left to do is done
            gc.collect()
            grown, grown_traced = bare.resident() - before, traced() - before_traced
            pids = [status.pid for status in conductor.instances()]
            if None in pids:
                raise RuntimeError(f"not every isolated echo started: {pids}")
            children = [bare.memory_of(pid) for pid in pids]
            await conductor.stop()
        return grown / size, grown_traced / size, children

    async def main() -> None:
        await once(1)  # warm-up: first-use imports are not per instance
        for _ in range(spec["repeats"]):
            per_instance, _, children = await once(n)
            out["per_instance"].append(per_instance)
            out["children"].extend(children)
            process, stream = await bare.ready_floor(spec["module"])
            await anyio.sleep(0.2)
            out["floor"].append(bare.memory_of(process.pid))
            await bare.ended(process, stream)
        tracemalloc.start()
        await once(1)  # the first traced instance pays for tracemalloc's own tables
        out["traced_per_instance"].append((await once(n))[1])
        tracemalloc.stop()

    anyio.run(main, backend=spec["backend"])
    return out


MODES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "isolated_dispatch": dispatch,
    "isolated_spawn": spawn,
    "isolated_memory": memory,
}


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the mode ``spec`` names, with the generated site on the children's path."""
    os.environ["PYTHONPATH"] = os.pathsep.join(spec["child_path"])
    return MODES[spec["mode"]](spec)
