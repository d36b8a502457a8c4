"""Discovery end to end, through stevedore, on the installed test distributions.

tox installs tests/fixture_dist (demi-testplugins) and tests/fixture_twin_dist
(demi-testplugins-twin); their entry points are real, and so are their faults.
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import MinimalPlatform

from demi import (
    BasePlatform,
    DemiSettings,
    HealthStatus,
    PluginError,
    PluginLoadError,
    PluginManager,
    PluginNotFoundError,
    PluginState,
    PluginValidationError,
    discover_plugins,
    validate_plugin_class,
)
from demi.plugins.discovery import (
    EntryPointInfo,
    load_driver,
    scan_entry_points,
)

NAMESPACE = "demi.platforms"
#: The second group of demi-testplugins: no AssertionError or SystemExit at import,
#: so stevedore's own failure callback does the reporting there.
CALM_NAMESPACE = "demi_testplugins.calm"
DIST = "demi-testplugins"
TWIN_DIST = "demi-testplugins-twin"
VERSION = "1.0.0"
#: Bound on a test that meets hanging plugins, so a missing timeout fails it.
GUARD = 60

GOOD = {"good", "good2", "configured", "counter"}
#: Valid classes that misbehave only once running: discovery must accept them.
RUNTIME_FAULTS = {
    "init_false",
    "init_raises",
    "init_hangs",
    "rejects_config",
    "health_raises",
    "health_hangs",
    "health_garbage",
    "health_swallows_cancel",
    "shutdown_raises",
    "shutdown_hangs",
    "request_raises",
    "request_hangs",
    "request_garbage",
}
#: Entry points that cannot give a platform class, and what their reason must say.
BROKEN = {
    "import_fails": "ModuleNotFoundError: No module named 'demi_testplugins_missing",
    "syntax_error": "SyntaxError",
    "missing_attribute": "AttributeError",
    "raises_at_import": "RuntimeError: demi_testplugins.raises_at_import cannot start",
    "asserts_at_import": "AssertionError: demi_testplugins.asserts_at_import failed",
    "exits_at_import": "SystemExit: 3",
    "not_a_class": "make_platform is a function, not a class",
    "not_a_platform": "does not inherit from demi.platforms.BasePlatform",
    "abstract": "abstract methods unimplemented: handle_request, shutdown",
    "sync_method": "health_check must be a coroutine function",
    # BaseExceptions at import are that plugin's failure too, and so is an exception
    # that cannot even be printed.
    "interrupts_at_import": (
        "KeyboardInterrupt: demi_testplugins.interrupts_at_import"
    ),
    "generator_exit_at_import": (
        "GeneratorExit: demi_testplugins.generator_exit_at_import"
    ),
    "unprintable_at_import": "UnprintableError (its message could not be read)",
    "hostile_class": (
        "inspecting it raised SystemExit: asked whether HostileClassPlatform blocks"
    ),
}
#: The hostile kinds of tests/test_fault_matrix.py: valid classes, so discovered.
FAULT_MATRIX = {
    *(
        f"bex_{where}_{kind}"
        for where in ("construct", "init", "health", "request", "shutdown")
        for kind in ("systemexit", "keyboardinterrupt", "generatorexit")
    ),
    "unprintable_init",
    "unprintable_request",
    "health_bogus_status",
    "health_int_message",
    "health_object_message",
    "health_huge_message",
    "reply_set",
    "reply_bytes",
    "reply_nan",
    "reply_object",
    "config_mutator",
    "loop_blocks_request",
    "loop_blocks_health",
    "init_leaks_secret",
}
CALM_BROKEN = ("import_fails", "raises_at_import", "not_a_platform")
#: All that loading "good" may import of demi-testplugins: the package, the healthy
#: echo every test platform builds on (never broken), and good's own module.
GOOD_IMPORTS = ["demi_testplugins", "demi_testplugins._echo", "demi_testplugins.good"]


def canonical(distribution: str | None) -> str | None:
    """A distribution name as packaging compares them (case and -_. folded)."""
    if distribution is None:
        return None
    return distribution.lower().replace("_", "-").replace(".", "-")


def names_distribution(text: str | None, distribution: str, version: str) -> bool:
    """Whether ``text`` names the distribution with its version, as "(dist version)"."""
    pattern = re.escape(distribution).replace(r"\-", "[-_.]")
    return (
        re.search(rf"\({pattern} {re.escape(version)}\)", text or "", re.I) is not None
    )


def run_python(code: str, *args: str, cache: Path) -> Any:
    """Run ``code`` in a fresh interpreter and return the JSON it prints last.

    sys.modules and stevedore's caches are process-wide, so what one import does to
    them can only be seen in a process of its own.
    """
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=[None, 30.0], ids=["unbounded", "bounded"])
def report(request: pytest.FixtureRequest) -> dict[str, list[EntryPointInfo]]:
    """scan_entry_points of demi.platforms, grouped by entry-point name: once in the
    caller's thread (no timeout), once through the bounded worker-thread path."""
    grouped: dict[str, list[EntryPointInfo]] = {}
    for info in scan_entry_points(NAMESPACE, timeout=request.param):
        grouped.setdefault(info.name, []).append(info)
    return grouped


