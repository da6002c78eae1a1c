"""Build step shipping the control-database migrations inside the package.

The Alembic scripts live in the repository's top-level ``migrations/`` folder (DESIGN.md);
a wheel holds packages only, so the build copies that folder to
``storage/control_migrations/``, where :mod:`storage.db_migrations` finds it once installed.
Everything else about the package is declared in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE = Path(__file__).resolve().parent / "migrations"
PACKAGED = Path("storage", "control_migrations")  # storage.db_migrations.PACKAGED_DIR


class BuildPyWithMigrations(build_py):
    """``build_py``, then ``migrations/`` copied into the built ``storage`` package."""

    def run(self) -> None:
        """Build the packages, then add the migration scripts beside them."""
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's migrations/
            return
        target = Path(self.build_lib) / PACKAGED
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(SOURCE, target, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))


setup(cmdclass={"build_py": BuildPyWithMigrations})
