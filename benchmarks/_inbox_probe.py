"""Probe: 100,000 events through demi's inbox and dispatcher vs. a bare anyio floor.

Run ``python -m benchmarks._inbox_probe [asyncio|trio]``; the lead folds this into
``python -m benchmarks`` as a case. The floor is an anyio memory object stream
read by one task that keeps the per-conversation order with a deque per conversation
and a task per busy conversation, capped by a CapacityLimiter; the handler does
nothing in both. The round trip sends one message at a time through the ``echo``
handler and waits for its reply.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import deque
from typing import Any

import anyio

from demi.handlers import echo
from demi.inbox import Dispatcher
from demi.platforms.inbound import InboundEvent

N = 100_000
CONVERSATIONS = 100
CAPACITY = 1000
CONCURRENCY = 64


def make_events() -> list[InboundEvent]:
    return [
        InboundEvent(
            "message",
            {"text": "hi"},
            str(i),
            None if i % 10 == 0 else f"c{i % CONVERSATIONS}",
        )
        for i in range(N)
    ]


async def handler(event: InboundEvent) -> None:
    return None


async def floor(events: list[InboundEvent]) -> float:
    started = time.perf_counter()
    send, receive = anyio.create_memory_object_stream[InboundEvent](CAPACITY)
    limiter = anyio.CapacityLimiter(CONCURRENCY)
    busy: dict[Any, deque[InboundEvent]] = {}

    async def produce() -> None:
        async with send:
            for event in events:
                await send.send(event)

    async def work(key: Any, event: InboundEvent) -> None:
        async with limiter:
            while True:
                await handler(event)
                if key is None:
                    return
                waiting = busy[key]
                if not waiting:
                    del busy[key]
                    return
                event = waiting.popleft()

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
    return time.perf_counter() - started


async def demi_inbox(events: list[InboundEvent]) -> float:
    started = time.perf_counter()
    async with Dispatcher(
        handler, handler_concurrency=CONCURRENCY, inbox_capacity=CAPACITY
    ) as dispatcher:
        inbox = dispatcher.inbox("chat").handle()
        for event in events:
            await inbox.send(event)
        left = await dispatcher.stop(60)
        assert not left
    return time.perf_counter() - started


ROUND_TRIPS = 2000


async def floor_round_trip(events: list[InboundEvent]) -> float:
    """One message at a time: stream, handler, reply; the next once it is back."""
    send, receive = anyio.create_memory_object_stream[InboundEvent](CAPACITY)
    back = anyio.Event()

    async def reply(instance: str, request: Any) -> None:
        nonlocal back
        back.set()

    async def serve() -> None:
        async with receive:
            async for event in receive:
                await reply("chat", await echo(event))

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        group.start_soon(serve)
        async with send:
            for event in events[:ROUND_TRIPS]:
                back = anyio.Event()
                await send.send(event)
                await back.wait()
    return (time.perf_counter() - started) / ROUND_TRIPS


async def demi_round_trip(events: list[InboundEvent]) -> float:
    back = anyio.Event()

    async def reply(instance: str, request: Any) -> None:
        back.set()

    started = time.perf_counter()
    async with Dispatcher(echo, reply=reply) as dispatcher:
        inbox = dispatcher.inbox("chat").handle()
        for event in events[:ROUND_TRIPS]:
            back = anyio.Event()
            await inbox.send(event)
            await back.wait()
    return (time.perf_counter() - started) / ROUND_TRIPS


def main() -> None:
    backends = sys.argv[1:] or ["asyncio", "trio"]
    events = make_events()
    for backend in backends:
        floors, ours = [], []
        for _ in range(5):
            floors.append(anyio.run(floor, events, backend=backend))
            ours.append(anyio.run(demi_inbox, events, backend=backend))
        f, o = statistics.median(floors), statistics.median(ours)
        print(
            f"{backend}: {N} events: floor {f:.3f} s, demi {o:.3f} s, ratio {o / f:.2f}x"
        )
        f = statistics.median(
            anyio.run(floor_round_trip, events, backend=backend) for _ in range(5)
        )
        o = statistics.median(
            anyio.run(demi_round_trip, events, backend=backend) for _ in range(5)
        )
        print(
            f"{backend}: one message round trip: floor {f * 1e6:.0f} us, "
            f"demi {o * 1e6:.0f} us, ratio {o / f:.2f}x"
        )


if __name__ == "__main__":
    main()
