"""Tests of pncutils.probes: the cross-validated ridge against the probe on stratified folds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pncutils import probes


def one_direction(N, D, seed=0, shift=2.0):
    """Two classes told apart by the first of D isotropic Gaussian coordinates."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(N) % 2
    H = torch.randn(N, D, generator=g, dtype=torch.float64)
    H[:, 0] += shift * (2 * y - 1)
    return H, y

def test_cv_probe_ridge_is_large_near_the_interpolation_threshold():
    H, y = one_direction(100, 90)  # N close to D: the min-norm fit interpolates noise
    H_test, y_test = one_direction(2000, 90, seed=1)
    ridge = probes.cv_ridge(H, y)
    assert ridge >= 0.1
    acc, used = probes.probe_accuracy(H, y, H_test, y_test, "cv")
    assert used == ridge
    weak = probes.probe_accuracy(H, y, H_test, y_test, 1e-6)[0]
    assert acc > weak + 0.1, (acc, weak)

def test_cv_probe_ridge_is_small_when_the_problem_is_easy_and_well_posed():
    # N >> D; the class signal lies in a low-variance coordinate next to high-variance
    # nuisance ones, so a ridge relative to the mean feature scale would drown it
    g = torch.Generator().manual_seed(0)
    y = torch.arange(1000) % 2
    H = torch.cat([(0.01 * (2 * y - 1) + 0.002 * torch.randn(1000, generator=g))[:, None],
                   10.0 * torch.randn(1000, 4, generator=g)], 1).double()
    ridge, scores = probes.cv_ridge(H, y, return_scores=True)
    assert ridge <= 1e-3
    assert scores[probes.PROBE_RIDGE_GRID.index(ridge)] == 1.0
    assert scores[-1] < 0.9  # the largest ridge does fail

@pytest.mark.parametrize(("N", "D"), [(60, 4), (30, 50)])  # primal and dual solutions
def test_cv_scores_are_the_linear_probe_on_stratified_folds(N, D):
    from pncutils.probes import linear_probe_accuracy

    g = torch.Generator().manual_seed(3)
    y = torch.tensor([0, 1, 2, 1, 0, 2, 2, 1, 0, 0] * (N // 10))
    H = torch.randn(N, D, generator=g, dtype=torch.float64) + torch.eye(3, D)[y]
    ridges, folds = [0.0, 1e-4, 1e-2, 1.0, 100.0], 3
    _, scores = probes.cv_ridge(H, y, ridges=ridges, folds=folds, return_scores=True)
    # the i-th sample of each class (in order) is held out in fold i mod folds
    rank = np.array([int((y[:i] == y[i]).sum()) for i in range(N)])
    for r, score in zip(ridges, scores, strict=True):
        correct = 0.0
        for f in range(folds):
            held = torch.from_numpy(rank % folds == f)
            acc = linear_probe_accuracy(H[~held], y[~held], H[held], y[held], ridge=r,
                                        num_classes=3)
            correct += acc * int(held.sum())
        assert score == pytest.approx(correct / N, abs=1e-12), r

def naive_cv(H, y, ridge, folds):
    """Held-out accuracy and squared error of the ridge probe over stratified folds (numpy)."""
    H, y = np.asarray(H, dtype=np.float64), np.asarray(y)
    K = int(y.max()) + 1
    rank = np.array([int((y[:i] == y[i]).sum()) for i in range(len(y))])
    correct, sq = 0, 0.0
    for f in range(folds):
        held = rank % folds == f
        A, Y = H[~held], np.eye(K)[y[~held]]
        mean, Ym = A.mean(0), Y.mean(0)
        Ac = A - mean
        lam = ridge * (Ac**2).sum() / H.shape[1]
        W = np.linalg.solve(Ac.T @ Ac + lam * np.eye(H.shape[1]), Ac.T @ (Y - Ym))
        out = (H[held] - mean) @ W + Ym
        correct += int((out.argmax(1) == y[held]).sum())
        sq += float(((out - np.eye(K)[y[held]]) ** 2).sum())
    return correct / len(y), sq

def test_cv_ties_in_accuracy_go_to_the_lower_held_out_error():
    # two well separated classes on one coordinate: every ridge classifies perfectly, but
    # a large ridge shrinks the outputs towards the class prior (a larger squared error)
    g = torch.Generator().manual_seed(4)
    y = torch.arange(40) % 2
    H = (4.0 * (2 * y - 1) + 0.3 * torch.randn(40, generator=g)).double()[:, None]
    for ridges in ([100.0, 1e-3], [1e-3, 100.0]):
        accs = [naive_cv(H, y, r, 5)[0] for r in ridges]
        errs = [naive_cv(H, y, r, 5)[1] for r in ridges]
        assert accs == [1.0, 1.0]
        best = ridges[int(np.argmin(errs))]
        assert best == 1e-3  # the small ridge fits the targets better
        ridge, scores = probes.cv_ridge(H, y, ridges=ridges, return_scores=True)
        assert scores == accs and ridge == best

def test_cv_exact_ties_go_to_the_first_ridge():
    # ridges 0 and 1e-300 give bit-identical probes (lam underflows against every eigenvalue
    # and falls below the pseudo-inverse cut-off in the null space): accuracy and error tie
    H, y = one_direction(30, 4)
    assert probes.cv_ridge(H, y, ridges=[1e-300, 0.0]) == 1e-300
    assert probes.cv_ridge(H, y, ridges=[0.0, 1e-300]) == 0.0

def test_cv_probe_ridge_is_deterministic():
    H, y = one_direction(80, 60)
    assert (probes.cv_ridge(H, y, return_scores=True)
            == probes.cv_ridge(H.clone(), y.clone(), return_scores=True))

@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(ridges=[]), "ridges is empty"),
        (dict(ridges=[1e-3, -1.0]), "ridges must be >= 0"),
        (dict(ridges=[float("nan")]), "ridges must be finite"),
        (dict(ridges="cv"), "ridges must be a sequence of numbers"),
        (dict(ridges=0.1), "ridges must be a sequence of numbers"),
        (dict(folds=1), "folds must be >= 2"),
        (dict(folds=11), "needs at least 11 samples of every class; class 0 has 10"),
    ],
)
def test_cv_probe_ridge_errors(kwargs, match):
    H, y = one_direction(20, 3)
    with pytest.raises(ValueError, match=match):
        probes.cv_ridge(H, y, **kwargs)
