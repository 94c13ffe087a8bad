"""Get what ``make test`` and ``make book`` need from outside Python: FashionMNIST and a browser.

Standard library only: the first stage runs with the system Python, before the virtual
environment exists, so that a machine that can get neither stops in seconds with one message
instead of after minutes of installing and a wall of failing cells.

Usage (the Makefile runs both stages)::

    python3 tools/ensure_system.py pre  [--data] [--browser]   # before .venv is built
    .venv/bin/python tools/ensure_system.py post [--data] [--browser]  # once it is

**FashionMNIST** (chapters 5-8 and their tests), in this order:

1. files already present, where ``pncutils.data.load_dataset`` looks (``$PNC_DATA``, Debian's
   ``/usr/share/datasets/fashion-mnist``, the cache ``~/.cache/pncutils/fashion_mnist``): the
   same table and search order, read from ``pncutils/_catalog.py``;
2. a checksummed download of the canonical files (pooch, with a progress bar) into the cache,
   when a mirror answers: ``pre`` only asks a mirror (10 s time-out), ``post`` downloads;
3. as root on a Debian-like system with ``apt-get``: Debian's ``dataset-fashion-mnist``,
   announced in one line (``PNC_SYSTEM_INSTALL=0`` forbids it).

When none works, ``pre`` exits with status 2 and one message that says what is missing and
the three ways to provide it. **The browser** of ``tests/test_site.py`` (``--browser``):
a Chromium found on the machine (``$PNC_CHROMIUM``, ``chromium`` on the PATH, Playwright's
own download), else Debian's ``chromium`` as root (``pre``), else Playwright's own browser
(``post``: ``playwright install chromium``, which needs its download host). A missing
browser never stops the run: the browser tests are then skipped, and the closing summary of
``make test`` says so (root ``conftest.py``).
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
DATASET = "fashion_mnist"
DEBIAN_DATA = "dataset-fashion-mnist"
DEBIAN_BROWSER = ("chromium", "fonts-liberation")
PROBE_TIMEOUT_S = 10
EXIT_MISSING = 2


def say(message: str) -> None:
    """One line on stderr, marked as this tool's (make shows it among its own lines)."""
    print(f"[ensure_system] {message}", file=sys.stderr, flush=True)


