"""shutdown raises OSError."""

from __future__ import annotations

from demi_testplugins._echo import HealthyEcho


class ShutdownRaisesPlatform(HealthyEcho):
    """shutdown raises OSError."""

    async def shutdown(self) -> None:
        raise OSError("socket already closed")
