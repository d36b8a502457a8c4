"""The conductor's side of an isolated platform: :class:`ProcessPlatform`.

To the manager it is an ordinary platform that listens: ``initialize`` starts the
child and forwards the configuration; its ``run`` (started by the manager once
``initialize`` succeeded) reads the child's messages, so a child that dies is noticed
at once, as a lost connection: every request in flight fails with
:class:`~demi.PlatformUnavailableError`, and the instance fails with the reason
("process exited: killed by signal 11 (SIGSEGV)") for the supervisor to restart.

A call that outlives its deadline sends ``cancel``; a child that does not answer it
within :data:`CANCEL_GRACE` (its loop is blocked, or the platform swallows
cancellation) is killed with its whole process group.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..core.logger import get_logger
from ..core.secrets import scrub
from ..exceptions import (
    PlatformFatalError,
    PlatformRequestError,
    PlatformUnavailableError,
    PluginValidationError,
)
from ..platforms.base import BasePlatform, PluginHealth
from ..platforms.inbound import Inbox, WebhookRequest, WebhookResponse
from ._child import GONE, Child, Shape
from ._faults import unanswered_cancel
from ._shapes import event_from_wire, request_to_wire, response_from_wire
from ._wire import Message, WireError

__all__ = ["CANCEL_GRACE", "ProcessPlatform", "process_platform"]

LOG = get_logger(__name__)

#: Seconds a child has to answer a cancellation before it is killed.
CANCEL_GRACE = 1.0


def process_platform(
    namespace: str, driver: str, memory_limit_mb: int | None = None
) -> type[ProcessPlatform]:
    """The class that runs ``driver`` of ``namespace`` in a child process, ended
    when its resident memory goes over ``memory_limit_mb`` MiB (if given)."""
    return type(
        f"ProcessPlatform[{driver}]",
        (ProcessPlatform,),
        {"namespace": namespace, "driver": driver, "memory_limit_mb": memory_limit_mb},
    )


class _Pending:
    """One request waiting for its answer."""

    __slots__ = ("ready", "reply", "wake")

    def __init__(self) -> None:
        #: Set when the answer came, or when the reader stopped (look again).
        self.wake = anyio.Event()
        self.reply: Message | BaseException | None = None
        #: A ``run`` request whose connection is up.
        self.ready = False

    @property
    def answered(self) -> bool:
        """Whether the answer (or the reason there is none) is in."""
        return self.reply is not None

    def answer(self, reply: Message | BaseException) -> None:
        self.reply = reply
        self.wake.set()

    async def wait(self) -> None:
        """Until the next wake-up: the answer, readiness, or "look again"."""
        await self.wake.wait()
        if not self.answered:
            self.wake = anyio.Event()


class ProcessPlatform(BasePlatform):
    """Forwards the platform contract to a child process (build one with
    :func:`process_platform`)."""

    namespace: ClassVar[str] = "demi.platforms"
    driver: ClassVar[str] = ""
    memory_limit_mb: ClassVar[int | None] = None
    # Its platform's code runs in the child: demi.plugins._calls has no steps of
    # it to time in this process.
    _demi_elsewhere: ClassVar[bool] = True

    def __init__(self) -> None:
        self._child: Child | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._reading = False
        # Without the reader (before run, and after demi cancelled it while still
        # sending requests as it stops), waiting callers take turns to read.
        self._read_turn = anyio.Lock()
        # The child's run request, while it lasts; events it sends, for delivery.
        self._run_call: tuple[int, _Pending] | None = None
        self._events: MemoryObjectSendStream[Message] | None = None

    @property
    def shape(self) -> Shape:
        """What the driver implements, as its child said (nothing before it did)."""
        return self._child.shape if self._child else Shape()

    @property
    def _demi_webhooks(self) -> bool:
        # What demi.platforms.base.takes_webhooks asks a stand-in like this one.
        return self.shape.webhooks

    @property
    def pid(self) -> int | None:
        """The child's process id (``None`` before it started)."""
        return self._child.pid if self._child else None

    @property
    def version(self) -> str | None:
        """The version of the distribution the child's driver came from."""
        return self._child.version if self._child else None

    # -- the contract ---------------------------------------------------------

    async def initialize(self, config: Mapping[str, Any]) -> bool:
        """Start the child, wait for its hello, forward ``initialize``."""
        self._child = await Child.spawn(self.namespace, self.driver, self.name)
        try:
            result = await self._request("initialize", {"config": dict(config)})
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._child.kill()
            raise
        return bool(result is True)

    async def run(
        self, inbox: Inbox, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Read the child's messages until it goes away, delivering its events to
        ``inbox``; for a driver that listens, run its ``run`` in the child and be
        ready when it is. Ends as the child's ``run`` ends, or raises why the child
        went away."""
        child = self._child
        if child is None:
            raise PlatformUnavailableError(self.name, self._why("never started"))
        ended: list[Message | BaseException] = []
        events, to_deliver = _event_stream()
        self._reading, self._events = True, events
        try:
            async with anyio.create_task_group() as reading, events, to_deliver:
                if self.memory_limit_mb is not None:
                    limit = self.memory_limit_mb
                    reading.start_soon(child.watch_memory, limit, self.name)
                reading.start_soon(self._deliver, child, inbox, to_deliver)
                if self.shape.listens:
                    stop = reading.cancel_scope
                    reading.start_soon(self._run_child, child, task_status, stop, ended)
                else:
                    task_status.started()
                await self._read(child)
                reading.cancel_scope.cancel()
        except anyio.get_cancelled_exc_class():
            self._stop_reading()
            # demi ends the connection: so does the child.
            with anyio.CancelScope(shield=True):
                await self._end_run(child)
            raise
        finally:
            self._stop_reading()
        if ended:
            self._run_call = None
            self._result("run", ended[0])  # the child's run ended: raise why
            return
        reason = await child.reason()
        self._fail_pending(reason)
        raise PlatformUnavailableError(self.name, reason)

    async def handle_webhook(
        self, request: WebhookRequest, inbox: Inbox
    ) -> WebhookResponse:
        """The child's answer to ``request`` (the events it sends reach demi through
        the reader, as those of ``run`` do)."""
        if not self.shape.webhooks:
            return await super().handle_webhook(request, inbox)  # takes none
        answer = await self._request(
            "handle_webhook", {"request": request_to_wire(request)}
        )
        return response_from_wire(answer)

    async def health_check(self) -> PluginHealth:
        """The child's own verdict."""
        result = await self._request("health_check", {})
        return PluginHealth(status=result["status"], error_message=result["error"])

    async def handle_request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The child's answer to ``request``."""
        answer: dict[str, Any] = await self._request(
            "handle_request", {"request": request}
        )
        return answer

    async def shutdown(self) -> None:
        """``shutdown`` in the child (bounded by the caller), then SIGTERM, then
        SIGKILL of its process group."""
        child = self._child
        if child is None:
            return
        try:
            if child.running and child.gone is None:
                await self._request("shutdown", {})
        except (PlatformRequestError, TimeoutError):
            pass
        finally:
            with anyio.CancelScope(shield=True):
                await child.stop()

    # -- inbound ---------------------------------------------------------------

    async def _run_child(
        self,
        child: Child,
        task_status: TaskStatus[None],
        reader: anyio.CancelScope,
        ended: list[Message | BaseException],
    ) -> None:
        """Run the driver's ``run`` in the child: ready when it is; when it ends,
        stop reading, with how it ended in ``ended``."""
        ident = next(self._ids)
        pending = self._pending[ident] = _Pending()
        self._run_call = (ident, pending)
        try:
            await child.channel.send(Message("req", ident, "run", {}))
        except GONE:
            return  # the reader sees it go
        started = False
        while not pending.answered:
            await pending.wait()
            if pending.ready and not started:
                started = True
                task_status.started()
        assert pending.reply is not None
        ended.append(pending.reply)
        self._pending.pop(ident, None)
        reader.cancel()

    async def _end_run(self, child: Child) -> None:
        """Cancel the child's ``run`` (killing the child if it does not end)."""
        if self._run_call is None:
            return
        ident, pending = self._run_call
        self._run_call = None
        try:
            if not pending.answered:
                await self._cancel(child, ident, pending)
        finally:
            self._pending.pop(ident, None)

    async def _deliver(
        self,
        child: Child,
        inbox: Inbox,
        events: MemoryObjectReceiveStream[Message],
    ) -> None:
        """Hand the child's events to ``inbox`` in the order they came, answering
        each: its sender in the child waits for that (backpressure)."""
        async for message in events:
            ack: dict[str, Any]
            try:
                accepted = await inbox.send(event_from_wire(message.params))
                ack = {"accepted": accepted}
            except PluginValidationError as err:
                ack = {"refused": str(err)}
            try:
                await child.channel.send(Message("ack", message.id, params=ack))
            except GONE:
                return

    # -- calls ----------------------------------------------------------------

    async def _request(self, method: str, params: dict[str, Any]) -> Any:
        child = self._child
        if child is None or child.gone is not None:
            raise PlatformUnavailableError(self.name, self._why("not running"))
        deadline = anyio.current_effective_deadline()
        if math.isfinite(deadline):
            params["timeout"] = max(deadline - anyio.current_time(), 0.001)
        ident = next(self._ids)
        pending = self._pending[ident] = _Pending()
        try:
            try:
                await child.channel.send(Message("req", ident, method, params))
            except WireError as err:
                raise PlatformRequestError(
                    self.name, f"platform {self.name!r}: the {method} call {err}"
                ) from None
            except GONE:
                raise PlatformUnavailableError(self.name, self._why("gone")) from None
            try:
                await self._answer_to(child, pending)
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await self._cancel(child, ident, pending)
                raise
        finally:
            self._pending.pop(ident, None)
        return self._result(method, pending.reply)

    async def _answer_to(self, child: Child, pending: _Pending) -> None:
        """Wait until ``pending`` is answered: told by the reader while it runs,
        else reading in turns with the other callers."""
        while not pending.answered:
            if self._reading:
                await pending.wait()
                continue
            async with self._read_turn:
                # Another caller's read may have brought this answer meanwhile.
                if not pending.answered:
                    try:
                        message = await child.channel.receive()
                    except (*GONE, WireError):
                        self._fail_pending(await child.reason())
                        return
                    self._take(message)

    async def _cancel(self, child: Child, ident: int, pending: _Pending) -> None:
        if child.gone is not None:
            return
        try:
            await child.channel.send(Message("cancel", ident))
            with anyio.move_on_after(CANCEL_GRACE):
                await self._answer_to(child, pending)
        except GONE:
            return
        if pending.reply is None:
            # The reason is set before the kill, so it reads as the hang it is,
            # not as "killed by signal 9" (see _faults.fault_of).
            child.gone = child.gone or unanswered_cancel(CANCEL_GRACE)
            LOG.warning("platform %s: %s", self.name, child.gone)
            await child.kill()

    def _take(self, message: Message) -> None:
        if message.t == "log":
            params = message.params if isinstance(message.params, dict) else {}
            # Scrubbed here too: the child's own handler knows no secrets of demi's.
            text = scrub(str(params.get("text", "")))
            level = params.get("level")
            level = level if isinstance(level, int) else logging.INFO
            get_logger(f"demi.platform.{self.name}").log(level, "%s", text)
            return
        if message.t == "event":
            if self._reading and self._events is not None:
                self._events.send_nowait(message)
            else:  # demi stopped reading: it is taking this platform out of service
                LOG.warning(
                    "platform %s sent an event while stopping: ignored", self.name
                )
            return
        pending = self._pending.get(message.id)
        if pending is None:
            return
        if message.t in ("ok", "err"):
            pending.answer(message)
        elif message.t == "ready":
            pending.ready = True
            pending.wake.set()

    def _result(self, method: str, reply: Message | BaseException | None) -> Any:
        if isinstance(reply, BaseException):
            raise reply
        if reply is None:
            raise PlatformUnavailableError(self.name, self._why("no answer"))
        if reply.t == "ok":
            return reply.params
        error = reply.params if isinstance(reply.params, dict) else {}
        text = str(error.get("text", ""))
        if error.get("kind") == "timeout":
            raise TimeoutError(text)
        if error.get("kind") == "fatal":
            raise PlatformFatalError(f"{method} in the child: {text}")
        raise PlatformRequestError(self.name, f"{method} in the child: {text}")

    async def _read(self, child: Child) -> None:
        while True:
            try:
                message = await child.channel.receive()
            except (*GONE, WireError):
                return
            self._take(message)

    def _stop_reading(self) -> None:
        self._reading, self._events = False, None
        for pending in self._pending.values():
            pending.wake.set()  # their callers read for themselves from now on

    def _fail_pending(self, reason: str) -> None:
        for pending in self._pending.values():
            if pending.reply is None:
                pending.answer(PlatformUnavailableError(self.name, reason))

    def _why(self, fallback: str) -> str:
        gone = self._child.gone if self._child else None
        return f"platform {self.name!r} is unavailable: {gone or fallback}"


def _event_stream() -> tuple[
    MemoryObjectSendStream[Message], MemoryObjectReceiveStream[Message]
]:
    # Unbounded, yet small: each event's sender in the child waits for its ack.
    return anyio.create_memory_object_stream[Message](math.inf)
