"""A stand-in for Google Colab's Python environment, used by ``tests/test_colab.py``.

Two layers, so that every chapter starts from what Colab brings and nothing more:

* the **base** (cached in ``.venv-colab/``, git-ignored): a virtual environment with only
  the packages Colab ships that the book relies on, at the versions of ``requirements.txt``
  (torch, the CPU build here, stands in for Colab's CUDA torch; numpy, matplotlib,
  ipywidgets, ipykernel, nbformat), plus a stub ``google.colab`` package. No pncutils, no
  tqdm, no scikit-learn. Rebuilt only when the stamp (Python version, pins, stub) changes.
* an **overlay** per chapter (:func:`make_overlay`): a fresh, empty virtual environment whose
  site-packages sees the base through a ``.pth`` file. What the chapter's install cell
  installs goes into the overlay, so the base stays pristine (pip does not uninstall
  distributions outside the running environment) and each chapter starts clean.

Its kernel (:func:`write_kernelspec`) imports ``google.colab`` at start-up, as Colab's does,
so that ``"google.colab" in sys.modules`` is true from the first cell on.

``python tools/colab_env.py`` builds (or reuses) the base and prints its path.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / ".venv-colab"
# What Colab brings that the chapters need (versions from requirements.txt).
COLAB_PACKAGES = ("torch", "numpy", "matplotlib", "ipywidgets", "ipykernel", "nbformat")
# Must never be in the base: the chapter's install cell has to bring them.
NOT_IN_BASE = ("pncutils", "tqdm", "scikit-learn")
KERNEL_NAME = "pnc-colab"

STUB_VERSION = "1"
STUB_INIT = '''"""Stub of ``google.colab`` for the Colab-like notebook tests of this repository."""
__version__ = "0.0.0+pncutils-stub"
'''
STUB_OUTPUT = '''"""No-op stand-ins for the ``google.colab.output`` calls made for widgets."""


def enable_custom_widget_manager():
    pass


def disable_custom_widget_manager():
    pass
'''


def _pins() -> list[str]:
    reqs = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*(\S+)", line)
        if m:
            reqs[m.group(1).lower()] = m.group(0).strip()
    missing = [p for p in COLAB_PACKAGES if p not in reqs]
    if missing:
        raise RuntimeError(f"requirements.txt pins none of {missing}")
    return [reqs[p] for p in COLAB_PACKAGES]


def _stamp() -> str:
    key = {"python": sys.version.split()[0], "pins": _pins(), "stub": STUB_VERSION}
    return json.dumps(key, sort_keys=True)


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def site_packages(venv: Path) -> Path:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return venv / "lib" / version / "site-packages"


def _constraints(path: Path) -> Path:
    """Pin the transitive dependencies to the versions of the running environment (`.venv`)."""
    from importlib import metadata

    skip = {"pip", "setuptools", "wheel", "pncutils", *NOT_IN_BASE}
    lines = set()
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name and name not in skip and "+" not in dist.version:
            lines.add(f"{name}=={dist.version}")
    path.write_text("\n".join(sorted(lines)) + "\n")
    return path


def _run(cmd: list[str]) -> None:
    """Run quietly (pip's warnings about this machine's index settings are noise); raise with
    the output on failure."""
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stdout[-4000:]}{res.stderr[-4000:]}")


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_base(base: Path = BASE, log=print) -> Path:
    """Create (or reuse, if its stamp matches) the cached base environment; return its path."""
    stamp = base / ".colab-stamp"
    with _locked(base / ".lock"):
        if stamp.exists() and stamp.read_text() == _stamp() and _python(base).exists():
            return base
        log(f"creating the Colab-like environment in {base} (about 1-2 minutes)")
        for entry in base.iterdir():  # everything but the lock we hold
            if entry.name == ".lock":
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        subprocess.run([sys.executable, "-m", "venv", str(base)], check=True)
        cons = _constraints(base / "constraints.txt")
        _run([str(_python(base)), "-m", "pip", "install", "-q", "-c", str(cons), *_pins()])
        stub = site_packages(base) / "google" / "colab"  # `google` stays a namespace package
        stub.mkdir(parents=True)
        (stub / "__init__.py").write_text(STUB_INIT)
        (stub / "output.py").write_text(STUB_OUTPUT)
        out = subprocess.run([str(_python(base)), "-m", "pip", "list", "--format=json"],
                             check=True, capture_output=True, text=True).stdout
        names = {d["name"].lower() for d in json.loads(out)}
        bad = names & set(NOT_IN_BASE)
        if bad:
            raise RuntimeError(f"the Colab-like base must not contain {sorted(bad)}")
        stamp.write_text(_stamp())
    return base


def build_wheel(dest: Path, base: Path = BASE) -> Path:
    """Build a wheel of pncutils from the working tree (uncommitted changes included).

    The sources are copied first, so that the build leaves nothing in the checkout.
    """
    src = dest / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "setup.cfg"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "pncutils", src / "pncutils",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = dest / "wheel"
    shutil.rmtree(wheels, ignore_errors=True)
    _run([str(_python(base)), "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)])
    (whl,) = wheels.glob("pncutils-*.whl")
    return whl


def make_overlay(dest: Path, base: Path = BASE) -> Path:
    """A fresh, empty environment at `dest` that sees the base's packages; return its path."""
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    # addsitedir (not a bare path) so that the base's own .pth files are processed too
    line = f"import site; site.addsitedir({str(site_packages(base))!r})\n"
    (site_packages(dest) / "_colab_base.pth").write_text(line)
    return dest


def write_kernelspec(venv: Path) -> Path:
    """Kernelspec of the overlay's Python that imports ``google.colab`` at start-up.

    Returns the folder that holds it (for ``KernelSpecManager(kernel_dirs=[...])``).
    """
    kdir = venv / "share" / "jupyter" / "kernels"
    (kdir / KERNEL_NAME).mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [str(_python(venv)), "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--IPKernelApp.exec_lines=import google.colab"],
        "display_name": "Python 3 (Colab-like)",
        "language": "python",
    }
    (kdir / KERNEL_NAME / "kernel.json").write_text(json.dumps(spec, indent=1))
    return kdir


def kernel_env(venv: Path, **extra: str) -> dict[str, str]:
    """The kernel's environment: this one, minus what would leak the book's environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MPLBACKEND", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV",
                        "PNC_DEVICE")}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONNOUSERSITE"] = "1"
    env.update(extra)
    return env


if __name__ == "__main__":
    print(ensure_base())
