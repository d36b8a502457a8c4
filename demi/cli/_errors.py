"""The command line's own errors, and the exit code each stands for."""

from __future__ import annotations

from ..exceptions import DemiError

__all__ = ["NothingDone", "UsageProblem"]


class UsageProblem(DemiError):
    """Bad input on the command line (JSON, an instance name): exit code 2."""


class NothingDone(DemiError):
    """The command had nothing to check or answer: exit code 1, never success."""
