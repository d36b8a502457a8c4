"""``demi run --http`` with inbound events, end to end: the inbound metrics and
``/health`` fields of a listening platform, and ``POST /platforms/NAME/webhook``
reaching a webhook platform without demi's bearer token (a real process, real
hypercorn, httpx, installed fixture plugins)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from test_run_http import BACKENDS, TOKEN, Running, demi_run, metric, poll, terminate

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "hook-s3cret"


def wait_for(
    running: Running, condition: Callable[[], bool], what: str, deadline: float = 30
) -> None:
    """Poll ``condition`` until it holds; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not condition():
        if running.process.poll() is not None:
            pytest.fail(f"demi run exited early:\n{running.output()}")
        if time.monotonic() > end:
            pytest.fail(f"never saw {what}:\n{running.output()}")
        time.sleep(0.05)


@pytest.mark.parametrize("backend", BACKENDS)
def test_inbound_metrics_and_health_tell_the_truth(
    tmp_path: Path, backend: str
) -> None:
    """Three messages in one conversation plus a redelivery of the first; the
    ``dawdle`` handler takes 1.5 s over the first (the other two wait: depth), fails
    the second and outlives the timeout on the third. Then the connection ends and
    stays down (restart = "never"): connected goes to 0."""
    config = """
[platforms.chat]
driver = "listens"
restart = "never"

[platforms.chat.config]
count = 3
redeliver = true
conversation = "room"
then = "return"
hold_for = 6.0
"""
    seen: dict[str, float] = {"depth": 0, "connected": 0}
    with (
        demi_run(
            tmp_path, backend, config, DEMI_HTTP_TOKEN=TOKEN, DEMI_HANDLER="dawdle",
            DEMI_HANDLER_TIMEOUT="3",
        ) as running,
        httpx.Client(base_url=running.base_url, timeout=5, headers=AUTH) as client,
    ):  # fmt: skip
        first = poll(running, client, "/metrics", 200).text

        def handled_all() -> bool:
            text = client.get("/metrics").text
            seen["depth"] = max(
                seen["depth"], metric(text, "demi_inbox_depth", platform="chat")
            )
            seen["connected"] = max(
                seen["connected"],
                metric(text, "demi_platform_connected", platform="chat"),
            )
            return metric(text, "demi_events_handled_total", platform="chat") == 3

        wait_for(running, handled_all, "three events handled")
        handled = client.get("/metrics").text
        wait_for(
            running,
            lambda: metric(client.get("/metrics").text, "demi_platform_connected",
                           platform="chat") == 0,
            "the connection lost",
        )  # fmt: skip
        health = client.get("/health").json()["platforms"]["chat"]
        code, _ = terminate(running)
    output = running.output()
    assert code == 0, output
    # Seeded: every series exists from the first scrape.
    for outcome in ("ok", "error", "timeout"):
        assert (
            "demi_events_handled_total{" + f'outcome="{outcome}",platform="chat"}}'
        ) in first
    assert 'demi_events_duplicate_total{platform="chat"}' in first

    def count(name: str, **labels: str) -> float:
        return metric(handled, name, platform="chat", **labels)

    assert count("demi_events_received_total") == 3
    assert count("demi_events_duplicate_total") == 1
    assert count("demi_events_handled_total", outcome="ok") == 1
    assert count("demi_events_handled_total", outcome="error") == 1
    assert count("demi_events_handled_total", outcome="timeout") == 1
    assert count("demi_event_handler_duration_seconds_count") == 3
    assert (
        count("demi_event_handler_duration_seconds_sum") >= 4.4
    )  # 1.5 s + the 3 s bound
    assert count("demi_inbox_depth") == 0
    assert seen["depth"] >= 1  # two waited behind the first in their conversation
    assert seen["connected"] == 1
    assert health["connected"] is False and health["inbox_depth"] == 0
    assert health["state"] == "failed"
    assert "connection lost" in (health["error"] or "")
    # A handler failure is logged with the event id.
    assert "m2" in output and "m3" in output


def sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    """The headers the ``webhook_hmac`` platform's service would send."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Signature": digest, "Content-Type": "application/json"}


def replies_of(path: Path) -> list[dict[str, object]]:
    """The replies the webhook platform recorded so far."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_webhook_reaches_the_handler_without_demis_token(
    tmp_path: Path, backend: str
) -> None:
    replies = tmp_path / "replies.jsonl"
    config = f"""
[platforms.hook]
driver = "webhook_hmac"

[platforms.hook.config]
secret = "{SECRET}"
replies = {json.dumps(str(replies))}

[platforms.plain]
driver = "good"
"""
    body = json.dumps({"id": "u1", "text": "hi there", "conversation": "room"}).encode()
    with (
        demi_run(tmp_path, backend, config, DEMI_HTTP_TOKEN=TOKEN,
                 DEMI_HANDLER="echo") as running,
        httpx.Client(base_url=running.base_url, timeout=5) as client,
    ):  # fmt: skip
        poll(running, client, "/readyz", 200)
        good = client.post("/platforms/hook/webhook?source=test", content=body,
                           headers=sign(body))  # fmt: skip
        wait_for(running, lambda: bool(replies_of(replies)), "the echo reply")
        again = client.post("/platforms/hook/webhook", content=body, headers=sign(body))
        forged = client.post(
            "/platforms/hook/webhook", content=body, headers=sign(body, "wrong")
        )
        broken = client.post("/platforms/hook/webhook", content=b"boom",
                             headers=sign(b"boom"))  # fmt: skip
        unknown = client.post("/platforms/nobody/webhook", content=body)
        no_hooks = client.post("/platforms/plain/webhook", content=body)
        huge = b"x" * (1024 * 1024 + 1)
        too_big = client.post(
            "/platforms/hook/webhook", content=huge, headers=sign(huge)
        )
        # Every other route still wants the token.
        health = client.get("/health")
        restart = client.post("/platforms/hook/restart")
        metrics = client.get("/metrics", headers=AUTH).text
        hook_health = client.get("/health", headers=AUTH).json()["platforms"]["hook"]
        code, _ = terminate(running)
    output = running.output()
    assert code == 0, output
    assert good.status_code == 200, good.text
    assert good.json() == {"ok": True, "accepted": True, "query": {"source": "test"}}
    assert good.headers["x-handled-by"] == "webhook_hmac"
    assert good.headers["content-type"].startswith("application/json")
    assert replies_of(replies) == [{"text": "hi there", "conversation": "room"}]
    assert again.status_code == 200 and again.json()["accepted"] is False  # redelivery
    assert forged.status_code == 401 and forged.json() == {"error": "bad signature"}
    assert broken.status_code == 502
    assert "the platform broke" not in broken.text  # details go to the log only
    assert "the platform broke on this callback" in output
    assert unknown.status_code == 404
    assert no_hooks.status_code == 404
    assert too_big.status_code == 413
    assert health.status_code == 401 and restart.status_code == 401
    assert metric(metrics, "demi_events_received_total", platform="hook") == 1
    assert metric(metrics, "demi_events_duplicate_total", platform="hook") == 1
    # Only listening platforms have a connection to show.
    assert 'demi_platform_connected{platform="hook"}' not in metrics
    assert hook_health["connected"] is None and hook_health["inbox_depth"] == 0
    assert SECRET not in output
