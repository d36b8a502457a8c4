"""Raises AssertionError while being imported; stevedore lets this one escape."""

from __future__ import annotations

from demi_testplugins._echo import HealthyEcho


class AssertsAtImportPlatform(HealthyEcho):
    """Never reached: its module fails an assertion at import."""


# Raised rather than asserted, so that python -O still fails.
raise AssertionError("demi_testplugins.asserts_at_import failed a check")
