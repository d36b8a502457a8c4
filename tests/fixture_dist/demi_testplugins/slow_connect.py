"""A listening platform that takes a while to connect (config ``connect_after``
seconds) and whose health check is always unhealthy: until it is connected, demi must
neither check it nor restart it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import anyio
from anyio.abc import TaskStatus

from demi.platforms import HealthStatus, Inbox, PluginHealth
from demi_testplugins._echo import HealthyEcho


class SlowConnectPlatform(HealthyEcho):
    """Connected ``connect_after`` seconds after ``run`` starts; never healthy."""

    #: Health checks run in this process.
    checks: ClassVar[int] = 0

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self.connect_after = float(config.get("connect_after", 1.0))
        return True

    async def run(
        self, inbox: Inbox, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        await anyio.sleep(self.connect_after)
        task_status.started()
        await anyio.sleep_forever()

    async def health_check(self) -> PluginHealth:
        type(self).checks += 1
        return PluginHealth(HealthStatus.UNHEALTHY, error_message="never healthy")
