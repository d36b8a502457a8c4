"""What the probes, ``/health``, ``/metrics`` and ``demi check`` show of
coordination: the member's view of its group, and each instance's ``owner``.

Without coordination (``coordination_url`` unset) there is no group: the
``coordination`` section of ``/health`` is ``null`` and so is every ``owner``.
"""

from __future__ import annotations

from typing import Any

from ._member import Coordinator
from .ownership import EVERYWHERE, owners

__all__ = ["health_section", "owner_of_each", "readiness_problems"]


def health_section(coordinator: Coordinator | None) -> dict[str, Any] | None:
    """The top-level ``coordination`` section of ``/health``."""
    if coordinator is None:
        return None
    return {
        "connected": coordinator.connected,
        "member_id": coordinator.member_id,
        "members": sorted(coordinator.members),
        "group": coordinator.group,
        "owned_instances": coordinator.owned(),
        "rebalances": coordinator.rebalances,
    }


def owner_of_each(coordinator: Coordinator | None) -> dict[str, str | None]:
    """Each enabled instance's owner: the member id the hash ring names (this
    member's own for ``replicas = "all"``); empty without coordination."""
    if coordinator is None:
        return {}
    specs = coordinator.conductor.settings.enabled_platforms()
    members = {*coordinator.members, coordinator.member_id}
    return {
        name: coordinator.member_id if owner == EVERYWHERE else owner
        for name, owner in owners(specs, members).items()
    }


def readiness_problems(coordinator: Coordinator | None) -> dict[str, str]:
    """Why this replica's own share is not up, beyond what the supervisor sees:
    not joined yet, or a required instance it owns that does not run here (its lock
    is still held elsewhere, or the backend is unreachable)."""
    if coordinator is None:
        return {}
    if coordinator.share is None:
        return {"coordination": "not joined to the group yet"}
    conductor = coordinator.conductor
    problems = {}
    for name in sorted(coordinator.share):
        spec = conductor.spec_of(name)
        if spec is not None and spec.required and not conductor.runs_here(name):
            problems[name] = "owned here but not started: " + (
                "waiting for its lock"
                if coordinator.connected
                else "cut off from the coordination backend"
            )
    return problems
