"""A handler whose outcome depends on the message: "hello 1" takes 1.5 seconds and
succeeds, "hello 2" raises, "hello 3" takes longer than any test's handler_timeout;
anything else succeeds at once. Never replies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio

from demi import InboundEvent


async def dawdle(event: InboundEvent) -> Mapping[str, Any] | None:
    """Slow, failing or hanging, by the event's text."""
    text = event.data.get("text")
    if text == "hello 1":
        await anyio.sleep(1.5)
    elif text == "hello 2":
        raise RuntimeError("the handler broke on purpose")
    elif text == "hello 3":
        await anyio.sleep(60)
    return None
