"""The cases of issue 6 (1 to 7), issue 10 (8) and issue 13 (12), each comparing
demi with what a user would write by hand (or, for 12, with the backend's own floor);
issue 11's (9 to 11, process isolation) are in ``_isolation.py``.

Every case returns a :class:`CaseResult`: the checks for the table (ratio of medians
against a target) and the raw samples for the JSON. Modes are interleaved: each round
runs every mode once, in an order that rotates from round to round, after one untimed
warm-up round.
"""

from __future__ import annotations

from collections.abc import Callable

from ._case import BACKENDS, CaseResult, Log, Plan, rotated, stats
from ._isolation import isolated_dispatch, isolated_memory, isolated_spawn
from ._sandbox import NAMESPACE, ChildError, Sandbox
from ._stats import Check, compare, summarize

__all__ = ["CASES", "CaseResult", "Plan"]

# -- 1 ------------------------------------------------------------------------

_DISCOVERY_MODES: dict[str, tuple[str, str | None]] = {
    "importlib": ("importlib", None),
    "importlib+load": ("importlib_load", None),
    "stevedore cold": ("stevedore", "cold"),
    "demi cold": ("demi", "cold"),
    "stevedore warm": ("stevedore", "warm"),
    "demi warm": ("demi", "warm"),
}


def discovery(sandbox: Sandbox, plan: Plan, log: Log) -> CaseResult:
    """Case 1: discover N generated entry points, each mode in a fresh process."""
    result = CaseResult(
        "1",
        "discovery: discover_plugins vs stevedore ExtensionManager (fresh processes)",
    )
    reps = plan.reps(11)
    names = list(_DISCOVERY_MODES)
    for n in plan.sizes([10, 100, 1000]):
        path = sandbox.path(n)
        samples: dict[str, dict[str, list[float]]] = {
            metric: {name: [] for name in names}
            for metric in ("op_ms", "op_cpu_ms", "total_ms", "wall_ms")
        }
        log(f"case 1: N={n}, {reps} rounds of {len(names)} processes")
        for round_no in range(reps + 1):
            for name in rotated(names, round_no):
                lib, cache = _DISCOVERY_MODES[name]
                where = sandbox.cache_dir(
                    f"n{n}-{cache or 'warm'}", fresh=cache == "cold"
                )
                spec = {
                    "mode": "discovery",
                    "path": path,
                    "namespace": NAMESPACE,
                    "lib": lib,
                }
                out, wall = sandbox.run_child(spec, cache=where)
                expected_modules = 0 if lib == "importlib" else n
                if out["found"] != n or out["modules"] != expected_modules:
                    raise ChildError(f"{name} at N={n} found {out['found']}: {out}")
                if round_no == 0:
                    continue  # warm-up
                for metric in ("op_ms", "op_cpu_ms", "total_ms"):
                    samples[metric][name].append(out[metric])
                samples["wall_ms"][name].append(wall)
        op, cpu = samples["op_ms"], samples["op_cpu_ms"]
        for cache in ("cold", "warm"):
            subject, baseline = f"demi {cache}", f"stevedore {cache}"
            result.checks.append(
                compare(
                    "1",
                    f"N={n} discovery op, wall (ms)",
                    (subject, op[subject]),
                    (baseline, op[baseline]),
                    target=1.15,
                )
            )
            result.checks.append(
                compare(
                    "1",
                    f"N={n} discovery op, CPU (ms)",
                    (subject, cpu[subject]),
                    (baseline, cpu[baseline]),
                    target=1.15,
                )
            )
        result.checks.append(
            compare(
                "1",
                f"N={n} process wall (ms, info)",
                ("demi warm", samples["wall_ms"]["demi warm"]),
                ("stevedore warm", samples["wall_ms"]["stevedore warm"]),
                target=None,
            )
        )
        if n == max(plan.sizes([10, 100, 1000])):
            result.checks.append(
                compare(
                    "1",
                    f"N={n} discovery op, wall (ms, info)",
                    ("stevedore warm", op["stevedore warm"]),
                    ("importlib+load", op["importlib+load"]),
                    target=None,
                )
            )
        result.data[str(n)] = {
            "samples": samples,
            "stats": {metric: stats(values) for metric, values in samples.items()},
        }
    return result


# -- 2 ------------------------------------------------------------------------


