"""Which member of a coordination group runs which instance: one pure function.

An instance with ``replicas = 1`` belongs to exactly one member: the one tooz's
consistent hash ring (:class:`tooz.hashring.HashRing`, what tooz's ``Partitioner``
uses, with its defaults: 32 partitions per member, md5, the object hashed by its
name) names for the instance's name, over the members of the group at that moment.
Every member computes the same answer from the same member set, and a member that
joins or leaves moves only about ``1/N`` of the instances. An instance with
``replicas = "all"`` runs on every member.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ..core.config import PlatformSettings

__all__ = ["EVERYWHERE", "owners", "share_of"]

#: What :func:`owners` gives an instance that runs on every member.
EVERYWHERE = "*"


def owners(
    instances: Mapping[str, PlatformSettings], members: Collection[str]
) -> dict[str, str | None]:
    """The owner of each instance: a member id, :data:`EVERYWHERE` for ``replicas =
    "all"``, or ``None`` while the group has no member."""
    from tooz.hashring import HashRing

    ring = HashRing(sorted(members)) if members else None
    found: dict[str, str | None] = {}
    for name, spec in instances.items():
        if spec.replicas == "all":
            found[name] = EVERYWHERE
        elif ring is None:
            found[name] = None
        else:
            (owner,) = ring.get_nodes(name.encode())
            found[name] = str(owner)
    return found


def share_of(
    member: str, instances: Mapping[str, PlatformSettings], members: Collection[str]
) -> set[str]:
    """The instances ``member`` should run, given the group's ``members`` (``member``
    is counted among them even if the backend has not listed it yet)."""
    everyone = {*members, member}
    return {
        name
        for name, owner in owners(instances, everyone).items()
        if owner in (member, EVERYWHERE)
    }
