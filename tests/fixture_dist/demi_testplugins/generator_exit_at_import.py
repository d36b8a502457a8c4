"""Raises GeneratorExit while being imported."""

from __future__ import annotations

from demi_testplugins._echo import HealthyEcho


class GeneratorExitAtImportPlatform(HealthyEcho):
    """Never reached: its module raises GeneratorExit at import."""


raise GeneratorExit("demi_testplugins.generator_exit_at_import")
