"""``python -m benchmarks``: run the cases, print the table, write the JSON."""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._merge import merge
from ._sandbox import Sandbox
from .cases import CASES, CaseResult, Plan
from .report import machine, markdown, table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="demi against bare stevedore and the anyio floor (issue 6).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="run every case once at N=10 (what the test suite does)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="rounds per measurement (default: 9 to 15 by case; Conductor.stop at most 3)",
    )
    parser.add_argument(
        "--cases",
        default=",".join(CASES),
        help="comma-separated case numbers to run (default: all)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON file to write (default: benchmarks/results/latest.json, "
        "or quick.json with --quick)",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        default=None,
        help="also write the table as Markdown here (a full run of every case writes "
        "benchmarks/RESULTS.md unless --no-markdown)",
    )
    parser.add_argument("--no-markdown", action="store_true")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="put the rows of the cases run into the Markdown file (default "
        "benchmarks/RESULTS.md), keeping every other case's rows as they were",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter for the child processes (not under /tmp: stevedore then "
        "never writes its cache)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where to build the sandbox (default: a temporary directory, removed)",
    )
    return parser


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _versions() -> dict[str, str]:
    found = {"demi": _demi_version()}
    for name in (
        "stevedore",
        "anyio",
        "trio",
        "pydantic",
        "pydantic-settings",
        "click",
        "rich",
    ):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def _demi_version() -> str:
    # The distribution is named demi-conductor since the rename, demi before it.
    for name in ("demi-conductor", "demi"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "missing"


def _git() -> dict[str, Any]:
    def git(*args: str) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        )
        return proc.stdout.strip() if proc.returncode == 0 else ""

    return {
        "commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "dirty": bool(git("status", "--porcelain", "--", "demi")),
    }


def _loadavg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    selected = [key.strip() for key in args.cases.split(",") if key.strip()]
    unknown = [key for key in selected if key not in CASES]
    if unknown:
        _parser().error(
            f"unknown case(s): {', '.join(unknown)}; known: {', '.join(CASES)}"
        )
    if args.merge and args.quick and args.markdown is None:
        _parser().error(
            "--merge --quick needs --markdown: quick rows never go into RESULTS.md"
        )
    plan = Plan(quick=args.quick, repeats=args.repeats)
    out_path = args.out or HERE / "results" / (
        "quick.json" if args.quick else "latest.json"
    )
    if args.python.startswith("/tmp"):
        _log(f"warning: {args.python} is under /tmp, so stevedore's cache stays cold")

    started = time.perf_counter()
    info = machine()
    info["loadavg_before"] = _loadavg()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="demi-bench-"))
    results: list[CaseResult] = []
    try:
        _log(f"sandbox in {workdir} for {args.python}")
        sandbox = Sandbox(workdir, args.python)
        for key in selected:
            results.append(CASES[key](sandbox, plan, _log))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    info["loadavg_after"] = _loadavg()

    checks = [check for result in results for check in result.checks]
    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "repeats": args.repeats,
        "cases": selected,
        "runtime_s": time.perf_counter() - started,
        "python": sys.version.split()[0],
        "python_executable": args.python,
        "machine": info,
        "versions": _versions(),
        "git": _git(),
    }
    document = {"meta": meta, "cases": {r.key: r.as_dict() for r in results}}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(document, indent=1) + "\n")

    print(table(checks))
    passed = sum(1 for check in checks if check.passed)
    failed = [check for check in checks if check.passed is False]
    print(f"\n{passed} targets met, {len(failed)} missed; JSON in {out_path}")
    md_path = args.markdown
    full = not args.quick and selected == list(CASES)
    if md_path is None and full and not args.no_markdown:
        md_path = HERE / "RESULTS.md"
    if args.merge:
        md_path = md_path or HERE / "RESULTS.md"
        md_path.write_text(merge(md_path.read_text(), checks, meta))
        print(f"Merged into {md_path}")
    elif md_path is not None:
        md_path.write_text(markdown(checks, meta))
        print(f"Markdown in {md_path}")
    # Missed targets are findings, not errors: the exit code says only that it ran.
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
