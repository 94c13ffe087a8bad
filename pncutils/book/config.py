"""Chapter configurations: one frozen, printable set of parameters per chapter.

Every chapter has one ``parameters`` cell that builds a :class:`Config` at book scale and,
in quick mode (``$PNC_QUICK``, set by the notebook tests), shrinks it with
:meth:`Config.replace`; every claim the chapter asserts must hold at both scales.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["Config"]


class Config(Mapping[str, Any]):
    """A frozen set of named parameters, read as attributes.

    Parameters
    ----------
    **params
        Parameter names and values (JSON-serialisable: numbers, strings, booleans, None,
        lists and tuples of them).

    Examples
    --------
    >>> cfg = Config(depth=6, eps=0.3, num_seeds=5)
    >>> cfg.depth, cfg.replace(num_seeds=2).num_seeds
    (6, 2)
    >>> cfg
    Config(depth=6, eps=0.3, num_seeds=5)
    >>> cfg.depth = 3
    Traceback (most recent call last):
    ...
    AttributeError: Config is frozen: use cfg.replace(depth=...)
    """

    def __init__(self, **params: Any) -> None:
        for name, value in params.items():
            try:
                json.dumps(value)
            except TypeError as err:
                raise ValueError(f"parameter {name!r} is not JSON-serialisable: {err}") from err
        object.__setattr__(self, "_params", dict(params))

    def __getattr__(self, name: str) -> Any:
        params = self.__dict__.get("_params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"no parameter {name!r}; parameters are {sorted(params)}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Config is frozen: use cfg.replace({name}=...)")

    def __getitem__(self, name: str) -> Any:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def replace(self, **changes: Any) -> Config:
        """A copy with some parameters changed; unknown names raise a ValueError."""
        unknown = sorted(set(changes) - set(self._params))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; parameters are {sorted(self)}")
        return Config(**{**self._params, **changes})

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict."""
        return dict(self._params)

    def digest(self) -> str:
        """A short SHA-256 of the sorted JSON of the parameters (for result files)."""
        text = json.dumps(self._params, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"Config({inner})"
