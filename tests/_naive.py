"""Independent numpy re-implementations shared by several test files."""

from __future__ import annotations

import numpy as np


def naive_probe(H, y, H_test, y_test, ridge):
    """Ridge least squares with an unpenalised bias, by the normal equations in numpy."""
    K = int(y.max()) + 1
    mean = H.mean(0)
    Hc = H - mean
    Y = np.eye(K)[y]
    lam = ridge * (Hc**2).sum() / H.shape[1]
    W = np.linalg.solve(Hc.T @ Hc + lam * np.eye(H.shape[1]), Hc.T @ (Y - Y.mean(0)))
    pred = ((H_test - mean) @ W + Y.mean(0)).argmax(1)
    return float((pred == y_test).mean())


def naive_layer_metrics(H, y):
    """C, D, NC1 and the traces of one layer's features, by per-sample loops in numpy.

    A port of the reference code's ``compute_Sigma_W`` loop (one outer product per sample),
    with the paper's conventions: ``Sigma_W`` divided by N, ``Sigma_B`` by K around the mean
    of the uncentred class means, signed cosine of the uncentred means for D, and
    ``NC1 = tr(Sigma_W Sigma_B^+) / K`` with an explicit relative cut-off of the pseudo-inverse.
    """
    H = np.asarray(H, dtype=np.float64)
    y = np.asarray(y)
    K = int(y.max()) + 1
    N, p = H.shape
    means = np.stack([H[y == k].mean(0) for k in range(K)])  # (K, p)
    mu_G = means.mean(0)
    Sigma_W = np.zeros((p, p))
    for i in range(N):
        dev = H[i] - means[y[i]]
        Sigma_W += np.outer(dev, dev)
    Sigma_W /= N
    Sigma_B = np.zeros((p, p))
    for k in range(K):
        Sigma_B += np.outer(means[k] - mu_G, means[k] - mu_G)
    Sigma_B /= K
    trW, trB = float(np.trace(Sigma_W)), float(np.trace(Sigma_B))
    cos = max(
        means[a] @ means[b] / (np.linalg.norm(means[a]) * np.linalg.norm(means[b]))
        for a in range(K) for b in range(K) if a != b
    )
    # Sigma_B has rank <= K - 1; its zero eigenvalues come out at ~1e-16 relative
    Sigma_B_pinv = np.linalg.pinv(Sigma_B, rtol=1e-12, hermitian=True)
    return {"compression": trW / trB, "discrimination": 1.0 - float(cos),
            "nc1": float(np.trace(Sigma_W @ Sigma_B_pinv)) / K,
            "trace_within": trW, "trace_between": trB}


def naive_least_squares_network(X, y, depth, eps, alpha, width, seed):
    """The closed-form network of ``pncutils.theory`` for any X, built in numpy from its definition.

    ``W* = alpha^{-1} Y^T pinv(X)^T`` (numpy's pseudo-inverse), its SVD truncated to the rank
    ``k`` (singular values above ``1e-12 s_max``), random orthogonal frames from numpy's QR,
    ``W_1 = R_1 S^{1/L} V^T + eps Q_1 V_perp^T``,
    ``W_l = R_l S^{1/L} R_{l-1}^T + eps Q_l Q_{l-1}^T`` and ``W_L = U S^{1/L} R_{L-1}^T``.
    Returns ``(weights, W_star)``.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    K = int(y.max()) + 1
    d = X.shape[1]
    W_star = np.eye(K)[y].T @ np.linalg.pinv(X).T / alpha  # (K, d)
    U, S, Vh = np.linalg.svd(W_star)  # full: Vh is (d, d)
    k = int((S > 1e-12 * S[0]).sum())
    U, root, V, V_perp = U[:, :k], S[:k] ** (1.0 / depth), Vh[:k].T, Vh[k:].T
    rng = np.random.default_rng(seed)
    frames = [np.linalg.qr(rng.normal(size=(width, width)))[0] for _ in range(depth - 1)]
    R = [F[:, :k] for F in frames]
    Q = [F[:, k:d] for F in frames]
    Ws = [R[0] @ np.diag(root) @ V.T + eps * Q[0] @ V_perp.T]
    for l in range(1, depth - 1):
        Ws.append(R[l] @ np.diag(root) @ R[l - 1].T + eps * Q[l] @ Q[l - 1].T)
    Ws.append(U @ np.diag(root) @ R[-1].T)
    return Ws, W_star


def naive_features(weights, X):
    """``[X, X W_1^T, X W_1^T W_2^T, ...]``: the inputs and every hidden layer's features."""
    feats = [np.asarray(X, dtype=np.float64)]
    for W in weights[:-1]:
        feats.append(feats[-1] @ np.asarray(W).T)
    return feats
