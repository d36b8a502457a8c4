"""demi's pytest plugin, registered through the ``pytest11`` entry point as ``demi``.

It declares the ``demi_conformance`` marker that every test of
:class:`~demi.testing.PlatformConformance` carries, so a suite run with
``--strict-markers`` accepts them and ``-m demi_conformance`` selects them.
"""

from __future__ import annotations

import pytest

__all__ = ["pytest_configure"]


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``demi_conformance`` marker."""
    config.addinivalue_line(
        "markers",
        "demi_conformance: a check of demi's platform conformance kit "
        "(demi.testing.PlatformConformance)",
    )
