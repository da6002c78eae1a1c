"""A non-editable install (a built wheel) carries the migrations and runs `driftline migrate`.

The wheel is built from a copy of the sources (so the build leaves nothing in the work tree),
installed with ``pip install --target`` without its dependencies, and run with that folder
first on ``PYTHONPATH``: the packages come from the wheel, the dependencies from this
environment. The command runs from a folder outside the repository on a fresh data folder
(SQLite control database, chDB metrics store).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storage.clickhouse.migrations import MIGRATIONS
from storage.db_migrations import head_revision

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "migrations")
PACKAGES = ("detectors", "engine", "storage", "control_api", "driftline")


def _copy_sources(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.py[co]")
    target.mkdir()
    for name in SOURCES + PACKAGES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)


def _run(command, **options):
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, **options)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.slow
def test_a_built_wheel_ships_the_migrations_and_migrates_a_fresh_folder(tmp_path: Path) -> None:
    source, dist, site, data, elsewhere = (
        tmp_path / name for name in ("src", "dist", "site", "data", "elsewhere")
    )
    _copy_sources(source)
    _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(dist)])
    (wheel,) = dist.glob("driftline-*.whl")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ]
    )
    packaged = site / "storage" / "control_migrations"
    assert {p.name for p in (packaged / "versions").glob("*.py")} == {
        p.name for p in (ROOT / "migrations" / "versions").glob("*.py")
    }
    assert (packaged / "env.py").is_file()
    assert (packaged / "script.py.mako").is_file()

    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")} | {
        "PYTHONPATH": str(site),
        "DRIFTLINE_DATA_DIR": str(data),
    }
    where = _run(
        [sys.executable, "-c", "import storage.db_migrations as m; print(m.MIGRATIONS_DIR)"],
        env=env,
        cwd=elsewhere,
    )
    assert Path(where.stdout.strip()) == packaged  # the wheel's copy, not the checkout's
    migrated = _run([str(site / "bin" / "driftline"), "migrate"], env=env, cwd=elsewhere)
    assert f"control database: at revision {head_revision()}" in migrated.stdout
    versions = ", ".join(str(m.version) for m in MIGRATIONS)
    assert f"metrics store: applied {versions}" in migrated.stdout
    assert (data / "driftline.db").is_file()
    assert (data / "metrics").is_dir()
    again = _run([str(site / "bin" / "driftline"), "migrate"], env=env, cwd=elsewhere)
    assert "metrics store: up to date" in again.stdout
