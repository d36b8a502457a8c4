"""Imports cleanly, but has no NoSuchPlatform: the entry point names a missing attribute."""

from __future__ import annotations

from demi_testplugins._echo import HealthyEcho


class OtherPlatform(HealthyEcho):
    """A valid platform, but not the one the entry point names."""