def load_one(sandbox: Sandbox, plan: Plan, log: Log) -> CaseResult:
    """Case 2: load one plugin by name among N, initialize it, shut it down."""
    n = plan.size(1000)
    result = CaseResult(
        "2", f"load one of N={n} by name + initialize + shutdown (fresh processes)"
    )
    reps = plan.reps(15)
    name = f"fake{n // 2:04d}"
    modes = {"demi load_plugin": "demi", "stevedore DriverManager": "stevedore"}
    samples: dict[str, dict[str, list[float]]] = {
        metric: {mode: [] for mode in modes}
        for metric in ("op_ms", "op_cpu_ms", "total_ms", "wall_ms", "modules")
    }
    path = sandbox.path(n)
    cache = sandbox.cache_dir(f"n{n}-warm")
    log(f"case 2: N={n}, {reps} rounds of {len(modes)} processes")
    for round_no in range(reps + 1):
        for mode in rotated(list(modes), round_no):
            spec = {
                "mode": "load_one",
                "path": path,
                "namespace": NAMESPACE,
                "lib": modes[mode],
                "name": name,
            }
            out, wall = sandbox.run_child(spec, cache=cache)
            if round_no == 0:
                continue
            for metric in ("op_ms", "op_cpu_ms", "total_ms", "modules"):
                samples[metric][mode].append(out[metric])
            samples["wall_ms"][mode].append(wall)
    subject, baseline = "demi load_plugin", "stevedore DriverManager"
    for metric, label, target in (
        ("op_ms", "load+init+shutdown under anyio.run, wall (ms)", 1.2),
        ("op_cpu_ms", "load+init+shutdown under anyio.run, CPU (ms)", 1.2),
        ("wall_ms", "process wall (ms, info)", None),
    ):
        result.checks.append(
            compare(
                "2",
                f"N={n} {label}",
                (subject, samples[metric][subject]),
                (baseline, samples[metric][baseline]),
                target=target,
            )
        )
    imported = max(samples["modules"]["demi load_plugin"])
    result.checks.append(
        Check(
            "2",
            f"N={n} plugin modules imported",
            "demi load_plugin",
            None,
            "modules",
            imported,
            target=1,
        )
    )
    result.data = {"samples": samples, "name": name}
    return result


# -- 3 ------------------------------------------------------------------------


def health(sandbox: Sandbox, plan: Plan, log: Log) -> CaseResult:
    """Case 3: health_check_all vs a bare task group, checks awaiting 10 ms."""
    result = CaseResult(
        "3", "health round, checks await 10 ms: health_check_all vs task group"
    )
    sizes = plan.sizes([10, 100, 1000])
    reps = plan.reps(15)
    for backend in BACKENDS:
        log(f"case 3: {backend}, N={sizes}, {reps} rounds")
        spec = {
            "mode": "health",
            "path": sandbox.path(),
            "backend": backend,
            "sizes": sizes,
            "repeats": reps,
        }
        out, _ = sandbox.run_child(spec)
        for n in sizes:
            samples = out[str(n)]
            result.checks.append(
                compare(
                    "3",
                    f"{backend} N={n} health round (ms)",
                    ("demi health_check_all", samples["demi"]),
                    ("task group floor", samples["floor"]),
                    target=1.5 if n == 1000 else None,
                )
            )
        result.data[backend] = out
    return result


# -- 4 ------------------------------------------------------------------------


def dispatch(sandbox: Sandbox, plan: Plan, log: Log) -> CaseResult:
    """Case 4: Conductor.dispatch to echo vs awaiting handle_request under fail_after."""
    calls = plan.size(1000)
    result = CaseResult(
        "4", "dispatch to echo: Conductor.dispatch vs await under fail_after"
    )
    reps = plan.reps(15)
    for backend in BACKENDS:
        log(f"case 4: {backend}, {calls} calls, {reps} rounds")
        spec = {
            "mode": "dispatch",
            "path": sandbox.path(),
            "backend": backend,
            "calls": calls,
            "callers": calls,
            "repeats": reps,
        }
        out, _ = sandbox.run_child(spec)
        for shape, what in (
            ("sequential", f"{calls} sequential calls"),
            ("concurrent", f"{calls} concurrent callers"),
        ):
            samples = out[shape]
            check = compare(
                "4",
                f"{backend} {what} (ms)",
                ("demi dispatch", samples["demi"]),
                ("fail_after floor", samples["floor"]),
                target=1.5,
            )
            per_call = [1000 * v / calls for v in samples["demi"]]
            floor_call = [1000 * v / calls for v in samples["floor"]]
            check.note = (
                f"per call: demi {summarize(per_call).median:.1f} us, "
                f"floor {summarize(floor_call).median:.1f} us"
            )
            result.checks.append(check)
        result.data[backend] = out
    return result


# -- 5 ------------------------------------------------------------------------


