"""Inbound events: the per-instance inbox and the dispatcher that drains it.

In process, on asyncio and trio (the ``anyio_backend`` fixture). Each test builds a
:class:`~demi.inbox.Dispatcher` around a handler defined here and plays the platform
itself through an :class:`~demi.inbox.InboxHandle`.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

import demi
from demi import InboundEvent, PlatformUnavailableError, PluginStateError
from demi.exceptions import PluginValidationError
from demi.inbox import Dispatcher, RecentIds
from demi.platforms.inbound import NOT_RECEIVED


def message(event_id: int | str, conversation: str | None = "c") -> InboundEvent:
    """A message event as a platform builds it."""
    return InboundEvent(
        "message", {"text": f"t{event_id}"}, str(event_id), conversation
    )


class Recorder:
    """A handler that records what it saw, optionally held at a gate."""

    def __init__(self) -> None:
        self.seen: list[InboundEvent] = []
        self.gate: anyio.Event | None = None
        self.running = 0
        self.most_running = 0

    async def __call__(self, event: InboundEvent) -> None:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            self.seen.append(event)
        finally:
            self.running -= 1

    def ids(self) -> list[str]:
        return [event.event_id for event in self.seen]


# -- the event ---------------------------------------------------------------------


def test_inbound_event_is_exported_and_frozen() -> None:
    """demi.InboundEvent is the platforms' class, and it cannot be changed."""
    assert demi.InboundEvent is demi.platforms.InboundEvent
    event = message(1)
    with pytest.raises(AttributeError):
        event.kind = "other"  # type: ignore[misc]
    assert (event.instance, event.received_at) == ("", NOT_RECEIVED)


async def test_accepted_event_carries_instance_and_utc_time() -> None:
    """The handler sees the instance that received the event and when, in UTC."""
    recorder = Recorder()
    before = datetime.now(UTC)
    async with Dispatcher(recorder) as dispatcher:
        assert await dispatcher.inbox("chat").handle().send(message(1)) is True
    (seen,) = recorder.seen
    assert seen.instance == "chat"
    assert seen.received_at.tzinfo is UTC and seen.received_at >= before
    assert (seen.kind, seen.data, seen.event_id) == ("message", {"text": "t1"}, "1")


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (InboundEvent("", {}, "1"), "kind"),
        (InboundEvent("message", {}, ""), "event_id"),
        (InboundEvent("message", {}, 7), "event_id"),  # type: ignore[arg-type]
        (InboundEvent("message", ["x"], "1"), "data"),  # type: ignore[arg-type]
        (InboundEvent("message", {}, "1", 5), "conversation"),  # type: ignore[arg-type]
        ({"kind": "message"}, "InboundEvent"),
    ],
    ids=["kind", "empty-id", "int-id", "data", "conversation", "not-an-event"],
)
async def test_malformed_event_is_rejected_naming_the_instance(
    event: Any, field: str
) -> None:
    """A malformed event is refused with a message naming instance and field; it
    is neither counted nor handled."""
    recorder = Recorder()
    async with Dispatcher(recorder) as dispatcher:
        inbox = dispatcher.inbox("chat")
        with pytest.raises(PluginValidationError, match=f"'chat'.*{field}") as caught:
            await inbox.handle().send(event)
    assert caught.value.plugin_name == "chat"
    assert (inbox.received, recorder.seen) == (0, [])


def test_webhook_request_headers_are_case_insensitive() -> None:
    """Header names are lower-cased once; header() finds them in any case."""
    request = demi.WebhookRequest(
        "POST", "/platforms/chat/webhook", {"X-Slack-Signature": "v0=abc"}, {}, b"{}"
    )
    assert dict(request.headers) == {"x-slack-signature": "v0=abc"}
    assert request.header("X-SLACK-signature") == "v0=abc"
    assert request.header("missing", "none") == "none"


