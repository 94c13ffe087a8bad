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
    assert f'"pncutils @ git+{url}@v{setup_cell.package_version()}"' in src
    assert 'if "google.colab" in sys.modules:' in src


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


def test_set_repo_rejects_bad_urls(fake_repo, capsys):
    with pytest.raises(SystemExit) as err:
        set_repo.main(["not a url", "--root", str(fake_repo)])
    assert err.value.code == 2
    assert "not a repository URL" in capsys.readouterr().err
