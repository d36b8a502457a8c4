"""Output for people (rich tables, progress on a terminal) and for machines (JSON)."""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from ..core.secrets import REDACTED, redact, redact_by_model

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.console import Console

    from ..conductor import Conductor, InstanceStatus
    from ..core.config import DemiSettings
    from ..platforms.base import PluginHealth


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def print_json(data: Any) -> None:
    """Plain JSON on stdout, one document, for machines."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def plugins_table(rows: list[dict[str, Any]], namespace: str) -> None:
    """The ``demi plugins`` table."""
    from rich.table import Table

    table = Table(title=f"Plugins in {namespace}", title_justify="left")
    for column in ("Name", "Valid", "Distribution", "Version", "Target", "Error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["name"],
            "[green]yes[/]" if row["valid"] else "[red]no[/]",
            row["distribution"] or "?",
            row["version"] or "?",
            row["target"],
            row["error"] or "",
        )
    console = _console()
    console.print(table)
    broken = sum(not row["valid"] for row in rows)
    console.print(f"{len(rows)} plugin(s), {broken} broken")


def instance_row(status: InstanceStatus, health: PluginHealth | None) -> dict[str, Any]:
    """One instance of ``demi check`` as a JSON-ready dict."""
    return {
        "instance": status.instance,
        "driver": status.driver,
        "state": status.state.value if status.state else None,
        "health": health.status.value if health else "unhealthy",
        "response_time_ms": round(health.response_time_ms, 3) if health else None,
        "error": (health.error_message if health else None) or status.error,
    }


def check_table(rows: list[dict[str, Any]], healthy: bool) -> None:
    """The ``demi check`` table."""
    from rich.table import Table

    colours = {"healthy": "green", "degraded": "yellow"}
    table = Table(title="Health", title_justify="left")
    for column in ("Instance", "Driver", "State", "Health", "Time (ms)", "Error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        colour = colours.get(row["health"], "red")
        millis = row["response_time_ms"]
        table.add_row(
            row["instance"],
            row["driver"],
            row["state"] or "-",
            f"[{colour}]{row['health']}[/]",
            f"{millis:.1f}" if millis is not None else "-",
            row["error"] or "",
        )
    console = _console()
    console.print(table)
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
