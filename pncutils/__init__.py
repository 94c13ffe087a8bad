"""pncutils: float64 layerwise metrics, exact theory and tools for deep representations.

The core library (what ``import pncutils`` loads; no pyplot, no experiment drivers):

metrics     : float64 layerwise metrics (C_l, D_l, NC1, rank, probes) and streaming accumulators
measurement : measure any PyTorch model layer by layer (``pnc.measure(model, data, layers)``)
theory      : the closed-form minimum-norm balanced network, its exact predictions, checks
conventions : the metrics as other papers and libraries define them, and the conversions
models      : deep linear and hybrid (nonlinear + linear) networks with the paper's initialisation
training    : full-batch / mini-batch training with MSE and output scale alpha; batched seeds
data        : the paper's synthetic generators and offline-first loaders of real datasets
analysis    : per-layer reports of a model (metrics, rank, probes) and PCA projections
plotting    : the book's figure style and layerwise plots (pyplot is imported on first use)
utils       : seeds, device choice, quick mode, Colab detection

The book's own experiment drivers live in :mod:`pncutils.book` (loaded on first access of
``pncutils.book``); ``python -m pncutils.reproduce`` is their command line.

Import as ``import pncutils as pnc`` and call ``pnc.metrics.compression(H, y)``.
"""

from pncutils import (
    analysis,
    conventions,
    data,
    measurement,
    metrics,
    models,
    plotting,
    theory,
    training,
    utils,
)
from pncutils.measurement import measure
from pncutils.utils import get_device, is_colab, quick_mode, seed_everything

__version__ = "0.1.0"


def __getattr__(name: str):
    # The book layer is imported on first use: `import pncutils` stays the core library.
    if name == "book":
        import importlib

        return importlib.import_module("pncutils.book")
    raise AttributeError(f"module 'pncutils' has no attribute {name!r}")


__all__ = [
    "analysis",
    "conventions",
    "data",
    "measurement",
    "measure",
    "metrics",
    "models",
    "plotting",
    "theory",
    "training",
    "utils",
    "book",
    "get_device",
    "is_colab",
    "quick_mode",
    "seed_everything",
    "__version__",
]
