"""The book's experiment drivers: the code behind particular chapters, beside the core library.

``pncutils`` (metrics, theory, models, training, data, analysis, plotting, conventions,
utils) is what a reader imports to measure a network; this subpackage drives the book's own
experiments and never is imported by the core (``import pncutils`` does not load it;
``pncutils.book`` is loaded on first access).

Modules
-------
config      : the frozen parameter sets of the chapters (:class:`Config`)
experiments : the synthetic experiments of part I (ch03 seeds and sweeps, the ch04 grid)
beyond      : real data, default init, cross-entropy, weight decay (F7, ch06)
transfer    : projection heads and transfer learning (F8 as a toy, ch07)
figures     : the figures of part II, drawn from experiment results (ch05, ch08)
reproduce   : the registry of experiments, result files and their verification, and the CLI
              ``python -m pncutils.reproduce`` (ch05-ch08)
widgets     : interactive explorers (ch01, ch03; ipywidgets, imported lazily)
"""

from pncutils.book import beyond, config, experiments, figures, reproduce, transfer, widgets

__all__ = ["beyond", "config", "experiments", "figures", "reproduce", "transfer", "widgets"]
