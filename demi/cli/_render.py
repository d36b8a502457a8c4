"""Output for people (rich tables, progress on a terminal) and for machines (JSON).

demi's own output goes to the standard output kept by :func:`keeping_stdout`;
whatever else is printed while a command runs goes to standard error.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, TextIO

from ..core.secrets import REDACTED, redact, redact_by_model

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.console import Console

    from ..conductor import Conductor, InstanceStatus
    from ..core.config import DemiSettings
    from ..platforms.base import PluginHealth

#: Nesting deeper than this is cut in JSON output (a plugin may answer with a cycle).
MAX_JSON_DEPTH = 100

# demi's own standard output while a command runs (see keeping_stdout).
_kept: TextIO | None = None


def _stdout() -> TextIO:
    return _kept if _kept is not None else sys.stdout


@contextmanager
def keeping_stdout() -> Iterator[None]:
    """Keep the real standard output for demi's own output, and send everything else
    written to it meanwhile (a plugin's ``print`` at import or at any time, even a
    write to file descriptor 1) to standard error, so it never corrupts ``--json``."""
    global _kept
    real = sys.stdout
    try:
        real.flush()
        out_fd, err_fd = real.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (e.g. captured)
        kept, out_fd = real, -1
    else:
        kept = open(  # closed below
            os.dup(out_fd), "w", encoding=real.encoding, errors=real.errors
        )
        os.dup2(err_fd, out_fd)
    _kept, sys.stdout = kept, sys.stderr
    try:
        yield
    finally:
        _kept, sys.stdout = None, real
        if kept is not real:
            kept.flush()
            os.dup2(kept.fileno(), out_fd)
            kept.close()


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    file = sys.stderr if stderr else _stdout()
    return Console(file=file, highlight=False, soft_wrap=False)


def print_json(data: Any) -> None:
    """One strict JSON document on standard output, for machines.

    It always parses: numbers JSON cannot hold (NaN, the infinities) become ``null``,
    objects it does not know become their text, nesting past
    :data:`MAX_JSON_DEPTH` is cut.
    """
    text = json.dumps(_jsonable(data, 0), indent=2, allow_nan=False)
    out = _stdout()
    out.write(text + "\n")
    out.flush()


def _jsonable(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= MAX_JSON_DEPTH:
        return f"<nested more than {MAX_JSON_DEPTH} levels>"
    if isinstance(value, Mapping):
        return {_key(key): _jsonable(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item, depth + 1) for item in value]
    return safe_text(value)


def _key(key: Any) -> str:
    return key if isinstance(key, str) else safe_text(key)


def safe_text(value: object) -> str:
    """``str(value)``, or a placeholder naming its type if that raises (a plugin's
    objects may be anything)."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def plugins_table(rows: list[dict[str, Any]], namespace: str) -> None:
    """The ``demi plugins`` table: names, targets and versions are never split
    across lines, however narrow the output (see ``_layout``)."""
    from ._layout import Cell, Column, print_rows

    columns = [Column("Name"), Column("Valid"), Column("Distribution"),
               Column("Version"), Column("Target"), Column("Error", free=True)]  # fmt: skip
    cells = [
        [
            Cell(row["name"]),
            Cell("yes", "green") if row["valid"] else Cell("no", "red"),
            Cell(row["distribution"] or "?"),
            Cell(row["version"] or "?"),
            Cell(row["target"]),
            Cell(row["error"] or ""),
        ]
        for row in rows
    ]
    console = _console()
    print_rows(console, f"Plugins in {namespace}", columns, cells)
    broken = sum(not row["valid"] for row in rows)
    console.print(f"{len(rows)} plugin(s), {broken} broken")


def instance_row(status: InstanceStatus, health: PluginHealth | None) -> dict[str, Any]:
    """One instance of ``demi check`` as a JSON-ready dict; the error is text, even
    when a plugin reported something else."""
    error: object = health.error_message if health else None
    if error is None or (isinstance(error, str) and not error):
        error = status.error
    row = {
        "instance": status.instance,
        "driver": status.driver,
        "state": status.state.value if status.state else None,
        "health": health.status.value if health else "unhealthy",
        "response_time_ms": round(health.response_time_ms, 3) if health else None,
        "error": None if error is None else safe_text(error),
    }
    if status.pid is not None:  # a process-isolated instance's child
        row.update(pid=status.pid, version=status.version)
    return row


def check_table(rows: list[dict[str, Any]], healthy: bool) -> None:
    """The ``demi check`` table: instance and driver names are never split across
    lines, however narrow the output (see ``_layout``)."""
    from ._layout import Cell, Column, print_rows

    colours = {"healthy": "green", "degraded": "yellow", "unchecked": "cyan"}
    # Coordinated (coordination_url): which replica owns each instance.
    owners = any(row.get("owner") for row in rows)
    columns = [Column("Instance"), Column("Driver"), Column("State"),
               Column("Health"), Column("Time (ms)"), Column("Error", free=True)]  # fmt: skip
    if owners:
        columns.insert(4, Column("Owner"))
    cells = []
    for row in rows:
        millis = row["response_time_ms"]
        line = [
            Cell(row["instance"]),
            Cell(row["driver"]),
            Cell(row["state"] or "-"),
            Cell(row["health"], colours.get(row["health"], "red")),
            Cell(f"{millis:.1f}" if millis is not None else "-"),
            Cell(row["error"] or ""),
        ]  # fmt: skip
        if owners:
            line.insert(4, Cell(row.get("owner") or "-"))
        cells.append(line)
    console = _console()
    print_rows(console, "Health", columns, cells)
    console.print("[green]all healthy[/]" if healthy else "[red]not all healthy[/]")


def config(
    settings: DemiSettings,
    *,
    as_json: bool,
    secret_fields: Mapping[str, Collection[str]] | None = None,
    models: Mapping[str, type[BaseModel]] | None = None,
) -> None:
    """The effective configuration, secrets redacted: secret-looking keys, secret
    types, URL passwords, registered secret values, what each instance's driver
    model in ``models`` types as secret at any depth, and the top-level keys in
    ``secret_fields`` (by instance)."""
    dumped = settings.model_dump(mode="python")
    for instance, keys in (secret_fields or {}).items():
        options = dumped["platforms"][instance]["config"]
        for key in options.keys() & set(keys):
            options[key] = REDACTED
    for instance, model in (models or {}).items():
        platform = dumped["platforms"][instance]
        platform["config"] = redact_by_model(platform["config"], model)
    data = {
        "config_file": str(settings.config_file) if settings.config_file else None,
        "settings": redact(dumped),
    }
    if as_json:
        print_json(data)
    else:
        _console().print_json(json.dumps(data, default=str))


@contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner on a terminal; nothing when stderr is piped."""
    console = _console(stderr=True) if sys.stderr.isatty() else None
    with console.status(message) if console else nullcontext():
        yield


@contextmanager
def progress(conductor: Conductor, message: str) -> Iterator[None]:
    """Count platforms as they start, on a terminal; nothing when piped."""
    if not sys.stderr.isatty():
        yield
        return
    from ..plugins.base import PluginState, Transition

    total = len(conductor.settings.enabled_platforms())
    done = 0
    console = _console(stderr=True)
    with console.status(f"{message} (0/{total})") as spinner:

        def count(change: Transition) -> None:
            nonlocal done
            if change.target in (PluginState.ACTIVE, PluginState.FAILED):
                done += 1
                spinner.update(f"{message} ({done}/{total})")

        unsubscribe = conductor.manager.subscribe(count)
        try:
            yield
        finally:
            unsubscribe()
