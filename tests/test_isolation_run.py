"""Issue 11's hostile matrix through a real ``demi run --http`` and a real HTTP
client, on both conductor backends.

Five process-isolated platforms from a real installed distribution
(tests/fixture_dist, iso_*) segfault, call ``os._exit``, block their loop with
``time.sleep``, swallow cancellation forever, or allocate past ``memory_limit_mb``
when a request asks them to. Each is faulted over HTTP, and again after each
restart, until the intensity limit (``max_restarts``) gives up on it; meanwhile a
thread keeps asking a calm process-isolated platform and a calm in-process one and
not one request fails, ``/readyz`` stays 200 (only the calm ones are required), and
``/health``, ``/metrics`` and the log say what happened and why.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_isolation import HOSTILE
from test_run_http import BACKENDS, TOKEN, Running, demi_run, metric, poll, terminate

from demi.exceptions import PlatformTimeoutError, PlatformUnavailableError

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Restarts before the supervisor gives up on a culprit (faults: one more).
MAX_RESTARTS = 2
#: The calm instances, required: one in a child process, one in demi's.
CALM = ("calm_child", "calm_here")
#: How the request route answers the error each culprit's faulting request raises.
STATUS = {PlatformUnavailableError: 503, PlatformTimeoutError: 504}
#: A generous bound on each wait; the whole matrix takes seconds.
PATIENCE = 30.0

Platforms = dict[str, dict[str, Any]]


def config() -> str:
    """The culprits (tiny backoffs, few restarts) and the calm instances."""
    culprits = "".join(
        f"[platforms.{driver}]\ndriver = '{driver}'\nisolation = 'process'\n"
        f"memory_limit_mb = 200\nmax_restarts = {MAX_RESTARTS}\n"
        "backoff_initial = 0.01\nbackoff_max = 0.05\n"
        for driver in HOSTILE
    )
    return culprits + (
        "[platforms.calm_child]\ndriver = 'good'\nisolation = 'process'\n"
        "required = true\n"
        "[platforms.calm_here]\ndriver = 'good'\nrequired = true\n"
    )


class Load:
    """Asks both calm instances, and ``/readyz``, from a thread of its own until
    stopped; records every answer that is not the expected one."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.failures: list[str] = []
        self.not_ready: list[str] = []
        self.answered = 0
        self._stop = threading.Event()

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10, headers=AUTH) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                for name in CALM:
                    self._ask(client, name, {"n": n})
                try:
                    ready = client.get("/readyz")
                    if ready.status_code != 200:
                        self.not_ready.append(ready.text)
                except httpx.HTTPError as err:
                    self.not_ready.append(repr(err))
                time.sleep(0.01)

    def _ask(self, client: httpx.Client, name: str, request: dict[str, int]) -> None:
        try:
            answer = client.post(f"/platforms/{name}/request", json=request)
        except httpx.HTTPError as err:
            self.failures.append(f"{name}: {err!r}")
            return
        if answer.status_code == 200 and answer.json() == request:
            self.answered += 1
        else:
            self.failures.append(f"{name}: {answer.status_code} {answer.text}")

    @contextmanager
    def running(self) -> Iterator[Load]:
        """Keep asking for the block."""
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=PATIENCE)


def platforms_when(
    running: Running, client: httpx.Client, ok: Callable[[Platforms], bool]
) -> Platforms:
    """``/health``'s platforms once ``ok`` holds of them (bounded)."""
    end = time.monotonic() + PATIENCE
    while True:
        assert running.process.poll() is None, running.output()
        platforms: Platforms = client.get("/health").json()["platforms"]
        if ok(platforms):
            return platforms
        assert time.monotonic() < end, f"{platforms}\n{running.output()}"
        time.sleep(0.05)


