"""The setup cell every chapter starts with (its first code cell), kept in one place.

`python tools/setup_cell.py` prints it; `tests/test_project.py` checks that every chapter's
first code cell equals it, and that its install lines name the repository of `_config.yml`
and the package version. In Colab the cell installs the book's release of ``pncutils``: from
PyPI first (``pncutils==<version>``, what d2l and QuantEcon do), and from the release tag of
the repository when PyPI does not have that version.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def repository_url() -> str:
    """``repository.url`` of ``_config.yml`` (the single source of the repository address)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = (config or {}).get("repository", {}).get("url") if isinstance(config, dict) else None
    if not isinstance(url, str) or not url.strip():
        raise ValueError("_config.yml has no repository.url")
    return url.strip()


def package_version() -> str:
    """``project.version`` of ``pyproject.toml``."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


def install_specs() -> tuple[str, str]:
    """The two requirement strings of the install cell: PyPI release, then the git tag."""
    url = repository_url().removesuffix(".git")
    version = package_version()
    return f"pncutils=={version}", f"pncutils @ git+{url}@v{version}"


def setup_cell_source() -> str:
    """The source of the setup cell (tags: ``hide-cell``)."""
    pypi, git = install_specs()
    head = (
        "# Setup, identical in every chapter. In Colab it installs pncutils at the book's\n"
        "# release (PyPI first, else the release tag on GitHub; Colab's own torch is kept).\n"
        "# Elsewhere `make book` / `make test` have installed it.\n"
    )
    return head + f'''import sys

if "google.colab" in sys.modules:
    import subprocess

    _release = "{pypi}"
    _tagged = "{git}"
    _pip = [sys.executable, "-m", "pip", "install", "-q"]
    if subprocess.run([*_pip, _release]).returncode != 0:
        subprocess.run([*_pip, _tagged], check=True)

import matplotlib.pyplot as plt
import numpy as np  # noqa: F401  (a few chapters use only pnc)
import torch  # noqa: F401  (a few chapters use only pnc)

import pncutils as pnc
from pncutils import book  # the book's experiment drivers (pncutils.book)

pnc.plotting.use_book_style()'''


if __name__ == "__main__":
    sys.stdout.write(setup_cell_source() + "\n")