def lifecycle(sandbox: Sandbox, plan: Plan, log: Log) -> CaseResult:
    """Case 5: Conductor start/stop of N platforms vs bare task groups."""
    n = plan.size(1000)
    result = CaseResult(
        "5",
        f"start and stop N={n} platforms, init/shutdown await 10 ms: Conductor vs task group",
    )
    reps = plan.reps(9)
    # Conductor.stop shuts down side by side now (it took N x 10 ms one after
    # another once, when 3 rounds were all it could afford): as many rounds as start.
    stop_reps = reps
    for backend in BACKENDS:
        log(f"case 5: {backend}, N={n}, {reps} rounds ({stop_reps} with stop)")
        spec = {
            "mode": "lifecycle",
            "path": sandbox.path(),
            "backend": backend,
            "size": n,
            "repeats": reps,
            "stop_repeats": min(stop_reps, reps),
        }
        out, _ = sandbox.run_child(spec)
        floor_both = [
            a + b for a, b in zip(out["floor_start"], out["floor_stop"], strict=True)
        ]
        for label, demi, floor in (
            ("start", out["demi_start"], out["floor_start"]),
            ("stop", out["demi_stop"], out["floor_stop"]),
            ("start + stop", out["demi_start_stop"], floor_both),
        ):
            result.checks.append(
                compare(
                    "5",
                    f"{backend} N={n} {label} (ms)",
                    ("demi Conductor", demi),
                    ("task group floor", floor),
                    target=1.3,
                )
            )
        result.checks.append(
            compare(
                "5",
                f"{backend} N={n} stop (ms, info: what a concurrent stop would cost)",
                ("demi unload_plugin, all at once", out["demi_unload_concurrent"]),
                ("task group floor", out["floor_stop"]),
                target=None,
            )
        )
        result.data[backend] = out
    return result


# -- 6 ------------------------------------------------------------------------


def memory(sandbox: Sandbox, plan: Plan, log: Log) -> CaseResult:
    """Case 6: bytes held per active platform by manager and conductor (tracemalloc)."""
    result = CaseResult("6", "memory per active platform, beyond the platform object")
    sizes = plan.sizes([100, 1000])
    for backend in BACKENDS:
        log(f"case 6: {backend}, N={sizes}")
        spec = {
            "mode": "memory",
            "path": sandbox.path(),
            "backend": backend,
            "sizes": sizes,
        }
        out, _ = sandbox.run_child(spec)
        for n in sizes:
            row = out[str(n)]
            result.checks.append(
                Check(
                    "6",
                    f"{backend} N={n} bytes per active platform",
                    "manager + conductor",
                    None,
                    "B",
                    row["overhead_bytes"],
                    target=4096 if n == max(sizes) else None,
                    note=f"platform object itself: {row['platform_bytes']:.0f} B",
                )
            )
        result.data[backend] = out
    return result


# -- 7 ------------------------------------------------------------------------

_COMMANDS = {
    "floor: python -c pass": "pass",
    "baseline: import stevedore, anyio, pydantic_settings": (
        "import stevedore, anyio, pydantic_settings"
    ),
    "demi --help": "from demi.cli import main; raise SystemExit(main(['--help']))",
    "demi plugins": "from demi.cli import main; raise SystemExit(main(['plugins']))",
    "demi plugins --json": (
        "from demi.cli import main; raise SystemExit(main(['plugins', '--json']))"
    ),
}


def startup(sandbox: Sandbox, plan: Plan, log: Log) -> CaseResult:
    """Case 7: command start-up, whole-process wall time."""
    result = CaseResult("7", "command start-up (process wall, N=10 plugins installed)")
    reps = plan.reps(15)
    path = sandbox.path(10)
    cache = sandbox.cache_dir("cli-warm")
    names = list(_COMMANDS)
    samples: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    log(f"case 7: {reps} rounds of {len(names)} processes")
    for round_no in range(reps + 1):
        for name in rotated(names, round_no):
            wall, used = sandbox.run_code(_COMMANDS[name], path, cache=cache)
            if round_no:
                samples[name].append(wall)
                cpu[name].append(used)
    baseline = "baseline: import stevedore, anyio, pydantic_settings"
    short = "import stevedore, anyio, pydantic_settings"
    for command in ("demi --help", "demi plugins"):
        result.checks.append(
            compare(
                "7",
                "start-up, wall (ms)",
                (command, samples[command]),
                (short, samples[baseline]),
                target=1.5,
            )
        )
        result.checks.append(
            compare(
                "7",
                "start-up, CPU (ms)",
                (command, cpu[command]),
                (short, cpu[baseline]),
                target=1.5,
            )
        )
    result.checks.append(
        compare(
            "7",
            "start-up, CPU (ms, info: JSON output, no rich table)",
            ("demi plugins --json", cpu["demi plugins --json"]),
            (short, cpu[baseline]),
            target=None,
        )
    )
    result.checks.append(
        compare(
            "7",
            "start-up, wall (ms, info)",
            (short, samples[baseline]),
            ("python -c pass", samples["floor: python -c pass"]),
            target=None,
        )
    )
    result.data = {
        "samples": samples,
        "cpu_samples": cpu,
        "stats": stats(samples),
        "cpu_stats": stats(cpu),
    }
    return result


