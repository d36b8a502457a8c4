"""The benchmarks cannot rot: ``python -m benchmarks --quick`` runs every case once.

Only that each case ran and produced numbers is checked; timings are never asserted
here (they are the benchmark's business, on a quiet machine, with repeats).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CASES = {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"}


@pytest.mark.slow
def test_quick_benchmarks_run_every_case_and_write_numbers(tmp_path: Path) -> None:
    """Every case appears in the JSON with at least one finite, measured check."""
    out = tmp_path / "quick.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--no-markdown",
            "--out",
            str(out),
            "--workdir",
            str(tmp_path / "sandbox"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    document = json.loads(out.read_text())
    assert document["meta"]["quick"] is True
    assert set(document["cases"]) == CASES
    for key, case in document["cases"].items():
        assert case["checks"], f"case {key} reported nothing"
        for check in case["checks"]:
            value = check["value"]
            assert isinstance(value, int | float), (key, check)
            assert math.isfinite(value) and value >= 0, (key, check)
            if check["unit"] == "x":
                assert check["subject_stats"]["n"] >= 1, (key, check)
                assert check["baseline_stats"]["median"] > 0, (key, check)


def _rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"^\| \d+ \|", line)]


def _quick_merge(tmp_path: Path, results: Path, cases: str) -> None:
    proc = subprocess.run(
        [
            sys.executable, "-m", "benchmarks", "--quick", "--cases", cases,
            "--merge", "--markdown", str(results),
            "--out", str(tmp_path / "quick.json"),
            "--workdir", str(tmp_path / "sandbox"),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.mark.slow
def test_merge_replaces_the_rows_of_the_cases_run_and_keeps_the_others(
    tmp_path: Path,
) -> None:
    """``--merge`` rewrites only the merged cases' rows, recounts the targets, and
    says once when those cases were measured, however often it is merged."""
    results = tmp_path / "RESULTS.md"
    shutil.copy(ROOT / "benchmarks" / "RESULTS.md", results)
    before = _rows(results.read_text())
    for _ in range(2):
        _quick_merge(tmp_path, results, "10")
    text = results.read_text()
    after = _rows(text)
    assert [r for r in after if not r.startswith("| 10 |")] == [
        r for r in before if not r.startswith("| 10 |")
    ]
    merged = [r for r in after if r.startswith("| 10 |")]
    assert len(merged) == 2 and all("spawn to active" in r for r in merged)
    assert text.count("Cases 10 measured ") == 1
    counts = re.search(r"## Targets \((\d+) met, (\d+) missed\)", text)
    assert counts is not None
    targets = text.split("## Targets", 1)[1].split("## For information", 1)[0]
    assert int(counts[1]) == targets.count("| PASS |")
    assert int(counts[2]) == targets.count("| FAIL |")
