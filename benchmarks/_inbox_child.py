"""Case 8 in the child process: inbound events, demi's inbox against the anyio floor.

Loaded by ``_child.py`` (mode ``inbox``) from its own file, so, like it, it imports
only the standard library at module level.

demi's side is the real path: a listening platform, started by a ``Conductor``
session over ``PluginManager.from_classes``, sends the events from its ``run`` with
``await inbox.send(event)``; the conductor's handler gets them. A round starts and
stops a conductor, but only the stretch from the first send to the last handled
event (or the last reply seen) is timed: start and stop are case 5's business.

The floor is what a user would write by hand: an anyio memory object stream of the
same capacity as demi's inbox, read by one task that keeps the per-conversation
order (a deque per busy conversation, a task per busy conversation, capped by a
``CapacityLimiter`` of the same ``handler_concurrency``), and the same handler.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

perf = time.perf_counter
cpu = time.process_time

#: Share of events without a conversation (no ordering needed), one in ten.
_UNORDERED_EVERY = 10
CONVERSATIONS = 100
#: demi's inbox capacity (``Dispatcher``'s default, which the conductor uses).
CAPACITY = 1000

Timed = Callable[[], Awaitable[tuple[float, float]]]


def _events(n: int) -> list[Any]:
    from demi.platforms.inbound import InboundEvent

    return [
        InboundEvent(
            "message",
            {"text": "hi"},
            str(i),
            None if i % _UNORDERED_EVERY == 0 else f"c{i % CONVERSATIONS}",
        )
        for i in range(n)
    ]


class _State:
    """What one round's platform, handler and timer share."""

    def __init__(self) -> None:
        import anyio

        self.go = anyio.Event()
        self.done = anyio.Event()
        self.back = anyio.Event()
        self.count = 0
        self.target = 0
        self.start = (0.0, 0.0)
        self.end = (0.0, 0.0)

    def mark_start(self) -> None:
        self.start = (perf(), cpu())

    def handled(self) -> None:
        """The handler's only work: count, and note the time of the last event."""
        self.count += 1
        if self.count == self.target:
            self.end = (perf(), cpu())
            self.done.set()

    def elapsed(self, per: int = 1, scale: float = 1000.0) -> tuple[float, float]:
        """Wall and CPU from the start mark to the end mark, divided by ``per``, in
        milliseconds (``scale=1e6``: microseconds)."""
        return (
            scale * (self.end[0] - self.start[0]) / per,
            scale * (self.end[1] - self.start[1]) / per,
        )


