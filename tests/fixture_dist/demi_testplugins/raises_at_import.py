"""Raises RuntimeError while being imported."""

from __future__ import annotations

from demi_testplugins._echo import HealthyEcho


class RaisesAtImportPlatform(HealthyEcho):
    """Never reached: its module raises at import."""


raise RuntimeError("demi_testplugins.raises_at_import cannot start here")
