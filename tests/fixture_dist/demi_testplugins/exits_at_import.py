"""Raises SystemExit while being imported; stevedore lets this one escape too."""

from __future__ import annotations

from demi_testplugins._echo import HealthyEcho


class ExitsAtImportPlatform(HealthyEcho):
    """Never reached: its module exits at import."""


raise SystemExit(3)
