"""Imports a module that is not installed: ModuleNotFoundError at import."""

from __future__ import annotations

import demi_testplugins_missing_dependency  # noqa: F401

from demi_testplugins._echo import HealthyEcho


class ImportFailsPlatform(HealthyEcho):
    """Never reached: its module cannot be imported."""
