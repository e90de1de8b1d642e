"""Dask is optional: stardag never imports it unasked, and says what to install when it is missing.

Runs with or without dask installed: "missing" is simulated in a subprocess by
blocking the imports (``sys.modules[name] = None``).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import subprocess_env


def run_python(code: str, cwd: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_stardag_and_building_on_threads_never_imports_dask(fresh_dir: str) -> None:
    out = run_python("""
        import sys
        import stardag, stardag.build
        from stardag.build import build, DefaultExecutionModeSelector, HybridConcurrentTaskRunner
        from stardag.target import set_target_root
        import tasks_for_tests as tt
        set_target_root(".")
        assert build(tt.Leaf(value=1)).n_succeeded == 1
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed")))
    """, cwd=fresh_dir)
    assert out.strip() == "[]"


def test_asking_for_dask_without_it_says_what_to_install(fresh_dir: str) -> None:
    out = run_python("""
        import sys
        sys.modules["dask"] = None
        sys.modules["distributed"] = None
        import stardag.build
        from stardag.build import build, DefaultExecutionModeSelector, HybridConcurrentTaskRunner
        from stardag.target import set_target_root
        import tasks_for_tests as tt
        set_target_root(".")
        try:
            DefaultExecutionModeSelector(sync_run_default="dask")
        except ImportError as err:
            print("selector:", err)
        runner = HybridConcurrentTaskRunner(execution_mode_selector=lambda task: "dask")
        try:
            build(tt.Leaf(value=1), task_runner=runner)
        except ImportError as err:
            print("build:", err)
    """, cwd=fresh_dir)
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["selector", "build"], out
    assert all("pip install 'stardag[dask]'" in line for line in lines), out
