"""pncutils: float64 layerwise metrics, exact theory and tools for deep representations.

The core library (what ``import pncutils`` loads; no pyplot, no experiment drivers):

metrics     : float64 layerwise metrics (C_l, D_l, NC1, rank) and streaming accumulators
fits        : one typed fit (:class:`pncutils.fits.Fit`): lines, geometric decays, floors
probes      : closed-form ridge probes, on full features, streamed or cross-validated
measurement : measure any PyTorch model layer by layer (``pnc.measure(model, data, layers)``)
theory      : the closed-form minimum-norm balanced network, its exact predictions, checks
conventions : the metrics as other papers and libraries define them, and the conversions
models      : deep linear and hybrid (nonlinear + linear) networks with the paper's initialisation
training    : full-batch / mini-batch training with MSE and output scale alpha; batched seeds
data        : the paper's synthetic generators and offline-first loaders of real datasets
analysis    : per-layer reports of a model (metrics, rank, probes) and PCA projections
plotting    : the book's figure style and layerwise plots (pyplot is imported on first use)
utils       : seeds, device choice, quick mode, Colab detection

``import pncutils`` loads the metric library (metrics, fits, probes, measurement, utils);
the other modules load on first access (``pnc.theory``). The book's own experiment drivers
live in :mod:`pncutils.book` (also loaded on first access); ``python -m pncutils.reproduce``
is their command line.

Import as ``import pncutils as pnc`` and call ``pnc.metrics.compression(H, y)``.
"""

import importlib

from pncutils import fits, measurement, metrics, probes, utils
from pncutils.measurement import measure
from pncutils.utils import get_device, is_colab, quick_mode, seed_everything

__version__ = "0.1.0"

#: Loaded on first access (``pnc.theory``, ``pnc.book``...): a user of the metric library
#: (metrics, fits, probes, measurement) imports only those and their helpers.
_LAZY = ("analysis", "conventions", "data", "models", "plotting", "theory", "training", "book")


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f"pncutils.{name}")
    raise AttributeError(f"module 'pncutils' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "analysis",
    "conventions",
    "data",
    "fits",
    "measurement",
    "measure",
    "metrics",
    "models",
    "plotting",
    "probes",
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
