"""Tests of the repository tools: the shared setup cell and `make set-repo`."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import set_repo  # noqa: E402
import setup_cell  # noqa: E402


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "book").mkdir()
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# 1. A chapter"]},
            {"cell_type": "code", "metadata": {"tags": ["hide-cell"]}, "source": ["old setup"],
             "outputs": [], "execution_count": None},
            {"cell_type": "code", "metadata": {}, "source": ["x = 1"], "outputs": [],
             "execution_count": None},
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    (tmp_path / "book" / "ch01_x.ipynb").write_text(json.dumps(nb))
    monkeypatch.setattr(setup_cell, "ROOT", tmp_path)
    return tmp_path


def test_setup_cell_names_the_configured_repository_and_version():
    src = setup_cell.setup_cell_source()
    url = setup_cell.repository_url()
    version = setup_cell.package_version()
    assert f'_release = "pncutils=={version}"' in src  # PyPI first
    assert f'_tagged = "pncutils @ git+{url}@v{version}"' in src  # the release tag as fallback
    assert src.index("_release") < src.index("_tagged")
    assert 'if "google.colab" in sys.modules:' in src
    assert setup_cell.install_specs() == (f"pncutils=={version}",
                                          f"pncutils @ git+{url}@v{version}")


def test_setup_cell_reads_the_config_with_yaml(fake_repo):
    cfg = fake_repo / "_config.yml"
    # a comment that mentions a url, and a quoted value: a regular expression would trip
    cfg.write_text("# url: https://example.invalid/wrong/one\n"
                   + cfg.read_text().replace("url: https://github.com/pnc-book/layerwise-compression",
                                             'url: "https://github.com/a/b"  # the fork'))
    assert setup_cell.repository_url() == "https://github.com/a/b"
    cfg.write_text("title: x\nrepository:\n  branch: main\n")
    with pytest.raises(ValueError, match="no repository.url"):
        setup_cell.repository_url()


def test_set_repo_rewrites_config_and_notebooks(fake_repo):
    assert set_repo.main(["https://github.com/someone/fork.git", "--root", str(fake_repo)]) == 0
    assert "url: https://github.com/someone/fork\n" in (fake_repo / "_config.yml").read_text()
    nb = json.loads((fake_repo / "book" / "ch01_x.ipynb").read_text())
    first = "".join(nb["cells"][1]["source"])
    assert "git+https://github.com/someone/fork@v" in first
    assert nb["cells"][1]["metadata"]["tags"] == ["hide-cell"]
    assert nb["cells"][2]["source"] == ["x = 1"]
    # idempotent
    set_repo.main(["https://github.com/someone/fork", "--root", str(fake_repo)])
    assert json.loads((fake_repo / "book" / "ch01_x.ipynb").read_text()) == nb
    assert not list(fake_repo.glob("**/.tmp-*"))


def test_set_repo_keeps_comments_and_changes_only_the_url(fake_repo):
    import yaml

    cfg = fake_repo / "_config.yml"
    original = cfg.read_text()
    before = yaml.safe_load(original)
    set_repo.set_config_url(fake_repo, "https://github.com/x/y")
    text = cfg.read_text()
    after = yaml.safe_load(text)
    before["repository"]["url"] = "https://github.com/x/y"
    assert after == before
    comments = [line for line in original.splitlines() if line.lstrip().startswith("#")]
    assert comments and all(c in text.splitlines() for c in comments)
    assert len(text.splitlines()) == len(original.splitlines())
    cfg.write_text("title: x\n")
    with pytest.raises(ValueError, match="no single-line repository.url"):
        set_repo.set_config_url(fake_repo, "https://github.com/x/y")
    assert cfg.read_text() == "title: x\n"  # nothing written


def test_set_repo_rejects_bad_urls(fake_repo, capsys):
    with pytest.raises(SystemExit) as err:
        set_repo.main(["not a url", "--root", str(fake_repo)])
    assert err.value.code == 2
    assert "not a repository URL" in capsys.readouterr().err
