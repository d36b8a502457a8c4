"""Raises, at import, an exception whose str() and repr() raise as well."""

from __future__ import annotations

from demi_testplugins._echo import HealthyEcho


class UnprintableError(Exception):
    """An exception no one can print."""

    def __str__(self) -> str:
        raise RuntimeError("str of UnprintableError")

    def __repr__(self) -> str:
        raise RuntimeError("repr of UnprintableError")


class UnprintableAtImportPlatform(HealthyEcho):
    """Never reached: its module raises at import."""


raise UnprintableError
