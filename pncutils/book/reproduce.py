"""One command per experiment of the paper, each writing one small, verifiable JSON result file.

Usage::

    python -m pncutils.reproduce hybrid --scale book            # -> book/results/hybrid-book.json
    python -m pncutils.reproduce fig4 --scale quick --out /tmp  # -> /tmp/fig4-quick.json
    python -m pncutils.reproduce all --scale quick              # every experiment
    python -m pncutils.reproduce --list                         # experiments and scales

Every experiment has three **scales**, each a :class:`pncutils.book.config.Config`:

* ``quick``: seconds on a 2-core CPU (the tests and CI run it; trends may be weak);
* ``book``: what a chapter runs live on a 2-core CPU, about 2 minutes at most;
* ``paper``: the paper's sizes (a GPU is needed for ``hybrid``).

A result file holds the ``experiment``, the ``scale``, the full ``config`` (the seed
included), its ``config_hash`` (:func:`config_hash`), the provenance (``pncutils_version``,
``git_commit``, ``git_dirty``, ``torch_version``, ``device``, ``created``, ``command``), the
``wall_time_s`` of the run and the ``results``: the experiment's typed result
(:class:`pncutils.book.config.Result`) as :meth:`~pncutils.book.config.Result.to_dict`
(per-layer tables, fits, loss curves subsampled to at most :data:`MAX_CURVE_POINTS` points,
scalars). Files are written atomically (a temporary file in the same folder, then
:func:`os.replace`), so a crashed run never leaves a partial file. Non-finite numbers are
written as ``null`` (standard JSON has no NaN). :func:`load_or_run` reads a file back as a
typed :class:`Record`.

**Adding an experiment** follows the convention of :mod:`pncutils.book.config`: a module with
``SCALES`` (a Config per scale, each with a ``seed``, which ``run(..., seed=S)`` replaces), a
typed result and ``run(cfg, device) -> SomeResult``, registered by one :class:`Experiment`
entry in :data:`EXPERIMENTS`:
``Experiment(module.run, module.SCALES, description, default_device, result_type=...)``.
The experiments of the book: :mod:`pncutils.book.hybrid` (``hybrid``),
:mod:`pncutils.book.main_result` (``fig4``), :mod:`pncutils.book.assumptions` (``fig6``),
:mod:`pncutils.book.nonlinear` (``fig3b``), :mod:`pncutils.book.beyond` (``fig7``) and
:mod:`pncutils.book.transfer` (``transfer``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from pncutils._checks import check_choice, check_device, check_int
from pncutils.book import assumptions as _assumptions
from pncutils.book import beyond as _beyond
from pncutils.book import convnets as _convnets
from pncutils.book import hybrid as _hybrid
from pncutils.book import main_result as _main_result
from pncutils.book import nonlinear as _nonlinear
from pncutils.book import transfer as _transfer
from pncutils.book.config import MAX_CURVE_POINTS, Config, Result
from pncutils.utils import to_plain

__all__ = [
    "SCALES",
    "REQUIRED_FIELDS",
    "MAX_CURVE_POINTS",
    "Experiment",
    "EXPERIMENTS",
    "Record",
    "config_hash",
    "default_out_dir",
    "result_path",
    "run",
    "load_result",
    "verify_result",
    "load_or_run",
    "compute",
    "results_overview",
    "overview_markdown",
    "PaperUse",
    "PAPER_SCALE_USES",
    "paper_scale_checks",
    "main",
]

#: The scales every experiment defines, smallest first.
SCALES: tuple[str, ...] = ("quick", "book", "paper")

#: Top-level fields of every result file.
REQUIRED_FIELDS: tuple[str, ...] = (
    "experiment",
    "scale",
    "config",
    "config_hash",
    "pncutils_version",
    "git_commit",
    "git_dirty",
    "torch_version",
    "device",
    "wall_time_s",
    "created",
    "results",
)

#: The checkout: ``pncutils/book/reproduce.py`` -> its grandparent's parent.
_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Experiment:
    """One reproducible experiment: a function and a Config per scale.

    Parameters
    ----------
    fn : callable ``(cfg: Config, device: torch.device) -> Result``
        Runs the experiment and returns its typed result (a plain JSON-serialisable dict is
        accepted too).
    scales : mapping of str to Config
        One Config for each of :data:`SCALES`, each with a ``seed`` parameter.
    description : str
        One line: what the experiment reproduces.
    default_device : {"auto", "cpu"}
        The device when none is requested: ``"auto"`` is
        :func:`pncutils.utils.get_device`; ``"cpu"`` suits tiny, launch-bound problems.
    result_type : subclass of :class:`pncutils.book.config.Result`, optional
        The type `fn` returns; :class:`Record` reads result files back as it.

    Examples
    --------
    >>> from pncutils.book import main_result
    >>> exp = Experiment(main_result.run, main_result.SCALES, "Figure 4", "cpu",
    ...                  result_type=main_result.Fig4Result)
    >>> exp.scales["book"].num_seeds
    10
    >>> exp = Experiment(lambda cfg, device: {"x": cfg.x},
    ...                  {s: Config(x=1, seed=0) for s in SCALES}, "a toy")
    >>> exp.fn(exp.scales["book"], torch.device("cpu"))
    {'x': 1}

    Used in: ch09.
    """

    fn: Callable[[Config, torch.device], Any]
    scales: Mapping[str, Config]
    description: str
    default_device: str = "auto"
    result_type: type | None = None

    def __post_init__(self) -> None:
        if set(self.scales) != set(SCALES):
            raise ValueError(
                f"an experiment needs exactly the scales {SCALES}, got {tuple(self.scales)}"
            )
        for name, cfg in self.scales.items():
            if not isinstance(cfg, Config) or "seed" not in cfg:
                raise ValueError(f"scale {name!r} must be a Config with a 'seed' parameter")
        check_choice(self.default_device, "default_device", ("auto", "cpu"))


# ----------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------


def _canonical(obj: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, ASCII, tuples as lists, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def config_hash(experiment: str, scale: str, config: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``{"experiment", "scale", "config"}`` (64 hex digits).

    The canonical form sorts the keys, uses ``","``/``":"`` separators and ASCII, and writes
    tuples as lists and floats by their shortest round-trip ``repr``, so a config read back
    from a result file hashes to the same value as the one that was written.

    Parameters
    ----------
    experiment : str
        Experiment name, e.g. ``"hybrid"``.
    scale : str
        One of :data:`SCALES`.
    config : mapping
        The parameters (a :class:`pncutils.book.config.Config` or a plain dict).

    Returns
    -------
    str

    Examples
    --------
    >>> h = config_hash("fig4", "quick", {"depth": 6, "eps": 0.3})
    >>> len(h), h == config_hash("fig4", "quick", Config(eps=0.3, depth=6))
    (64, True)
    >>> h == config_hash("fig4", "book", {"depth": 6, "eps": 0.3})
    False

    Used in: ch09.
    """
    if not isinstance(experiment, str) or not isinstance(scale, str):
        raise ValueError("experiment and scale must be strings")
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a mapping, got {type(config).__name__}")
    try:
        text = _canonical({"experiment": experiment, "scale": scale, "config": dict(config)})
    except (TypeError, ValueError) as err:
        raise ValueError(f"config is not JSON-serialisable (or holds NaN/Inf): {err}") from err
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _jsonable(obj: Any) -> Any:
    """Plain JSON types for a result file: NaN/Inf as None, anything else non-JSON refused."""
    return to_plain(obj, nan_as_none=True, strict=True)