def gauges_agree_with_health(running: Running, client: httpx.Client) -> None:
    """``/metrics`` says what ``/health`` says of every platform: up, health status
    (exactly one of the state set) and restarts. Read between two identical
    ``/health`` answers, so that nothing changed meanwhile."""

    def seen(platforms: Platforms) -> dict[str, tuple[Any, ...]]:
        return {
            name: (entry["state"], entry["health"], entry["restarts"])
            for name, entry in platforms.items()
        }

    end = time.monotonic() + PATIENCE
    while True:
        before = seen(client.get("/health").json()["platforms"])
        text = client.get("/metrics").text
        after = seen(client.get("/health").json()["platforms"])
        if before == after:
            break
        assert time.monotonic() < end, running.output()
    for name, (state, health, restarts) in after.items():
        up = metric(text, "demi_platform_up", platform=name)
        assert up == (1 if state == "active" else 0), (name, state)
        status = "demi_platform_health_status"
        assert metric(text, status, platform=name, status=health) == 1, name
        assert metric(text, status, platform=name) == 1, name
        total = metric(text, "demi_platform_restarts_total", platform=name)
        assert total == restarts, name


def serving(
    driver: str, restarts: int, other_than: int | None = None
) -> Callable[[Platforms], bool]:
    """Whether ``driver``'s platform is active after exactly ``restarts`` restarts,
    in a child other than ``other_than``."""

    def holds(platforms: Platforms) -> bool:
        entry = platforms[driver]
        return (entry["state"], entry["restarts"]) == ("active", restarts) and (
            entry["pid"] != other_than
        )

    return holds


def fault_until_given_up(running: Running, client: httpx.Client, driver: str) -> None:
    """Fault ``driver``'s platform, and again after each of its restarts, until the
    supervisor gives up on it; check /health, /metrics and readiness on the way."""
    error, reason, restart_reason = HOSTILE[driver]
    for attempt in range(MAX_RESTARTS + 1):
        platforms = platforms_when(running, client, serving(driver, attempt))
        pid = platforms[driver]["pid"]
        answer = client.post(f"/platforms/{driver}/request", json={"fault": True})
        assert answer.status_code == STATUS[error], answer.text
        if error is PlatformUnavailableError:  # a timeout's error is only that
            assert reason in answer.json()["error"]
        if attempt < MAX_RESTARTS:
            again = serving(driver, attempt + 1, other_than=pid)
            platforms = platforms_when(running, client, again)
            assert platforms[driver]["last_restart_reason"] == restart_reason
            text = client.get("/metrics").text
            restarts = "demi_platform_restarts_total"
            counted = metric(text, restarts, platform=driver, reason=restart_reason)
            assert counted == attempt + 1
        else:
            platforms = platforms_when(
                running,
                client,
                lambda p: (
                    p[driver]["gave_up"] is not None and p[driver]["state"] == "failed"
                ),
            )
            assert platforms[driver]["restarts"] == MAX_RESTARTS
        for name in CALM:
            assert platforms[name]["state"] == "active", platforms[name]
            assert platforms[name]["restarts"] == 0
        gauges_agree_with_health(running, client)


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_hostile_platform_fails_alone_until_it_is_given_up(
    tmp_path: Path, backend: str
) -> None:
    """One demi run with the five culprits and the two calm instances; the
    culprits are faulted one after the other under the calm instances' load."""
    with (
        demi_run(
            tmp_path, backend, config(), DEMI_HTTP_TOKEN=TOKEN,
            DEMI_REQUEST_TIMEOUT="1",
        ) as running,
        httpx.Client(base_url=running.base_url, timeout=10, headers=AUTH) as client,
    ):  # fmt: skip
        poll(running, client, "/readyz", 200)
        platforms_when(
            running, client, lambda p: all(e["state"] == "active" for e in p.values())
        )
        with Load(running.base_url).running() as load:
            for driver in HOSTILE:
                fault_until_given_up(running, client, driver)
        final = client.get("/health").json()
        code, _ = terminate(running)
    assert load.failures == []
    assert load.not_ready == []
    assert load.answered > 2 * len(HOSTILE)  # it kept asking throughout
    assert final["ready"] is True
    assert code == 0, running.output()
    for name in CALM:
        assert final["platforms"][name]["health"] == "healthy"
    log = running.output()
    for driver, (_, reason, _) in HOSTILE.items():
        # Why it failed, each time, and that the limit gave up on it.
        failed = rf"platform {driver}: failed \(.*{re.escape(reason)}.*\); restarting"
        assert len(re.findall(failed, log)) == MAX_RESTARTS, log
        gave_up = f"platform {driver}: gave up after {MAX_RESTARTS} restart(s)"
        assert gave_up in log, log