def load_catalog() -> ModuleType:
    """``pncutils/_catalog.py`` loaded by path: the dataset table without importing torch."""
    spec = importlib.util.spec_from_file_location("_pnc_catalog", ROOT / "pncutils" / "_catalog.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


# ----------------------------------------------------------------------------------------
# FashionMNIST
# ----------------------------------------------------------------------------------------


def find_data(catalog: ModuleType) -> tuple[Path | None, list[Path]]:
    """The folder holding both splits of FashionMNIST (or None), and the folders searched."""
    info = catalog.DATASETS[DATASET]
    folders = []
    searched: list[Path] = []
    for split in ("train", "test"):
        found, searched = catalog.find(info, split)
        if found is None:
            return None, searched
        folders.append(Path(found[1][0]).parent)
    return folders[0], searched


def probe_mirrors(catalog: ModuleType, timeout: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """Whether a FashionMNIST mirror answers a HEAD request; else the errors, in one line."""
    info = catalog.DATASETS[DATASET]
    name = info.files["test"][1]  # the smallest file
    errors = []
    for base in info.urls:
        request = urllib.request.Request(base + name, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if response.status < 400:
                    return True, ""
                errors.append(f"{base}: HTTP {response.status}")
        except (OSError, ValueError) as err:
            errors.append(f"{base}: {getattr(err, 'reason', err)}")
    return False, "; ".join(errors)


def can_apt() -> tuple[bool, str]:
    """Whether Debian packages may be installed here, else why not."""
    if os.environ.get("PNC_SYSTEM_INSTALL", "").strip().lower() in ("0", "false", "no", "off"):
        return False, "PNC_SYSTEM_INSTALL=0 forbids installing Debian packages"
    if shutil.which("apt-get") is None:
        return False, "no apt-get on this machine (not Debian-like)"
    if os.geteuid() != 0:
        return False, "not running as root, so apt-get cannot install packages"
    return True, ""


_apt_updated = False


def apt_install(packages: tuple[str, ...]) -> bool:
    """``apt-get install -y`` (after one ``apt-get update``); True when it succeeded."""
    global _apt_updated
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    steps = [] if _apt_updated else [["apt-get", "update", "-qq"]]
    steps.append(["apt-get", "install", "-y", "-qq", *packages])
    for cmd in steps:
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            say(f"`{' '.join(cmd)}` failed (exit {res.returncode}): "
                f"{(res.stdout + res.stderr).strip()[-1500:]}")
            return False
        if cmd[1] == "update":
            _apt_updated = True
    return True


def missing_data_message(catalog: ModuleType, searched: list[Path], why_not: list[str]) -> str:
    info = catalog.DATASETS[DATASET]
    files = ", ".join(info.files["train"] + info.files["test"])
    lines = [
        "FashionMNIST is needed (chapters 5-8 and their tests) and is not on this machine.",
        "Looked for " + files + " in:",
        *[f"  - {d}" for d in searched],
        "It could not be got automatically:",
        *[f"  - {w}" for w in why_not],
        "Provide it in one of three ways, then run the same make command again:",
        f"  1. put those four files in a folder and set PNC_DATA=/that/folder, or copy them "
        f"into {catalog.cache_base() / DATASET};",
        f"  2. run on a machine that can reach {info.urls[0]} (the files are downloaded and "
        "checked against their SHA-256 digests);",
        f"  3. as root on Debian/Ubuntu: apt-get install {DEBIAN_DATA}.",
    ]
    return "\n".join(lines)


def download_data(python: str) -> tuple[bool, str]:
    """Download both splits with ``pncutils.data`` (pooch, checksums, progress bar)."""
    code = ("from pncutils.data import load_dataset\n"
            f"for split in ('train', 'test'): load_dataset({DATASET!r}, split=split, "
            "download=True)\n")
    env = dict(os.environ, PNC_PROGRESS="1")
    env.pop("PNC_DOWNLOAD", None)
    res = subprocess.run([python, "-c", code], env=env, stdout=subprocess.PIPE, text=True,
                         check=False, cwd=ROOT)
    return res.returncode == 0, f"the download failed (exit {res.returncode})"


def ensure_data(stage: str, python: str | None) -> bool:
    """Make FashionMNIST present (see the module docstring); False when it is impossible."""
    catalog = load_catalog()
    folder, searched = find_data(catalog)
    if folder is not None:
        say(f"FashionMNIST: found in {folder}")
        return True
    why_not = []
    online, errors = probe_mirrors(catalog)
    if online and stage == "pre":
        say("FashionMNIST: not found; a mirror answers, so it will be downloaded once the "
            "environment is set up")
        return True
    if online and python:
        say(f"FashionMNIST: not found; downloading it into {catalog.cache_base() / DATASET}")
        ok, detail = download_data(python)
        if ok and find_data(catalog)[0] is not None:
            return True
        why_not.append(detail)
    elif not online:
        why_not.append(f"no mirror answers ({errors})")
    apt_ok, apt_why = can_apt()
    if apt_ok:
        say(f"FashionMNIST: not found and not downloadable; installing Debian's {DEBIAN_DATA} "
            f"(apt-get install -y {DEBIAN_DATA})")
        if apt_install((DEBIAN_DATA,)) and find_data(catalog)[0] is not None:
            return True
        why_not.append(f"apt-get install {DEBIAN_DATA} did not provide the files")
    else:
        why_not.append(apt_why)
    say(missing_data_message(catalog, searched, why_not))
    return False


# ----------------------------------------------------------------------------------------
# The browser
# ----------------------------------------------------------------------------------------


def find_chromium() -> Path | None:
    """A Chromium for Playwright: ``$PNC_CHROMIUM``, the PATH, then Playwright's own download.

    ``tests/test_site.py`` uses the same function, so the tool and the tests agree.
    """
    forced = os.environ.get("PNC_CHROMIUM", "").strip()
    if forced:
        return Path(forced) if Path(forced).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return Path(found)
    browsers = os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or os.path.expanduser(
        "~/.cache/ms-playwright")
    patterns = ("chromium-*/chrome-linux*/chrome", "chromium_headless_shell-*/*/headless_shell")
    for pattern in patterns:
        hits = sorted(glob.glob(os.path.join(browsers, pattern)))
        if hits:
            return Path(hits[-1])
    return None


def ensure_browser(stage: str, python: str | None) -> None:
    """Find or install a Chromium; never fails (the browser tests are skipped without one)."""
    found = find_chromium()
    if found is not None:
        say(f"browser: {found}")
        return
    apt_ok, apt_why = can_apt()
    if stage == "pre":
        if apt_ok:
            say("browser: no Chromium; installing Debian's chromium "
                f"(apt-get install -y {' '.join(DEBIAN_BROWSER)})")
            if apt_install(DEBIAN_BROWSER) and find_chromium() is not None:
                return
        return  # post tries Playwright's own browser
    if python:
        say("browser: no Chromium; trying Playwright's own (playwright install chromium)")
        res = subprocess.run([python, "-m", "playwright", "install", "chromium"],
                             capture_output=True, text=True, check=False, timeout=900)
        if res.returncode == 0 and find_chromium() is not None:
            say(f"browser: {find_chromium()}")
            return
        detail = (res.stdout + res.stderr).strip().splitlines()
        apt_why = f"{apt_why}; playwright install chromium failed: " + (
            detail[-1] if detail else f"exit {res.returncode}")
    say(f"browser: none ({apt_why}). The browser tests will be SKIPPED, and make test's "
        "summary will say so.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=("pre", "post"),
                        help="pre: before the venv (stdlib only); post: with the venv's python")
    parser.add_argument("--data", action="store_true", help="FashionMNIST")
    parser.add_argument("--browser", action="store_true", help="Chromium for tests/test_site.py")
    args = parser.parse_args(argv)
    python = sys.executable if args.stage == "post" else None
    if args.data and not ensure_data(args.stage, python):
        return EXIT_MISSING
    if args.browser:
        ensure_browser(args.stage, python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
