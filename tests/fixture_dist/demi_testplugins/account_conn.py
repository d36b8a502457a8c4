"""An exclusive listening platform holding one bot account's connection, for the
coordination tests: its ``run`` connects to the loopback connection counter
(tests/connection_counter.py) at ``address`` as ``account`` and holds the connection
until cancelled. A closed connection raises, so the instance fails.

Config: ``address`` (``"127.0.0.1:PORT"``) and ``account``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
from anyio.abc import TaskStatus
from pydantic import BaseModel, ConfigDict

from demi.platforms import Inbox
from demi_testplugins._echo import HealthyEcho


class AccountConfig(BaseModel):
    """Where the counter listens, and which account this instance is."""

    model_config = ConfigDict(extra="forbid")

    address: str
    account: str


class AccountConnPlatform(HealthyEcho):
    """One connection per account, exclusive because it listens (``run``)."""

    config_model = AccountConfig

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self.config = AccountConfig.model_validate(config)
        return True

    async def run(
        self, inbox: Inbox, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        host, _, port = self.config.address.rpartition(":")
        account = self.config.account
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(f"HELLO {account}\n".encode())
            # The counter counts the connection before it answers: ready only then.
            reply = b""
            while not reply.endswith(b"\n"):
                try:
                    reply += await stream.receive()
                except anyio.EndOfStream:
                    break
            if reply != b"OK\n":
                raise ConnectionError(
                    f"the counter at {self.config.address} refused account "
                    f"{account}: {reply!r}"
                )
            task_status.started()
            try:
                while True:
                    await stream.receive()
            except anyio.EndOfStream:
                raise ConnectionError(
                    f"the counter at {self.config.address} closed the connection "
                    f"of account {account}"
                ) from None
