"""The results table (terminal and Markdown) and the machine description."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from ._stats import Check, Summary

__all__ = ["machine", "markdown", "rows", "table"]

HEADERS = (
    "case",
    "measurement",
    "subject",
    "baseline",
    "ratio / value",
    "target",
    "result",
)


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(stats: Summary | None) -> str:
    if stats is None:
        return ""
    return f"{_num(stats.median)} [{_num(stats.q1)}-{_num(stats.q3)}]"


def _measurement(check: Check) -> str:
    what = f"{check.label}: {check.subject}"
    if check.baseline:
        what += f" vs {check.baseline}"
    return f"{what}; {check.note}" if check.note else what


def _value(check: Check) -> str:
    if check.unit == "x":
        spread = ""
        if check.paired is not None:
            spread = f" [{check.paired[0]:.2f}-{check.paired[1]:.2f}]"
        return f"{check.value:.2f}x{spread}"
    return f"{_num(check.value)} {check.unit}"


def _target(check: Check) -> str:
    if check.target is None:
        return ""
    return f"<= {check.target:g}{'x' if check.unit == 'x' else ' ' + check.unit}"


def _result(check: Check) -> str:
    if check.passed is None:
        return "info"
    return "PASS" if check.passed else "FAIL"


def rows(checks: Iterable[Check]) -> list[tuple[str, ...]]:
    """One tuple of cells per check."""
    out: list[tuple[str, ...]] = []
    for check in checks:
        out.append(
            (
                check.case,
                _measurement(check),
                _cell(check.subject_stats),
                _cell(check.baseline_stats),
                _value(check),
                _target(check),
                _result(check),
            )
        )
    return out


def table(checks: Sequence[Check]) -> str:
    """A plain-text table for the terminal."""
    body = rows(checks)
    widths = [max(len(row[i]) for row in [HEADERS, *body]) for i in range(len(HEADERS))]
    lines = [
        "  ".join(
            cell.ljust(width) for cell, width in zip(HEADERS, widths, strict=True)
        )
    ]
    lines.append("  ".join("-" * width for width in widths))
    for row in body:
        lines.append(
            "  ".join(
                cell.ljust(width) for cell, width in zip(row, widths, strict=True)
            )
        )
    return "\n".join(line.rstrip() for line in lines)


def _markdown_table(checks: Sequence[Check]) -> list[str]:
    lines = [
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" for _ in HEADERS) + "|",
    ]
    for row in rows(checks):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return lines


def markdown(checks: Sequence[Check], meta: dict[str, Any]) -> str:
    """The latest results as Markdown: how they were measured, the measurements with
    a target, then the ones shown for information."""
    info = meta["machine"]
    passed = sum(1 for c in checks if c.passed)
    failed = sum(1 for c in checks if c.passed is False)
    lines = [
        "# Benchmark results",
        "",
        f"Measured {meta['date']} with `python -m benchmarks"
        f"{' --repeats ' + str(meta['repeats']) if meta['repeats'] else ''}` "
        f"in {meta['runtime_s']:.0f} s on {info['cpu']} ({info['nproc']} CPUs; load "
        f"average {info['loadavg_before']} before, {info['loadavg_after']} after), "
        f"{info['os']}, Python {meta['python']} ({meta['python_executable']}).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
        f"demi commit {meta['git']['commit']}"
        + (" with uncommitted changes" if meta["git"]["dirty"] else "")
        + ".",
        "",
        "Each cell is the median with the interquartile range in brackets. The ratio "
        "is the ratio of the medians, with the interquartile range of the per-round "
        "ratios (rounds are interleaved). The machine is shared, so read the ratios, "
        "not the absolute times. CPU rows are the CPU time of the same runs, which "
        "waiting for a busy core does not inflate.",
        "",
        f"## Targets ({passed} met, {failed} missed)",
        "",
        *_markdown_table([c for c in checks if c.target is not None]),
        "",
        "## For information",
        "",
        *_markdown_table([c for c in checks if c.target is None]),
        "",
    ]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    lscpu = ""
    if shutil.which("lscpu"):
        proc = subprocess.run(["lscpu"], capture_output=True, text=True, check=False)
        lscpu = "\n".join(proc.stdout.splitlines()[:10])
    cpu = platform.processor() or platform.machine()
    for line in lscpu.splitlines():
        if line.startswith("Model name:"):
            cpu = line.split(":", 1)[1].strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "lscpu": lscpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
    }
