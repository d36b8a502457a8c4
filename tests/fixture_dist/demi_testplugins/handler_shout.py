"""A handler: replies with the text in capitals (tests/test_handlers.py)."""

from __future__ import annotations

from typing import Any


async def shout(event: Any) -> dict[str, Any]:
    return {"text": str(event.data["text"]).upper(), "conversation": event.conversation}
