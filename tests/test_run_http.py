"""``demi run --http`` end to end: a real process, real probes, SIGTERM, on both backends."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# httpx imports httpcore lazily and caches its exception classes on first use; a
# pytester.inline_run elsewhere in the suite drops modules first imported inside it,
# after which a fresh httpcore raises a ConnectError httpx no longer maps. Importing
# it here, at collection, keeps one httpcore for the whole session.
import httpcore  # noqa: F401
import httpx
import pytest
from helpers import free_port, sigterm_once
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.slow

DEMI = Path(sys.executable).with_name("demi")
BACKENDS = ["asyncio", "trio"]
#: DEMI_STOP_TIMEOUT given to the process; it must exit within this plus the margin.
STOP_TIMEOUT = 5.0
#: The HTTP server's own grace after the stop, plus slack for a loaded machine.
STOP_MARGIN = 10.0
#: How long a process may take to start answering.
START_DEADLINE = 30.0
TOKEN = "run-s3cret"


@dataclass
class Running:
    """A ``demi run --http`` process and where to reach it."""

    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        """What the process logged so far."""
        return self.log.read_text(errors="replace")


@contextmanager
def demi_run(
    tmp_path: Path, backend: str, config: str, **environment: str
) -> Iterator[Running]:
    """Start ``demi run --http`` in ``tmp_path`` with ``config`` as its demi.toml;
    kill it afterwards if the test left it running."""
    (tmp_path / "demi.toml").write_text(config, encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    env.update(
        DEMI_HEALTH_INTERVAL="0.1",
        DEMI_STOP_TIMEOUT=str(STOP_TIMEOUT),
        PYTHONUNBUFFERED="1",
        **environment,
    )
    log = tmp_path / "demi.log"
    command = [str(DEMI), "run", "--http", f"127.0.0.1:{port}", "--backend", backend]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        yield Running(process, f"http://127.0.0.1:{port}", log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def poll(
    running: Running,
    client: httpx.Client,
    path: str,
    status: int,
    deadline: float = START_DEADLINE,
) -> httpx.Response:
    """GET ``path`` until it answers ``status``; fail after ``deadline`` seconds or if
    the process dies."""
    end = time.monotonic() + deadline
    last: object = None
    while time.monotonic() < end:
        if running.process.poll() is not None:
            pytest.fail(f"demi run exited early:\n{running.output()}")
        try:
            response = client.get(path)
        except httpx.TransportError as err:
            last = err
        else:
            if response.status_code == status:
                return response
            last = response.status_code
        time.sleep(0.05)
    pytest.fail(f"{path} never answered {status} (last: {last!r}):\n{running.output()}")


def terminate(running: Running) -> tuple[int, float]:
    """Send SIGTERM; return the exit code and how long the process took to exit."""
    started = time.monotonic()
    running.process.send_signal(signal.SIGTERM)
    try:
        code = running.process.wait(timeout=STOP_TIMEOUT + STOP_MARGIN)
    except subprocess.TimeoutExpired:
        pytest.fail(f"demi run ignored SIGTERM:\n{running.output()}")
    return code, time.monotonic() - started


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` of a Prometheus exposition that carry
    ``labels`` (and maybe others, such as a restart's ``reason``)."""
    found = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]
    # A labelled child may only appear once counted; its family must exist though.
    family = re.sub(r"_(total|count|sum|bucket|created)$", "", name)
    assert found or f"# TYPE {family} " in text, f"no metric {name}"
    return sum(found)


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_http_serves_probes_and_exits_cleanly_on_sigterm(
    tmp_path: Path, backend: str
) -> None:
    """The probes answer 200 from a real process, and SIGTERM ends it with code 0
    within the stop bound."""
    config = '[platforms.main]\ndriver = "echo"\nrequired = true\n'
    with (
        demi_run(tmp_path, backend, config) as running,
        httpx.Client(base_url=running.base_url, timeout=5) as client,
    ):
        healthz = poll(running, client, "/healthz", 200)
        readyz = poll(running, client, "/readyz", 200)
        health = client.get("/health")
        metrics = client.get("/metrics")
        code, took = terminate(running)
    output = running.output()
    assert healthz.json() == {"status": "alive"}
    assert readyz.json() == {"status": "ready"}
    assert health.json()["platforms"]["main"]["state"] == "active"
    assert metric(metrics.text, "demi_platform_up", platform="main") == 1
    assert code == 0, output
    assert took < STOP_TIMEOUT + STOP_MARGIN
    assert f"demi running on {backend}" in output
    assert "SIGTERM received" in output
    assert "Traceback" not in output
    # One line for the listener: demi's, not hypercorn's "Running on ..." as well.
    assert output.count("serving http://127.0.0.1:") == 1
    assert "Running on" not in output
    assert "without a token" not in output


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_http_restarts_a_platform_that_turns_unhealthy(
    tmp_path: Path, backend: str
) -> None:
    """A required platform that turns unhealthy after N checks makes /readyz go 503,
    then 200 again once the supervisor restarted it; the restart shows in /metrics."""
    config = """
[platforms.flaky]
driver = "turns_unhealthy"
required = true
failure_threshold = 3
backoff_initial = 1.0
backoff_max = 2.0

[platforms.flaky.config]
healthy_checks = 30
sick_instances = 1

[platforms.steady]
driver = "good"
"""
    with (
        demi_run(tmp_path, backend, config, DEMI_HTTP_TOKEN=TOKEN) as running,
        httpx.Client(base_url=running.base_url, timeout=5) as client,
    ):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        poll(running, client, "/readyz", 200)
        before = client.get("/metrics", headers=auth).text
        broken = poll(running, client, "/readyz", 503)
        during = client.get("/health", headers=auth).json()
        alive = client.get("/healthz")
        poll(running, client, "/readyz", 200)
        after = client.get("/metrics", headers=auth).text
        health = client.get("/health", headers=auth).json()
        refused = client.get("/metrics")
        code, _ = terminate(running)
    output = running.output()
    assert list(broken.json()["platforms"]) == ["flaky"]
    assert "unhealthy after 30 checks" in broken.json()["platforms"]["flaky"]
    assert alive.status_code == 200
    assert during["platforms"]["steady"]["state"] == "active"
    assert during["platforms"]["steady"]["health"] == "healthy"
    assert metric(before, "demi_platform_restarts_total", platform="flaky") == 0
    assert metric(after, "demi_platform_restarts_total", platform="flaky") == 1
    assert metric(after, "demi_platform_restarts_total", platform="steady") == 0
    assert health["platforms"]["flaky"]["restarts"] == 1
    assert health["platforms"]["flaky"]["state"] == "active"
    assert refused.status_code == 401
    assert code == 0, output
    assert "Traceback" not in output


