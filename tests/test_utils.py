"""Tests of pncutils.utils and of the package's public surface."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest
import torch

import pncutils as pnc
from pncutils import utils


def test_seed_everything_seeds_all_generators():
    g1 = utils.seed_everything(3)
    a = (random.random(), np.random.rand(),  # noqa: NPY002 (the legacy global RNG)
         torch.rand(1).item(), torch.rand(1, generator=g1))
    g2 = utils.seed_everything(3)
    b = (random.random(), np.random.rand(),  # noqa: NPY002
         torch.rand(1).item(), torch.rand(1, generator=g2))
    assert a[:3] == b[:3] and torch.equal(a[3], b[3])
    with pytest.raises(ValueError, match="seed must be >= 0"):
        utils.seed_everything(-1)


def test_get_device_and_override(monkeypatch):
    monkeypatch.delenv("PNC_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert utils.get_device().type == expected
    monkeypatch.setenv("PNC_DEVICE", "cpu")
    assert utils.get_device() == torch.device("cpu")
    monkeypatch.setenv("PNC_DEVICE", "tpu")
    with pytest.raises(ValueError, match="PNC_DEVICE must name one of"):
        utils.get_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("PNC_DEVICE", "cuda")
        with pytest.raises(ValueError, match="CUDA is not available"):
            utils.get_device()


@pytest.mark.parametrize("value,expected", [("1", True), ("yes", True), ("", False),
                                            ("0", False), ("false", False), ("FALSE", False)])
def test_quick_mode(monkeypatch, value, expected):
    monkeypatch.setenv("PNC_QUICK", value)
    assert utils.quick_mode() is expected


def test_is_colab(monkeypatch):
    assert utils.is_colab() is False
    monkeypatch.setitem(sys.modules, "google.colab", object())
    assert utils.is_colab() is True


class _FakeStderr:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        return self.tty

    def write(self, text):  # pragma: no cover - nothing is written
        return len(text)


def test_progress_enabled(monkeypatch):
    monkeypatch.delenv("PNC_PROGRESS", raising=False)
    monkeypatch.delenv("PNC_QUICK", raising=False)
    monkeypatch.setattr(utils, "_in_notebook", lambda: False)
    monkeypatch.setattr(sys, "stderr", _FakeStderr(True))
    assert utils.progress_enabled() is True  # someone watches a terminal
    monkeypatch.setattr(sys, "stderr", _FakeStderr(False))
    assert utils.progress_enabled() is False  # a log file or a CI job
    monkeypatch.setattr(utils, "_in_notebook", lambda: True)
    assert utils.progress_enabled() is True  # Jupyter or Colab: tqdm.auto draws a widget
    monkeypatch.setenv("PNC_QUICK", "1")
    assert utils.progress_enabled() is False  # quick mode: never
    monkeypatch.setenv("PNC_PROGRESS", "1")
    assert utils.progress_enabled() is True  # the variable decides when set
    monkeypatch.setenv("PNC_PROGRESS", "off")
    monkeypatch.setattr(sys, "stderr", _FakeStderr(True))
    assert utils.progress_enabled() is False


def test_in_notebook_is_false_outside_a_kernel():
    assert utils._in_notebook() is False  # pytest runs in no Jupyter kernel


def test_public_surface():
    for mod in (pnc.metrics, pnc.theory, pnc.data, pnc.models, pnc.training, pnc.plotting,
                pnc.utils, pnc.book.config, pnc.conventions, pnc.book.widgets):
        assert mod.__all__, mod.__name__
        for name in mod.__all__:
            assert hasattr(mod, name), f"{mod.__name__}.{name}"
    from pathlib import Path

    import tomllib

    meta = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert pnc.__version__ == meta["project"]["version"]
