"""Imports a module that is not installed: ModuleNotFoundError at import."""

from __future__ import annotations

import demi_testplugins_missing_dependency  # type: ignore[import-not-found]  # noqa: F401 (the fault under test)

from demi_testplugins._echo import HealthyEcho


class ImportFailsPlatform(HealthyEcho):
    """Never reached: its module cannot be imported."""