@pytest.fixture
def settings() -> DemiSettings:
    """Short timeouts, so hanging test plugins cost little."""
    return DemiSettings(init_timeout=2, health_timeout=0.5, shutdown_timeout=0.5)


# -- discover_plugins --------------------------------------------------------------


def test_discover_plugins_returns_the_good_plugins() -> None:
    """Every good test plugin and the built-in echo are discovered."""
    assert GOOD | {"echo"} <= discover_plugins().keys()


def test_discover_plugins_keeps_plugins_that_fail_only_at_run_time() -> None:
    """A valid class is discovered even when it will misbehave once running."""
    assert RUNTIME_FAULTS <= discover_plugins().keys()


def test_discover_plugins_leaves_out_every_broken_plugin() -> None:
    """No broken entry point, and neither side of a conflict, is discovered."""
    assert not (BROKEN.keys() | {"twin"}) & discover_plugins().keys()


def test_discover_plugins_returns_only_valid_platform_classes() -> None:
    """Every discovered value is a class that passes validate_plugin_class."""
    for plugin in discover_plugins().values():
        validate_plugin_class(plugin)


def test_discover_plugins_maps_names_to_their_classes() -> None:
    """The class under a name is the one its entry point names."""
    from demi_testplugins.good import GoodPlatform

    from demi.platforms.echo import EchoPlatform

    found = discover_plugins()
    assert found["good"] is GoodPlatform
    assert found["echo"] is EchoPlatform


def test_discover_plugins_of_an_empty_namespace_is_empty() -> None:
    """A namespace nobody registers in gives no plugins and no error."""
    assert discover_plugins("demi.tests.nobody-registers-here") == {}


# -- scan_entry_points: failures are records ------------------------------------------


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_scan_records_each_broken_plugin_with_its_reason(
    report: dict[str, list[EntryPointInfo]], name: str
) -> None:
    """A broken entry point is kept as invalid, with no class and the reason why."""
    (info,) = report[name]
    assert not info.valid
    assert info.plugin is None
    assert info.error is not None
    assert BROKEN[name] in info.error


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_scan_records_the_distribution_of_each_broken_plugin(
    report: dict[str, list[EntryPointInfo]], name: str
) -> None:
    """A failure record names the distribution and version that registered it."""
    (info,) = report[name]
    assert canonical(info.distribution) == DIST
    assert info.version == VERSION
    assert info.target.startswith(f"demi_testplugins.{name}:")


@pytest.mark.parametrize("name", sorted(GOOD | RUNTIME_FAULTS | FAULT_MATRIX))
def test_scan_records_each_valid_plugin_with_its_class(
    report: dict[str, list[EntryPointInfo]], name: str
) -> None:
    """A valid entry point carries its class, its distribution and no error."""
    (info,) = report[name]
    assert info.valid
    assert info.error is None
    assert info.plugin is not None
    assert f"{info.plugin.__module__}:{info.plugin.__qualname__}" == info.target
    assert (canonical(info.distribution), info.version) == (DIST, VERSION)


