"""Raises KeyboardInterrupt while being imported, as if Ctrl-C came from inside it."""

from __future__ import annotations

from demi_testplugins._echo import HealthyEcho


class InterruptsAtImportPlatform(HealthyEcho):
    """Never reached: its module raises KeyboardInterrupt at import."""


raise KeyboardInterrupt("demi_testplugins.interrupts_at_import")
