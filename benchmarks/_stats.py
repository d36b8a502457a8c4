"""Medians, spreads and the comparisons a case reports."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Check", "Summary", "compare", "summarize"]


@dataclass(frozen=True, slots=True)
class Summary:
    """Median and spread of repeated measurements."""

    n: int
    median: float
    q1: float
    q3: float
    min: float
    max: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _quartiles(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


def summarize(values: Sequence[float]) -> Summary:
    """Median, interquartile range and extremes of ``values``."""
    if not values:
        raise ValueError("no measurements")
    ordered = sorted(values)
    q1, q3 = _quartiles(ordered)
    return Summary(
        n=len(ordered),
        median=statistics.median(ordered),
        q1=q1,
        q3=q3,
        min=ordered[0],
        max=ordered[-1],
    )


@dataclass(slots=True)
class Check:
    """One line of the results table: a subject against a baseline, or a value
    against a limit.

    ``value`` is the ratio of medians (``unit == "x"``) or the measured value itself
    (for example bytes). ``passed`` is ``None`` when no target applies.
    """

    case: str
    label: str
    subject: str
    baseline: str | None
    unit: str
    value: float
    target: float | None
    subject_stats: Summary | None = None
    baseline_stats: Summary | None = None
    #: Spread of the per-round ratios (rounds are interleaved, so each pairs a
    #: subject run with the baseline run next to it): q1, q3.
    paired: tuple[float, float] | None = None
    note: str = ""
    passed: bool | None = field(init=False)

    def __post_init__(self) -> None:
        self.passed = None if self.target is None else self.value <= self.target

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "case": self.case,
            "label": self.label,
            "subject": self.subject,
            "baseline": self.baseline,
            "unit": self.unit,
            "value": self.value,
            "target": self.target,
            "passed": self.passed,
            "note": self.note,
            "paired_ratio_iqr": list(self.paired) if self.paired else None,
        }
        if self.subject_stats is not None:
            out["subject_stats"] = self.subject_stats.as_dict()
        if self.baseline_stats is not None:
            out["baseline_stats"] = self.baseline_stats.as_dict()
        return out


def compare(
    case: str,
    label: str,
    subject: tuple[str, Sequence[float]],
    baseline: tuple[str, Sequence[float]],
    target: float | None,
    note: str = "",
) -> Check:
    """The ratio of the medians of two interleaved series, with the spread of the
    per-round ratios."""
    (s_name, s_values), (b_name, b_values) = subject, baseline
    s_sum, b_sum = summarize(s_values), summarize(b_values)
    paired = None
    if len(s_values) == len(b_values):
        ratios = sorted(s / b for s, b in zip(s_values, b_values, strict=True) if b)
        if ratios:
            paired = _quartiles(ratios)
    return Check(
        case=case,
        label=label,
        subject=s_name,
        baseline=b_name,
        unit="x",
        value=s_sum.median / b_sum.median,
        target=target,
        subject_stats=s_sum,
        baseline_stats=b_sum,
        paired=paired,
        note=note,
    )
