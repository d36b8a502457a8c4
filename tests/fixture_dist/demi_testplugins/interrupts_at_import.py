"""Importing this module raises KeyboardInterrupt, which neither stevedore nor
demi's loader turns into a load failure. Kept out of demi.platforms, in the group
that tests demi config's imports, so that no scan of demi.platforms meets it."""

from __future__ import annotations

from demi_testplugins._echo import HealthyEcho

raise KeyboardInterrupt("interrupted while importing")


class InterruptsAtImportPlatform(HealthyEcho):
    """Never defined: the import above does not finish."""