@pytest.mark.parametrize(
    ("body", "media_type", "encoded"),
    [
        (b"\x00raw", "application/octet-stream", b"\x00raw"),
        ("héllo", "text/plain; charset=utf-8", "héllo".encode()),
        ({"ok": True}, "application/json", b'{"ok":true}'),
    ],
    ids=["bytes", "str", "mapping"],
)
def test_webhook_response_body_and_content_type(
    body: Any, media_type: str, encoded: bytes
) -> None:
    """The body is sent as bytes, UTF-8 or JSON, with a content type to match unless
    one is given."""
    response = demi.WebhookResponse(body=body)
    assert (response.status, response.media_type) == (200, media_type)
    assert response.encoded_body() == encoded
    given = demi.WebhookResponse(body=body, content_type="text/xml")
    assert given.media_type == "text/xml"


def test_platform_fatal_error_is_a_demi_error_without_a_plugin_name() -> None:
    """A platform raises PlatformFatalError with just its reason."""
    error = demi.PlatformFatalError("the bot token was revoked")
    assert isinstance(error, demi.DemiError)
    assert not isinstance(error, demi.PluginError)
    assert str(error) == "the bot token was revoked"


# -- ordering and concurrency ------------------------------------------------------


async def test_one_conversation_in_order_one_at_a_time_others_concurrent() -> None:
    """Events of one conversation reach the handler one by one, in the order sent,
    while different conversations are handled side by side."""
    rng = random.Random(7)
    order: dict[str, list[int]] = {}
    active: Counter[str] = Counter()
    overlap = {"most_per_conversation": 0, "most_total": 0}

    async def handler(event: InboundEvent) -> None:
        conversation = str(event.conversation)
        active[conversation] += 1
        overlap["most_per_conversation"] = max(
            overlap["most_per_conversation"], active[conversation]
        )
        overlap["most_total"] = max(overlap["most_total"], sum(active.values()))
        for _ in range(rng.randrange(4)):
            await anyio.lowlevel.checkpoint()
        order.setdefault(conversation, []).append(int(event.event_id))
        active[conversation] -= 1

    sent: dict[str, list[int]] = {}
    async with Dispatcher(handler, handler_concurrency=8) as dispatcher:
        inbox = dispatcher.inbox("chat").handle()
        for number in range(600):
            conversation = f"c{rng.randrange(12)}"
            sent.setdefault(conversation, []).append(number)
            await inbox.send(message(number, conversation))
            if number % 5 == 0:
                await anyio.lowlevel.checkpoint()
    assert order == sent
    assert overlap["most_per_conversation"] == 1
    assert overlap["most_total"] > 1


async def test_same_conversation_name_on_two_instances_is_two_conversations() -> None:
    """The order is per (instance, conversation): two instances do not wait on
    each other."""
    recorder = Recorder()
    recorder.gate = anyio.Event()
    async with Dispatcher(recorder) as dispatcher:
        await dispatcher.inbox("a").handle().send(message(1, "room"))
        await dispatcher.inbox("b").handle().send(message(2, "room"))
        await anyio.wait_all_tasks_blocked()
        assert recorder.running == 2
        recorder.gate.set()


async def test_handler_concurrency_caps_calls_running_at_once() -> None:
    """Never more than handler_concurrency handler calls at once, and that many
    when there is work for them."""
    recorder = Recorder()
    recorder.gate = anyio.Event()
    async with Dispatcher(recorder, handler_concurrency=3) as dispatcher:
        inbox = dispatcher.inbox("chat").handle()
        for number in range(10):
            await inbox.send(message(number, f"c{number}"))
        await anyio.wait_all_tasks_blocked()
        assert (recorder.running, dispatcher.busy) == (3, 3)
        recorder.gate.set()
    assert recorder.most_running == 3
    assert sorted(recorder.ids(), key=int) == [str(n) for n in range(10)]


async def test_events_without_conversation_are_concurrent() -> None:
    """Events with no conversation do not wait for each other."""
    recorder = Recorder()
    recorder.gate = anyio.Event()
    async with Dispatcher(recorder) as dispatcher:
        inbox = dispatcher.inbox("chat").handle()
        for number in range(5):
            await inbox.send(message(number, None))
        await anyio.wait_all_tasks_blocked()
        assert recorder.running == 5
        recorder.gate.set()
    assert len(recorder.seen) == 5


