"""A listening platform whose connection ends with a PlatformFatalError once it was
established: retrying cannot help (a revoked token)."""

from __future__ import annotations

from typing import ClassVar

import anyio
from anyio.abc import TaskStatus

from demi import PlatformFatalError
from demi.platforms import Inbox
from demi_testplugins._echo import HealthyEcho


class RunFatalPlatform(HealthyEcho):
    """Connects, then fails for good: the token was revoked."""

    #: Connections made in this process.
    connections: ClassVar[int] = 0

    async def run(
        self, inbox: Inbox, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        type(self).connections += 1
        task_status.started()
        await anyio.sleep(0.05)
        raise PlatformFatalError("the service revoked the bot token")
