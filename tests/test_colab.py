"""Every chapter runs as in Colab: from what Colab brings, with the chapter's own install cell.

The environment (``tools/colab_env.py``) holds only torch, numpy, matplotlib, ipywidgets,
ipykernel and nbformat at the pinned versions, plus a stub ``google.colab`` that the kernel
imports at start-up, so the setup cell takes its Colab branch. Its ``%pip install`` line is
pointed at a wheel of the working tree (uncommitted changes included) instead of the
release tag; it must bring pncutils and its dependencies and keep Colab's torch. Each
chapter then runs top to bottom in quick mode, in an empty folder (Colab's ``/content`` has
no checkout next to the notebook). The base environment is cached in ``.venv-colab/``
(about 2.5 minutes to create); each chapter gets a fresh, empty overlay on top of it.

``PNC_SKIP_COLAB=1`` skips these tests (they need the package index for tqdm and the build
backend).
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("ch*.ipynb"))
sys.path.insert(0, str(ROOT / "tools"))
import colab_env  # noqa: E402

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

skip_colab = pytest.mark.skipif(os.environ.get("PNC_SKIP_COLAB", "") not in ("", "0"),
                                reason="PNC_SKIP_COLAB is set")

# The install lines of tools/setup_cell.py: the PyPI release, then the release tag of the
# repository as the fallback (both installed by the kernel's own pip).
RELEASE = re.compile(r'^(?P<indent>[ \t]+)_release = "(?P<spec>pncutils==[0-9][\w.]*)"$', re.M)
TAGGED = re.compile(
    r'^(?P<indent>[ \t]+)_tagged = "(?P<spec>pncutils @ git\+https://\S+@v[0-9][\w.]*)"$', re.M)
# a requirement that pip rejects at once, without any network: stands in for "not on PyPI"
MISSING = "pncutils @ file:///nonexistent/pncutils-0.0.0-py3-none-any.whl"
CELL_TIMEOUT = 300


@pytest.fixture(scope="session")
def colab_base():
    t0 = time.perf_counter()
    base = colab_env.ensure_base()
    took = time.perf_counter() - t0
    if took > 5:
        print(f"\n[colab] base environment created in {took:.0f} s")
    return base


@pytest.fixture(scope="session")
def pncutils_wheel(colab_base, tmp_path_factory):
    """A wheel of the working tree, rebuilt every session (the tree changes between runs)."""
    return colab_env.build_wheel(tmp_path_factory.mktemp("pncutils-wheel"), colab_base)


def wheel_spec(wheel: Path) -> str:
    return f"pncutils @ {wheel.as_uri()}"


def colab_notebook(path: Path, wheel: Path, venv: Path, via: str = "pypi"):
    """The chapter as Colab would run it, its install lines pointed at `wheel`, with checks.

    ``via="pypi"``: the release line installs `wheel`; ``via="tag"``: the release line fails
    (not on PyPI) and the fallback line installs `wheel`.
    """
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cell"
    setup = code[0]
    src = setup.source
    assert 'if "google.colab" in sys.modules:' in src, "the setup cell lost its Colab branch"
    for pattern, name in ((RELEASE, "_release"), (TAGGED, "_tagged")):
        hits = pattern.findall(src)
        assert len(hits) == 1, (
            f"{path.name}: the setup cell must hold exactly one line `{name} = \"...\"` "
            f"of the form {pattern.pattern!r} (found {len(hits)}); "
            "update tests/test_colab.py if its format changed on purpose"
        )
    assert src.count('"-m", "pip", "install"') == 1, "the setup cell must install pncutils only"
    # PyPI path: the release line installs the wheel; fallback path: the release is missing
    # (as before the first PyPI upload) and the tagged line installs the wheel
    release = wheel_spec(wheel) if via == "pypi" else MISSING
    new = RELEASE.sub(lambda m: f'{m["indent"]}_release = "{release}"', src)
    new = TAGGED.sub(lambda m: f'{m["indent"]}_tagged = "{wheel_spec(wheel)}"', new)
    assert new != src and wheel.as_uri() in new and "git+" not in new
    setup.source = new

    site = str(colab_env.site_packages(venv))
    before = nbformat.v4.new_code_cell(f"""\
