"""What every case shares: the plan (how much to run), the result it returns, and
the interleaving of modes from round to round."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._stats import Check, summarize

__all__ = ["BACKENDS", "CaseResult", "Log", "Plan", "rotated", "stats"]

Log = Callable[[str], None]
BACKENDS = ("asyncio", "trio")


@dataclass(frozen=True, slots=True)
class Plan:
    """How much to run: ``quick`` runs every case once at small N."""

    quick: bool = False
    #: Overrides every case's default number of repeats.
    repeats: int | None = None

    def reps(self, default: int) -> int:
        if self.quick:
            return 1
        return self.repeats if self.repeats is not None else default

    def sizes(self, full: Sequence[int]) -> list[int]:
        return [10] if self.quick else list(full)

    def size(self, full: int) -> int:
        return 10 if self.quick else full


@dataclass(slots=True)
class CaseResult:
    """What one case measured."""

    key: str
    title: str
    checks: list[Check] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "checks": [check.as_dict() for check in self.checks],
            "data": self.data,
        }


def rotated(names: Sequence[str], round_no: int) -> list[str]:
    """``names`` in the order of round ``round_no``: each round starts one later."""
    shift = round_no % len(names)
    return [*names[shift:], *names[:shift]]


def stats(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """The summary of every series, for the JSON."""
    return {name: summarize(values).as_dict() for name, values in samples.items()}