def strict_json(text: str) -> Any:
    """``text`` parsed as strict JSON: NaN and Infinity are errors, as in browsers."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "address already in use"),
        ("192.0.2.1", "cannot assign requested address"),
    ],  # fmt: skip
    ids=["in-use", "not-local"],
)
def test_an_address_that_cannot_be_bound_fails_before_anything_starts(
    tmp_path: Path, backend: str, host: str, reason: str
) -> None:
    """A port something else listens on (or an address not on this machine) is one
    line on stderr, exit 2, no platform initialized, no "serving" line."""
    marker = tmp_path / "initialized"
    (tmp_path / "demi.toml").write_text(
        f'[platforms.proof]\ndriver = "run_marker"\n'
        f"[platforms.proof.config]\nmarker = {str(marker)!r}\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        result = subprocess.run(
            [str(DEMI), "run", "--http", f"{host}:{port}", "--backend", backend],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"demi: error: cannot listen on {host}:{port}: {reason}"
    ]
    assert not marker.exists()
    assert "serving" not in result.stdout + result.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_binding_beyond_loopback_without_a_token_warns(
    tmp_path: Path, backend: str
) -> None:
    """0.0.0.0 without DEMI_HTTP_TOKEN runs, but a WARNING names the risk."""
    port = free_port()
    code, output = sigterm_once(
        tmp_path,
        ["run", "--http", f"0.0.0.0:{port}", "--backend", backend],
        "demi running",
    )
    assert code == 0, output
    assert re.search(
        rf"WARNING .*HTTP on 0\.0\.0\.0:{port} without a token \(DEMI_HTTP_TOKEN\): "
        r"anyone who can reach the port can read /health and /metrics and "
        r"restart platforms",
        output,
    ), output


@pytest.mark.parametrize("backend", BACKENDS)
def test_probes_are_strict_json_without_secrets(tmp_path: Path, backend: str) -> None:
    """A platform whose health error quotes its configured token, and one whose error
    is not a string (NaN, an arbitrary object): /readyz (no token needed) and /health
    stay strict JSON and never show the secret."""
    secret = "plugin-s3cret-value-42"
    config = f"""
[platforms.leaky]
driver = "run_secret_health"
required = true
restart = "never"
[platforms.leaky.config]
token = "{secret}"

[platforms.odd]
driver = "run_odd_health"
required = true
restart = "never"
"""
    with (
        demi_run(tmp_path, backend, config, DEMI_HTTP_TOKEN=TOKEN) as running,
        httpx.Client(base_url=running.base_url, timeout=5) as client,
    ):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        readyz = poll(running, client, "/readyz", 503)
        end = time.monotonic() + START_DEADLINE
        while set(strict_json(readyz.text)["platforms"]) != {"leaky", "odd"}:
            assert time.monotonic() < end, readyz.text
            readyz = client.get("/readyz")
        health = client.get("/health", headers=auth)
        code, _ = terminate(running)
    assert secret not in readyz.text
    assert secret not in health.text
    assert "login refused for token **********" in readyz.text
    problems = strict_json(readyz.text)["platforms"]
    assert "<opaque>" in problems["odd"]
    body = strict_json(health.text)
    assert health.status_code == 200
    assert "**********" in body["platforms"]["leaky"]["error"]
    assert body["platforms"]["odd"]["health"] == "unhealthy"
    assert secret not in running.output()
    assert code == 0, running.output()
