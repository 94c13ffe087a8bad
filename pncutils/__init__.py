"""pncutils: the helper library of the book on layerwise compression and discrimination.

Modules
-------
analysis  : per-layer reports of a model (metrics, rank, probes) and PCA projections
experiments : the synthetic experiments of part I (seeds, sweeps, the assumption grid)
metrics   : float64 layerwise metrics (C_l, D_l, NC1, rank, probes) and streaming accumulators
theory    : the closed-form minimum-norm balanced network and its exact predictions
data      : the paper's synthetic generators and offline-first loaders of real datasets
models    : deep linear and hybrid (nonlinear + linear) networks with the paper's initialisation
training  : full-batch / mini-batch training with MSE and output scale alpha; batched seeds
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
    config,
    conventions,
    data,
    experiments,
    metrics,
    models,
    plotting,
    theory,
    training,
    utils,
    widgets,
)
from pncutils.utils import get_device, is_colab, quick_mode, seed_everything

__version__ = "0.1.0"

__all__ = [
    "analysis",
    "config",
    "conventions",
    "data",
    "experiments",
    "metrics",
    "models",
    "plotting",
    "theory",
    "training",
    "utils",
    "widgets",
    "get_device",
    "is_colab",
    "quick_mode",
    "seed_everything",
    "__version__",
]