def test_scan_names_demi_as_echos_distribution(
    report: dict[str, list[EntryPointInfo]],
) -> None:
    """echo comes from demi's own metadata, with demi's version."""
    from importlib.metadata import version

    (info,) = report["echo"]
    assert (info.distribution, info.version) == (
        "demi-conductor",
        version("demi-conductor"),
    )
    assert info.target == "demi.platforms.echo:EchoPlatform"


def test_scan_reports_both_sides_of_a_conflict(
    report: dict[str, list[EntryPointInfo]],
) -> None:
    """Two distributions registering one name both appear, one per distribution."""
    twins = report["twin"]
    found = [canonical(info.distribution) for info in twins]
    assert sorted(found, key=str) == [DIST, TWIN_DIST]


def test_scan_lets_neither_side_of_a_conflict_win(
    report: dict[str, list[EntryPointInfo]],
) -> None:
    """Both sides of a conflict are invalid and name both targets."""
    for info in report["twin"]:
        assert info.plugin is None
        assert info.error is not None
        assert "conflict" in info.error
        assert "demi_testplugins.twin:TwinPlatform" in info.error
        assert "demi_testplugins_twin.twin:TwinPlatform" in info.error


def test_scan_is_sorted_by_name_then_target() -> None:
    """The report comes back in a stable order, whatever the filesystem's."""
    keys = [(info.name, info.target) for info in scan_entry_points(NAMESPACE)]
    assert keys == sorted(keys)


@pytest.mark.parametrize("name", CALM_BROKEN)
def test_scan_through_stevedores_failure_callback_records_the_reason(
    name: str,
) -> None:
    """Without an escaping AssertionError, stevedore's callback path gives the
    same failure records."""
    (info,) = [i for i in scan_entry_points(CALM_NAMESPACE) if i.name == name]
    assert info.error is not None
    assert BROKEN[name] in info.error
    assert canonical(info.distribution) == DIST


def test_scan_through_stevedores_failure_callback_keeps_the_good() -> None:
    """The calm namespace still gives its good plugin."""
    assert set(discover_plugins(CALM_NAMESPACE)) == {"good"}


def test_scan_through_stevedores_failure_callback_reports_the_conflict() -> None:
    """A conflict is caught when stevedore's own path does the importing."""
    twins = [i for i in scan_entry_points(CALM_NAMESPACE) if i.name == "twin"]
    assert len(twins) == 2
    assert all(info.error and "conflict" in info.error for info in twins)


