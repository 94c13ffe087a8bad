"""pncutils: the helper library of the book on layerwise compression and discrimination.

Modules
-------
analysis  : per-layer reports of a model (metrics, rank, probes) and PCA projections
beyond    : real data, default init, cross-entropy, weight decay (F7, chapter 6)
experiments : the synthetic experiments of part I (seeds, sweeps, the assumption grid)
metrics   : float64 layerwise metrics (C_l, D_l, NC1, rank, probes) and streaming accumulators
theory    : the closed-form minimum-norm balanced network and its exact predictions
data      : the paper's synthetic generators and offline-first loaders of real datasets
models    : deep linear and hybrid (nonlinear + linear) networks with the paper's initialisation
training  : full-batch / mini-batch training with MSE and output scale alpha; batched seeds
transfer  : projection heads and transfer learning (F8 as a toy, chapter 7)
figures   : the figures of part II, drawn from experiment results (live or committed)
plotting  : the book's figure style and layerwise plots with theory overlays
utils     : seeds, device choice, quick mode, Colab detection
reproduce : `python -m pncutils.reproduce <experiment> --scale ...` (result files)
config    : the frozen parameter sets of the chapters
conventions : the metrics as other papers and libraries define them, and the conversions
widgets   : interactive explorers (ipywidgets, imported lazily)

Import as ``import pncutils as pnc`` and call ``pnc.metrics.compression(H, y)``.
"""

from pncutils import (
    analysis,
    beyond,
    config,
    conventions,
    data,
    experiments,
    figures,
    metrics,
    models,
    plotting,
    theory,
    training,
    transfer,
    utils,
    widgets,
)
from pncutils.utils import get_device, is_colab, quick_mode, seed_everything

__version__ = "0.1.0"


def __getattr__(name: str):
    # `reproduce` is imported on first use, so that `python -m pncutils.reproduce` does not
    # find it already imported by the package (runpy warns about that).
    if name == "reproduce":
        import importlib

        return importlib.import_module("pncutils.reproduce")
    raise AttributeError(f"module 'pncutils' has no attribute {name!r}")

__all__ = [
    "analysis",
    "beyond",
    "config",
    "conventions",
    "data",
    "experiments",
    "figures",
    "metrics",
    "models",
    "plotting",
    "reproduce",
    "theory",
    "training",
    "transfer",
    "utils",
    "widgets",
    "get_device",
    "is_colab",
    "quick_mode",
    "seed_everything",
    "__version__",
]
