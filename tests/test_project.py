"""Repository-level checks: environment files, table of contents, notebook hygiene, book build."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
sys.path.insert(0, str(ROOT / "tools"))
from setup_cell import setup_cell_source  # noqa: E402


def _requirements():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def test_requirements_are_pinned_and_torch_is_the_cpu_build():
    reqs = _requirements()
    assert all("==" in r for r in reqs), [r for r in reqs if "==" not in r]
    assert "torch==2.13.0" in reqs
    assert "jupyter-book==1.0.4.post1" in reqs  # version 2 ignores _config.yml / _toc.yml
    assert not any(r.startswith("torchvision") for r in reqs)


def test_pyproject_dependencies_are_loose():
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = meta["project"]["dependencies"]
    assert any(d.startswith("torch") for d in deps)
    # lower bounds only, so that installing pncutils in Colab keeps Colab's CUDA torch
    assert not any("==" in d or "<" in d for d in deps), deps


def test_environment_yml_installs_the_same_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps and "pip" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-r requirements.txt" in pip and "-e ." in pip
    assert (ROOT / "requirements.txt").exists()


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_command():
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:25])
    assert "make book" in head and "make test" in head
    lines = (ROOT / "README.md").read_text().splitlines()
    order = [next(i for i, l in enumerate(lines) if l.startswith(h)) for h in
             ("make book", "## What the two commands install and download",
              "## Licence and citation")]
    assert order == sorted(order), "README: the commands, what they get, then the licence"
    ci = [l for l in (ROOT / ".ci" / "run").read_text().splitlines()
          if l.strip() and not l.startswith("#")]
    assert ci[-1] == "make test" and not any("apt-get" in l for l in ci), (
        "CI runs exactly the README's test command; make does the set-up")
    makefile = (ROOT / "Makefile").read_text()
    for target in ("book", "test"):
        rule = re.search(rf"^{target}: (.*)$", makefile, re.M).group(1).split()
        assert rule[0] == f"system-{target}", f"make {target} gets the data before anything"
    assert "tools/ensure_system.py pre --data --browser" in makefile


def test_toc_entries_exist_and_every_chapter_is_listed():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for ch in part["chapters"]:
            files.append(ch["file"])
            files += [s["file"] for s in ch.get("sections", [])]
    for f in files:
        assert any((ROOT / f"{f}{ext}").exists() for ext in (".md", ".ipynb")), f
    for nb in NOTEBOOKS:
        assert f"book/{nb.stem}" in files, f"{nb.name} is not in _toc.yml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_hygiene(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown"
    assert re.search(r"^# ", "".join(cells[0]["source"]), re.M), "first cell needs an H1 title"
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "Learning goals" in text and "## Summary" in text
    tags = [c.get("metadata", {}).get("tags", []) for c in cells]
    assert sum("parameters" in t for t in tags) == 1, "exactly one cell tagged `parameters`"
    code = [c for c in cells if c["cell_type"] == "code"]
    assert "".join(code[0]["source"]).strip() == setup_cell_source().strip(), (
        "the first code cell must be the setup cell of tools/setup_cell.py"
    )
    assert "hide-cell" in code[0].get("metadata", {}).get("tags", [])
    assert re.search(r"^## Exercises", text, re.M) and re.search(r"^## References", text, re.M)
    assert text.count("```{exercise}") + text.count(":::{exercise}") >= 3, "three exercises"
    for c, t in zip(cells, tags, strict=True):
        if c["cell_type"] != "code":
            continue
        if not ("keep_output" in t and "nbval-check-output" in t):
            assert c.get("outputs", []) == [] and c.get("execution_count") is None, (
                "notebooks are committed without outputs (make strip)"
            )


def test_readme_example_runs():
    """The README's code example runs and gives the numbers its comments state."""
    text = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    env: dict = {}
    exec(compile(code, "README.md", "exec"), env)  # noqa: S102 - our own README
    assert env["hist"].converged
    assert round(env["rate"], 4) == 0.2846
    measured = env["table"].compression
    ratio = float((measured[1:] / measured[:-1]).log().mean().exp())
    assert abs(ratio / env["rate"] - 1) < 0.05


def test_readme_measure_example_runs():
    """The README's second example (pnc.measure on a small ResNet) runs as printed."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    code = next(b for b in blocks if "pnc.measure(" in b)
    env: dict = {}
    exec(compile(code, "README.md", "exec"), env)  # noqa: S102 - our own README
    m = env["m"]
    assert m.names[0] == "stem" and m.names[-1] == "output" and len(m.names) == 8
    assert m.table.dim.tolist() == [8, 8, 8, 16, 16, 32, 32, 10]


def test_api_page_is_generated_from_the_modules():
    """book/api.md lists every public name of the core, as tools/api_page.py writes it."""
    import api_page

    text = api_page.render()
    assert (ROOT / "book" / "api.md").read_text(encoding="utf-8") == text, (
        "book/api.md is out of date: run python tools/api_page.py")
    import importlib

    for name in api_page.MODULES:
        mod = importlib.import_module(f"pncutils.{name}")
        assert mod.__all__, name
        for public in mod.__all__:
            assert f"| `{public}` |" in text, (name, public)