def test_scan_logs_each_failure_once_with_entry_point_distribution_and_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One error record per broken entry point, naming it, its distribution and why."""
    with caplog.at_level(logging.DEBUG, logger="demi"):
        scan_entry_points(NAMESPACE)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    for name, reason in BROKEN.items():
        mine = [r for r in errors if f"{name!r}" in r.getMessage()]
        assert len(mine) == 1, (name, [r.getMessage() for r in mine])
        message = mine[0].getMessage()
        assert f"demi_testplugins.{name}:" in message
        assert re.search(r"demi[-_]testplugins 1\.0\.0", message), message
        assert reason in message


# -- validate_plugin_class ---------------------------------------------------------


class _Valid(MinimalPlatform):
    pass


class _Abstract(BasePlatform):
    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True


class _SyncShutdown(_Valid):
    def shutdown(self) -> None:  # type: ignore[override]
        pass


class _NotAPlatform:
    async def initialize(self, config: Mapping[str, Any]) -> bool:
        return True


class _BadConfigModel(_Valid):
    config_model = dict  # type: ignore[assignment]


class _BlockingWithCoroutine(_Valid):
    blocking = True


def test_validate_accepts_a_valid_platform_quietly() -> None:
    """A complete BasePlatform subclass validates and returns None."""
    assert validate_plugin_class(_Valid) is None  # type: ignore[func-returns-value]


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        (_Valid(), "is a _Valid, not a class"),
        (len, "is a builtin_function_or_method, not a class"),
        ("echo", "is a str, not a class"),
        (_NotAPlatform, "does not inherit from demi.platforms.BasePlatform"),
        (_Abstract, "abstract methods unimplemented: handle_request, health_check"),
        (_SyncShutdown, "_SyncShutdown.shutdown must be a coroutine function"),
        (_BadConfigModel, "config_model must be a pydantic BaseModel subclass"),
        (_BlockingWithCoroutine, "must be a plain 'def' on a blocking platform"),
    ],
    ids=[
        "instance",
        "builtin",
        "string",
        "not-subclass",
        "abstract",
        "sync-method",
        "bad-config-model",
        "blocking-async",
    ],
)
def test_validate_rejects_with_the_reason(obj: object, reason: str) -> None:
    """Each broken part of the contract raises PluginValidationError saying which."""
    with pytest.raises(PluginValidationError) as caught:
        validate_plugin_class(obj)
    assert reason in str(caught.value)


def test_validation_error_is_a_demi_error_and_a_type_error() -> None:
    """PluginValidationError can be caught as DemiError, PluginError or TypeError."""
    with pytest.raises(PluginValidationError) as caught:
        validate_plugin_class(object)
    assert isinstance(caught.value, PluginError)
    assert isinstance(caught.value, TypeError)


# -- load_driver: one plugin by name -----------------------------------------------


def test_load_driver_returns_the_class() -> None:
    """load_driver gives the validated class registered under the name."""
    from demi_testplugins.good2 import SecondGoodPlatform

    assert load_driver("good2") is SecondGoodPlatform


def test_load_driver_of_an_unknown_name_lists_the_known_names() -> None:
    """An unregistered name raises PluginNotFoundError listing registered names."""
    with pytest.raises(PluginNotFoundError) as caught:
        load_driver("no-such-plugin")
    assert caught.value.plugin_name == "no-such-plugin"
    assert "good" in str(caught.value)
    assert "echo" in str(caught.value)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_load_driver_of_a_broken_plugin_raises_load_error(name: str) -> None:
    """A broken plugin loaded by name raises PluginLoadError with the reason."""
    with pytest.raises(PluginLoadError) as caught:
        load_driver(name)
    assert caught.value.plugin_name == name
    assert BROKEN[name] in str(caught.value)


def test_load_driver_of_a_conflicting_name_raises_load_error() -> None:
    """A name registered twice is refused by name too, naming both distributions."""
    with pytest.raises(PluginLoadError, match="conflict") as caught:
        load_driver("twin")
    assert names_distribution(str(caught.value), DIST, VERSION)
    assert names_distribution(str(caught.value), TWIN_DIST, VERSION)


@pytest.mark.slow
def test_load_driver_imports_only_that_plugins_module(tmp_path: Path) -> None:
    """Loading one plugin by name imports its module and no sibling's."""
    modules = run_python(
        """
        import json, sys
        from demi.plugins.discovery import load_driver
        load_driver("good")
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("demi_test"))))
        """,
        cache=tmp_path,
    )
    assert modules == GOOD_IMPORTS


@pytest.mark.slow
def test_load_plugin_on_a_fresh_manager_imports_no_sibling(
    tmp_path: Path, anyio_backend: str
) -> None:
    """A fresh manager loads one plugin by name without importing broken siblings."""
    result = run_python(
        """
        import json, sys
        import anyio
        from demi import DemiSettings, PluginManager

        async def main():
            async with PluginManager(settings=DemiSettings()) as manager:
                platform = await manager.load_plugin("good")
                answer = await manager.handle_request("good", {"n": 1})
                return type(platform).__name__, answer

        name, answer = anyio.run(main, backend=sys.argv[1])
        modules = sorted(m for m in sys.modules if m.startswith("demi_test"))
        print(json.dumps({"class": name, "answer": answer, "modules": modules}))
        """,
        anyio_backend,
        cache=tmp_path,
    )
    assert result == {
        "class": "GoodPlatform",
        "answer": {"n": 1},
        "modules": GOOD_IMPORTS,
    }


# -- no plugin can break a scan, nor hold it up ------------------------------------

HANGS_NAMESPACE = "demi_testplugins.hangs"
SLOW_NAMESPACE = "demi_testplugins.slow"
DEMI = Path(sys.executable).with_name("demi")


