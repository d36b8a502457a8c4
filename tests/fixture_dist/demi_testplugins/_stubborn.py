"""What the plugins that never let go share: a wait that swallows every cancellation.

Not a plugin: no entry point names this module.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import anyio


async def hold_on_forever(where: str) -> NoReturn:
    """Say on stderr that ``where`` is holding on, then wait forever, swallowing
    every cancellation (what no well-behaved plugin does)."""
    sys.stderr.write(f"{where}: holding on forever\n")
    sys.stderr.flush()
    while True:
        try:
            await anyio.sleep(3600)
        except anyio.get_cancelled_exc_class():
            pass
