"""The conformance kit passes correct platforms and fails broken ones, each failure
with one sentence of the contract.

Every case writes a platform into a pytester directory, runs the kit on it (both
backends) and compares which checks failed, and with which sentence. The last ones
do so with the example package, examples/demi-webhook, as shipped and broken.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ALL_CHECKS = frozenset(
    {
        "test_class_is_a_valid_platform",
        "test_sample_config_passes_config_model",
        "test_initialize_returns_true",
        "test_health_check_returns_plugin_health",
        "test_handle_request_returns_a_dict",
        "test_shutdown_is_idempotent",
        "test_shutdown_works_after_failed_initialize",
        "test_cancelled_initialize_leaves_no_task_running",
        "test_cancelled_handle_request_leaves_no_task_running",
        "test_shutdown_leaves_no_task_running",
    }
)
# The checks that are plain functions, run once rather than once per backend.
SYNC_CHECKS = frozenset(
    {"test_class_is_a_valid_platform", "test_sample_config_passes_config_model"}
)
# The checks that need an initialized platform fail when initialize does.
NEEDS_INITIALIZE = frozenset(
    {
        "test_initialize_returns_true",
        "test_health_check_returns_plugin_health",
        "test_handle_request_returns_a_dict",
        "test_shutdown_is_idempotent",
        "test_cancelled_handle_request_leaves_no_task_running",
    }
)

# A correct platform, and a way to start a task that nobody waits for (the bug
# behind most leaks), on either backend.
PRELUDE = """
from __future__ import annotations

import anyio
import sniffio
from pydantic import BaseModel, SecretStr

from demi.platforms import BasePlatform, HealthStatus, PluginHealth
from demi.testing import PlatformConformance


def spawn_detached(func):
    if sniffio.current_async_library() == "trio":
        import trio

        trio.lowlevel.spawn_system_task(func)
    else:
        import asyncio

        asyncio.get_running_loop().create_task(func())


async def forever():
    await anyio.sleep_forever()


class Good(BasePlatform):
    async def initialize(self, config):
        self.open = True
        return True

    async def health_check(self):
        return PluginHealth(HealthStatus.HEALTHY)

    async def handle_request(self, request):
        return dict(request)

    async def shutdown(self):
        self.open = False


class Kit(PlatformConformance):
    sample_requests = [{"text": "hello"}]
