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

CORE_CHECKS = frozenset(
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
# The checks of run and handle_webhook: a platform without them passes them.
INBOUND_CHECKS = frozenset(
    {
        "test_run_calls_started_within_init_timeout",
        "test_run_sends_well_formed_events",
        "test_cancelled_run_ends_leaving_no_task_running",
        "test_handle_request_works_while_run_runs",
        "test_handle_webhook_returns_a_webhook_response",
        "test_handle_webhook_sends_well_formed_events",
    }
)
ALL_CHECKS = CORE_CHECKS | INBOUND_CHECKS
# The checks that start run (and so need it to get ready).
RUN_CHECKS = frozenset(
    {
        "test_run_calls_started_within_init_timeout",
        "test_run_sends_well_formed_events",
        "test_cancelled_run_ends_leaving_no_task_running",
        "test_handle_request_works_while_run_runs",
    }
)
WEBHOOK_CHECKS = INBOUND_CHECKS - RUN_CHECKS
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
from demi.platforms import InboundEvent, WebhookRequest, WebhookResponse
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


# A correct listening platform: its "service" is a memory stream that the kit's
# trigger_events writes to; run turns each line into a message event.
class Listener(Good):
    def event(self, number, text):
        return InboundEvent("message", {"text": text}, f"m{number}", "room")

    async def initialize(self, config):
        self.service, self.incoming = anyio.create_memory_object_stream(10)
        return True

    async def run(self, inbox, *, task_status=anyio.TASK_STATUS_IGNORED):
        task_status.started()
        async for number, text in self.incoming:
            await inbox.send(self.event(number, text))

    async def shutdown(self):
        for stream in (getattr(self, "service", None), getattr(self, "incoming", None)):
            if stream is not None:
                stream.close()


class ListenerKit(Kit):
    expected_events = 2

    async def trigger_events(self, platform):
        await platform.service.send((1, "hello"))
        await platform.service.send((2, "again"))


# A correct webhook platform: each callback's body becomes a message event.
class Hook(Good):
    def answer(self):
        return WebhookResponse(200, {"ok": True})

    def webhook_event(self, request):
        return InboundEvent("message", {"text": request.body.decode()}, "w1")

    async def handle_webhook(self, request, inbox):
        await inbox.send(self.webhook_event(request))
        return self.answer()


class HookKit(Kit):
    sample_webhooks = [WebhookRequest("POST", "/platforms/hook/webhook", body=b"hi")]
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
                "running, but 1 task (*forever) was still running*."
            ),
            "test_shutdown_leaves_no_task_running": (
                "shutdown must leave no task running, but 1 task (*forever) was "
                "still running*."
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
                "A cancelled handle_request (sample_requests[0]) must leave no task "
                "running, but 1 task (*deliver) was still running*."
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
            CORE_CHECKS
            - {
                "test_class_is_a_valid_platform",
                "test_shutdown_works_after_failed_initialize",
            },
            "sample_config must pass Platform.config_model, but it fails on "
            "token (Field required).",
        ),
    ),
    # -- run -----------------------------------------------------------------------
    "run_never_starts": Defect(
        """
        class Platform(Listener):
            async def run(self, inbox, *, task_status=anyio.TASK_STATUS_IGNORED):
                await anyio.sleep_forever()

        class TestPlatform(ListenerKit):
            platform_class = Platform
            init_timeout = 0.2
        """,
        dict.fromkeys(
            RUN_CHECKS,
            "run must call task_status.started() once connected, but it did not "
            "call task_status.started() within the init timeout (0.2s).",
        ),
    ),
    # As in demi, initialize and readiness share the init timeout: each alone is
    # in time here, both together are not.
    "run_ready_too_late_after_a_slow_initialize": Defect(
        """
        class Platform(Listener):
            async def initialize(self, config):
                await anyio.sleep(0.3)
                return await super().initialize(config)

            async def run(self, inbox, *, task_status=anyio.TASK_STATUS_IGNORED):
                await anyio.sleep(0.3)
                await super().run(inbox, task_status=task_status)

        class TestPlatform(ListenerKit):
            platform_class = Platform
            init_timeout = 0.5
        """,
        dict.fromkeys(
            RUN_CHECKS,
            "run must call task_status.started() once connected, but it did not "
            "call task_status.started() within the init timeout (0.5s).",
        ),
    ),
    "run_returns_before_ready": Defect(
        """
        class Platform(Listener):
            async def run(self, inbox, *, task_status=anyio.TASK_STATUS_IGNORED):
                raise ConnectionRefusedError("no server")

        class TestPlatform(ListenerKit):
            platform_class = Platform
        """,
        dict.fromkeys(
            RUN_CHECKS,
            "run must call task_status.started() once connected, but it raised "
            "ConnectionRefusedError: no server before calling it.",
        ),
    ),
    "run_ignores_cancellation": Defect(
        """
        class Platform(Listener):
            async def run(self, inbox, *, task_status=anyio.TASK_STATUS_IGNORED):
                try:
                    await super().run(inbox, task_status=task_status)
                finally:
                    # A goodbye to the server that waits for its answer, shielded.
                    with anyio.CancelScope(shield=True):
                        await anyio.sleep(0.4)

        class TestPlatform(ListenerKit):
            platform_class = Platform
            shutdown_timeout = 0.1
        """,
        {
            "test_cancelled_run_ends_leaving_no_task_running": (
                "run must end within the shutdown timeout (0.1s) of being "
                "cancelled, but it was still running 0.1s after."
            )
        },
    ),
    "run_leaks_a_task": Defect(
        """
        class Platform(Listener):
            async def run(self, inbox, *, task_status=anyio.TASK_STATUS_IGNORED):
                spawn_detached(forever)  # a heartbeat nobody stops
                await super().run(inbox, task_status=task_status)

        class TestPlatform(ListenerKit):
            platform_class = Platform
        """,
        {
            "test_cancelled_run_ends_leaving_no_task_running": (
                "A cancelled run followed by shutdown must leave no task running, "
                "but 1 task (*forever) was still running*."
            )
        },
    ),
    "run_sends_a_malformed_event": Defect(
        """
        class Platform(Listener):
            def event(self, number, text):
                return InboundEvent("message", {"text": text}, number, "room")

        class TestPlatform(ListenerKit):
            platform_class = Platform
        """,
        {
            "test_run_sends_well_formed_events": (
                "Every event run sends must be a well-formed InboundEvent, but it "
                "sent a malformed event: event_id must be a non-empty str, not int."
            )
        },
    ),
    "run_sends_a_dict": Defect(
        """
        class Platform(Listener):
            def event(self, number, text):
                return {"kind": "message", "text": text}

        class TestPlatform(ListenerKit):
            platform_class = Platform
        """,
        {
            "test_run_sends_well_formed_events": (
                "Every event run sends must be a well-formed InboundEvent, but it "
                "sent a dict, not an InboundEvent."
            )
        },
    ),
    "run_sends_too_few_events": Defect(
        """
        class TestPlatform(ListenerKit):
            platform_class = Listener
            expected_events = 3
            event_timeout = 0.2
        """,
        {
            "test_run_sends_well_formed_events": (
                "run must send the 3 events trigger_events causes (expected_events) "
                "within the event timeout (0.2s), but 2 arrived."
            )
        },
    ),
    "request_breaks_while_running": Defect(
        """
        class Platform(Listener):
            async def run(self, inbox, *, task_status=anyio.TASK_STATUS_IGNORED):
                self.connected = True
                await super().run(inbox, task_status=task_status)

            async def handle_request(self, request):
                if getattr(self, "connected", False):
                    raise RuntimeError("the connection is busy")
                return dict(request)

        class TestPlatform(ListenerKit):
            platform_class = Platform
        """,
        {
            "test_handle_request_works_while_run_runs": (
                "handle_request must return a dict within the request timeout (30s) "
                "while run is running, but for sample_requests[0] it raised "
                "RuntimeError: the connection is busy."
            )
        },
    ),
    # -- handle_webhook --------------------------------------------------------------
    "webhook_answers_a_dict": Defect(
        """
        class Platform(Hook):
            def answer(self):
                return {"ok": True}

        class TestPlatform(HookKit):
            platform_class = Platform
        """,
        {
            "test_handle_webhook_returns_a_webhook_response": (
                "handle_webhook must return a WebhookResponse within the request "
                "timeout (30s), but for sample_webhooks[0] it returned a dict."
            )
        },
    ),
    "webhook_sends_a_malformed_event": Defect(
        """
        class Platform(Hook):
            def webhook_event(self, request):
                return InboundEvent("message", [request.body], "w1")

        class TestPlatform(HookKit):
            platform_class = Platform
        """,
        {
            "test_handle_webhook_sends_well_formed_events": (
                "Every event handle_webhook sends must be a well-formed InboundEvent, "
                "but for sample_webhooks[0] it sent a malformed event: data must be "
                "a mapping, not list."
            )
        },
    ),
    "no_sample_webhooks": Defect(
        """
        class TestPlatform(Kit):
            platform_class = Hook
        """,
        dict.fromkeys(
            WEBHOOK_CHECKS,
            "Set sample_webhooks on TestPlatform to at least one WebhookRequest for "
            "handle_webhook to answer.",
        ),
    ),
    # -- mistakes whose own error message would not say what is wrong ---------------
    "task_group_left_open": Defect(
        """
        class Platform(Good):
            async def initialize(self, config):
                self.group = anyio.create_task_group()
                await self.group.__aenter__()
                self.group.start_soon(forever)
                return True

            async def shutdown(self):
                if hasattr(self, "group"):
                    self.group.cancel_scope.cancel()

        class TestPlatform(Kit):
            platform_class = Platform
        """,
        dict.fromkeys(
            NEEDS_INITIALIZE
            | {
                "test_cancelled_initialize_leaves_no_task_running",
                "test_shutdown_leaves_no_task_running",
            },
            "initialize must exit every task group it enters before it returns, but "
            "it returned with one still open (keep background tasks in run, or in a "
            "task group entered and exited within one call).",
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
                "running, but 1 task (*Platform._poll) was still running*."
            ),
            "test_shutdown_leaves_no_task_running": (
                "shutdown must leave no task running, but 1 task (*Platform._poll) "
                "was still running*."
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


@pytest.mark.parametrize(
    "body",
    [
        "class TestPlatform(ListenerKit):\n    platform_class = Listener\n",
        "class TestPlatform(HookKit):\n    platform_class = Hook\n",
        # Both at once: webhooks are answered while run is connected, as in demi.
        "class Both(Listener, Hook):\n    pass\n\n"
        "class TestPlatform(ListenerKit, HookKit):\n    platform_class = Both\n",
    ],
    ids=["listening", "webhook", "both"],
)
def test_a_correct_inbound_platform_passes_every_check(
    pytester: pytest.Pytester, body: str
) -> None:
    """Correct platforms that listen, take webhooks, or both, pass every check on
    both backends, the inbound ones included."""
    passed, failures = run_kit(pytester, body)
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


# -- what the author sees -----------------------------------------------------------


def failure_sections(output: str) -> dict[str, list[str]]:
    """pytest's failure report, split into each test's section (its lines after the
    ``____ name ____`` header, blank lines dropped), by the test's name."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        header = re.fullmatch(r"_+ (\S+) _+", line)
        if header:
            current = sections.setdefault(header.group(1), [])
        elif line.startswith("=") or current is None:
            current = None if line.startswith("=") else current
        elif line.strip():
            current.append(line)
    return sections


@pytest.mark.parametrize("defect", ["returns_a_non_dict", "task_group_left_open"])
def test_a_failure_shows_its_sentence_first_and_no_kit_source(
    pytester: pytest.Pytester, defect: str
) -> None:
    """pytest's report of a failed check starts with the sentence: no line of the
    kit's source, nor of contextlib between its frames, comes before or after it."""
    pytester.makepyfile(test_platform=PRELUDE + textwrap.dedent(DEFECTS[defect].source))
    result = pytester.runpytest("-p", "no:cacheprovider")
    sections = failure_sections(result.stdout.str())
    assert len(sections) == sum(
        1 if check in SYNC_CHECKS else 2 for check in DEFECTS[defect].failures
    )
    for lines in sections.values():
        sentence = lines[0].removeprefix("E   AssertionError: ")
        assert sentence != lines[0], lines
        assert sentence in DEFECTS[defect].failures.values() or re.fullmatch(
            _glob(next(iter(DEFECTS[defect].failures.values()))), sentence
        )
        assert not [
            line for line in lines if "demi/testing" in line or "contextlib" in line
        ]
    assert "cancel scope stack corrupted" not in result.stdout.str().lower()
    assert "isn't the current" not in result.stdout.str()


def test_full_trace_still_shows_the_kit(pytester: pytest.Pytester) -> None:
    """--full-trace keeps every frame, the kit's included, for whoever debugs it."""
    pytester.makepyfile(
        test_platform=PRELUDE + textwrap.dedent(DEFECTS["returns_a_non_dict"].source)
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--full-trace")
    assert "demi/testing/_conformance.py" in result.stdout.str()


def test_a_task_leaked_with_asyncio_create_task_is_told_what_to_use_instead(
    pytester: pytest.Pytester,
) -> None:
    """On asyncio, a leak that asyncio.create_task made says so and names the
    remedy, in the same sentence; on trio (no create_task there) it does not."""
    _, failures = run_kit(pytester, DEFECTS["leaks_a_task"].source)
    remedy = (
        " (started with asyncio.create_task, which nothing waits for: start "
        "background tasks in a task group the platform owns and closes in "
        "shutdown, or in run)."
    )
    for check in ("test_shutdown_leaves_no_task_running",
                  "test_cancelled_initialize_leaves_no_task_running"):  # fmt: skip
        on_asyncio, on_trio = failures[check]
        assert on_asyncio.endswith("was still running" + remedy), on_asyncio
        assert on_trio.endswith("was still running."), on_trio


# -- a platform whose service is another process --------------------------------------

# A line-based chat server, run by the generated tests as a process of its own (as
# the IRC example runs ngircd): "JOIN" registers a client and is answered
# "WELCOME"; any other line goes to every registered client but the sender.
LINE_SERVER = """
import asyncio

clients = set()

async def serve(reader, writer):
    try:
        while line := await reader.readline():
            if line == b"JOIN\\n":
                clients.add(writer)
                writer.write(b"WELCOME\\n")
            else:
                for other in clients - {writer}:
                    other.write(line)
    finally:
        clients.discard(writer)
        writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""

LINE_CHAT = """
import subprocess
import sys

import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

SERVER = {server!r}


@pytest.fixture(scope="module")
def chat_server():
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True
    )
    try:
        yield int(process.stdout.readline())
    finally:
        process.terminate()
        process.wait()
        process.stdout.close()


class LineChat(Good):
    async def initialize(self, config):
        self.port = config["port"]
        return True

    async def run(self, inbox, *, task_status=anyio.TASK_STATUS_IGNORED):
        async with await anyio.connect_tcp("127.0.0.1", self.port) as stream:
            lines = BufferedByteReceiveStream(stream)
            await stream.send(b"JOIN\\n")
            await lines.receive_until(b"\\n", 100)  # WELCOME: connected
            task_status.started()
            number = 0
            while True:
                text = (await lines.receive_until(b"\\n", 4096)).decode()
                number += 1
                await inbox.send(
                    InboundEvent("message", {{"text": text}}, f"m{{number}}", "#room")
                )


class TestLineChat(Kit):
    platform_class = LineChat
    expected_events = 2

    @pytest.fixture(autouse=True)
    def _person_knows_the_server(self, chat_server):
        # The hook gets only the platform; fixtures reach it through self.
        self.port = chat_server

    @pytest.fixture
    def platform_config(self, chat_server):
        return {{"port": chat_server}}

    async def trigger_events(self, platform):
        # A second client, in the test's own task: it starts no task.
        async with await anyio.connect_tcp("127.0.0.1", self.port) as person:
            await person.send(b"hello demi\\nare you there?\\n")
"""


def test_a_platform_whose_service_is_another_process_passes(
    pytester: pytest.Pytester,
) -> None:
    """A listening platform connected to a server in a process of its own passes
    the kit, events made by a second client of that server from trigger_events
    (with the server's address from a fixture, through self)."""
    passed, failures = run_kit(pytester, LINE_CHAT.format(server=LINE_SERVER))
    assert failures == {}
    assert passed == len(SYNC_CHECKS) + 2 * len(ALL_CHECKS - SYNC_CHECKS)


def test_trigger_events_really_makes_the_platform_send(
    pytester: pytest.Pytester,
) -> None:
    """The same platform, expecting one event more than the person says, fails the
    event check with the count that did arrive: the two lines became events."""
    body = LINE_CHAT.format(server=LINE_SERVER) + textwrap.dedent(
        """
        class TestLineChatCountsOneMore(TestLineChat):
            expected_events = 3
            event_timeout = 0.5
        """
    )
    _, failures = run_kit(pytester, body)
    assert failures == {
        "test_run_sends_well_formed_events": [
            "run must send the 3 events trigger_events causes (expected_events) "
            "within the event timeout (0.5s), but 2 arrived."
        ]
        * 2
    }
