"""The setup cell every chapter starts with (its first code cell), kept in one place.

`python tools/setup_cell.py` prints it; `tests/test_project.py` checks that every chapter's
first code cell equals it, and that its install line names the repository of `_config.yml`
and the package version.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def repository_url() -> str:
    """``repository.url`` of ``_config.yml`` (the single source of the repository address)."""
    text = (ROOT / "_config.yml").read_text()
    match = re.search(r"^repository:\s*\n(?:\s+.*\n)*?\s+url:\s*(\S+)", text, re.M)
    if not match:
        raise ValueError("_config.yml has no repository.url")
    return match.group(1)


def package_version() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)


def setup_cell_source() -> str:
    """The source of the setup cell (tags: ``hide-cell``)."""
    url = repository_url().removesuffix(".git")
    return f'''# Setup, identical in every chapter. In Colab it installs pncutils at the book's release
# (keeping Colab's own torch); elsewhere `make book` / `make test` have installed it.
import sys

if "google.colab" in sys.modules:
    %pip install -q "pncutils @ git+{url}@v{package_version()}"

import matplotlib.pyplot as plt
import numpy as np
import torch

import pncutils as pnc

pnc.plotting.use_book_style()'''


if __name__ == "__main__":
    sys.stdout.write(setup_cell_source() + "\n")
