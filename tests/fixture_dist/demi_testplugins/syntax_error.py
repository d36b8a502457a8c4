"""Does not compile: SyntaxError at import (a module-level return).

The error is one CPython reports when compiling, not a parse error, so that ruff and
ruff format can still read the file.
"""

from __future__ import annotations

from demi_testplugins._echo import HealthyEcho


class SyntaxErrorPlatform(HealthyEcho):
    """Never reached: its module does not compile."""


return None  # type: ignore[misc]  # noqa: F706 (the fault under test)
