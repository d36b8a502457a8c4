"""isolation: reads address 0 (SIGSEGV) while being imported. In a group of its
own (demi_testplugins.crashy): a scan of it would end the scanning process."""

from __future__ import annotations

import ctypes

from ._echo import HealthyEcho


class CrashesAtImportPlatform(HealthyEcho):
    """Never reached: its module crashes at import."""


ctypes.string_at(0)
