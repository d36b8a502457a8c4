"""Platforms that raise SystemExit from one lifecycle call each.

SystemExit is not an Exception: code that catches only Exception lets it end the
process (see _bex for the shapes).
"""

from __future__ import annotations

from demi_testplugins import _bex


def _error() -> BaseException:
    return SystemExit(3)


class ConstructRaises(_bex.ConstructRaises):
    error = staticmethod(_error)


class InitializeRaises(_bex.InitializeRaises):
    error = staticmethod(_error)


class HealthCheckRaises(_bex.HealthCheckRaises):
    error = staticmethod(_error)


class HandleRequestRaises(_bex.HandleRequestRaises):
    error = staticmethod(_error)


class ShutdownRaises(_bex.ShutdownRaises):
    error = staticmethod(_error)
