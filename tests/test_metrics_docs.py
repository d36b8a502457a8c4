"""docs/operations.md's metrics table and what ``/metrics`` of a real ``demi run
--http`` exposes agree: every metric the exposition has is in the table with its
type, every metric in the table is exposed, and no ``_created`` series is."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_run_http import BACKENDS, demi_run, poll, terminate

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
# A histogram's samples, besides the documented name itself.
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def documented() -> dict[str, str]:
    """The metrics table of docs/operations.md: name to type (its first word)."""
    section = DOCS.read_text().split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(demi_\w+)` \| (\w+)", section, flags=re.MULTILINE)
    assert rows, "no metrics table under ## Metrics"
    return dict(rows)


def _exposition(text: str) -> tuple[dict[str, str], set[str]]:
    """The ``# TYPE`` lines (name to type) and every sample's name."""
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))
    samples = {
        sample.name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return types, samples


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_metrics_table_lists_every_series_metrics_exposes(
    tmp_path: Path, backend: str
) -> None:
    replies = tmp_path / "replies.jsonl"
    # A listening platform answered by the echo handler: its replies are requests
    # dispatched inside the process, so every metric has samples.
    config = (
        "[platforms.chat]\n"
        'driver = "listens"\n'
        f"config = {{ replies = {json.dumps(str(replies))} }}\n"
        "[platforms.plain]\n"
        'driver = "echo"\n'
    )
    with (
        demi_run(tmp_path, backend, config, DEMI_HANDLER="echo") as running,
        httpx.Client(base_url=running.base_url, timeout=5) as client,
    ):
        poll(running, client, "/readyz", 200)
        deadline = time.monotonic() + 30
        while True:
            text = client.get("/metrics").text
            if 'demi_request_duration_seconds_count{platform="chat"} 3.0' in text:
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
        code, _ = terminate(running)
    assert code == 0, running.output()
    table = documented()
    types, samples = _exposition(text)
    assert types == table
    assert not [name for name in samples if name.endswith("_created")]
    for name in samples:
        family = next(
            (name.removesuffix(s) for s in HISTOGRAM_SUFFIXES if name.endswith(s)),
            name,
        )
        assert family in table, name
    # Every documented metric has samples here, not only a TYPE line.
    assert {
        name
        for name in table
        if name not in samples
        and not any(name + suffix in samples for suffix in HISTOGRAM_SUFFIXES)
    } == set()
