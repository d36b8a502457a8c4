"""``demi check`` beside a running fleet: it never joins the group (so it cannot move
a single instance), starts the exclusive instances whose lock it can take (it is
their owner while it checks them) and leaves the others to the members that hold
them, unchecked.
"""

from __future__ import annotations

from functools import partial

from ..conductor import Conductor
from ..core.logger import get_logger
from ..exceptions import ConfigError, DemiError
from ._calls import Calls
from ._locks import lock_name
from ._member import backend_url, group_of
from ._tooz import Backend, BackendError, HeldLock
from .ownership import EVERYWHERE, owners

__all__ = ["CheckClaim"]

LOG = get_logger("demi.coordination")

# Bound on each call to the backend while checking.
_CALL_TIMEOUT = 10.0


class CheckClaim:
    """What one ``demi check`` may start of a coordinated fleet's instances.

    :raises ConfigError: ``coordination_url`` is unset, tooz is not installed, or it
        knows no driver for the URL's scheme.
    """

    def __init__(self, conductor: Conductor) -> None:
        settings = conductor.settings
        url = backend_url(settings, "checking a fleet")
        self.conductor = conductor
        self.member_id = settings.member_id
        self.group = group_of(settings)
        try:
            self._backend = Backend(url, self.member_id, self.group)
        except ConfigError as err:
            where = settings.source_of("coordination_url")
            raise ConfigError(f"{err} (from {where})") from None
        self._calls = Calls()
        self._held: list[HeldLock] = []
        #: Each enabled instance's owner (this check's member id for what it runs).
        self.owner: dict[str, str | None] = {}
        #: The exclusive instances another member holds: not started here.
        self.unchecked: set[str] = set()

    async def claim(self) -> None:
        """Connect (without joining), read the members, take what locks it can, and
        restrict the conductor (not started yet) to what this check may run.

        :raises DemiError: the backend did not answer.
        """
        run = self._calls.run
        try:
            await run(self._backend.start, _CALL_TIMEOUT, "connecting")
            members = await run(self._backend.members, _CALL_TIMEOUT, "members")
        except BackendError as err:
            raise DemiError(f"coordination backend: {err}") from None
        specs = self.conductor.settings.enabled_platforms()
        fleet = owners(specs, members)
        for name in specs:
            owner = fleet[name]
            self.owner[name] = self.member_id if owner in (EVERYWHERE, None) else owner
            if not await self.conductor.exclusive(name):
                continue
            if await self._take(lock_name(self.group, name)):
                self.owner[name] = self.member_id
            else:
                self.unchecked.add(name)
                LOG.info("platform %s: held by %s; not checked", name, owner)
        self.conductor.assign(set(specs) - self.unchecked)

    async def _take(self, name: str) -> bool:
        try:
            lock = await self._calls.run(
                partial(self._backend.lock, name), _CALL_TIMEOUT, name
            )
            taken = await self._calls.run(lock.acquire, _CALL_TIMEOUT, name)
        except BackendError as err:
            LOG.warning("coordination: %s", err)
            return False
        if taken:
            self._held.append(lock)
        return taken

    async def release(self) -> None:
        """Once what it started has stopped: release its locks and disconnect."""
        for lock in self._held:
            try:
                await self._calls.run(lock.release, _CALL_TIMEOUT, lock.name)
            except BackendError as err:
                LOG.warning("coordination: %s", err)
        self._held.clear()
        try:
            await self._calls.run(self._backend.leave, _CALL_TIMEOUT, "disconnecting")
        except BackendError as err:
            LOG.warning("coordination: %s", err)
