"""The ``account_conn`` fixture platform (tests/fixture_dist), which the replica tests
run by the dozen: loaded from its installed entry point, it holds one connection per
account to the connection counter, is exclusive, and fails when the connection goes.
"""

from __future__ import annotations

from connection_counter import Account, ConnectionCounter
from demi_testplugins.account_conn import AccountConnPlatform
from helpers import make_settings, wait_until

from demi import PlatformSettings, PluginState
from demi.conductor import Conductor
from demi.platforms.base import is_exclusive


def _conductor(address: str, **accounts: str) -> Conductor:
    """A conductor over the installed plugins with one account_conn instance per
    item (instance name to account)."""
    return Conductor(
        make_settings(
            {
                name: PlatformSettings(
                    driver="account_conn",
                    config={"address": address, "account": account},
                )
                for name, account in accounts.items()
            }
        )
    )


def test_it_is_exclusive() -> None:
    """It listens, so one instance's connection is never doubled by a restart."""
    assert is_exclusive(AccountConnPlatform)


async def test_each_instance_holds_one_connection_until_stopped(
    connection_counter: ConnectionCounter,
) -> None:
    """Active means counted; stopped means closed."""
    conductor = _conductor(connection_counter.address, one="acct-1", two="acct-2")
    async with conductor:
        # Ready only once the counter answered: counted before "active".
        assert {i.instance: i.state for i in conductor.instances()} == {
            "one": PluginState.ACTIVE,
            "two": PluginState.ACTIVE,
        }
        assert connection_counter.accounts() == {
            "acct-1": Account(1, 1, 1),
            "acct-2": Account(1, 1, 1),
        }
        assert all(i.connected for i in conductor.instances())
    await wait_until(lambda: not connection_counter.connected())
    assert connection_counter.accounts()["acct-1"] == Account(0, 1, 1)


async def test_a_closed_connection_fails_the_instance(
    connection_counter: ConnectionCounter,
) -> None:
    """The counter going away ends ``run`` with an error naming the account."""
    conductor = _conductor(connection_counter.address, one="acct-1")
    async with conductor:
        connection_counter.stop()
        await wait_until(lambda: conductor.instances()[0].state is PluginState.FAILED)
        error = conductor.instances()[0].error or ""
    assert "closed the connection of account acct-1" in error


async def test_a_refused_greeting_fails_the_start(
    connection_counter: ConnectionCounter,
) -> None:
    """An account the counter refuses (not one word) never becomes active."""
    conductor = _conductor(connection_counter.address, one="two words")
    async with conductor:
        status = conductor.instances()[0]
    assert status.state is PluginState.FAILED
    assert "refused account two words" in (status.error or "")
    assert connection_counter.accounts() == {}