"""

SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


@dataclass(frozen=True)
class Defect:
    """A broken platform and how the kit must report it."""

    source: str
    #: Every check that must fail (on both backends), with its message pattern.
    failures: dict[str, str]


DEFECTS = {
    "hangs_in_health": Defect(
        """
        class Platform(Good):
            async def health_check(self):
                await anyio.sleep_forever()

        class TestPlatform(Kit):
            platform_class = Platform
            health_timeout = 0.2
        """,
        {
            "test_health_check_returns_plugin_health": (
                "health_check must return a PluginHealth within the health timeout "
                "(0.2s), but it did not finish in time."
            )
        },
    ),
    "health_returns_a_dict": Defect(
        """
        class Platform(Good):
            async def health_check(self):
                return {"status": "healthy"}

        class TestPlatform(Kit):
            platform_class = Platform
        """,
        {
            "test_health_check_returns_plugin_health": (
                "health_check must return a PluginHealth within the health timeout "
                "(5s), but it returned a dict."
            )
        },
    ),
    "returns_a_non_dict": Defect(
        """
        class Platform(Good):
            async def handle_request(self, request):
                return ["not", "a", "dict"]

        class TestPlatform(Kit):
            platform_class = Platform
        """,
        {
            "test_handle_request_returns_a_dict": (
                "handle_request must return a dict within the request timeout (30s), "
                "but for sample_requests[0] it returned a list."
            )
        },
    ),
    "leaks_a_task": Defect(
        """
        class Platform(Good):
            async def initialize(self, config):
                spawn_detached(forever)
                return True

        class TestPlatform(Kit):
            platform_class = Platform
        """,
        {
            "test_cancelled_initialize_leaves_no_task_running": (
                "A cancelled initialize followed by shutdown must leave no task "
                "running, but 1 task (*forever) was still running."
            ),
            "test_shutdown_leaves_no_task_running": (
                "shutdown must leave no task running, but 1 task (*forever) was "
                "still running."
            ),
        },
    ),
    "leaks_a_task_when_a_request_is_cancelled": Defect(
        """
        class Platform(Good):
            async def handle_request(self, request):
                delivered = anyio.Event()

                async def deliver():
                    await anyio.sleep(0.1)
                    delivered.set()

                spawn_detached(deliver)
                await delivered.wait()
                return dict(request)

        class TestPlatform(Kit):
            platform_class = Platform
        """,
        {
            "test_cancelled_handle_request_leaves_no_task_running": (
                "A cancelled handle_request must leave no task running, but for "
                "sample_requests[0] 1 task (*deliver) was still running."
            ),
        },
    ),
    "initialize_returns_false": Defect(
        """
        class Platform(Good):
            async def initialize(self, config):
                return False

        class TestPlatform(Kit):
            platform_class = Platform
        """,
        dict.fromkeys(
            NEEDS_INITIALIZE,
            "initialize must return True within the init timeout (30s), but it "
            "returned False.",
        ),
    ),
    "shutdown_twice_raises": Defect(
        """
        class Platform(Good):
            async def shutdown(self):
                if getattr(self, "closed", False):
                    raise RuntimeError("already shut down")
                self.closed = True

        class TestPlatform(Kit):
            platform_class = Platform
        """,
        {
            "test_shutdown_is_idempotent": (
                "shutdown must be safe to call more than once, but the second call "
                "raised RuntimeError: already shut down."
            )
        },
    ),
    "shutdown_needs_initialize": Defect(
        """
        class Platform(Good):
            async def initialize(self, config):
                self.pending = []
                return True

            async def shutdown(self):
                self.pending.clear()

        class TestPlatform(Kit):
            platform_class = Platform
        """,
        {
            "test_shutdown_works_after_failed_initialize": (
                "shutdown must work after a failed initialize, but it raised "
                "AttributeError: *pending*."
            )
        },
    ),
    "failing_config_does_not_fail": Defect(
        """
        class TestPlatform(Kit):
            platform_class = Good
            failing_config = {"anything": 1}
        """,
        {
            "test_shutdown_works_after_failed_initialize": (
                "failing_config must make initialize fail, but initialize returned "
                "True."
            )
        },
    ),
    "abstract_method_left": Defect(
        """
        class Platform(BasePlatform):
            async def initialize(self, config):
                return True

        class TestPlatform(Kit):
            platform_class = Platform
        """,
        dict.fromkeys(
            ALL_CHECKS,
            "Platform must fulfil the BasePlatform contract, but Platform leaves "
            "abstract methods unimplemented: handle_request, health_check, shutdown.",
        ),
    ),
    "sample_config_rejected": Defect(
        """
        class Config(BaseModel):
            token: SecretStr

        class Platform(Good):
            config_model = Config

        class TestPlatform(Kit):
            platform_class = Platform
            sample_config = {"tokn": "typo"}
        """,
        dict.fromkeys(
            ALL_CHECKS
            - {
                "test_class_is_a_valid_platform",
                "test_shutdown_works_after_failed_initialize",
            },
            "sample_config must pass Platform.config_model, but it fails on "
            "token (Field required).",
        ),
    ),
    "no_sample_requests": Defect(
        """
        class TestPlatform(PlatformConformance):
            platform_class = Good
        """,
        dict.fromkeys(
            (
                "test_handle_request_returns_a_dict",
                "test_cancelled_handle_request_leaves_no_task_running",
                "test_shutdown_leaves_no_task_running",
            ),
            "Set sample_requests on TestPlatform to at least one request for "
            "handle_request to answer.",
        ),
    ),
}


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "demi-webhook"

# Broken copies of the example platform, one defect each, with the test class that
# runs the kit on them (beside the example's own, which must keep passing).
BROKEN_EXAMPLE_PRELUDE = """
from __future__ import annotations

import anyio
import sniffio
from test_conformance import TestWebhookConformance as _Shipped

from demi_webhook import WebhookPlatform
"""
BROKEN_EXAMPLES = {
    "hangs_in_health": Defect(
        """
        class Platform(WebhookPlatform):
            async def health_check(self):
                await anyio.sleep_forever()

        class TestBroken(_Shipped):
            platform_class = Platform
            health_timeout = 0.5
            # failing_config fails initialize through the health check, which hangs.
            init_timeout = 0.5

            @pytest.fixture
            def platform_config(self, webhook_server):
                return webhook_server.config(check_on_start=False)
        """,
        {
            "test_health_check_returns_plugin_health": (
                "health_check must return a PluginHealth within the health timeout "
                "(0.5s), but it did not finish in time."
            )
        },
    ),
    "returns_a_non_dict": Defect(
        """
        class Platform(WebhookPlatform):
            async def handle_request(self, request):
                return [await super().handle_request(request)]

        class TestBroken(_Shipped):
            platform_class = Platform
        """,
        {
            "test_handle_request_returns_a_dict": (
                "handle_request must return a dict within the request timeout (30s), "
                "but for sample_requests[0] it returned a list."
            )
        },
    ),
    "leaks_a_task": Defect(
        """
        class Platform(WebhookPlatform):
            async def initialize(self, config):
                # A health poller that nothing ever stops.
                if sniffio.current_async_library() == "trio":
                    import trio

                    trio.lowlevel.spawn_system_task(self._poll)
                else:
                    import asyncio

                    asyncio.get_running_loop().create_task(self._poll())
                return await super().initialize(config)

            async def _poll(self):
                while True:
                    await anyio.sleep(60)
                    await self.health_check()

        class TestBroken(_Shipped):
            platform_class = Platform
        """,
        {
            "test_cancelled_initialize_leaves_no_task_running": (
                "A cancelled initialize followed by shutdown must leave no task "
                "running, but 1 task (*Platform._poll) was still running."
            ),
            "test_shutdown_leaves_no_task_running": (
                "shutdown must leave no task running, but 1 task (*Platform._poll) "
                "was still running."
            ),
        },
    ),
}


@pytest.fixture
def example(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester directory with the example's conformance tests and its server,
    the example's source importable (it need not be installed)."""
    for name in ("conftest.py", "local_webhook.py", "test_conformance.py"):
        shutil.copy(EXAMPLE / "tests" / name, pytester.path / name)
    pytester.syspathinsert(EXAMPLE / "src")
    return pytester


