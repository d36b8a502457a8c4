"""``demi run`` says how start-up went in one line, its failed list bounded, and
while start-up lasts a line every few seconds with how many platforms are up.

Real processes on both backends, with the installed fixture plugins: ``slow_init``
(initialize takes seconds, then succeeds) and ``init_raises`` (fails).
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from test_run_stop import Demi, running_demi

from demi.cli._startup_report import MAX_NAMED, PROGRESS_EVERY

pytestmark = pytest.mark.slow

BACKENDS = ["asyncio", "trio"]


def _config(tmp_path: Path, text: str) -> None:
    (tmp_path / "demi.toml").write_text(text, encoding="utf-8")


def _stop(demi: Demi) -> str:
    demi.send(signal.SIGTERM)
    assert demi.process.wait(timeout=30) == 0, demi.output()
    return demi.output()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_slow_start_up_reports_progress_then_one_summary_line(
    tmp_path: Path, backend: str
) -> None:
    slow = PROGRESS_EVERY + 1.5
    _config(
        tmp_path,
        '[platforms.quick]\ndriver = "good"\n'
        f'[platforms.slow]\ndriver = "slow_init"\nconfig = {{ seconds = {slow} }}\n'
        '[platforms.broken]\ndriver = "init_raises"\n',
    )
    with running_demi(tmp_path, ["run", "--backend", backend]) as demi:
        demi.wait_for("demi running on", deadline=60)
        output = _stop(demi)
    progress = re.findall(r"starting: (\d+) of 3 platforms up, (\d+) failed", output)
    # quick is up and broken has failed long before slow is: the line says so.
    assert ("1", "1") in progress, output
    summaries = re.findall(r"started .*", output)
    assert len(summaries) == 1, output
    found = re.fullmatch(
        r"started 2 of 3 platforms in (\d+\.\d) s; failed: broken", summaries[0]
    )
    assert found, summaries[0]
    assert slow <= float(found[1]) < 60
    # Progress lines come before the summary, none after.
    assert output.rindex("starting: ") < output.index("started 2 of 3")


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_failed_list_names_the_first_ten_then_how_many_more(
    tmp_path: Path, backend: str
) -> None:
    failing = [f"broken-{n:02d}" for n in range(MAX_NAMED + 4)]
    _config(
        tmp_path,
        '[platforms.fine]\ndriver = "good"\n'
        + "".join(f'[platforms.{name}]\ndriver = "init_raises"\n' for name in failing),
    )
    with running_demi(tmp_path, ["run", "--backend", backend]) as demi:
        demi.wait_for("demi running on", deadline=60)
        output = _stop(demi)
    line = next(line for line in output.splitlines() if "started " in line)
    summary = line[line.index("started ") :]
    assert summary.startswith(f"started 1 of {len(failing) + 1} platforms in ")
    listed = summary.partition("; failed: ")[2]
    names, _, more = listed.rpartition(" and ")
    assert more == "4 more", summary
    shown = names.split(", ")
    assert len(shown) == MAX_NAMED and set(shown) < set(failing), summary
    # The "running" line is bounded the same way.
    running = next(line for line in output.splitlines() if "demi running on" in line)
    assert running.endswith(" and 5 more"), running
