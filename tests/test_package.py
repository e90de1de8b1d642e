"""The package surface: ``__init__`` only re-exports, every ``__all__`` is sorted and resolves."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import stardag
import stardag.build

PACKAGE_DIR = Path(stardag.__file__).parent


def all_modules() -> list[str]:
    names = ["stardag"]
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="stardag."):
        names.append(info.name)
    return sorted(names)


def test_every_module_is_found() -> None:
    modules = all_modules()
    for name in ("stardag.task", "stardag._ids", "stardag.target", "stardag.registry", "stardag.errors",
                 "stardag.build", "stardag.build._scheduler", "stardag.build._executors", "stardag.build._driver"):
        assert name in modules


@pytest.mark.parametrize("name", all_modules())
def test_all_is_sorted_unique_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert list(exported) == sorted(exported), f"{name}.__all__ is not sorted"
    assert len(set(exported)) == len(exported)
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ names what it lacks: {missing}"


def test_package_init_only_re_exports() -> None:
    tree = ast.parse((PACKAGE_DIR / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):  # the docstring
            continue
        if isinstance(node, ast.ImportFrom):
            assert node.level == 1, "re-export from the package's own modules"
            continue
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["__all__"]:
            continue
        raise AssertionError(f"stardag/__init__.py line {node.lineno} does more than re-export")
    imported = {alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert imported == set(stardag.__all__)


def test_the_documented_api_imports() -> None:
    from stardag import AutoTask, Task  # noqa: F401
    from stardag.build import (  # noqa: F401
        BuildStatus,
        BuildSummary,
        DefaultExecutionModeSelector,
        FailMode,
        HybridConcurrentTaskRunner,
        build,
        build_aio,
        build_sequential,
        build_sequential_aio,
    )
    from stardag.errors import DependencyCycleError, StardagError, TaskDefinitionError  # noqa: F401
    from stardag.registry import NoOpRegistry, RegistryABC  # noqa: F401
    from stardag.target import get_target_root, set_target_root, target_root  # noqa: F401

    assert {"build", "build_aio", "build_sequential", "build_sequential_aio"} <= set(stardag.build.__all__)


def test_errors_share_one_base_and_subclass_the_matching_builtin() -> None:
    from stardag import errors

    builtins = {"DependencyCycleError": ValueError, "TargetError": ValueError, "TaskDefinitionError": TypeError,
                "TaskPicklingError": TypeError, "WorkerDiedError": RuntimeError}
    for name in errors.__all__:
        cls = getattr(errors, name)
        if name == "BuildInterrupted":  # Ctrl-C: never caught by `except Exception`
            assert issubclass(cls, KeyboardInterrupt) and not issubclass(cls, Exception)
            assert stardag.BuildInterrupted is cls
            continue
        assert issubclass(cls, errors.StardagError)
        if name in builtins:
            assert issubclass(cls, builtins[name]), name
        assert getattr(stardag, name, cls) is cls
