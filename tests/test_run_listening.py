"""``demi run``, ``demi check`` and ``demi request`` host listening platforms: a real
process, the installed ``listens`` fixture plugin, the shipped ``echo`` handler."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DEMI = Path(sys.executable).with_name("demi")
BACKENDS = ["asyncio", "trio"]
#: What the ``listens`` plugin sends (m1 twice: a redelivery), as echo answers it.
EXPECTED = [{"text": f"hello {n}", "conversation": f"c{n}"} for n in (1, 2, 3)]


def write_config(tmp_path: Path) -> Path:
    """A demi.toml with one listening instance; return where its replies go."""
    replies = tmp_path / "replies.jsonl"
    (tmp_path / "demi.toml").write_text(
        "[platforms.chat]\n"
        'driver = "listens"\n'
        f"config = {{ replies = {json.dumps(str(replies))}, redeliver = true }}\n",
        encoding="utf-8",
    )
    return replies


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without DEMI_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    env.update(PYTHONUNBUFFERED="1", DEMI_STOP_TIMEOUT="5", **extra)
    return env


def replies_of(path: Path) -> list[dict[str, object]]:
    """The replies the platform recorded so far."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_until_replied(
    tmp_path: Path, args: list[str], env: dict[str, str], replies: Path, count: int
) -> tuple[int, str]:
    """Run ``demi run *args`` until ``count`` replies were recorded, then SIGTERM it;
    return its exit code and output."""
    log = tmp_path / "demi.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(DEMI), "-v", "run", *args], cwd=tmp_path, env=env,
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while len(replies_of(replies)) < count:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        # The redelivery comes right after: give a second reply to it the chance
        # to show up before stopping.
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, log.read_text(errors="replace")


def sorted_replies(replies: list[dict[str, object]]) -> list[dict[str, object]]:
    return sorted(replies, key=lambda reply: str(reply["conversation"]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_demi_run_with_the_echo_handler_answers_each_message_once(
    tmp_path: Path, backend: str
) -> None:
    replies = write_config(tmp_path)
    env = environment(DEMI_HANDLER="echo")
    code, output = run_until_replied(tmp_path, ["--backend", backend], env, replies, 3)
    assert code == 0, output
    assert sorted_replies(replies_of(replies)) == EXPECTED, output


@pytest.mark.parametrize("backend", BACKENDS)
def test_handler_option_overrides_the_setting(tmp_path: Path, backend: str) -> None:
    replies = write_config(tmp_path)
    env = environment(DEMI_HANDLER="log")
    code, output = run_until_replied(
        tmp_path, ["--backend", backend, "--handler", "echo"], env, replies, 3
    )
    assert code == 0, output
    assert sorted_replies(replies_of(replies)) == EXPECTED, output


def test_an_unknown_handler_is_a_usage_error_naming_the_installed_ones(
    tmp_path: Path,
) -> None:
    replies = write_config(tmp_path)
    result = subprocess.run(
        [str(DEMI), "run", "--handler", "parrot"], cwd=tmp_path, env=environment(),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "'parrot'" in result.stderr
    assert "echo" in result.stderr and "log" in result.stderr
    assert not replies.exists()  # nothing started


@pytest.mark.parametrize("backend", BACKENDS)
def test_demi_check_reports_a_listening_platform_healthy(
    tmp_path: Path, backend: str
) -> None:
    write_config(tmp_path)
    result = subprocess.run(
        [str(DEMI), "check", "--json", "--backend", backend], cwd=tmp_path,
        env=environment(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["healthy"] is True
    assert [row["health"] for row in report["platforms"]] == ["healthy"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_demi_request_reaches_a_listening_platform(
    tmp_path: Path, backend: str
) -> None:
    replies = write_config(tmp_path)
    result = subprocess.run(
        [str(DEMI), "request", "chat", '{"text": "hi", "conversation": "c9"}',
         "--backend", backend],
        cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"sent": True}
    assert {"text": "hi", "conversation": "c9"} in replies_of(replies)
