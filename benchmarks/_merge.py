"""``--merge``: put the rows of some cases into an existing results file, keeping
every other case's rows as they were measured, and say when the merged ones were."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ._stats import Check
from .report import markdown

__all__ = ["merge"]

_TARGETS = re.compile(r"^## Targets \(\d+ met, \d+ missed\)$")


def _tables(text: str) -> tuple[list[str], list[list[str]]]:
    """The lines of ``text`` with each table's body rows replaced by one
    placeholder line (``"\\0"``) after its header, and the rows of each table
    (none for a table without rows)."""
    lines: list[str] = []
    tables: list[list[str]] = []
    for line in text.splitlines():
        if re.match(r"^\| \d+ \|", line):
            tables[-1].append(line)
            continue
        lines.append(line)
        if line.startswith("|---"):  # a header's rule: the rows come next
            lines.append("\0")
            tables.append([])
    return lines, tables


def _case(row: str) -> int:
    return int(row.split("|")[1].strip())


def merge(existing: str, checks: Sequence[Check], meta: dict[str, Any]) -> str:
    """``existing`` (a results file that :func:`~benchmarks.report.markdown`
    wrote) with the rows of ``meta["cases"]`` replaced by ``checks``' rows, the
    count of targets met redone, and a line saying when those cases were measured.
    """
    cases = {int(key) for key in meta["cases"]}
    _, fresh = _tables(markdown(checks, meta))
    lines, old = _tables(existing)
    if len(old) != 2 or len(fresh) != 2:
        raise ValueError("not a results file: expected a targets and an info table")
    merged = [
        sorted(
            [row for row in before if _case(row) not in cases] + new,
            key=_case,
        )
        for before, new in zip(old, fresh, strict=True)
    ]
    met = sum(1 for row in merged[0] if row.rstrip().endswith("| PASS |"))
    missed = sum(1 for row in merged[0] if row.rstrip().endswith("| FAIL |"))
    keys = ",".join(meta["cases"])
    options = (" --quick" if meta["quick"] else "") + (
        f" --repeats {meta['repeats']}" if meta["repeats"] else ""
    )
    note = (
        f"Cases {keys} measured {meta['date']} with `python -m benchmarks --cases "
        f"{keys}{options}` in {meta['runtime_s']:.0f} s (load average "
        f"{meta['machine']['loadavg_before']} before, "
        f"{meta['machine']['loadavg_after']} after), demi commit "
        f"{meta['git']['commit']}"
        + (" with uncommitted changes" if meta["git"]["dirty"] else "")
        + ", and merged into this file (`--merge`)."
    )
    out: list[str] = []
    tables = iter(merged)
    replaced = False
    for line in lines:
        if replaced and not line:
            replaced = False
            continue  # the blank line after the previous merge's note
        replaced = line.startswith(f"Cases {keys} measured ")
        if replaced:
            continue  # the previous merge of the same cases
        if line == "\0":
            out.extend(next(tables))
        elif _TARGETS.match(line):
            out.append(f"## Targets ({met} met, {missed} missed)")
        elif line.startswith("Each cell is the median"):
            out.extend([note, "", line])
        else:
            out.append(line)
    return "\n".join(out) + "\n"
