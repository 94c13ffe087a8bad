"""Tests of pncutils.book.config."""

from __future__ import annotations

import pytest

from pncutils.book.config import Config


def test_config_is_frozen_and_replaceable():
    cfg = Config(depth=6, eps=0.3, widths=[1, 2])
    assert cfg.depth == 6 and cfg["eps"] == 0.3 and dict(cfg) == cfg.to_dict()
    assert cfg.replace(depth=4).depth == 4 and cfg.depth == 6
    with pytest.raises(AttributeError, match="frozen"):
        cfg.depth = 1
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['dpeth'\]"):
        cfg.replace(dpeth=4)
    with pytest.raises(AttributeError, match="no parameter 'width'"):
        _ = cfg.width
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        Config(f=object())


def test_digest_depends_on_values_only():
    a, b = Config(x=1, y=2.0), Config(y=2.0, x=1)
    assert a.digest() == b.digest() != a.replace(x=2).digest()
    assert len(a.digest()) == 16