def _private_stevedore_uses(source: str) -> list[str]:
    """Every ``_``-prefixed name of stevedore that ``source`` imports or reaches."""
    found = []
    for node in ast.walk(ast.parse(source)):
        dotted: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            dotted = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            dotted = [alias.name for alias in node.names]
        elif isinstance(node, ast.Attribute):
            parts, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                parts.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name):
                dotted = [".".join([value.id, *parts])]
        for name in dotted:
            head, *rest = name.split(".")
            if head == "stevedore" and any(part.startswith("_") for part in rest):
                found.append(name)
    return found


def test_demi_uses_no_private_name_of_stevedore() -> None:
    """No module of demi imports or reaches a private name of stevedore (such as
    its ``_cache``): a stevedore release may change those without notice."""
    import demi

    uses = {
        str(path): _private_stevedore_uses(path.read_text(encoding="utf-8"))
        for path in Path(demi.__file__).parent.rglob("*.py")
    }
    assert {path: names for path, names in uses.items() if names} == {}


@pytest.mark.parametrize(
    ("source", "private"),
    [
        ("from stevedore import _cache", True),
        ("import stevedore._cache", True),
        ("stevedore._cache._c._internal.clear()", True),
        ("from stevedore.extension import ExtensionManager", False),
        ("stevedore.ExtensionManager.ENTRY_POINT_CACHE.clear()", False),
    ],
)
def test_the_private_name_check_tells_private_from_public(
    source: str, private: bool
) -> None:
    """The check above is not vacuous: it finds each form a private use takes, and
    passes public ones."""
    assert bool(_private_stevedore_uses(source)) is private


@pytest.mark.slow
def test_a_bounded_scan_abandons_an_import_that_hangs(tmp_path: Path) -> None:
    """With a timeout, an import that never finishes is reported as such and the
    scan returns, with every other entry point of the group discovered."""
    result = run_python(
        """
        import json
        from demi.plugins.discovery import scan_entry_points

        report = scan_entry_points("demi_testplugins.hangs", timeout=0.5)
        print(json.dumps({info.name: [info.valid, info.error] for info in report}))
        """,
        cache=tmp_path,
    )
    assert result == {
        "good": [True, None],
        "import_hangs": [False, "import did not finish within 0.5s"],
    }


@pytest.mark.slow
def test_a_bounded_scan_reports_a_slow_import_then_sees_it_finish(
    tmp_path: Path,
) -> None:
    """An import slower than the timeout (two seconds) is reported as not finishing;
    once it has finished, in its abandoned thread, a later scan finds the class."""
    result = run_python(
        """
        import json
        from demi.plugins.discovery import scan_entry_points

        def scan(timeout):
            (info,) = scan_entry_points("demi_testplugins.slow", timeout=timeout)
            return [info.valid, info.error]

        print(json.dumps([scan(0.3), scan(30)]))
        """,
        cache=tmp_path,
    )
    assert result == [[False, "import did not finish within 0.3s"], [True, None]]


@pytest.mark.slow
def test_a_scan_gives_the_user_their_ctrl_c(tmp_path: Path) -> None:
    """A Ctrl-C that arrives while some plugin imports, and that the plugin does
    not raise again, is the user's: the scan ends with KeyboardInterrupt instead of
    recording it as that plugin's failure."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "demi_ctrl_c.py").write_text(
        textwrap.dedent(
            """
            import os, signal, time
            from pathlib import Path

            from demi.platforms.echo import EchoPlatform

            once = Path(__file__).with_name("interrupted-once")
            if not once.exists():
                once.write_text("")
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(30)  # the SIGINT arrives as KeyboardInterrupt in here

            class CtrlCPlatform(EchoPlatform):
                pass
            """
        )
    )
    info = site / "demi_ctrl_c-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demi-ctrl-c\n")
    (info / "entry_points.txt").write_text(
        "[demi_tests.ctrl_c]\nctrl_c = demi_ctrl_c:CtrlCPlatform\n"
    )
    outcome = run_python(
        """
        import json, sys
        sys.path.insert(0, sys.argv[1])
        from demi.plugins.discovery import scan_entry_points

        try:
            scan_entry_points("demi_tests.ctrl_c")
        except KeyboardInterrupt:
            print(json.dumps("interrupted"))
        else:
            print(json.dumps("returned"))
        """,
        str(site),
        cache=tmp_path / "cache",
    )
    assert outcome == "interrupted"


def _demi_plugins(tmp_path: Path, *args: str, **env: str) -> Any:
    """Run ``demi plugins --json ARGS`` in tmp_path; return (exit code, rows by name)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DEMI_")}
    done = subprocess.run(
        [str(DEMI), "plugins", "--json", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**clean, "XDG_CACHE_HOME": str(tmp_path / "cache"), **env},
        timeout=GUARD,
        check=False,
    )
    return done.returncode, {row["name"]: row for row in json.loads(done.stdout)}