def _dumps(obj: Any, indent: int = 0) -> str:
    """Indented JSON whose lists of numbers stay on one line (compact and diff-friendly)."""
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {_dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(not isinstance(v, dict | list) for v in obj):
            return "[" + ",".join(json.dumps(v, allow_nan=False) for v in obj) + "]"
        items = [f"{inner}{_dumps(v, indent + 1)}" for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, allow_nan=False)


def _write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private (0600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _git(*args: str) -> str | None:
    try:
        res = subprocess.run(["git", "-C", str(_REPO_ROOT), *args], capture_output=True,
                             text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout if res.returncode == 0 else None


def _git_info() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the checkout holding this package, or ``(None, None)``.

    ``dirty`` is True when a tracked file differs from the commit or an untracked file lies
    under ``pncutils/`` (code the commit does not contain). The result files themselves
    (``book/results/``) do not count: writing one must not make the next run "dirty". An
    installed (non-checkout) package gives ``(None, None)``.
    """
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != _REPO_ROOT:
        return None, None
    commit = _git("rev-parse", "HEAD")
    tracked = _git("status", "--porcelain", "--untracked-files=no", "--", ".",
                   ":(exclude)book/results")
    untracked = _git("status", "--porcelain", "--untracked-files=all", "--", "pncutils")
    if commit is None or tracked is None or untracked is None:
        return None, None
    dirty = bool(tracked.strip()) or any(ln.startswith("??") for ln in untracked.splitlines())
    return commit.strip(), dirty


#: The registry: experiment name -> :class:`Experiment`.
EXPERIMENTS: dict[str, Experiment] = {
    "hybrid": Experiment(
        _hybrid.run, _hybrid.SCALES,
        "Figures 1, 5 and F2: the 8-layer hybrid (alpha=100) and MLP (alpha=1) on FashionMNIST: "
        "per-layer C, D, NC1, rank, probes, PCA",
        result_type=_hybrid.HybridResult,
    ),
    "fig4": Experiment(
        _main_result.run, _main_result.SCALES,
        "Figure 4: 6-layer DLNs trained by GD on nearly orthogonal data vs the closed-form "
        "predictions (rate of C, slope of D)",
        default_device="cpu", result_type=_main_result.Fig4Result,
    ),
    "fig6": Experiment(
        _assumptions.run, _assumptions.SCALES,
        "Figure 6: the assumption grid (depths 2-5 at width 400, widths 200-700 at depth 5): "
        "min-norm residual, balance, bulk variance over seeds",
        default_device="cpu", result_type=_assumptions.Fig6Result,
    ),
    "fig3b": Experiment(
        _nonlinear.run, _nonlinear.SCALES,
        "F3b: a 10-layer Linear-BN-ReLU network on the synthetic data: C and D per layer",
        default_device="cpu", result_type=_nonlinear.Fig3bResult,
    ),
    "convnets": Experiment(
        _convnets.run, _convnets.SCALES,
        "Chapter 6: a SmallCNN and a SmallResNet trained with MSE and cross-entropy on "
        "FashionMNIST, measured block by block with pnc.measure; fits over the deep blocks",
        result_type=_convnets.ConvResult,
    ),
    "fig7": Experiment(
        _beyond.run, _beyond.SCALES,
        "F7: deep linear networks (L = 5, 7, 9) from PyTorch's default init on "
        "FashionMNIST; cross-entropy, weight decay, small init, N > d; fit of log C_l",
        result_type=_beyond.Fig7Result,
    ),
    "transfer": Experiment(
        _transfer.run, _transfer.SCALES,
        "F8 (toy, design [R]): FashionMNIST extractor pre-trained on classes 0-4 with "
        "an m-layer linear head (m = 1..5), head discarded, ridge probe on classes 5-9",
        result_type=_transfer.TransferResult,
    ),
}


@dataclass(frozen=True)
class PaperUse:
    """One use of an experiment's paper-scale result file by a chapter.

    Parameters
    ----------
    chapter : str
        e.g. ``"ch05"``.
    claim : str
        What the chapter asserts on the file, or shows from it.
    asserted : bool, default True
        False where the chapter only prints or draws the result.
    recomputed : bool, default False
        True where the chapter reruns the paper scale when the file is missing (cheap CPU
        experiments), so that the claim is checked either way.

    Examples
    --------
    >>> PAPER_SCALE_USES["fig4"][0].chapter, PAPER_SCALE_USES["fig4"][0].recomputed
    ('ch09', True)

    Used in: ch09.
    """

    chapter: str
    claim: str
    asserted: bool = True
    recomputed: bool = False


#: What the chapters do with each experiment's paper-scale result file. An asserted claim is
#: checked only where the file exists (or is recomputed): until then it waits. Keep it in
#: step with the chapters' ``if paper is not None`` blocks; :func:`paper_scale_checks`
#: reports which uses are live in a checkout.
PAPER_SCALE_USES: dict[str, tuple[PaperUse, ...]] = {
    "hybrid": (
        PaperUse("ch05", "C_1/C_7 > 10 and C_l - C_L geometric over the linear layers "
                         "(R^2 of log(C_l - C_L) > 0.95)"),
        PaperUse("ch09", "the same two claims as chapter 5"),
    ),
    "fig4": (
        PaperUse("ch09", "all networks converge; the measured rate within 3% of the idealised "
                         "rate; C_0 within 1.0 of 13.5", recomputed=True),
    ),
    "fig6": (
        PaperUse("ch09", "all 90 networks converge; a flat bulk; min-norm residuals within 11% "
                         "and balance errors within 1% of the authors' notebook"),
    ),
    "fig3b": (PaperUse("ch05", "drawn beside the live run", asserted=False),),
    "convnets": (PaperUse("ch06", "not used: the chapter runs its book scale live",
                          asserted=False),),
    "fig7": (PaperUse("ch07", "fits printed and drawn", asserted=False),),
    "transfer": (PaperUse("ch08", "table printed and drawn", asserted=False),),
}


def paper_scale_checks(results_dir: str | os.PathLike[str] | None = None
                       ) -> list[dict[str, Any]]:
    """Which uses of the paper-scale results are live in this checkout, and which wait.

    Parameters
    ----------
    results_dir : path, optional
        Where the committed files are; :func:`default_out_dir` when omitted.

    Returns
    -------
    list of dict
        One row per :class:`PaperUse` of :data:`PAPER_SCALE_USES`: ``experiment, chapter,
        claim, asserted, committed`` (a current paper-scale file is there) and ``status``:
        "checked" (asserted on the file, or on a rerun when it is missing), "waiting for the
        file" (asserted, but no file: not checked), "shown" or "not shown" (never asserted).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     rows = paper_scale_checks(d)
    >>> sorted({r["status"] for r in rows})
    ['checked', 'not shown', 'waiting for the file']
    >>> [r["experiment"] for r in rows if r["status"] == "checked"]  # rerun when missing
    ['fig4']

    Used in: ch09.
    """
    folder = Path(results_dir) if results_dir is not None else default_out_dir()
    rows = []
    for name, uses in PAPER_SCALE_USES.items():
        _experiment(name)
        path = result_path(name, "paper", folder)
        committed = False
        if path.is_file():
            try:
                verify_result(load_result(path), against_registry=True)
                committed = True
            except ValueError:
                committed = False
        for use in uses:
            if use.asserted:
                status = "checked" if committed or use.recomputed else "waiting for the file"
            else:
                status = "shown" if committed else "not shown"
            rows.append({"experiment": name, "chapter": use.chapter, "claim": use.claim,
                         "asserted": use.asserted, "committed": committed, "status": status})
    return rows


@dataclass(frozen=True)
class Record:
    """A verified result file, typed: its provenance and the experiment's :class:`Result`.

    Attributes
    ----------
    experiment, scale : str
    config : Config
        The parameters of the run (the seed included).
    result : Result or dict
        ``results`` read back as the experiment's ``result_type`` (a dict for an experiment
        without one).
    meta : dict
        The other fields of the file: ``config_hash``, ``git_commit``, ``git_dirty``,
        ``device``, ``wall_time_s``, ``created``, ``pncutils_version``, ``torch_version``...

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     rec = Record.from_dict(load_result(run("fig4", "quick", out_dir=d)))
    >>> rec.experiment, rec.config.depth, rec.meta["device"]
    ('fig4', 6, 'cpu')

    Used in: ch03, ch05, ch09.
    """

    experiment: str
    scale: str
    config: Config
    result: Any
    meta: Mapping[str, Any]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        """From the parsed content of a result file (see :func:`load_result`)."""
        exp = _experiment(data["experiment"])
        results = data["results"]
        result = exp.result_type.from_dict(results) if exp.result_type else results
        meta = {k: v for k, v in data.items()
                if k not in ("experiment", "scale", "config", "results")}
        return cls(data["experiment"], data["scale"], Config(**data["config"]), result, meta)


# ----------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------


def _experiment(name: Any) -> Experiment:
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {tuple(EXPERIMENTS)}, got {name!r}")
    return EXPERIMENTS[name]


def _scale(scale: Any) -> str:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return scale


def default_out_dir() -> Path:
    """Where result files go by default: ``book/results`` of the checkout, else of the cwd.

    Returns
    -------
    Path

    Examples
    --------
    >>> default_out_dir().parts[-2:]
    ('book', 'results')
    >>> default_out_dir() == _REPO_ROOT / "book" / "results"  # in a checkout: from any cwd
    True

    Used in: ch09.
    """
    if (_REPO_ROOT / "book").is_dir() and (_REPO_ROOT / "pyproject.toml").is_file():
        return _REPO_ROOT / "book" / "results"
    return Path.cwd() / "book" / "results"


def result_path(experiment: str, scale: str, out_dir: str | os.PathLike[str] | None = None,
                seed: int = 0) -> Path:
    """The file a run writes: ``<out_dir>/<experiment>-<scale>.json`` (``-seed<S>`` if S > 0).

    Parameters
    ----------
    experiment : str
        A key of :data:`EXPERIMENTS`.
    scale : str
        One of :data:`SCALES`.
    out_dir : path, optional
        Folder; :func:`default_out_dir` when omitted.
    seed : int, default 0

    Returns
    -------
    Path

    Examples
    --------
    >>> result_path("fig4", "book", "/tmp").as_posix(), result_path("fig4", "book", "/tmp", 3).name
    ('/tmp/fig4-book.json', 'fig4-book-seed3.json')

    Used in: ch09.
    """
    _experiment(experiment)
    _scale(scale)
    seed = check_int(seed, "seed", minimum=0)
    folder = Path(out_dir) if out_dir is not None else default_out_dir()
    suffix = f"-seed{seed}" if seed else ""
    return folder / f"{experiment}-{scale}{suffix}.json"


def _resolve_device(exp: Experiment, device: torch.device | str | None) -> torch.device:
    """The device of a run: `device` (checked), else the experiment's default (the book
    layer's one device rule; training's own applies to a model's dtype)."""
    from pncutils.utils import get_device

    if device is None:
        return get_device() if exp.default_device == "auto" else torch.device("cpu")
    return check_device(device)


def run(
    experiment: str,
    scale: str = "quick",
    device: torch.device | str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> Path:
    """Run one experiment at one scale and write its result file; return the file's path.

    Parameters
    ----------
    experiment : str
        A key of :data:`EXPERIMENTS` (``"hybrid"``, ``"fig4"``).
    scale : {"quick", "book", "paper"}, default "quick"
    device : torch.device or str, optional
        Where to train; the experiment's default (:func:`pncutils.utils.get_device`, or the
        CPU for tiny synthetic problems) when omitted.
    out_dir : path, optional
        Folder of the result file (created if needed); :func:`default_out_dir` when omitted.
    seed : int, default 0
        Replaces the Config's ``seed`` (and so enters the config hash and the file name).

    Returns
    -------
    Path
        :func:`result_path` ``(experiment, scale, out_dir, seed)``, written atomically.

    Raises
    ------
    ValueError
        Unknown experiment or scale (the message lists the allowed ones), a bad seed or
        device, or missing data (:class:`pncutils.data.DatasetNotFoundError`).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = run("fig4", "quick", out_dir=d)
    ...     verify_result(path); path.name
    'fig4-quick.json'

    Used in: ch09.
    """
    exp = _experiment(experiment)
    scale = _scale(scale)
    seed = check_int(seed, "seed", minimum=0)
    path = result_path(experiment, scale, out_dir, seed)
    dev = _resolve_device(exp, device)
    cfg = exp.scales[scale].replace(seed=seed)

    import pncutils
    from pncutils.utils import device_name, seed_everything

    seed_everything(seed)  # the experiments draw from explicit generators; this is a guard
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    results = exp.fn(cfg, dev)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    wall = time.perf_counter() - t0
    commit, dirty = _git_info()
    config = _jsonable(cfg.to_dict())
    record = {
        "experiment": experiment,
        "scale": scale,
        "config": config,
        "config_hash": config_hash(experiment, scale, config),
        "pncutils_version": pncutils.__version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "torch_version": torch.__version__,
        "device": device_name(dev),
        "wall_time_s": wall,
        "created": created,
        "command": f"python -m pncutils.reproduce {experiment} --scale {scale} --seed {seed}",
        "description": exp.description,
        "results": _jsonable(results),
    }
    _write_atomic(path, _dumps(record) + "\n")
    return path


def load_result(path: str | os.PathLike[str], verify: bool = True) -> dict[str, Any]:
    """Read a result file (and, by default, check it with :func:`verify_result`).

    Parameters
    ----------
    path : path
        A file written by :func:`run`.
    verify : bool, default True
        Raise a ValueError if a field is missing or the hash does not match the config.

    Returns
    -------
    dict

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     res = load_result(run("fig4", "quick", out_dir=d))
    >>> res["experiment"], res["results"]["summary"]["all_converged"]
    ('fig4', True)

    Used in: ch09.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if verify:
        verify_result(data)
    return data


def verify_result(result: str | os.PathLike[str] | Mapping[str, Any],
                  against_registry: bool = False) -> None:
    """Check a result file or dict: every field present and the hash matching the config.

    Parameters
    ----------
    result : path or mapping
        A result file written by :func:`run`, or its parsed content.
    against_registry : bool, default False
        Also require that the experiment is registered, that its config equals the
        registered Config of that scale (with the file's seed) and that its ``results`` read
        back as the experiment's ``result_type``: the file is up to date.

    Raises
    ------
    ValueError
        Naming the problem: a missing field, a field of the wrong type, an unknown scale,
        a ``config_hash`` that does not match the config, or (with `against_registry`) a
        config that differs from the registered one or results of another layout.

    Examples
    --------
    >>> cfg = {"depth": 6}
    >>> rec = {"experiment": "fig4", "scale": "quick", "config": cfg,
    ...        "config_hash": config_hash("fig4", "quick", cfg), "pncutils_version": "0.1.0",
    ...        "git_commit": None, "git_dirty": None, "torch_version": "2.13.0",
    ...        "device": "cpu", "wall_time_s": 1.0, "created": "2026-01-01T00:00:00+00:00",
    ...        "results": {}}
    >>> verify_result(rec)
    >>> verify_result({**rec, "config": {"depth": 7}})
    Traceback (most recent call last):
    ...
    ValueError: config_hash does not match the config of fig4/quick: the file says ...

    Used in: ch09.
    """
    if not isinstance(result, Mapping):
        result = load_result(result, verify=False)
    missing = [f for f in REQUIRED_FIELDS if f not in result]
    if missing:
        raise ValueError(f"result is missing field(s) {missing}")
    types: dict[str, Any] = {
        "experiment": str, "scale": str, "config": Mapping, "config_hash": str,
        "pncutils_version": str, "torch_version": str, "device": str, "created": str,
        "results": Mapping,
    }
    for name, kind in types.items():
        if not isinstance(result[name], kind):
            raise ValueError(
                f"field {name!r} must be a {getattr(kind, '__name__', kind)}, "
                f"got {type(result[name]).__name__}"
            )
    if result["git_commit"] is not None and not isinstance(result["git_commit"], str):
        raise ValueError("field 'git_commit' must be a string or null")
    if result["git_dirty"] is not None and not isinstance(result["git_dirty"], bool):
        raise ValueError("field 'git_dirty' must be true, false or null")
    wall = result["wall_time_s"]
    if isinstance(wall, bool) or not isinstance(wall, int | float) or not wall >= 0:
        raise ValueError(f"field 'wall_time_s' must be a number >= 0, got {wall!r}")
    try:
        datetime.fromisoformat(result["created"])
    except ValueError as err:
        raise ValueError(f"field 'created' is not an ISO date-time: {result['created']!r}") from err
    experiment, scale, config = result["experiment"], result["scale"], result["config"]
    if scale not in SCALES:
        raise ValueError(f"field 'scale' must be one of {SCALES}, got {scale!r}")
    expected = config_hash(experiment, scale, config)
    if result["config_hash"] != expected:
        raise ValueError(
            f"config_hash does not match the config of {experiment}/{scale}: the file says "
            f"{result['config_hash']!r}, the config hashes to {expected!r} (the config or the "
            "hash was changed after the run)"
        )
    if against_registry:
        exp = _experiment(experiment)
        seed = config.get("seed", 0)
        registered = _jsonable(exp.scales[scale].replace(seed=seed).to_dict())
        if _canonical(registered) != _canonical(dict(config)):
            changed = sorted(k for k in set(registered) | set(config)
                             if registered.get(k) != config.get(k))
            raise ValueError(
                f"the config of {experiment}/{scale} differs from the registered one in "
                f"{changed}: rerun `python -m pncutils.reproduce {experiment} --scale {scale}`"
            )
        if exp.result_type is not None:
            try:
                exp.result_type.from_dict(result["results"])
            except (ValueError, TypeError, KeyError) as err:
                raise ValueError(
                    f"the results of {experiment}/{scale} do not have the layout of "
                    f"{exp.result_type.__name__} ({err}): rerun "
                    f"`python -m pncutils.reproduce {experiment} --scale {scale}`"
                ) from err


def compute(experiment: str, cfg: Config, device: torch.device | str | None = None
            ) -> Any:
    """Run an experiment with any Config and return its result (nothing is written).

    The registry's way to a live run (a chapter may call its module's ``run`` directly): the
    result has the type of ``Record.result`` of a result file, so the same plotting code
    draws both.

    Parameters
    ----------
    experiment : str
        A key of :data:`EXPERIMENTS`.
    cfg : Config
        Usually ``EXPERIMENTS[experiment].scales[scale]``, possibly ``.replace(...)``-d; it
        must have the same parameters as the registered Configs.
    device : torch.device or str, optional
        The experiment's default when omitted.

    Returns
    -------
    Result or dict
        The experiment's typed result (a dict for an experiment whose function returns one).

    Examples
    --------
    >>> cfg = EXPERIMENTS["fig3b"].scales["quick"].replace(num_seeds=1, epochs=20)
    >>> res = compute("fig3b", cfg, "cpu")
    >>> len(res.per_seed), len(res.summary.compression_geometric_mean)
    (1, 10)

    Used in: ch09.
    """
    exp = _experiment(experiment)
    if not isinstance(cfg, Config):
        raise ValueError(f"cfg must be a pncutils.book.config.Config, got {type(cfg).__name__}")
    expected = set(exp.scales["quick"].to_dict())
    if set(cfg.to_dict()) != expected:
        missing = sorted(expected - set(cfg.to_dict()))
        extra = sorted(set(cfg.to_dict()) - expected)
        raise ValueError(
            f"cfg does not have the parameters of experiment {experiment!r}: missing {missing}, "
            f"unknown {extra}"
        )
    out = exp.fn(cfg, _resolve_device(exp, device))
    return out if isinstance(out, Result) else _jsonable(out)


def load_or_run(
    experiment: str,
    scale: str,
    recompute: bool | str = "auto",
    device: torch.device | str | None = None,
    results_dir: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> Record | None:
    """A chapter's access to a result: the committed file, or a fresh run when asked.

    Parameters
    ----------
    experiment : str
        A key of :data:`EXPERIMENTS`.
    scale : {"quick", "book", "paper"}
    recompute : bool or "auto", default "auto"
        ``True``: run the experiment now (on `device`) and return the fresh result.
        ``False``: only read the committed file. ``"auto"``: run it when a CUDA GPU is
        present, the experiment trains on the GPU by default (``default_device="auto"``)
        and quick mode is off (:func:`pncutils.utils.quick_mode`); else read.
    device : torch.device or str, optional
        Device of a fresh run (the experiment's default when omitted).
    results_dir : path, optional
        Where committed files are read from; :func:`default_out_dir` when omitted.
    out_dir : path, optional
        Where a fresh run writes its file; a ``pncutils-results`` folder in the temporary
        directory when omitted, so that a chapter never overwrites the committed files.

    Returns
    -------
    Record or None
        The result (hash verified), typed, or None when it is not committed here. A
        committed file whose config no longer matches the registry is not returned: a
        :class:`UserWarning` names the command that refreshes it, and None is returned.

    Raises
    ------
    ValueError
        Unknown experiment, scale or `recompute` value.

    Examples
    --------
    >>> rec = load_or_run("fig4", "quick", recompute=False)
    >>> rec is None or rec.meta["config_hash"] == config_hash("fig4", "quick", rec.config)
    True

    Used in: ch03, ch05, ch07, ch08, ch09.
    """
    import warnings

    from pncutils.utils import quick_mode

    exp = _experiment(experiment)
    _scale(scale)
    if recompute not in (True, False, "auto"):
        raise ValueError(f"recompute must be True, False or 'auto', got {recompute!r}")
    if recompute == "auto":
        recompute = (exp.default_device == "auto" and torch.cuda.is_available()
                     and not quick_mode())
    if recompute:
        folder = Path(out_dir) if out_dir is not None else (
            Path(tempfile.gettempdir()) / "pncutils-results")
        return Record.from_dict(load_result(run(experiment, scale, device=device,
                                                out_dir=folder)))
    path = result_path(experiment, scale, results_dir)
    if not path.is_file():
        return None
    res = load_result(path)
    try:
        verify_result(res, against_registry=True)
    except ValueError as err:
        warnings.warn(f"{path} is out of date and was not used: {err}", stacklevel=2)
        return None
    return Record.from_dict(res)


def results_overview(folder: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """One row per result file of a folder: what ran, where, how long, from which code.

    Parameters
    ----------
    folder : path, optional
        :func:`default_out_dir` when omitted.

    Returns
    -------
    list of dict
        Sorted by experiment, then scale (quick, book, paper), then seed; keys
        ``experiment, scale, seed, device, wall_time_s, created, git_commit, git_dirty,
        config_hash, current, file``. ``current`` is False when the file's config differs
        from the registered one (or the experiment is no longer registered).

    Raises
    ------
    ValueError
        If a file in the folder is not a valid result file (see :func:`verify_result`).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = run("fig4", "quick", out_dir=d)
    ...     rows = results_overview(d)
    >>> [(r["experiment"], r["scale"], r["device"], r["current"]) for r in rows]
    [('fig4', 'quick', 'cpu', True)]

    Used in: ch09.
    """
    folder = Path(folder) if folder is not None else default_out_dir()
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    rows = []
    for path in sorted(folder.glob("*.json")):
        res = load_result(path)
        try:
            verify_result(res, against_registry=True)
            current = True
        except ValueError:
            current = False
        rows.append({
            "experiment": res["experiment"], "scale": res["scale"],
            "seed": res["config"].get("seed", 0), "device": res["device"],
            "wall_time_s": res["wall_time_s"], "created": res["created"],
            "git_commit": res["git_commit"], "git_dirty": res["git_dirty"],
            "config_hash": res["config_hash"], "current": current, "file": path.name,
        })
    order = {s: i for i, s in enumerate(SCALES)}
    rows.sort(key=lambda r: (r["experiment"], order[r["scale"]], r["seed"]))
    return rows


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def overview_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of :func:`results_overview` rows (for a chapter or the README).

    Parameters
    ----------
    rows : sequence of dict
        The output of :func:`results_overview`.

    Returns
    -------
    str

    Examples
    --------
    >>> row = {"experiment": "fig4", "scale": "book", "seed": 0, "device": "cpu",
    ...        "wall_time_s": 75.0, "created": "2026-11-26T10:00:00+00:00",
    ...        "git_commit": "0123456789abcdef", "git_dirty": False,
    ...        "config_hash": "ab" * 32, "current": True, "file": "fig4-book.json"}
    >>> print(overview_markdown([row]))  # doctest: +NORMALIZE_WHITESPACE
    | experiment | scale | device | wall time | commit | config | up to date |
    |---|---|---|---|---|---|---|
    | fig4 | book | cpu | 1.2 min | 0123456789 | ababababab | yes |

    Used in: ch09.
    """
    lines = ["| experiment | scale | device | wall time | commit | config | up to date |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        commit = (r["git_commit"] or "unknown")[:10] + (" (modified)" if r["git_dirty"] else "")
        scale = r["scale"] + (f" (seed {r['seed']})" if r["seed"] else "")
        lines.append(f"| {r['experiment']} | {scale} | {r['device']} | "
                     f"{_duration(r['wall_time_s'])} | {commit} | {r['config_hash'][:10]} | "
                     f"{'yes' if r['current'] else 'no'} |")
    return "\n".join(lines)


def _headline(rec: Record) -> str:
    """The key numbers of a result, for the command line."""
    r = rec.result
    if rec.experiment == "hybrid" and isinstance(r, _hybrid.HybridResult):
        return "; ".join(
            f"{name}: C_1/C_{len(net.layers) - 1}="
            f"{float(net.layers.compression[1] / net.layers.compression[-1]):.3g}"
            + (f" test_acc={net.training.test_acc:.3f}" if net.training else "")
            for name, net in r.networks.items())
    if rec.experiment == "fig4" and isinstance(r, _main_result.Fig4Result):
        s = r.summary
        return (f"rate {s.measured_rate.mean:.4f}+-{s.measured_rate.std:.4f} "
                f"(ideal {s.ideal_rate:.4f})")
    if rec.experiment == "fig6" and isinstance(r, _assumptions.Fig6Result):
        return (f"all converged: {r.all_converged}, residual max {r.residual_max:.4f}, "
                f"balance max {r.balance_max:.4f}")
    if rec.experiment == "fig3b" and isinstance(r, _nonlinear.Fig3bResult):
        s = r.summary
        return f"C_0/C_last={s.compression_ratio_first_to_last:.3g} rate {s.rate.mean:.3f}"
    return ""


def _summary_line(path: Path) -> str:
    res = load_result(path)
    extra = _headline(Record.from_dict(res)) if res["experiment"] in EXPERIMENTS else ""
    return (f"{res['experiment']}/{res['scale']}: {path} in {res['wall_time_s']:.1f} s on "
            f"{res['device']} [config {res['config_hash'][:12]}] {extra}").rstrip()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m pncutils.reproduce <experiment|all> --scale S ...``.

    Prints one summary line per run (path, wall time, device, config hash, key numbers).

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (``sys.argv[1:]`` when omitted).

    Returns
    -------
    int
        0 on success; a usage error exits with status 2.

    Examples
    --------
    >>> main(["--list"])  # doctest: +ELLIPSIS
    hybrid: Figures 1, 5 and F2: ...
    0

    Used in: ch09.
    """
    parser = argparse.ArgumentParser(
        prog="python -m pncutils.reproduce",
        description="Run an experiment of the paper and write its JSON result file.",
    )
    parser.add_argument("experiment", nargs="?",
                        help=f"one of {', '.join(EXPERIMENTS)}, or 'all'")
    parser.add_argument("--scale", default="quick", help=f"one of {', '.join(SCALES)}")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: auto)")
    parser.add_argument("--out", default=None,
                        help=f"output folder (default: {default_out_dir()})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, exp in EXPERIMENTS.items():
            print(f"{name}: {exp.description} (scales: {', '.join(SCALES)})")
        return 0
    if args.experiment is None:
        parser.error("give an experiment: " + ", ".join([*EXPERIMENTS, "all"]))
    names = list(EXPERIMENTS) if args.experiment == "all" else [args.experiment]
    try:
        for name in names:
            _experiment(name)
        _scale(args.scale)
        if args.seed < 0:
            raise ValueError(f"seed must be >= 0, got {args.seed}")
    except ValueError as err:
        parser.error(str(err))
    for name in names:
        path = run(name, args.scale, device=args.device, out_dir=args.out, seed=args.seed)
        print(_summary_line(path), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