import importlib.metadata as _md, sys as _sys
assert _sys.executable == {str(venv / "bin" / "python")!r}, _sys.executable
assert "google.colab" in _sys.modules, "the stub google.colab was not imported at start-up"
for _name in {colab_env.NOT_IN_BASE!r}:
    try:
        _md.version(_name)
    except _md.PackageNotFoundError:
        pass
    else:
        raise AssertionError(f"{{_name}} is installed before the setup cell")
_torch_before = _md.version("torch")
""")
    after = nbformat.v4.new_code_cell(f"""\
import pncutils as _pnc
assert _md.version("torch") == _torch_before, ("the install changed torch",
                                               _torch_before, _md.version("torch"))
assert _pnc.__file__.startswith({site!r}), ("pncutils was not installed in the Colab-like "
                                           "environment", _pnc.__file__)
assert _pnc.is_colab()
del _md, _sys, _name, _torch_before, _pnc
""")
    cells = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell is not setup and cell.cell_type == "code" and "nbval-skip" in tags:
            continue
        if cell is setup:
            cells += [before, cell, after]
        else:
            cells.append(cell)
    nb.cells = cells
    return nb, setup


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_install_line_is_pointed_at_the_working_tree(path, tmp_path):
    """Fast: the substitution finds the install line (and fails loudly if its format changes)."""
    wheel = tmp_path / "pncutils-0.1.0-py3-none-any.whl"
    for via in ("pypi", "tag"):
        nb, setup = colab_notebook(path, wheel, tmp_path / "venv", via)
        release = wheel_spec(wheel) if via == "pypi" else MISSING
        assert f'_release = "{release}"' in setup.source
        assert f'_tagged = "{wheel_spec(wheel)}"' in setup.source
        assert "git+" not in setup.source
        assert nb.cells.index(setup) == 1 + next(
            i for i, c in enumerate(nb.cells) if c.cell_type == "code")

    changed = nbformat.read(path, as_version=4)
    first = next(c for c in changed.cells if c.cell_type == "code")
    first.source = first.source.replace("_tagged = ", "_source = ")
    broken = tmp_path / path.name
    nbformat.write(changed, broken)
    with pytest.raises(AssertionError, match="exactly one line"):
        colab_notebook(broken, wheel, tmp_path / "venv")


@pytest.mark.slow
@skip_colab
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_as_in_colab(path, colab_base, pncutils_wheel, tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient.exceptions import CellExecutionError

    venv = colab_env.make_overlay(tmp_path / "venv", colab_base)
    ksm = KernelSpecManager(kernel_dirs=[str(colab_env.write_kernelspec(venv))])
    km = KernelManager(kernel_name=colab_env.KERNEL_NAME, kernel_spec_manager=ksm)
    # half of the chapters take the PyPI line, the other half the fallback to the release tag
    via = "pypi" if CHAPTERS.index(path) % 2 == 0 else "tag"
    nb, setup = colab_notebook(path, pncutils_wheel, venv, via)
    content = tmp_path / "content"  # Colab's working folder: the notebook alone
    content.mkdir()
    env = colab_env.kernel_env(venv, PNC_QUICK="1", IPYTHONDIR=str(tmp_path / "ipython"),
                               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    client = nbclient.NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, startup_timeout=120)
    t0 = time.perf_counter()
    try:
        client.execute(env=env, cwd=str(content))
    except CellExecutionError as err:
        pip_out = "".join(o.get("text", "") for o in setup.get("outputs", []))
        msg = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # no ANSI colours
        pytest.fail(f"{path.name} fails in a Colab-like environment:\n{msg}\n"
                    f"--- output of the setup cell ---\n{pip_out[-3000:]}", pytrace=False)
    finally:
        if km.has_kernel:  # nbclient leaves a kernel manager it does not own running
            km.shutdown_kernel(now=True)
    print(f"\n[colab] {path.name}: {time.perf_counter() - t0:.1f} s "
          f"(setup cell {_seconds(setup):.1f} s)")


def _seconds(cell) -> float:
    from datetime import datetime

    ex = cell.get("metadata", {}).get("execution", {})
    try:
        start, end = (datetime.fromisoformat(ex[k].replace("Z", "+00:00"))
                      for k in ("iopub.execute_input", "shell.execute_reply"))
    except (KeyError, ValueError):
        return float("nan")
    return (end - start).total_seconds()
