"""The kit's checks of the inbound half of the contract: ``run`` and
``handle_webhook``. A platform that implements neither passes them with nothing to
check, as it passes the check of a ``failing_config`` it does not have."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import anyio

from ..exceptions import PluginValidationError
from ..platforms.base import BasePlatform, listens, takes_webhooks
from ..platforms.inbound import WebhookRequest, WebhookResponse
from ._attempts import attempt, kind, require_no_task_left, sentence_part
from ._fake_inbox import FakeInbox
from ._kit import INSTANCE, KitBase
from ._running import Run, running
from ._tasks import running_tasks

__all__ = ["InboundChecks"]

# How long the event checks keep listening once the expected events are in, for
# any that follow (a malformed one after the good ones).
_SETTLE = 0.1


class InboundChecks(KitBase):
    """The checks of ``run`` and ``handle_webhook`` (part of
    :class:`~demi.testing.PlatformConformance`)."""

    #: Callbacks that ``handle_webhook`` must answer with a WebhookResponse (at least
    #: one, for a platform that takes webhooks).
    sample_webhooks: ClassVar[Sequence[WebhookRequest]] = ()
    #: How many events :meth:`trigger_events` makes the platform's ``run`` send; the
    #: event checks wait for that many (at most :attr:`event_timeout`).
    expected_events: ClassVar[int] = 0
    #: Seconds the event checks wait for :attr:`expected_events` to arrive.
    event_timeout: ClassVar[float] = 5.0

    async def trigger_events(self, platform: BasePlatform) -> None:
        """Make the platform's service send it something, so that ``run`` sends
        events (override it; by default nothing is sent and the checks look at
        whatever arrives by itself).

        It is called once ``run`` is connected. Talk to the service from here, for
        example as a second client of your test server (in another process or a
        thread: a task of the test's event loop would count as the platform's), and
        set :attr:`expected_events` to the number of events that causes. Fixtures
        reach it through ``self``: an autouse fixture method of your test class can
        store the server's address on ``self``.
        """

    # -- run ---------------------------------------------------------------------

    async def test_run_calls_started_within_init_timeout(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """A platform that listens calls task_status.started() within the init timeout."""
        __tracebackhide__ = True
        if not listens(self._platform_class()):
            return
        async with self._listening(platform_config):
            pass

    async def test_run_sends_well_formed_events(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """Every event run sends (after trigger_events) is a well-formed InboundEvent,
        and the expected number of them arrives."""
        __tracebackhide__ = True
        if not listens(self._platform_class()):
            return
        async with self._listening(platform_config) as (platform, inbox, _):
            await self._trigger(platform, inbox)
        self._require_well_formed(inbox, "run", "")

    async def test_cancelled_run_ends_leaving_no_task_running(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """Cancelled, run ends within the shutdown timeout, and after shutdown no
        task of the platform is left running."""
        __tracebackhide__ = True
        if not listens(self._platform_class()):
            return
        before = running_tasks()
        async with self._listening(platform_config) as (platform, inbox, run):
            # Busy with events when cancelled; their number is the other check's.
            await self._trigger(platform, inbox, counted=False)
        if run.stuck_for is not None:
            raise AssertionError(
                f"run must end within the shutdown timeout "
                f"({self.shutdown_timeout:g}s) of being cancelled, but it was still "
                f"running {run.stuck_for:g}s after."
            )
        require_no_task_left(before, "A cancelled run followed by shutdown")

    async def test_handle_request_works_while_run_runs(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """handle_request answers every sample request with a dict while run runs."""
        __tracebackhide__ = True
        if not listens(self._platform_class()):
            return
        requests = self._requests()
        async with self._listening(platform_config) as (platform, _, _):
            await self._require_dict_answers(
                platform, requests, " while run is running"
            )

    # -- handle_webhook ------------------------------------------------------------

    async def test_handle_webhook_returns_a_webhook_response(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """handle_webhook answers every sample webhook with a WebhookResponse in time
        (while run runs, for a platform that also listens)."""
        __tracebackhide__ = True
        await self._each_webhook(platform_config, check_events=False)

    async def test_handle_webhook_sends_well_formed_events(
        self, platform_config: Mapping[str, Any]
    ) -> None:
        """Every event handle_webhook sends is a well-formed InboundEvent."""
        __tracebackhide__ = True
        await self._each_webhook(platform_config, check_events=True)

    # -- helpers -------------------------------------------------------------------

    @asynccontextmanager
    async def _listening(
        self, config: Mapping[str, Any]
    ) -> AsyncIterator[tuple[BasePlatform, FakeInbox, Run]]:
        """An initialized platform with its ``run`` connected to a FakeInbox, when
        it listens (else an idle :class:`Run`); cancelled and shut down on exit."""
        __tracebackhide__ = True
        inbox = FakeInbox(INSTANCE)
        began = anyio.current_time()
        async with self._initialized(config) as platform:
            if not listens(platform):
                yield platform, inbox, Run()
                return
            async with running(
                platform, inbox,
                init_timeout=self.init_timeout, shutdown_timeout=self.shutdown_timeout,
                began=began,
            ) as run:  # fmt: skip
                yield platform, inbox, run

    async def _trigger(
        self, platform: BasePlatform, inbox: FakeInbox, *, counted: bool = True
    ) -> None:
        """Call :meth:`trigger_events`, then wait for :attr:`expected_events` (and
        require them when ``counted``), then a little longer for any more."""
        __tracebackhide__ = True
        await self.trigger_events(platform)
        expected = self.expected_events
        try:
            await inbox.wait_for(expected, timeout=self.event_timeout)
        except PluginValidationError:
            return  # the event check names the malformed event
        except TimeoutError:
            if counted:
                raise AssertionError(
                    f"run must send the {expected} event"
                    f"{'' if expected == 1 else 's'} trigger_events causes "
                    f"(expected_events) within the event timeout "
                    f"({self.event_timeout:g}s), but {len(inbox.events)} arrived."
                ) from None
        await anyio.sleep(_SETTLE)

    def _require_well_formed(self, inbox: FakeInbox, method: str, where: str) -> None:
        __tracebackhide__ = True
        if inbox.rejected:
            raise AssertionError(
                f"Every event {method} sends must be a well-formed InboundEvent, but "
                f"{where}it sent {_what_was_sent(inbox.rejected[0])}."
            )

    async def _each_webhook(
        self, config: Mapping[str, Any], *, check_events: bool
    ) -> None:
        __tracebackhide__ = True
        if not takes_webhooks(self._platform_class()):
            return
        if not self.sample_webhooks:
            raise AssertionError(
                f"Set sample_webhooks on {type(self).__qualname__} to at least one "
                f"WebhookRequest for handle_webhook to answer."
            )
        async with self._listening(config) as (platform, _, _):
            for index, request in enumerate(self.sample_webhooks):
                inbox = FakeInbox(INSTANCE)
                where = f"sample_webhooks[{index}]"
                result, problem = await attempt(
                    platform, "handle_webhook", request, inbox,
                    timeout=self.request_timeout,
                )  # fmt: skip
                if check_events:
                    self._require_well_formed(inbox, "handle_webhook", f"for {where} ")
                    continue
                if inbox.rejected:
                    continue  # a malformed event: the other check names it
                if problem is None and not isinstance(result, WebhookResponse):
                    problem = f"returned {kind(result)}"
                if problem is not None:
                    raise AssertionError(
                        f"handle_webhook must return a WebhookResponse within the "
                        f"request timeout ({self.request_timeout:g}s), but for "
                        f"{where} it {problem}."
                    )


def _what_was_sent(rejection: str) -> str:
    """check_event's reason, after "it sent": "a malformed event: kind must ..." or
    "a dict, not an InboundEvent"."""
    prefix = f"platform {INSTANCE!r} sent "
    reason = rejection.removeprefix(prefix)
    if reason == rejection:  # worded otherwise: say it whole
        return f"an event demi refuses ({sentence_part(rejection)})"
    return sentence_part(reason)