@pytest.mark.slow
def test_demi_plugins_reports_an_import_that_outlives_the_init_timeout(
    tmp_path: Path,
) -> None:
    """``demi plugins`` bounds each import by the configured init_timeout: a hanging
    plugin is listed as not finishing, and the command ends."""
    code, rows = _demi_plugins(
        tmp_path, "--namespace", HANGS_NAMESPACE, DEMI_INIT_TIMEOUT="0.5"
    )
    assert code == 1
    assert rows["import_hangs"]["error"] == "import did not finish within 0.5s"
    assert rows["good"]["valid"] is True


@pytest.mark.slow
def test_demi_plugins_scans_the_configured_namespace(tmp_path: Path) -> None:
    """Without --namespace, ``demi plugins`` lists the namespace of the settings."""
    code, rows = _demi_plugins(tmp_path, DEMI_NAMESPACE="demi_testplugins.only_good")
    assert (code, sorted(rows)) == (0, ["good", "good2"])


# -- refresh: plugins installed after the first scan --------------------------------

_INSTALL_LATE_PLUGIN = """
    import json, sys
    from pathlib import Path

    site = Path(sys.argv[1])
    sys.path.insert(0, str(site))

    def install():
        (site / "demi_late_plugin.py").write_text(
            "from demi.platforms.echo import EchoPlatform\\n"
            "class LatePlatform(EchoPlatform):\\n"
            "    pass\\n"
        )
        info = site / "demi_late-2.5.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            "Metadata-Version: 2.1\\nName: demi-late\\nVersion: 2.5\\n"
        )
        (info / "entry_points.txt").write_text(
            "[demi.platforms]\\nlate = demi_late_plugin:LatePlatform\\n"
        )
"""


@pytest.mark.slow
def test_refresh_entry_points_sees_a_distribution_installed_after_the_first_scan(
    tmp_path: Path,
) -> None:
    """A plugin installed after the first scan is hidden until refresh_entry_points,
    then discovered with its distribution."""
    site = tmp_path / "site"
    site.mkdir()
    result = run_python(
        _INSTALL_LATE_PLUGIN
        + """
    from demi.plugins import discovery

    first = "late" in discovery.discover_plugins()
    install()
    cached = "late" in discovery.discover_plugins()
    discovery.refresh_entry_points()
    (info,) = [i for i in discovery.scan_entry_points() if i.name == "late"]
    print(json.dumps([first, cached, info.valid, info.distribution, info.version]))
    """,
        str(site),
        cache=tmp_path / "cache",
    )
    assert result == [False, False, True, "demi-late", "2.5"]


@pytest.mark.slow
def test_refresh_entry_points_sees_a_distribution_rewritten_in_place(
    tmp_path: Path,
) -> None:
    """A plugin added by rewriting a distribution's entry points in place (the same
    dist-info, seconds later) is seen after refresh_entry_points, although
    stevedore's on-disk cache keys on mtimes too coarse to notice."""
    site = tmp_path / "site"
    site.mkdir()
    result = run_python(
        _INSTALL_LATE_PLUGIN
        + """
    from demi.plugins import discovery

    install()
    first = sorted(n for n in discovery.discover_plugins() if n.startswith("late"))
    entry_points = site / "demi_late-2.5.dist-info" / "entry_points.txt"
    entry_points.write_text(
        entry_points.read_text() + "late_too = demi_late_plugin:LatePlatform\\n"
    )
    discovery.refresh_entry_points()
    after = sorted(n for n in discovery.discover_plugins() if n.startswith("late"))
    print(json.dumps([first, after]))
    """,
        str(site),
        cache=tmp_path / "cache",
    )
    assert result == [["late"], ["late", "late_too"]]


