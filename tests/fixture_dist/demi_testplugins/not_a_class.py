"""The entry point names a factory function, not a platform class."""

from __future__ import annotations

from demi.platforms import BasePlatform
from demi_testplugins._echo import HealthyEcho


class _HiddenPlatform(HealthyEcho):
    pass


def make_platform() -> BasePlatform:
    """Build a platform: useful, but the manager wants the class itself."""
    return _HiddenPlatform()