def inbox(spec: dict[str, Any]) -> dict[str, Any]:
    """Throughput of ``spec["events"]`` events and the round trip of
    ``spec["round_trips"]`` messages, one at a time; demi and the floor interleaved."""
    import anyio

    from demi.conductor import Conductor
    from demi.core.config import DemiSettings, PlatformSettings
    from demi.handlers import echo
    from demi.platforms.base import BasePlatform, HealthStatus, PluginHealth
    from demi.plugins.manager import PluginManager

    events = _events(max(spec["events"], spec["round_trips"]))
    flood_events = events[: spec["events"]]
    trip_events = events[: spec["round_trips"]]
    state = _State()

    class Listener(BasePlatform):
        """Sends the round's events from ``run`` once told to; sees replies."""

        mode = "flood"

        async def initialize(self, config: Any) -> bool:
            return True

        async def health_check(self) -> PluginHealth:
            return PluginHealth(HealthStatus.HEALTHY)

        async def handle_request(self, request: Any) -> dict[str, Any]:
            state.back.set()
            return {}

        async def shutdown(self) -> None:
            return None

        async def run(
            self, inbox: Any, *, task_status: Any = anyio.TASK_STATUS_IGNORED
        ) -> None:
            task_status.started()
            await state.go.wait()
            if Listener.mode == "flood":
                state.mark_start()
                for event in flood_events:
                    await inbox.send(event)
            else:
                state.mark_start()
                for event in trip_events:
                    state.back = anyio.Event()
                    await inbox.send(event)
                    await state.back.wait()
                state.end = (perf(), cpu())
                state.done.set()
            await anyio.sleep_forever()

    settings = DemiSettings(platforms={"feed": PlatformSettings(driver="listener")})
    concurrency = settings.handler_concurrency

    async def nothing(event: Any) -> None:
        state.handled()

    async def demi_round(handler: Any, mode: str, target: int) -> tuple[float, float]:
        nonlocal state
        state = _State()
        state.target = target
        Listener.mode = mode
        manager = PluginManager.from_classes({"listener": Listener}, settings=settings)
        async with Conductor(settings, handler=handler, manager=manager):
            gc.collect()
            state.go.set()
            await state.done.wait()
        if mode == "trip":
            return state.elapsed(per=target, scale=1e6)
        return state.elapsed()

    async def demi_flood() -> tuple[float, float]:
        return await demi_round(nothing, "flood", len(flood_events))

    async def demi_trip() -> tuple[float, float]:
        return await demi_round(echo, "trip", len(trip_events))

    async def floor_flood() -> tuple[float, float]:
        nonlocal state
        state = _State()
        state.target = len(flood_events)
        send, receive = anyio.create_memory_object_stream[Any](CAPACITY)
        limiter = anyio.CapacityLimiter(concurrency)
        busy: dict[Any, deque[Any]] = {}

        async def produce() -> None:
            async with send:
                state.mark_start()
                for event in flood_events:
                    await send.send(event)

        async def work(key: Any, event: Any) -> None:
            async with limiter:
                while True:
                    await nothing(event)
                    if key is None:
                        return
                    waiting = busy[key]
                    if not waiting:
                        del busy[key]
                        return
                    event = waiting.popleft()

        gc.collect()
        async with anyio.create_task_group() as group:
            group.start_soon(produce)
            async with receive:
                async for event in receive:
                    key = event.conversation
                    if key is None:
                        group.start_soon(work, None, event)
                        continue
                    waiting = busy.get(key)
                    if waiting is not None:
                        waiting.append(event)
                    else:
                        busy[key] = deque()
                        group.start_soon(work, key, event)
        return state.elapsed()

    async def floor_trip(bounded: bool = False) -> tuple[float, float]:
        """The round trip by hand; ``bounded`` puts the handler and the reply each
        under ``fail_after``, as demi's handler and request timeouts do."""
        nonlocal state
        state = _State()
        platform = Listener()
        send, receive = anyio.create_memory_object_stream[Any](CAPACITY)
        handler_timeout, request_timeout = (
            settings.handler_timeout,
            settings.request_timeout,
        )

        async def serve() -> None:
            async with receive:
                async for event in receive:
                    if not bounded:
                        reply = await echo(event)
                        if reply is not None:
                            await platform.handle_request(reply)
                        continue
                    with anyio.fail_after(handler_timeout):
                        reply = await echo(event)
                    if reply is not None:
                        with anyio.fail_after(request_timeout):
                            await platform.handle_request(reply)

        gc.collect()
        async with anyio.create_task_group() as group:
            group.start_soon(serve)
            async with send:
                state.mark_start()
                for event in trip_events:
                    state.back = anyio.Event()
                    await send.send(event)
                    await state.back.wait()
                state.end = (perf(), cpu())
        return state.elapsed(per=len(trip_events), scale=1e6)

    async def floor_trip_bounded() -> tuple[float, float]:
        return await floor_trip(bounded=True)

    out: dict[str, Any] = {}

    async def main() -> None:
        repeats = spec["repeats"]
        out["flood"] = await _interleaved(
            {"demi": demi_flood, "floor": floor_flood}, repeats
        )
        out["trip"] = await _interleaved(
            {"demi": demi_trip, "floor": floor_trip, "bounded": floor_trip_bounded},
            repeats,
        )

    anyio.run(main, backend=spec["backend"])
    return out


async def _interleaved(modes: dict[str, Timed], repeats: int) -> dict[str, Any]:
    """Every mode once per round, alternating the order, after one untimed warm-up
    round; wall and CPU samples per mode (ms, or us per message for round trips)."""
    names = list(modes)
    for name in names:
        await modes[name]()
    wall: dict[str, list[float]] = {name: [] for name in names}
    used: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(repeats):
        for name in names if round_no % 2 == 0 else names[::-1]:
            w, c = await modes[name]()
            wall[name].append(w)
            used[name].append(c)
    return {"wall": wall, "cpu": used}
