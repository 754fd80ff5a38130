"""A non-editable install (the Dockerfile, the systemd install) carries every file the code reads:
templates, static files and migrations are package data, and pyproject.toml must name them."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_non_python_file_of_the_packages_is_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    missing = []
    for top in ("shared", "services"):
        for path in (ROOT / top).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(ROOT)
            covered = False
            for package, patterns in config.items():
                base = Path(*package.split("."))
                if base in relative.parents:
                    inside = relative.relative_to(base).as_posix()
                    covered = covered or any(fnmatch.fnmatch(inside, pattern) and inside.count("/") == pattern.count("/")
                                             for pattern in patterns)
            if not covered:
                missing.append(relative.as_posix())
    assert missing == [], f"not in [tool.setuptools.package-data]: {missing}"
