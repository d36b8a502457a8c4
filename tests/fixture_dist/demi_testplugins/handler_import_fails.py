"""A handler module whose import fails."""

from __future__ import annotations

import demi_testplugins_no_such_module  # noqa: F401


async def handler(event: object) -> None:
    return None
