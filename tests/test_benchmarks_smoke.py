"""The benchmarks cannot rot: ``python -m benchmarks --quick`` runs every case once.

Only that each case ran and produced numbers is checked; timings are never asserted
here (they are the benchmark's business, on a quiet machine, with repeats).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CASES = {"1", "2", "3", "4", "5", "6", "7", "8", "9"}


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
