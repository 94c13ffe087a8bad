"""Shared fixtures: the book, built once per test session.

`built_book` builds the whole book with execution, in quick mode (`PNC_QUICK=1`), with
`-W -n --keep-going`, into a temporary folder. `test_project.py` checks that the build is
clean; `test_site.py` opens the built pages in headless Chromium.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "_vendor"


@dataclass(frozen=True)
class BookBuild:
    """The result of one `jupyter-book build` run."""

    returncode: int
    stdout: str
    stderr: str
    html: Path  # the built site (`.../_build/html`)
    seconds: float

    def log_tail(self) -> str:
        return self.stdout[-6000:] + self.stderr[-4000:]


def _ensure_vendored_assets() -> None:
    """MathJax, require.js and the widget manager in `_vendor/` (what `make book` installs).

    `_config.yml` serves `_vendor/` as a static path; without it the build warns (and fails
    under -W) and the pages would render neither math nor widgets. `_vendor/` is git-ignored,
    so a fresh checkout fills it here (again when the vendoring sources changed), exactly as
    the Makefile does; this needs npm and the npm registry.
    """
    script = ROOT / "tools" / "vendor_assets.sh"
    stamp = VENDOR / ".installed"
    sources = (script, ROOT / "tools" / "widgets_setup.js")
    if stamp.exists() and all(stamp.stat().st_mtime >= s.stat().st_mtime for s in sources):
        return
    if shutil.which("npm") is None:
        pytest.fail(f"{VENDOR} is missing or out of date and npm is not installed: run "
                    f"`bash tools/vendor_assets.sh _vendor && touch _vendor/.installed`")
    res = subprocess.run(["bash", str(script), str(VENDOR)], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    if res.returncode != 0:
        pytest.fail(f"tools/vendor_assets.sh failed (exit {res.returncode}); the book needs its "
                    f"vendored JavaScript in _vendor/:\n{res.stdout[-2000:]}{res.stderr[-3000:]}")
    stamp.touch()


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> BookBuild:
    """Build the book once per session (execution on, quick mode, -W -n --keep-going)."""
    jb = os.path.join(os.path.dirname(sys.executable), "jupyter-book")
    if not os.path.exists(jb):
        pytest.skip("jupyter-book is not installed in this environment")
    _ensure_vendored_assets()
    out = tmp_path_factory.mktemp("book")
    cmd = [jb, "build", "-W", "-n", "--keep-going", "--path-output", str(out), str(ROOT)]
    # No MPLBACKEND: the executed notebooks need the inline backend for their figures.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(PNC_QUICK="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    start = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    return BookBuild(res.returncode, res.stdout, res.stderr, out / "_build" / "html",
                     time.perf_counter() - start)