async def test_events_sent_before_the_dispatcher_runs_are_handled_when_it_does() -> (
    None
):
    """An inbox accepts events before the workers run; they are handled once it
    starts, in order."""
    recorder = Recorder()
    dispatcher = Dispatcher(recorder)
    inbox = dispatcher.inbox("chat").handle()
    for number in range(3):
        await inbox.send(message(number))
    assert recorder.seen == []
    async with dispatcher:
        pass
    assert recorder.ids() == ["0", "1", "2"]


# -- redeliveries ------------------------------------------------------------------


async def test_redelivery_is_dropped_and_counted() -> None:
    """An event id the instance accepted recently is dropped, counted and told to the
    observers; the same id on another instance is a different event."""
    recorder = Recorder()
    told: list[tuple[str, str]] = []
    async with Dispatcher(recorder) as dispatcher:
        dispatcher.add_event_observer(
            lambda instance, what: told.append((instance, what))
        )
        chat = dispatcher.inbox("chat")
        handle = chat.handle()
        assert await handle.send(message(1)) is True
        assert await handle.send(message(1)) is False
        assert await dispatcher.inbox("other").handle().send(message(1)) is True
    # Two instances, two workers: trio may run them in either order.
    assert sorted((e.instance, e.event_id) for e in recorder.seen) == [
        ("chat", "1"),
        ("other", "1"),
    ]
    assert (chat.received, chat.duplicates) == (1, 1)
    assert told == [("chat", "received"), ("chat", "duplicate"), ("other", "received")]


async def test_redelivery_window_is_bounded_by_count() -> None:
    """Only the last dedup_window ids are remembered: an older id is new again."""
    recorder = Recorder()
    async with Dispatcher(recorder, dedup_window=3) as dispatcher:
        inbox = dispatcher.inbox("chat")
        handle = inbox.handle()
        for number in range(4):
            await handle.send(message(number))
        assert await handle.send(message(3)) is False
        assert await handle.send(message(0)) is True
    assert recorder.ids() == ["0", "1", "2", "3", "0"]
    assert len(inbox.recent) == 3


def test_recent_ids_forget_the_oldest() -> None:
    """RecentIds keeps exactly the last ``size`` ids."""
    recent = RecentIds(2)
    for event_id in "abc":
        recent.add(event_id)
    assert ("a" in recent, "b" in recent, "c" in recent) == (False, True, True)
    with pytest.raises(ValueError, match="at least 1"):
        RecentIds(0)


# -- backpressure ------------------------------------------------------------------


async def test_send_waits_while_the_buffer_is_full_and_resumes_when_drained() -> None:
    """At capacity, send blocks (the event not yet accepted); once the handler takes
    one, the waiting send goes through. The depth never exceeds the capacity."""
    recorder = Recorder()
    recorder.gate = anyio.Event()
    accepted: list[str] = []
    async with Dispatcher(recorder, inbox_capacity=2) as dispatcher:
        inbox = dispatcher.inbox("chat")
        handle = inbox.handle()

        async def produce() -> None:
            for number in range(5):
                await handle.send(message(number))
                accepted.append(str(number))

        async with anyio.create_task_group() as group:
            group.start_soon(produce)
            await anyio.wait_all_tasks_blocked()
            # "0" is in the handler; "1" and "2" fill the buffer; "3" waits.
            assert accepted == ["0", "1", "2"]
            assert (inbox.depth, inbox.received) == (2, 3)
            recorder.gate.set()
    assert accepted == recorder.ids() == ["0", "1", "2", "3", "4"]
    assert inbox.depth == 0


async def test_cancelled_waiting_send_is_not_accepted_and_not_remembered() -> None:
    """A send cancelled while it waits for room accepted nothing: the same event
    sent again later is handled, not dropped as a duplicate."""
    recorder = Recorder()
    recorder.gate = anyio.Event()
    async with Dispatcher(recorder, inbox_capacity=1) as dispatcher:
        handle = dispatcher.inbox("chat").handle()
        await handle.send(message(0))
        await handle.send(message(1))
        with anyio.move_on_after(0.05) as scope:
            await handle.send(message(2))
        assert scope.cancelled_caught
        recorder.gate.set()
        assert await handle.send(message(2)) is True
    assert recorder.ids() == ["0", "1", "2"]


# -- failures ----------------------------------------------------------------------


