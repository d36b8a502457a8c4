"""A handler module whose import fails."""

from __future__ import annotations

import demi_testplugins_no_such_module  # type: ignore[import-not-found]  # noqa: F401  (the fault)


async def handler(event: object) -> None:
    return None
