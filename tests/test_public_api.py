"""The public surface: what demi exports, and which layer may import which."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.resources
import inspect
import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import demi
import demi.exceptions
import demi.platforms
import demi.plugins

#: Names the foundation issue promises at the top level.
CONTRACT = {
    "BasePlatform",
    "DemiError",
    "DemiSettings",
    "HealthStatus",
    "PluginHealth",
    "PluginLoadError",
    "PluginManager",
    "PluginMetadata",
    "PluginNotFoundError",
    "PluginState",
    "PluginValidationError",
    "discover_plugins",
    "validate_plugin_class",
}
#: Packages that sit on top of the library; nothing in the library imports them.
APPLICATION_PACKAGES = ("demi.cli", "demi.http", "demi.testing")
PACKAGE_ROOT = Path(demi.__file__).parent


def module_name(path: Path) -> str:
    """The dotted name of a module file under the demi package."""
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_within(name: str, package: str) -> bool:
    """Whether ``name`` is ``package`` or one of its submodules."""
    return name == package or name.startswith(package + ".")


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, anywhere in it (absolute names)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def library_files() -> list[Path]:
    """The source files of demi outside the application packages."""
    return [
        path
        for path in sorted(PACKAGE_ROOT.rglob("*.py"))
        if not any(is_within(module_name(path), pkg) for pkg in APPLICATION_PACKAGES)
    ]


def run_python(code: str) -> object:
    """Run ``code`` in a fresh interpreter; return the JSON it prints."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# -- __all__ -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module", [demi, demi.exceptions, demi.platforms, demi.plugins], ids=str
)
def test_all_is_sorted(module: types.ModuleType) -> None:
    """Each public module lists its __all__ in sorted order."""
    assert list(module.__all__) == sorted(module.__all__)


@pytest.mark.parametrize(
    "module", [demi, demi.exceptions, demi.platforms, demi.plugins], ids=str
)
def test_all_names_exist(module: types.ModuleType) -> None:
    """Every name in __all__ is defined by the module."""
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_top_level_exports_the_contract() -> None:
    """demi exports every name the contract promises."""
    assert CONTRACT <= set(demi.__all__)


def test_top_level_all_is_complete() -> None:
    """Every public class or function defined in demi's namespace is in __all__."""
    public = {
        name
        for name, value in vars(demi).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", "").startswith("demi")
    }
    assert public - set(demi.__all__) == set()


def test_every_exception_is_exported_at_the_top_level() -> None:
    """Each class of demi.exceptions is importable from demi itself."""
    assert set(demi.exceptions.__all__) <= set(demi.__all__)


def test_platform_and_plugin_names_are_exported_at_the_top_level() -> None:
    """What demi.platforms and demi.plugins export, demi exports too."""
    assert set(demi.platforms.__all__) | set(demi.plugins.__all__) <= set(demi.__all__)


@pytest.mark.parametrize("name", sorted(demi.exceptions.__all__))
def test_every_exception_derives_from_demi_error(name: str) -> None:
    """The exception tree has one root, DemiError."""
    assert issubclass(getattr(demi.exceptions, name), demi.DemiError)


@pytest.mark.parametrize(
    "name", ["PluginNotFoundError", "PluginLoadError", "PluginValidationError"]
)
def test_plugin_errors_are_plugin_errors(name: str) -> None:
    """The three plugin errors share PluginError, which carries the plugin's name."""
    error = getattr(demi, name)("x", "message")
    assert isinstance(error, demi.PluginError)
    assert (error.plugin_name, str(error)) == ("x", "message")


def test_version_is_the_installed_distributions() -> None:
    """demi.__version__ is the version of the installed demi distribution."""
    assert demi.__version__ == importlib.metadata.version("demi-conductor")


def test_unknown_attribute_raises_attribute_error() -> None:
    """A missing top-level name is an AttributeError, as usual."""
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = demi.no_such_thing


# -- packaging -----------------------------------------------------------------------


def test_py_typed_is_shipped() -> None:
    """The installed package carries its py.typed marker."""
    assert (importlib.resources.files("demi") / "py.typed").is_file()


def test_demi_registers_its_own_platforms_only() -> None:
    """demi's metadata registers echo, and every platform it registers is its own."""
    entry_points = importlib.metadata.distribution("demi-conductor").entry_points
    platforms = {
        ep.name: ep.value for ep in entry_points.select(group="demi.platforms")
    }
    assert platforms["echo"] == "demi.platforms.echo:EchoPlatform"
    assert all(value.startswith("demi.platforms.") for value in platforms.values())


def test_demi_metadata_never_names_the_test_plugins() -> None:
    """No entry point of demi's own points into a test distribution."""
    entry_points = importlib.metadata.distribution("demi-conductor").entry_points
    assert not [ep for ep in entry_points if "demi_testplugins" in ep.value]


# -- layering ------------------------------------------------------------------------


def test_the_source_tree_is_found() -> None:
    """The layering checks below read real files (guards against an empty walk)."""
    names = {module_name(path) for path in library_files()}
    assert {"demi", "demi.platforms.base", "demi.plugins.manager"} <= names


@pytest.mark.parametrize("path", library_files(), ids=lambda path: module_name(path))
def test_library_modules_never_import_the_application_packages(path: Path) -> None:
    """No library module imports demi.cli, demi.http or demi.testing, even lazily."""
    bad = {
        name
        for name in imported_modules(path)
        if any(is_within(name, pkg) for pkg in APPLICATION_PACKAGES)
    }
    assert bad == set()


@pytest.mark.parametrize(
    "path",
    sorted((PACKAGE_ROOT / "platforms").rglob("*.py")),
    ids=lambda path: module_name(path),
)
def test_platform_modules_never_import_the_plugin_machinery(path: Path) -> None:
    """The platform contract does not depend on the manager or discovery."""
    bad = {
        name
        for name in imported_modules(path)
        if is_within(name, "demi.plugins") or is_within(name, "demi.conductor")
    }
    assert bad == set()


@pytest.mark.slow
def test_importing_the_library_imports_no_application_package() -> None:
    """Importing every library module loads none of demi.cli, demi.http, demi.testing."""
    modules = sorted(module_name(path) for path in library_files())
    loaded = run_python(
        f"""
        import importlib, json, sys
        for name in {modules!r}:
            importlib.import_module(name)
        print(json.dumps(sorted(sys.modules)))
        """
    )
    assert isinstance(loaded, list)
    assert not [
        name for name in loaded if any(is_within(name, p) for p in APPLICATION_PACKAGES)
    ]


@pytest.mark.slow
def test_importing_demi_platforms_does_not_import_demi_plugins() -> None:
    """demi.platforms imports without demi.plugins (demi/__init__.py, which imports
    everything for the top-level names, is kept out of the way)."""
    loaded = run_python(
        """
        import importlib.util, json, sys, types

        spec = importlib.util.find_spec("demi")
        bare = types.ModuleType("demi")
        bare.__path__ = list(spec.submodule_search_locations)
        sys.modules["demi"] = bare
        import demi.platforms
        import demi.platforms.echo
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("demi"))))
        """
    )
    assert isinstance(loaded, list)
    assert "demi.platforms.base" in loaded
    assert not [name for name in loaded if is_within(name, "demi.plugins")]


def test_the_import_walker_sees_relative_imports() -> None:
    """imported_modules resolves relative imports, so the layering tests can fail."""
    path = PACKAGE_ROOT / "plugins" / "manager.py"
    assert "demi.plugins._catalog" in imported_modules(path)
    assert "demi.core.config" in imported_modules(path)