async def test_handler_error_and_timeout_are_recorded_and_others_still_handled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler that raises or outlives handler_timeout is logged with the event id
    and the reason and told to the observers; the other events are handled."""
    handled: list[str] = []
    outcomes: dict[str, tuple[str, str | None]] = {}

    async def handler(event: InboundEvent) -> None:
        if event.event_id == "bad":
            raise RuntimeError("no such user")
        if event.event_id == "slow":
            await anyio.sleep_forever()
        handled.append(event.event_id)

    def observe(
        event: InboundEvent, outcome: str, seconds: float, reason: str | None
    ) -> None:
        assert seconds >= 0
        outcomes[event.event_id] = (outcome, reason)

    caplog.set_level(logging.ERROR, logger="demi")
    async with Dispatcher(handler, handler_timeout=0.05) as dispatcher:
        dispatcher.add_handled_observer(observe)
        handle = dispatcher.inbox("chat").handle()
        for event_id in ["ok1", "bad", "slow", "ok2"]:
            await handle.send(message(event_id))
        await handle.send(message("ok3", None))
    assert sorted(handled) == ["ok1", "ok2", "ok3"]
    assert outcomes["ok1"] == ("ok", None)
    assert outcomes["bad"] == ("error", "RuntimeError: no such user")
    assert outcomes["slow"][0] == "timeout"
    assert "0.05 s" in str(outcomes["slow"][1])
    text = caplog.text
    assert "event bad of chat" in text and "no such user" in text
    assert "event slow of chat" in text and "timeout" in text


async def test_handler_returning_garbage_is_an_error() -> None:
    """A handler result that is neither a mapping nor None is that event's error."""
    outcomes: list[tuple[str, str | None]] = []

    async def handler(event: InboundEvent) -> Any:
        return ["not", "a", "mapping"]

    async with Dispatcher(handler) as dispatcher:
        dispatcher.add_handled_observer(lambda e, o, s, r: outcomes.append((o, r)))
        await dispatcher.inbox("chat").handle().send(message(1))
    assert outcomes == [("error", "returned a list, not a mapping or None")]


async def test_reply_goes_to_the_events_instance_and_a_failed_one_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A returned mapping is sent with reply(instance, request); a reply that fails
    is logged with the event id and the others still go out."""
    replies: list[tuple[str, Mapping[str, Any]]] = []

    async def handler(event: InboundEvent) -> Mapping[str, Any]:
        return {"text": event.data["text"], "conversation": event.conversation}

    async def reply(instance: str, request: Mapping[str, Any]) -> None:
        if request["text"] == "t2":
            raise demi.PlatformTimeoutError(instance, "no answer within 1 s")
        replies.append((instance, request))

    caplog.set_level(logging.ERROR, logger="demi")
    async with Dispatcher(handler, reply=reply) as dispatcher:
        handle = dispatcher.inbox("chat").handle()
        for number in range(1, 4):
            await handle.send(message(number, "room"))
    assert replies == [
        ("chat", {"text": "t1", "conversation": "room"}),
        ("chat", {"text": "t3", "conversation": "room"}),
    ]
    assert "reply to event 2 of chat failed" in caplog.text
    assert "no answer within 1 s" in caplog.text


async def test_a_broken_observer_is_logged_and_loses_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Observers that raise are logged; every event is still accepted and handled."""
    recorder = Recorder()

    def broken(*args: object) -> None:
        raise RuntimeError("metrics are down")

    caplog.set_level(logging.ERROR, logger="demi")
    async with Dispatcher(recorder) as dispatcher:
        dispatcher.add_event_observer(broken)
        dispatcher.add_handled_observer(broken)
        handle = dispatcher.inbox("chat").handle()
        assert await handle.send(message(1)) is True
        assert await handle.send(message(1)) is False
        assert await handle.send(message(2)) is True
    assert recorder.ids() == ["1", "2"]
    failed = [r for r in caplog.records if "observer" in r.getMessage()]
    assert len(failed) == 5  # three sends and two handled events


