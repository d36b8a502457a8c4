"""A platform that turns unhealthy after a number of checks; a restart heals it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from demi.platforms import HealthStatus, PluginHealth
from demi_testplugins._echo import HealthyEcho


class TurnsUnhealthyPlatform(HealthyEcho):
    """Healthy for ``healthy_checks`` checks, then unhealthy for good.

    Only the first ``sick_instances`` instances of the process fall ill (default 1),
    so the fresh instance a restart makes stays healthy.
    """

    started: ClassVar[int] = 0

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        cls = type(self)
        cls.started += 1
        self.generation = cls.started
        self.healthy_checks = int(config.get("healthy_checks", 3))
        self.sick = self.generation <= int(config.get("sick_instances", 1))
        self.checks = 0
        return True

    async def health_check(self) -> PluginHealth:
        self.checks += 1
        if self.sick and self.checks > self.healthy_checks:
            return PluginHealth(
                status=HealthStatus.UNHEALTHY,
                error_message=f"unhealthy after {self.healthy_checks} checks",
            )
        return PluginHealth(status=HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {"generation": self.generation, **request}
