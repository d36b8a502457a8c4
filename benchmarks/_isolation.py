"""The cases of issue 11 (9 to 11): a platform with ``isolation = "process"``, an
echo in a child process, against the floor of two bare processes that do the same
work by hand (the child's side is ``_isolation_child.py``).

Each runs in one benchmark child per conductor backend (asyncio, trio); demi and the
floor alternate within it, after an untimed warm-up round.
"""

from __future__ import annotations

import functools
import statistics
from typing import Any

from ._case import BACKENDS, CaseResult, Log, Plan
from ._child import FAKE_PREFIX
from ._sandbox import Sandbox
from ._stats import Check, compare, summarize

__all__ = ["isolated_dispatch", "isolated_memory", "isolated_spawn"]

#: The echo the children run: the first entry point of the generated site of one.
DRIVER = "fake0000"
MODULE = f"{FAKE_PREFIX}0000"
_MIB = 1024 * 1024


def _spec(sandbox: Sandbox, mode: str, backend: str, **extra: Any) -> dict[str, Any]:
    # The benchmark child sees the site on its sys.path; demi's child and the
    # floor's are plain `python` processes that get it through PYTHONPATH.
    site = str(sandbox.site(1))
    return {
        "mode": mode,
        "path": sandbox.path(1),
        "child_path": [site],
        "backend": backend,
        "driver": DRIVER,
        "module": MODULE,
        **extra,
    }


def _per_call(
    measured: dict[str, dict[str, list[float]]], calls: int, metric: str, mode: str
) -> list[float]:
    """Each round's ``metric`` of ``mode`` per call, in microseconds."""
    return [1000 * ms / calls for ms in measured[metric][mode]]


def isolated_dispatch(sandbox: Sandbox, plan: Plan, log: Log) -> CaseResult:
    """Case 9: ``Conductor.dispatch`` to a process-isolated echo vs a bare round
    trip over a socket pair with demi's codec and framing."""
    calls = plan.size(2000)
    callers = plan.size(100)
    result = CaseResult(
        "9",
        "dispatch to a process-isolated echo: Conductor.dispatch vs a bare round "
        "trip over a socket pair, same codec and framing",
    )
    reps = plan.reps(11)
    for backend in BACKENDS:
        log(f"case 9: {backend}, {calls} calls, 1 and {callers} callers, {reps} rounds")
        spec = _spec(
            sandbox, "isolated_dispatch", backend,
            calls=calls, callers=callers, repeats=reps,
        )  # fmt: skip
        out, _ = sandbox.run_child(spec)
        for shape, what in (
            ("sequential", "1 caller"),
            ("concurrent", f"{callers} concurrent callers"),
        ):
            done = out["calls"][shape]
            per_call = functools.partial(_per_call, out[shape], done)
            demi, floor = per_call("wall", "demi"), per_call("wall", "floor")
            check = compare(
                "9",
                f"{backend} {what}, {done} calls (us per call)",
                ("demi dispatch, isolated echo", demi),
                ("socket pair floor", floor),
                target=1.3,
            )
            check.note = (
                f"demi {1e6 / summarize(demi).median:,.0f} req/s, "
                f"floor {1e6 / summarize(floor).median:,.0f} req/s"
            )
            result.checks.append(check)
            result.checks.append(
                compare(
                    "9",
                    f"{backend} {what}, {done} calls (us per call, info)",
                    ("demi dispatch, isolated echo", demi),
                    ("floor, a task per request", per_call("wall", "tasks")),
                    target=None,
                )
            )
            # Where the time goes: the CPU each side spends per call.
            for side, whose in (("cpu_parent", "caller's"), ("cpu_child", "child's")):
                result.checks.append(
                    compare(
                        "9",
                        f"{backend} {what}, {whose} CPU (us per call, info)",
                        ("demi", per_call(side, "demi")),
                        ("socket pair floor", per_call(side, "floor")),
                        target=None,
                    )
                )
        result.data[backend] = out
    return result


def isolated_spawn(sandbox: Sandbox, plan: Plan, log: Log) -> CaseResult:
    """Case 10: ``Conductor.start`` of one isolated echo until it is active vs a
    fresh interpreter importing the driver's module."""
    result = CaseResult(
        "10",
        "spawn to active: Conductor.start of a process-isolated echo vs python "
        "importing the driver's module",
    )
    reps = plan.reps(15)
    for backend in BACKENDS:
        log(f"case 10: {backend}, {reps} rounds")
        spec = _spec(sandbox, "isolated_spawn", backend, repeats=reps)
        out, _ = sandbox.run_child(spec)
        result.checks.append(
            compare(
                "10",
                f"{backend} spawn to active (ms)",
                ("demi Conductor.start, isolated echo", out["demi"]),
                (f"python -c 'import {MODULE}' to a ready byte", out["floor"]),
                target=1.5,
            )
        )
        result.data[backend] = out
    return result


def _median(rows: list[dict[str, float]], key: str) -> float:
    """The median of ``key`` over ``rows`` in MiB (NaN where /proc had none)."""
    values = [row[key] for row in rows if key in row]
    return statistics.median(values) / _MIB if values else float("nan")


def isolated_memory(sandbox: Sandbox, plan: Plan, log: Log) -> CaseResult:
    """Case 11: the conductor's resident memory per isolated instance, and each idle
    child's (no target)."""
    n = 2 if plan.quick else 10
    reps = plan.reps(3)
    result = CaseResult(
        "11", f"memory of process isolation: N={n} isolated echoes, idle"
    )
    for backend in BACKENDS:
        log(f"case 11: {backend}, N={n}, {reps} rounds")
        spec = _spec(sandbox, "isolated_memory", backend, size=n, repeats=reps)
        out, _ = sandbox.run_child(spec)
        children, floor = out["children"], out["floor"]
        grown = statistics.median(out["per_instance"]) / 1024
        result.checks.append(
            Check(
                "11",
                f"{backend} N={n} conductor's resident memory per isolated instance",
                "demi Conductor",
                None,
                "KiB",
                grown,
                target=None,
                note=(
                    "RSS growth of the conductor's process / N; bytes Python "
                    f"allocated and holds: {out['traced_per_instance'][0] / 1024:.1f} "
                    "KiB per instance"
                ),
            )
        )
        note = (
            f"Pss {_median(children, 'pss'):.1f} MiB, private "
            f"{_median(children, 'private'):.1f} MiB; floor (python with the driver "
            f"imported, idle): RSS {_median(floor, 'rss'):.1f} MiB, Pss "
            f"{_median(floor, 'pss'):.1f} MiB, private {_median(floor, 'private'):.1f} MiB"
        )
        result.checks.append(
            Check(
                "11",
                f"{backend} resident memory of each idle child (MiB)",
                "python -m demi.isolation.host",
                None,
                "MiB",
                _median(children, "rss"),
                target=None,
                note=note,
            )
        )
        result.data[backend] = out
    return result
