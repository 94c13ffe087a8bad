"""The book's experiment drivers: the code behind particular chapters, beside the core library.

``pncutils`` (metrics, theory, models, training, data, analysis, plotting, conventions,
utils) is what a reader imports to measure a network; this subpackage drives the book's own
experiments and never is imported by the core (``import pncutils`` does not load it;
``pncutils.book`` is loaded on first access).

Every experiment follows one convention (:mod:`pncutils.book.config`): a module with
``SCALES`` (a frozen Config per scale), a typed result and ``run(config, device)``.

Modules
-------
config      : the convention: frozen parameter sets (:class:`Config`) and typed results
experiments : the synthetic seed sweeps of part I (ch03 seeds, sweeps and survey; the ch04 grid)
main_result : experiment ``fig4``, the theorem on trained networks (ch03)
assumptions : experiment ``fig6``, the assumption grid (ch04)
hybrid      : experiment ``hybrid``, the hybrid and the MLP on FashionMNIST (ch05)
figures     : the figures of ``hybrid`` (ch05, ch09)
nonlinear   : experiment ``fig3b``, a deep Linear-BN-ReLU network on the synthetic data (ch05)
beyond      : experiment ``fig7``: real data, default init, cross-entropy, weight decay (ch07)
convnets    : a CNN and a ResNet on FashionMNIST, measured block by block with pnc.measure (ch06)
transfer    : experiment ``transfer``: projection heads and transfer learning (F8 as a toy, ch08)
reproduce   : the registry of experiments, result files and their verification, and the CLI
              ``python -m pncutils.reproduce`` (ch05-ch09)
widgets     : interactive explorers (ch01, ch03; ipywidgets, imported lazily)
"""

from pncutils.book import (
    assumptions,
    beyond,
    config,
    convnets,
    experiments,
    figures,
    hybrid,
    main_result,
    nonlinear,
    reproduce,
    transfer,
    widgets,
)

__all__ = ["assumptions", "beyond", "config", "convnets", "experiments", "figures", "hybrid",
           "main_result", "nonlinear", "reproduce", "transfer", "widgets"]
