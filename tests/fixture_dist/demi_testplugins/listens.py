"""A listening platform: its ``run`` connects, sends a few messages, and records the
replies demi sends back (config ``replies``, a file: one JSON line per reply).

Config: ``count`` messages (default 3), ids ``m1``.. in conversations ``c1``..
(or all in the one ``conversation`` names);
``redeliver`` sends ``m1`` once more (a redelivery); ``then`` is ``"hold"`` (stay
connected, the default) or ``"return"`` (the connection ends: lost); ``log`` is a
file that gets one line per connection made.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import anyio
from anyio.abc import TaskStatus

from demi import InboundEvent
from demi.platforms import Inbox
from demi_testplugins._echo import HealthyEcho


class ListensPlatform(HealthyEcho):
    """Sends ``count`` messages once connected; appends each reply to a file."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        self.config = dict(config)
        return True

    async def run(
        self, inbox: Inbox, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        if "log" in self.config:
            async with await anyio.open_file(self.config["log"], "a") as log:
                await log.write("connected\n")
        # Events go out at once: readiness makes the instance active, so the
        # replies to them find it so on either backend.
        task_status.started()
        count = int(self.config.get("count", 3))
        room = self.config.get("conversation")
        for number in range(1, count + 1):
            await inbox.send(_message(number, room))
        if self.config.get("redeliver"):
            await inbox.send(_message(1, room))
        if self.config.get("then", "hold") == "return":
            await anyio.sleep(float(self.config.get("hold_for", 0.2)))
            return
        await anyio.sleep_forever()

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        if "replies" in self.config:
            async with await anyio.open_file(self.config["replies"], "a") as replies:
                await replies.write(json.dumps(dict(request)) + "\n")
        return {"sent": True}


def _message(number: int, conversation: str | None) -> InboundEvent:
    return InboundEvent(
        "message",
        {"text": f"hello {number}", "sender": "someone"},
        f"m{number}",
        conversation or f"c{number}",
    )
