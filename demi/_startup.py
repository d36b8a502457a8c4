"""What the conductor checks before anything starts: every instance names an
installed driver, and gives it a configuration it accepts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio

from .core.config import DemiSettings, PlatformSettings
from .core.prepare import prepare_config
from .exceptions import ConfigError, DemiError
from .plugins.manager import PluginManager

__all__ = ["check_configs", "check_drivers"]


def check_drivers(
    manager: PluginManager,
    settings: DemiSettings,
    specs: Mapping[str, PlatformSettings],
) -> None:
    """Every instance names an installed driver.

    :raises ConfigError: naming the instance, the driver and where it came from.
    """
    known = set(manager.known_names())
    for name, spec in specs.items():
        if spec.driver not in known:
            raise ConfigError(
                f"invalid configuration: platforms.{name}.driver: unknown driver "
                f"{spec.driver!r}; installed: {', '.join(sorted(known)) or 'none'} "
                f"(from {settings.source_of('platforms', name, 'driver')})"
            )


async def check_configs(
    manager: PluginManager,
    settings: DemiSettings,
    specs: Mapping[str, PlatformSettings],
) -> None:
    """Validate every instance's driver configuration before anything starts: a
    value the driver rejects is the operator's error (a ConfigError naming
    ``platforms.NAME.config.FIELD`` and its source), not a platform failure.

    A driver that cannot be imported, or whose validator itself breaks, is
    skipped here: that is the plugin's failure, recorded when it starts. A driver
    only process-isolated instances use is never imported here (a crash at its
    import must not end demi): its child checks their configuration as it starts.
    """
    drivers: dict[str, Any] = {}
    in_process = {s.driver for s in specs.values() if s.isolation == "inproc"}

    async def resolve(driver: str) -> None:
        with anyio.move_on_after(settings.init_timeout):
            try:
                drivers[driver] = await manager.resolve_driver(driver)
            except DemiError:
                pass

    async with anyio.create_task_group() as group:
        for driver in {spec.driver for spec in specs.values()}:
            if driver in manager.registry:
                drivers[driver] = manager.registry[driver]
            elif driver in in_process:
                group.start_soon(resolve, driver)
    for name, spec in specs.items():
        plugin = drivers.get(spec.driver)
        if plugin is None or plugin.config_model is None:
            continue
        try:
            prepare_config(
                plugin.config_model, spec.config, instance=name, settings=settings
            )
        except ConfigError:
            raise
        except Exception:
            pass