# -- 8 ------------------------------------------------------------------------


def inbound(sandbox: Sandbox, plan: Plan, log: Log) -> CaseResult:
    """Case 8: events from a platform's ``run`` through demi's inbox to a handler
    that does nothing, vs a memory object stream feeding a task group; and the
    round trip of one message through handler and reply."""
    events = plan.size(100_000)
    trips = plan.size(2000)
    result = CaseResult(
        "8",
        f"inbound: {events} events, platform run -> inbox -> handler vs "
        "memory stream + task group; one-message round trip",
    )
    reps = plan.reps(9)
    for backend in BACKENDS:
        log(f"case 8: {backend}, {events} events, {trips} round trips, {reps} rounds")
        spec = {
            "mode": "inbox",
            "path": sandbox.path(),
            "backend": backend,
            "events": events,
            "round_trips": trips,
            "repeats": reps,
        }
        out, _ = sandbox.run_child(spec)
        flood = out["flood"]
        for metric, unit in (("wall", "wall"), ("cpu", "CPU")):
            check = compare(
                "8",
                f"{backend} {events} events, 1st send to last handled, {unit} (ms)",
                ("demi Conductor inbox", flood[metric]["demi"]),
                ("memory stream floor", flood[metric]["floor"]),
                target=1.3,
            )
            rate = events / summarize(flood[metric]["demi"]).median * 1000
            check.note = f"demi: {rate:,.0f} events/s"
            result.checks.append(check)
        trip = out["trip"]
        for metric, unit in (("wall", "wall"), ("cpu", "CPU")):
            for floor, name in (
                ("floor", "stream + direct call floor"),
                ("bounded", "same, handler and reply under fail_after"),
            ):
                result.checks.append(
                    compare(
                        "8",
                        f"{backend} round trip send -> handle_request, {unit} "
                        "(us per message, info)",
                        ("demi Conductor, echo handler", trip[metric]["demi"]),
                        (name, trip[metric][floor]),
                        target=None,
                    )
                )
        result.data[backend] = out
    return result


# -- 9 ------------------------------------------------------------------------

#: Full run: (tooz driver, conductor backend); the expiry (``?timeout=``, seconds)
#: is 2 because etcd refuses leases shorter than about 1.5 s.
_REBALANCE = [("etcd", "asyncio"), ("redis", "trio"), ("file", "asyncio")]


def rebalance(sandbox: Sandbox, plan: Plan, log: Log) -> CaseResult:
    """Case 12: from a member's SIGKILL to its instances active on the survivors,
    against the backend's expiry, the floor. Quick: the file driver only, two
    members, six instances, one round, a 1 s expiry."""
    from ._rebalance import fail_overs

    members, instances = (2, 6) if plan.quick else (3, 30)
    timeout = 1 if plan.quick else 2
    drivers = [("file", "asyncio")] if plan.quick else _REBALANCE
    reps = plan.reps(5)
    result = CaseResult(
        "12",
        f"rebalance: {members} demi run replicas, {instances} exclusive instances; "
        "a member's SIGKILL to its instances connected elsewhere vs the backend's "
        "expiry",
    )
    for driver, backend in drivers:
        log(f"case 12: {driver} on {backend}, expiry {timeout} s, {reps} rounds")
        took = fail_overs(
            driver,
            timeout=timeout,
            members=members,
            instances=instances,
            rounds=reps,
            backend=backend,
            log=log,
        )
        check = compare(
            "12",
            f"{driver} ({backend}) fail-over (s)",
            ("demi: death to active elsewhere", took),
            (f"expiry ?timeout={timeout}", [float(timeout)] * len(took)),
            target=2.0,
        )
        check.note = f"median {summarize(took).median:.2f} s"
        result.checks.append(check)
        result.data[driver] = {"backend": backend, "expiry_s": timeout, "samples": took}
    return result


CASES: dict[str, Callable[[Sandbox, Plan, Log], CaseResult]] = {
    "1": discovery,
    "2": load_one,
    "3": health,
    "4": dispatch,
    "5": lifecycle,
    "6": memory,
    "7": startup,
    "8": inbound,
    "9": isolated_dispatch,
    "10": isolated_spawn,
    "11": isolated_memory,
    "12": rebalance,
}