@pytest.mark.slow
def test_manager_refresh_lets_a_late_plugin_load(
    tmp_path: Path, anyio_backend: str
) -> None:
    """After PluginManager.refresh, a plugin installed since the last scan loads."""
    site = tmp_path / "site"
    site.mkdir()
    result = run_python(
        _INSTALL_LATE_PLUGIN
        + """
    import anyio
    from demi import DemiSettings, PluginManager, PluginNotFoundError

    async def main():
        async with PluginManager(settings=DemiSettings()) as manager:
            await manager.discover_and_register()
            install()
            try:
                await manager.load_plugin("late")
                before = "loaded"
            except PluginNotFoundError:
                before = "not found"
            manager.refresh()
            platform = await manager.load_plugin("late")
            return before, platform.status

    print(json.dumps(anyio.run(main, backend=sys.argv[2])))
    """,
        str(site),
        anyio_backend,
        cache=tmp_path / "cache",
    )
    assert result == ["not found", "active"]


# -- the manager on real entry points ----------------------------------------------


async def test_discover_and_register_fills_the_registry(
    settings: DemiSettings,
) -> None:
    """After discover_and_register, the registry holds exactly the valid plugins."""
    async with PluginManager(settings=settings) as manager:
        found = await manager.discover_and_register()
        assert dict(manager.registry) == found
        assert GOOD | RUNTIME_FAULTS <= found.keys()
        assert not (BROKEN.keys() | {"twin"}) & found.keys()


async def test_registry_is_read_only(settings: DemiSettings) -> None:
    """The registry cannot be changed from outside."""
    manager = PluginManager(settings=settings)
    await manager.discover_and_register()
    with pytest.raises(TypeError):
        manager.registry["intruder"] = BasePlatform  # type: ignore[index]


async def test_list_plugins_shows_each_broken_plugin_as_failed(
    settings: DemiSettings,
) -> None:
    """list_plugins shows every broken plugin as failed, with reason and provenance."""
    async with PluginManager(settings=settings) as manager:
        await manager.discover_and_register()
        listed = {meta.name: meta for meta in manager.list_plugins()}
    for name, reason in BROKEN.items():
        meta = listed[name]
        assert meta.state is PluginState.FAILED
        assert meta.error is not None and reason in meta.error
        assert (canonical(meta.distribution), meta.version) == (DIST, VERSION)
        assert meta.valid is False


async def test_list_plugins_shows_good_plugins_as_discovered(
    settings: DemiSettings,
) -> None:
    """Valid plugins that are not loaded are listed as discovered, without error."""
    async with PluginManager(settings=settings) as manager:
        await manager.discover_and_register()
        listed = {meta.name: meta for meta in manager.list_plugins()}
    for name in GOOD | RUNTIME_FAULTS:
        assert listed[name].state is PluginState.DISCOVERED
        assert listed[name].error is None
        assert listed[name].target is not None


async def test_list_plugins_shows_a_conflict_as_failed(
    settings: DemiSettings,
) -> None:
    """The conflicting name is listed as failed, naming both distributions."""
    async with PluginManager(settings=settings) as manager:
        await manager.discover_and_register()
        listed = {meta.name: meta for meta in manager.list_plugins()}
    twin = listed["twin"]
    assert twin.state is PluginState.FAILED
    assert twin.error is not None
    assert names_distribution(twin.error, DIST, VERSION)
    assert names_distribution(twin.error, TWIN_DIST, VERSION)


async def test_list_plugins_is_sorted_by_name(settings: DemiSettings) -> None:
    """list_plugins comes back sorted by name."""
    async with PluginManager(settings=settings) as manager:
        await manager.discover_and_register()
        names = [meta.name for meta in manager.list_plugins()]
    assert names == sorted(names)


