"""tools/ensure_system.py: what `make test` and `make book` do before any test or chapter runs.

The tool's decisions are tested in-process with its probes replaced (no network, no apt):
files found; a mirror that answers (download deferred to the `post` stage, then done with
pncutils); no mirror and apt as root (Debian's package, announced in one line); neither (exit
status 2 with one message naming the three ways, in well under a minute). A last test runs the
real script, as a subprocess with the system Python and nothing of the venv, on a machine state
where nothing can be got.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import ensure_system as es  # noqa: E402

FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _write_files(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        (folder / name).write_bytes(gzip.compress(b"stand-in"))


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """No data anywhere, no mirror, no apt, no browser; every probe recorded."""
    catalog = es.load_catalog()
    monkeypatch.setattr(es, "load_catalog", lambda: catalog)
    monkeypatch.setitem(catalog.SYSTEM_DIRS, "fashion_mnist", [str(tmp_path / "debian")])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PNC_DATA", raising=False)
    monkeypatch.delenv("PNC_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "ms-playwright"))
    calls: dict[str, list] = {"probe": [], "apt": [], "download": []}
    state = {"online": False, "apt": (False, "not running as root"), "apt_gives": None}

    def probe(cat, timeout=es.PROBE_TIMEOUT_S):
        calls["probe"].append(timeout)
        return state["online"], "" if state["online"] else "mirror: Name or service not known"

    def apt_install(packages):
        calls["apt"].append(packages)
        if state["apt_gives"] is not None:
            _write_files(state["apt_gives"])
        return True

    def download(python):
        calls["download"].append(python)
        _write_files(tmp_path / "cache" / "pncutils" / "fashion_mnist")
        return True, ""

    monkeypatch.setattr(es, "probe_mirrors", probe)
    monkeypatch.setattr(es, "can_apt", lambda: state["apt"])
    monkeypatch.setattr(es, "apt_install", apt_install)
    monkeypatch.setattr(es, "download_data", download)
    return tmp_path, state, calls


def test_files_already_present_need_nothing(machine, capsys):
    tmp, state, calls = machine
    _write_files(tmp / "debian")
    assert es.main(["pre", "--data"]) == 0
    assert calls == {"probe": [], "apt": [], "download": []}
    assert f"found in {tmp / 'debian'}" in capsys.readouterr().err


def test_pnc_data_is_searched_first(machine, monkeypatch, capsys):
    tmp, state, calls = machine
    _write_files(tmp / "mine" / "fashion_mnist")
    _write_files(tmp / "debian")
    monkeypatch.setenv("PNC_DATA", str(tmp / "mine"))
    assert es.main(["post", "--data"]) == 0
    assert f"found in {tmp / 'mine' / 'fashion_mnist'}" in capsys.readouterr().err


def test_only_one_split_is_not_enough(machine):
    tmp, state, calls = machine
    _write_files(tmp / "debian")
    (tmp / "debian" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert es.main(["pre", "--data"]) == es.EXIT_MISSING


def test_online_pre_defers_and_post_downloads_with_pncutils(machine, capsys):
    tmp, state, calls = machine
    state["online"] = True
    assert es.main(["pre", "--data"]) == 0
    assert calls["download"] == [] and calls["apt"] == []
    assert "will be downloaded" in capsys.readouterr().err
    assert es.main(["post", "--data"]) == 0
    assert calls["download"] == [sys.executable] and calls["apt"] == []
    assert es.main(["post", "--data"]) == 0  # now found: no second download
    assert len(calls["download"]) == 1


def test_offline_root_installs_the_debian_package_and_says_so(machine, capsys):
    tmp, state, calls = machine
    state["apt"] = (True, "")
    state["apt_gives"] = tmp / "debian"
    assert es.main(["pre", "--data"]) == 0
    assert calls["probe"] and calls["apt"] == [("dataset-fashion-mnist",)]
    lines = [l for l in capsys.readouterr().err.splitlines() if "dataset-fashion-mnist" in l]
    assert lines == ["[ensure_system] FashionMNIST: not found and not downloadable; installing "
                     "Debian's dataset-fashion-mnist (apt-get install -y dataset-fashion-mnist)"]


def test_a_failed_download_falls_back_to_apt(machine, monkeypatch):
    tmp, state, calls = machine
    state.update(online=True, apt=(True, ""), apt_gives=tmp / "debian")
    monkeypatch.setattr(es, "download_data", lambda python: (False, "the download failed"))
    assert es.main(["post", "--data"]) == 0
    assert calls["apt"] == [("dataset-fashion-mnist",)]


def test_nothing_possible_stops_with_one_message(machine, capsys):
    tmp, state, calls = machine
    start = time.perf_counter()
    assert es.main(["pre", "--data", "--browser"]) == es.EXIT_MISSING
    assert time.perf_counter() - start < 5
    err = capsys.readouterr().err
    assert err.count("[ensure_system]") == 1, "one message, not a wall"
    for needle in ("FashionMNIST is needed", str(tmp / "debian"), "no mirror answers",
                   "not running as root", "PNC_DATA=", "apt-get install dataset-fashion-mnist",
                   "SHA-256", str(tmp / "cache" / "pncutils" / "fashion_mnist")):
        assert needle in err, needle
    assert "three ways" in err and [l[:4] for l in err.splitlines() if l[:4] in
                                    ("  1.", "  2.", "  3.")] == ["  1.", "  2.", "  3."]
    assert calls["apt"] == []


def test_apt_that_provides_nothing_is_reported(machine, capsys):
    tmp, state, calls = machine
    state["apt"] = (True, "")
    assert es.main(["pre", "--data"]) == es.EXIT_MISSING
    assert "did not provide the files" in capsys.readouterr().err


def test_can_apt_rules(monkeypatch):
    monkeypatch.setenv("PNC_SYSTEM_INSTALL", "0")
    assert es.can_apt() == (False, "PNC_SYSTEM_INSTALL=0 forbids installing Debian packages")
    monkeypatch.delenv("PNC_SYSTEM_INSTALL")
    monkeypatch.setattr(es.shutil, "which", lambda name: None)
    assert es.can_apt()[0] is False and "apt-get" in es.can_apt()[1]
    monkeypatch.setattr(es.shutil, "which", lambda name: "/usr/bin/apt-get")
    monkeypatch.setattr(es.os, "geteuid", lambda: 1000)
    assert es.can_apt() == (False, "not running as root, so apt-get cannot install packages")
    monkeypatch.setattr(es.os, "geteuid", lambda: 0)
    assert es.can_apt() == (True, "")


def test_find_chromium_order(machine, monkeypatch):
    tmp, state, calls = machine
    assert es.find_chromium() is None
    shell = tmp / "ms-playwright" / "chromium-1200" / "chrome-linux64" / "chrome"
    shell.parent.mkdir(parents=True)
    shell.write_text("")
    assert es.find_chromium() == shell
    (tmp / "bin").mkdir()
    on_path = tmp / "bin" / "chromium"
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    assert es.find_chromium() == on_path
    monkeypatch.setenv("PNC_CHROMIUM", str(shell))
    assert es.find_chromium() == shell
    monkeypatch.setenv("PNC_CHROMIUM", str(tmp / "missing"))
    assert es.find_chromium() is None


def test_browser_pre_installs_debian_chromium_as_root(machine, capsys):
    tmp, state, calls = machine
    state["apt"] = (True, "")
    es.ensure_browser("pre", None)
    assert calls["apt"] == [("chromium", "fonts-liberation")]
    assert "installing Debian's chromium" in capsys.readouterr().err


def test_browser_post_tries_playwright_then_says_tests_will_be_skipped(machine, monkeypatch,
                                                                       capsys):
    tmp, state, calls = machine
    ran = []

    def fake_run(cmd, **kwargs):
        ran.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "Error: getaddrinfo ENOTFOUND cdn")

    monkeypatch.setattr(es.subprocess, "run", fake_run)
    es.ensure_browser("post", sys.executable)
    assert ran == [[sys.executable, "-m", "playwright", "install", "chromium"]]
    err = capsys.readouterr().err
    assert "SKIPPED" in err and "ENOTFOUND" in err and "not running as root" in err


def test_the_script_alone_with_the_system_python(tmp_path):
    """The `pre` stage as make runs it: stdlib only, nothing to get, a clean exit 2."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PNC_SYSTEM_INSTALL": "0",
           "PNC_DATA": str(tmp_path / "nothing-here")}
    code = ("import sys; sys.path.insert(0, 'tools'); import ensure_system as es\n"
            "catalog = es.load_catalog(); catalog.SYSTEM_DIRS['fashion_mnist'] = []\n"
            "es.load_catalog = lambda: catalog\n"
            "es.probe_mirrors = lambda catalog: (False, 'offline (test)')\n"
            "sys.exit(es.main(['pre', '--data', '--browser']))\n")
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    start = time.perf_counter()
    res = subprocess.run([python, "-S", "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == es.EXIT_MISSING, res.stderr
    assert time.perf_counter() - start < 30
    assert "PNC_SYSTEM_INSTALL=0 forbids" in res.stderr and "offline (test)" in res.stderr
    assert "Traceback" not in res.stderr