async def test_a_reply_without_a_reply_path_is_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With no reply path, a handler's reply is logged as dropped, by event id."""

    async def handler(event: InboundEvent) -> Mapping[str, Any]:
        return {"text": "hi"}

    caplog.set_level(logging.WARNING, logger="demi")
    async with Dispatcher(handler) as dispatcher:
        await dispatcher.inbox("chat").handle().send(message(1))
    assert "the reply to event 1 of chat was dropped" in caplog.text


async def test_a_reply_cut_off_by_stop_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reply still on its way when the drain bound runs out is logged by id."""

    async def handler(event: InboundEvent) -> Mapping[str, Any]:
        return {"text": "hi"}

    async def reply(instance: str, request: Mapping[str, Any]) -> None:
        await anyio.sleep_forever()

    caplog.set_level(logging.WARNING, logger="demi")
    async with Dispatcher(handler, reply=reply) as dispatcher:
        await dispatcher.inbox("chat").handle().send(message(1))
        await anyio.wait_all_tasks_blocked()
        assert await dispatcher.stop(timeout=0.05) == []
    assert "the reply to event 1 of chat was not sent" in caplog.text


# -- stopping ----------------------------------------------------------------------


async def test_stop_lets_the_handler_finish_what_was_buffered() -> None:
    """stop() refuses new events, then waits for the buffered ones to be handled."""
    recorder = Recorder()
    recorder.gate = anyio.Event()
    async with Dispatcher(recorder) as dispatcher:
        handle = dispatcher.inbox("chat").handle()
        for number in range(4):
            await handle.send(message(number))

        async def open_gate_later() -> None:
            await anyio.sleep(0.05)
            assert recorder.gate is not None
            recorder.gate.set()

        async with anyio.create_task_group() as group:
            group.start_soon(open_gate_later)
            assert await dispatcher.stop(timeout=30) == []
        assert recorder.ids() == ["0", "1", "2", "3"]
        with pytest.raises(PlatformUnavailableError, match="'chat' is stopping"):
            await handle.send(message(9))


async def test_events_left_when_the_drain_time_runs_out_are_logged_by_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Events still buffered when the drain bound runs out are logged at WARNING,
    each by id, and returned; the one cut off in the handler is logged too."""
    recorder = Recorder()
    recorder.gate = anyio.Event()
    caplog.set_level(logging.WARNING, logger="demi")
    async with Dispatcher(recorder) as dispatcher:
        handle = dispatcher.inbox("chat").handle()
        for number in range(3):
            await handle.send(message(number))
        await anyio.wait_all_tasks_blocked()
        left = await dispatcher.stop(timeout=0.05)
    assert left == ["chat/1", "chat/2"]
    assert recorder.seen == []
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    for event_id in "012":
        assert any(f"event {event_id} of chat was not handled" in w for w in warnings)
    assert dispatcher.inbox("chat").depth == 0


