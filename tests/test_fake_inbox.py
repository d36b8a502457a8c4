"""demi.testing.FakeInbox: what a platform's run sends, kept for a test, checked and
stamped as demi's own inbox does it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

from demi import InboundEvent, PluginValidationError
from demi.inbox import InstanceInbox
from demi.platforms import BasePlatform, HealthStatus, Inbox, PluginHealth
from demi.platforms.inbound import NOT_RECEIVED
from demi.testing import FakeInbox


def message(event_id: str, text: str = "hi", room: str | None = "room") -> InboundEvent:
    """A message event as a platform builds it."""
    return InboundEvent("message", {"text": text, "sender": "ada"}, event_id, room)


class Chatty(BasePlatform):
    """A listening platform that sends three messages once connected, one of them
    a redelivery, then waits."""

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True

    async def health_check(self) -> PluginHealth:
        return PluginHealth(HealthStatus.HEALTHY)

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    async def shutdown(self) -> None:
        pass

    async def run(
        self, inbox: Inbox, *, task_status: Any = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        for event_id in ("a", "b", "a", "c"):
            await inbox.send(message(event_id, text=f"text {event_id}"))
        await anyio.sleep_forever()


def test_it_is_built_outside_an_event_loop_and_is_an_inbox() -> None:
    """A test can build it before any event loop runs; it fulfils demi.Inbox."""
    inbox: Inbox = FakeInbox("chat")
    assert inbox.instance == "chat"
    assert FakeInbox().instance == "test"


async def test_it_collects_what_run_sends_in_order_without_redeliveries() -> None:
    """A platform's run, started as demi starts it, fills events in order; the
    redelivery is dropped and counted."""
    inbox = FakeInbox("chat")
    async with anyio.create_task_group() as group:
        await group.start(Chatty().run, inbox)
        events = await inbox.wait_for(3, timeout=5)
        group.cancel_scope.cancel()
    assert [event.event_id for event in events] == ["a", "b", "c"]
    assert [event.data["text"] for event in events] == ["text a", "text b", "text c"]
    assert inbox.duplicates == 1


async def test_it_stamps_instance_and_time_as_demi_does() -> None:
    """An accepted event carries the inbox's instance and when it was accepted
    (UTC), as the same event accepted by demi's own inbox does."""
    fake = FakeInbox("chat")
    before = datetime.now(UTC)
    assert await fake.send(message("1")) is True
    accepted = fake.events[0]
    assert accepted.instance == "chat"
    assert before <= accepted.received_at <= datetime.now(UTC)
    assert accepted.received_at is not NOT_RECEIVED

    # The same event through demi's own buffer: every field comes out alike.
    scheduled: list[InboundEvent] = []
    real = InstanceInbox(
        "chat", capacity=10, dedup_window=10, schedule=scheduled.append, observers=[]
    )
    await real.handle().send(message("1"))
    fields = ("kind", "data", "event_id", "conversation", "instance")
    assert [getattr(accepted, name) for name in fields] == [
        getattr(scheduled[0], name) for name in fields
    ]


async def test_a_redelivery_returns_false_and_is_counted() -> None:
    """send returns False for an event_id accepted before, keeps one copy."""
    inbox = FakeInbox()
    assert await inbox.send(message("1")) is True
    assert await inbox.send(message("1", text="again")) is False
    assert [event.data["text"] for event in inbox.events] == ["hi"]
    assert inbox.duplicates == 1


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (InboundEvent("", {}, "1"), "kind must be a non-empty str, not an empty str"),
        (InboundEvent("message", [], "1"), "data must be a mapping, not list"),  # type: ignore[arg-type]
        ({"kind": "message"}, "sent a dict, not an InboundEvent"),
    ],
)
async def test_a_malformed_event_raises_as_demi_and_is_kept(
    event: object, reason: str
) -> None:
    """A malformed event raises PluginValidationError naming the field, as demi's
    inbox does; the reason is kept in rejected and wait_for stops at once."""
    inbox = FakeInbox("chat")
    with pytest.raises(PluginValidationError, match=reason):
        await inbox.send(event)  # type: ignore[arg-type]
    assert inbox.events == []
    assert len(inbox.rejected) == 1 and reason in inbox.rejected[0]
    with anyio.fail_after(1), pytest.raises(PluginValidationError, match=reason):
        await inbox.wait_for(1, timeout=30)


async def test_wait_for_says_how_many_arrived_when_too_few_do() -> None:
    """wait_for raises TimeoutError with the count when the events do not come."""
    inbox = FakeInbox("chat")
    await inbox.send(message("1"))
    with pytest.raises(TimeoutError, match="1 of 2 events arrived in inbox 'chat'"):
        await inbox.wait_for(2, timeout=0.05)


async def test_wait_for_wakes_when_the_events_arrive() -> None:
    """wait_for returns as soon as the count is reached by a concurrent sender."""
    inbox = FakeInbox()

    async def later() -> None:
        await anyio.sleep(0.01)
        await inbox.send(message("1"))
        await inbox.send(message("2"))

    async with anyio.create_task_group() as group:
        group.start_soon(later)
        with anyio.fail_after(5):
            events = await inbox.wait_for(2, timeout=30)
    assert [event.event_id for event in events] == ["1", "2"]


async def test_a_full_inbox_makes_send_wait_until_take() -> None:
    """With a capacity, send waits while that many events are held (backpressure)
    and goes on once the test takes them."""
    inbox = FakeInbox(capacity=1)
    sent: list[str] = []

    async def sender() -> None:
        for event_id in ("1", "2"):
            await inbox.send(message(event_id))
            sent.append(event_id)

    async with anyio.create_task_group() as group:
        group.start_soon(sender)
        await anyio.wait_all_tasks_blocked()
        assert sent == ["1"]
        assert inbox.held == 1
        assert [event.event_id for event in inbox.take()] == ["1"]
        await anyio.wait_all_tasks_blocked()
        assert sent == ["1", "2"]
    assert [event.event_id for event in inbox.take()] == ["2"]
    assert inbox.held == 0


def test_a_capacity_below_one_is_refused() -> None:
    """capacity=0 could never accept anything: it is a mistake, said at once."""
    with pytest.raises(ValueError, match="at least 1"):
        FakeInbox(capacity=0)