def run_kit(
    pytester: pytest.Pytester, body: str | None = None, prelude: str = PRELUDE
) -> tuple[int, dict[str, list[str]]]:
    """Run the kit on the platform in ``body`` (and whatever tests are already in the
    directory); return the number of passed tests and each failed check's messages
    (one per backend) by the check's name."""
    if body is not None:
        pytester.makepyfile(test_platform=prelude + textwrap.dedent(body))
    recorder = pytester.inline_run("-p", "no:cacheprovider", "-W", "error")
    passed, _, failed = recorder.listoutcomes()
    messages: dict[str, list[str]] = defaultdict(list)
    for report in failed:
        name = report.nodeid.split("::")[-1].split("[")[0]
        crash = report.longrepr.reprcrash  # type: ignore[union-attr]
        messages[name].append(crash.message.removeprefix("AssertionError: "))
    return len(passed), dict(messages)


def test_a_correct_platform_passes_every_check(pytester: pytest.Pytester) -> None:
    """The correct platform the defects start from passes all checks on both backends."""
    passed, failures = run_kit(
        pytester,
        """
        class TestPlatform(Kit):
            platform_class = Good
        """,
    )
    assert failures == {}
    assert passed == len(SYNC_CHECKS) + 2 * len(ALL_CHECKS - SYNC_CHECKS)


@pytest.mark.parametrize("defect", DEFECTS.values(), ids=DEFECTS.keys())
def test_a_defect_fails_exactly_its_checks_with_one_sentence_each(
    pytester: pytest.Pytester, defect: Defect
) -> None:
    """A platform with one defect fails exactly the checks for it, on both backends,
    each with the one sentence of the contract it breaks."""
    _, failures = run_kit(pytester, defect.source)
    assert_failures(failures, defect.failures)


@pytest.mark.slow
def test_the_example_passes_every_check(example: pytest.Pytester) -> None:
    """The example webhook platform passes the whole kit against its local server."""
    passed, failures = run_kit(example)
    assert failures == {}
    assert passed == len(SYNC_CHECKS) + 2 * len(ALL_CHECKS - SYNC_CHECKS)


@pytest.mark.slow
@pytest.mark.parametrize("defect", BROKEN_EXAMPLES.values(), ids=BROKEN_EXAMPLES.keys())
def test_a_broken_copy_of_the_example_fails_with_the_reason(
    example: pytest.Pytester, defect: Defect
) -> None:
    """A copy of the example with one defect fails exactly the checks for it, with
    one sentence each, while the shipped example still passes beside it."""
    passed, failures = run_kit(
        example, defect.source, prelude=BROKEN_EXAMPLE_PRELUDE + "import pytest\n"
    )
    assert_failures(failures, defect.failures)
    shipped_and_broken = 2 * (len(SYNC_CHECKS) + 2 * len(ALL_CHECKS - SYNC_CHECKS))
    assert passed == shipped_and_broken - sum(map(len, failures.values()))


def assert_failures(failures: dict[str, list[str]], expected: dict[str, str]) -> None:
    """Exactly the expected checks failed, on each backend, with matching messages
    of one sentence each."""
    assert set(failures) == set(expected)
    for check, pattern in expected.items():
        assert len(failures[check]) == (1 if check in SYNC_CHECKS else 2)
        for message in failures[check]:
            assert re.fullmatch(_glob(pattern), message), message
            assert len(SENTENCE_END.findall(message)) == 1, message


def _glob(pattern: str) -> str:
    return ".*".join(re.escape(part) for part in pattern.split("*"))
