"""The files that let the repository publish itself: workflows, citation, licence, wheel.

Everything is checked offline with the developer tools of ``.venv-tools`` (ruff,
check-jsonschema with the schemas it ships, actionlint, build, twine) and ``.venv-cff``
(cffconvert), which ``make test`` installs from ``tools/requirements-*.txt``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".venv-tools" / "bin"
CFF = ROOT / ".venv-cff" / "bin"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _tool(folder: Path, name: str) -> str:
    path = folder / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make test` (it installs the developer tools)")
    return str(path)


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


def test_the_four_workflows_exist():
    assert {p.stem for p in WORKFLOWS} == {"tests", "pages", "release", "colab"}
    text = {p.stem: p.read_text() for p in WORKFLOWS}
    assert "make test" in text["tests"] and "pull_request" in text["tests"]
    assert "actions/upload-pages-artifact" in text["pages"]
    assert "actions/deploy-pages" in text["pages"]
    assert "pypa/gh-action-pypi-publish" in text["release"] and "id-token: write" in text["release"]
    assert "twine check" in text["release"] and "CHANGELOG.md" in text["release"]
    assert "schedule" in text["colab"] and "colab-images" in text["colab"]
    assert "gh issue create" in text["colab"]


def test_workflows_pass_the_github_schema():
    res = _run([_tool(TOOLS, "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                *map(str, WORKFLOWS)])
    assert res.returncode == 0, res.stdout + res.stderr


def test_workflows_pass_actionlint():
    res = _run([_tool(TOOLS, "actionlint"), "-no-color", *map(str, WORKFLOWS)], cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr


def test_issue_form_asks_where_which_device_and_chapter():
    form = ROOT / ".github" / "ISSUE_TEMPLATE" / "bug.yml"
    res = _run([_tool(TOOLS, "check-jsonschema"), "--builtin-schema", "vendor.github-issue-forms",
                str(form)])
    assert res.returncode == 0, res.stdout + res.stderr
    labels = [b["attributes"]["label"] for b in yaml.safe_load(form.read_text())["body"]]
    assert any("Colab or local" in lab for lab in labels)
    assert any("GPU" in lab for lab in labels)
    assert any("chapter" in lab.lower() for lab in labels)


def test_citation_file_is_valid():
    res = _run([_tool(CFF, "cffconvert"), "--validate", "-i", str(ROOT / "CITATION.cff")])
    assert res.returncode == 0, res.stdout + res.stderr
    bib = _run([_tool(CFF, "cffconvert"), "-f", "bibtex", "-i", str(ROOT / "CITATION.cff")])
    assert bib.returncode == 0 and "@misc" in bib.stdout
    with open(ROOT / "pyproject.toml", "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    assert yaml.safe_load((ROOT / "CITATION.cff").read_text())["version"] == version


def test_licences_and_root_files():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert "CC BY 4.0" in (ROOT / "LICENSE-CONTENT.md").read_text()
    for name in ("CHANGELOG.md", "CONTRIBUTING.md", ".pre-commit-config.yaml"):
        assert (ROOT / name).is_file(), name
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    ids = {h["id"] for repo in hooks["repos"] for h in repo["hooks"]}
    assert {"ruff", "nbstripout"} <= ids
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]


def test_ruff_passes():
    res = _run([_tool(TOOLS, "ruff"), "check", "."], cwd=ROOT)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr


@pytest.mark.slow
def test_wheel_builds_installs_and_imports_in_a_fresh_venv(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "pncutils", src / "pncutils",
                    ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    res = _run([_tool(TOOLS, "python"), "-m", "build", "--no-isolation", "--outdir", str(dist),
                str(src)])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    res = _run([_tool(TOOLS, "twine"), "check", "--strict", *map(str, wheels + sdists)])
    assert res.returncode == 0, res.stdout + res.stderr
    # a fresh venv; torch, numpy, ... come from the book's environment through a .pth file
    # (installing them would download several GB), the wheel itself is installed for real
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", "--without-pip", str(venv)]).returncode == 0
    py = venv / "bin" / "python"
    site = _run([str(py), "-c", "import site; print(site.getsitepackages()[0])"]).stdout.strip()
    book_site = next(p for p in sys.path if p.endswith("site-packages"))
    Path(site, "_book_env.pth").write_text(book_site + "\n")
    res = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
                "--no-index", str(wheels[0])])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    res = _run([str(py), "-c", "import pncutils, sys; print(pncutils.__file__); "
                "print(pncutils.__version__); print('matplotlib.pyplot' in sys.modules); "
                "import pncutils.book, pncutils.reproduce; print(pncutils.book.__file__)"],
               cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    file, version, pyplot, book = res.stdout.split()
    assert file.startswith(site), f"imported {file}, not the installed wheel"
    assert book.startswith(site), "the wheel must carry the book layer (pncutils.book)"
    assert pyplot == "False"
    assert wheels[0].name.startswith(f"pncutils-{version}-")