async def test_a_dispatcher_cancelled_from_outside_logs_what_it_did_not_handle(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Cancelled by its host instead of stopped: the event in the handler and the
    buffered ones are each logged by id, not dropped silently."""
    recorder = Recorder()
    recorder.gate = anyio.Event()
    caplog.set_level(logging.WARNING, logger="demi")
    async with anyio.create_task_group() as group:

        async def host() -> None:
            async with Dispatcher(recorder, drain_timeout=0.05) as dispatcher:
                handle = dispatcher.inbox("chat").handle()
                for number in range(3):
                    await handle.send(message(number))
                await anyio.sleep_forever()

        group.start_soon(host)
        await anyio.wait_all_tasks_blocked()
        group.cancel_scope.cancel()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    for event_id in "012":
        assert any(f"event {event_id} of chat was not handled" in w for w in warnings)
    assert recorder.seen == []


async def test_stopping_after_a_cancel_waits_for_the_handler_not_the_drain_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The host is cancelled while the handler holds an event (shielded for a
    moment): stopping waits until that worker is gone, not for the whole drain bound,
    and the event is logged by id."""
    gate = anyio.Event()

    async def handler(event: InboundEvent) -> None:
        with anyio.CancelScope(shield=True):
            await gate.wait()
        await anyio.lowlevel.checkpoint()  # the host's cancellation lands here

    host_scope = anyio.CancelScope()

    async def host() -> None:
        with host_scope:
            async with Dispatcher(handler, drain_timeout=60) as dispatcher:
                await dispatcher.inbox("chat").handle().send(message("held"))
                await anyio.sleep_forever()

    caplog.set_level(logging.WARNING, logger="demi")
    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            group.start_soon(host)
            await anyio.wait_all_tasks_blocked()
            host_scope.cancel()
            await anyio.wait_all_tasks_blocked()  # the host waits in stop() now
            gate.set()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("event held of chat was not handled" in w for w in warnings)


async def test_a_dispatcher_runs_once() -> None:
    """Serving again after stop is refused: its inboxes are closed for good."""
    dispatcher = Dispatcher(Recorder())
    async with dispatcher:
        with pytest.raises(RuntimeError, match="runs once"):
            await dispatcher.serve()
    with pytest.raises(RuntimeError, match="runs once"):
        async with dispatcher:
            pass


async def test_send_waiting_for_room_fails_when_demi_stops() -> None:
    """A producer blocked on a full buffer is released by stop with an error: its
    event was not accepted."""
    recorder = Recorder()
    recorder.gate = anyio.Event()
    errors: list[BaseException] = []
    async with Dispatcher(recorder, inbox_capacity=1) as dispatcher:
        handle = dispatcher.inbox("chat").handle()

        async def produce() -> None:
            try:
                for number in range(5):
                    await handle.send(message(number))
            except PlatformUnavailableError as err:
                errors.append(err)

        async with anyio.create_task_group() as group:
            group.start_soon(produce)
            await anyio.wait_all_tasks_blocked()
            recorder.gate.set()
            await dispatcher.stop(timeout=30)
    assert len(errors) == 1
    assert recorder.ids() == ["0", "1"]


# -- the buffer belongs to the instance --------------------------------------------


async def test_a_new_platform_gets_a_new_handle_on_the_same_buffer() -> None:
    """After a restart or swap, the new handle shares the buffer and the memory of
    recent ids; the retired handle refuses to send."""
    recorder = Recorder()
    recorder.gate = anyio.Event()
    async with Dispatcher(recorder) as dispatcher:
        old = dispatcher.inbox("chat").handle()
        await old.send(message(1))
        await old.send(message(2))
        old.retire()
        new = dispatcher.inbox("chat").handle()
        assert new is not old and new.instance == old.instance == "chat"
        await anyio.wait_all_tasks_blocked()
        assert dispatcher.inbox("chat").depth == 1
        assert await new.send(message(2)) is False
        assert await new.send(message(3)) is True
        with pytest.raises(PluginStateError, match="retired"):
            await old.send(message(4))
        recorder.gate.set()
    assert recorder.ids() == ["1", "2", "3"]


async def test_swap_under_a_stream_loses_none_and_handles_none_twice() -> None:
    """A producer replaced midway (its run cancelled, a new one replaying from a bit
    before where the old one got to, as a reconnect does): every event is handled
    exactly once, counted by event_id, in order per conversation."""
    total = 3000
    counts: Counter[str] = Counter()
    order: dict[str, list[int]] = {}

    async def handler(event: InboundEvent) -> None:
        counts[event.event_id] += 1
        order.setdefault(str(event.conversation), []).append(int(event.event_id))
        if int(event.event_id) % 3 == 0:
            await anyio.lowlevel.checkpoint()

    async with Dispatcher(handler, inbox_capacity=64) as dispatcher:
        acked = -1

        async def run(start: int) -> None:
            # A platform's run: cancelled wherever it is, even waiting for room.
            nonlocal acked
            handle = dispatcher.inbox("chat").handle()
            try:
                for number in range(start, total):
                    await handle.send(message(number, f"c{number % 7}"))
                    acked = number
                    if number % 11 == 0:
                        await anyio.lowlevel.checkpoint()
            finally:
                handle.retire()

        async with anyio.create_task_group() as group:
            group.start_soon(run, 0)
            while acked < total // 2:
                await anyio.lowlevel.checkpoint()
            group.cancel_scope.cancel()
        assert acked < total - 1
        await run(max(0, acked - 50))
    assert set(counts) == {str(n) for n in range(total)}
    assert set(counts.values()) == {1}
    assert all(numbers == sorted(numbers) for numbers in order.values())