async def test_list_plugins_shows_the_loaded_state(settings: DemiSettings) -> None:
    """A loaded plugin is listed as active, with its provenance."""
    async with PluginManager(settings=settings) as manager:
        await manager.discover_and_register()
        await manager.load_plugin("good")
        (meta,) = [m for m in manager.list_plugins() if m.name == "good"]
    assert meta.state is PluginState.ACTIVE
    assert (canonical(meta.distribution), meta.version) == (DIST, VERSION)


async def test_load_plugin_without_discovery_loads_by_name(
    settings: DemiSettings,
) -> None:
    """A fresh manager loads a plugin by name with no discover_and_register first."""
    async with PluginManager(settings=settings) as manager:
        platform = await manager.load_plugin("configured", {
            "endpoint": "https://example.invalid", "token": "t0ken-value"
        })  # fmt: skip
        assert platform.status == "active"
        answer = await manager.handle_request("configured", {})
    assert answer == {
        "endpoint": "https://example.invalid",
        "retries": 3,
        "token_length": len("t0ken-value"),
    }


async def test_load_plugin_of_an_unknown_name_lists_the_known_names(
    settings: DemiSettings,
) -> None:
    """An unknown name raises PluginNotFoundError naming installed plugins."""
    manager = PluginManager(settings=settings)
    with pytest.raises(PluginNotFoundError) as caught:
        await manager.load_plugin("no-such-plugin")
    assert "good" in str(caught.value)
    assert manager.state_of("no-such-plugin") is None


@pytest.mark.parametrize("discover_first", [False, True], ids=["by-name", "scanned"])
@pytest.mark.parametrize("name", sorted(BROKEN | {"twin": "conflict"}))
async def test_load_plugin_of_a_broken_plugin_fails_with_the_reason(
    settings: DemiSettings, name: str, discover_first: bool
) -> None:
    """Loading a broken plugin raises PluginLoadError with the reason and leaves it
    failed, whether it was scanned first or loaded straight by name."""
    async with PluginManager(settings=settings) as manager:
        if discover_first:
            await manager.discover_and_register()
        with pytest.raises(PluginLoadError) as caught:
            await manager.load_plugin(name)
        assert caught.value.plugin_name == name
        assert (BROKEN | {"twin": "conflict"})[name] in str(caught.value)
        assert manager.state_of(name) is PluginState.FAILED


_LOAD_FAILS = {
    "init_false": "initialize returned False, not True",
    "init_raises": "ConnectionError: upstream refused the connection",
    "init_hangs": "initialize did not finish within",
    "rejects_config": "level",
}


@pytest.mark.parametrize("name", sorted(BROKEN.keys() | RUNTIME_FAULTS | {"twin"}))
async def test_a_fault_in_one_plugin_leaves_the_others_active(
    settings: DemiSettings, name: str
) -> None:
    """Whatever one test plugin does wrong, the good ones stay active and the
    manager keeps answering requests and health checks."""
    with anyio.fail_after(GUARD):
        config = {"level": 9, "api_key": "k"} if name == "rejects_config" else {}
        async with PluginManager(settings=settings) as manager:
            await manager.discover_and_register()
            await manager.load_plugin("good")
            await manager.load_plugin("counter")
            try:
                await manager.load_plugin(name, config)
            except PluginLoadError as err:
                assert name in BROKEN or name == "twin" or name in _LOAD_FAILS
                assert _LOAD_FAILS.get(name, "") in str(err)
            else:
                assert name in RUNTIME_FAULTS and name not in _LOAD_FAILS
                with contextlib.suppress(Exception):
                    await manager.handle_request(name, {}, timeout=0.5)
            health = await manager.health_check_all()
            assert health["good"].status is HealthStatus.HEALTHY
            assert health["counter"].status is HealthStatus.HEALTHY
            assert await manager.handle_request("good", {"still": "here"}) == {
                "still": "here"
            }
            assert await manager.handle_request("counter", {}) == {"count": 1}
            assert manager.state_of("good") is PluginState.ACTIVE
            assert manager.state_of("counter") is PluginState.ACTIVE
        assert manager.state_of("good") is PluginState.STOPPED
        assert manager.state_of("counter") is PluginState.STOPPED
