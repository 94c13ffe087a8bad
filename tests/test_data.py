"""Tests of pncutils.data: synthetic generators and offline loaders (no network, fast).

The loader tests write small files in the standard formats (IDX gzip, CIFAR-10 pickle
batches and tar.gz) into ``tmp_path``. Every test runs with ``$PNC_DATA`` unset, the
download cache in ``tmp_path``, no system folders and a downloader that fails on use, so
nothing on this machine or on the network can leak in. Downloads go through pooch with a
downloader that serves bytes from memory (``data._make_downloader`` replaced).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import sys
import tarfile
import time
import types
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from pncutils import data
from pncutils.data import (
    DATASETS,
    DatasetNotFoundError,
    gaussian_mixture,
    load_dataset,
    one_hot,
    orthogonal_dataset,
)

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
REAL_MAKE_DOWNLOADER = data._make_downloader  # before the autouse fixture replaces it

# the published per-channel normalisation constants (pixels scaled to [0, 1]), written out
# here rather than read from DATASETS: MNIST and FashionMNIST are the usual
# transforms.Normalize values, CIFAR-10 (R, G, B) the reference code's
MEAN_STD = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
}


# ----------------------------------------------------------------------------------------
# fixtures and file writers
# ----------------------------------------------------------------------------------------


def _no_network(progressbar=False):
    def downloader(url, output_file, pooch=None):
        raise AssertionError(f"a test tried to download {url}")

    return downloader


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No $PNC_DATA, a private download cache, no system folders and no network."""
    monkeypatch.delenv("PNC_DATA", raising=False)
    monkeypatch.setenv("PNC_DOWNLOAD", "0")  # the suite's rule; tests that download say so
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg_cache"))
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion_mnist", [])
    monkeypatch.setattr(data, "_make_downloader", _no_network)


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


# 3 classes x 4 images, labels deliberately not sorted
IDX_LABELS = np.array([2, 0, 1, 0, 2, 1, 1, 0, 2, 0, 1, 2], dtype=np.uint8)


def _images(n: int, offset: int = 0, size: int = 28) -> np.ndarray:
    """Image i is filled with the value ``offset + 20 i`` (mod 256)."""
    values = (offset + 20 * np.arange(n)) % 256
    return np.broadcast_to(values[:, None, None], (n, size, size)).astype(np.uint8)


def _idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(
    folder: Path,
    images: np.ndarray,
    labels: np.ndarray,
    prefix: str = "train",
    compress: bool = True,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        f"{prefix}-images-idx3-ubyte": _idx_bytes(images, 2051),
        f"{prefix}-labels-idx1-ubyte": _idx_bytes(labels, 2049),
    }
    for name, payload in files.items():
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / name).write_bytes(payload)
    return folder


def write_default_idx(folder: Path, offset: int = 0) -> Path:
    write_idx(folder, _images(len(IDX_LABELS), offset), IDX_LABELS, "train")
    write_idx(folder, _images(3, offset), np.array([0, 1, 2], np.uint8), "t10k")
    return folder


def _cifar_batch(labels: list[int], start: int) -> bytes:
    """Image j: red = start + j, green = 0, blue = 255 (CHW rows of 3072 bytes)."""
    data_ = np.zeros((len(labels), 3, 1024), dtype=np.uint8)
    data_[:, 0, :] = (start + np.arange(len(labels)))[:, None]
    data_[:, 2, :] = 255
    batch = {
        b"batch_label": b"x",
        b"labels": labels,
        b"data": data_.reshape(len(labels), 3072),
        b"filenames": [b"f"] * len(labels),
    }
    return pickle.dumps(batch, protocol=2)


CIFAR_TRAIN_LABELS = [[0, 1], [2, 0], [1, 2], [0, 0], [1, 2]]


def cifar_files() -> dict[str, bytes]:
    files = {
        f"data_batch_{i + 1}": _cifar_batch(lab, 10 * i) for i, lab in enumerate(CIFAR_TRAIN_LABELS)
    }
    files["test_batch"] = _cifar_batch([2, 1, 0], 100)
    files["batches.meta"] = pickle.dumps({b"label_names": [b"a"] * 10}, protocol=2)
    return files


def write_cifar_dir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in cifar_files().items():
        (folder / name).write_bytes(payload)
    return folder


def cifar_tar_bytes(extra_members: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, payload in cifar_files().items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        if extra_members:  # members a safe extraction must ignore
            evil = tarfile.TarInfo("../evil.txt")
            evil.size = 4
            tar.addfile(evil, io.BytesIO(b"evil"))
            link = tarfile.TarInfo("cifar-10-batches-py/link")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(link)
    return buf.getvalue()


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


# ----------------------------------------------------------------------------------------
# orthogonal_dataset
# ----------------------------------------------------------------------------------------


def test_orthogonal_shapes_and_class_blocks(generator):
    X, y = orthogonal_dataset(3, 10, 50, generator=generator)
    assert X.shape == (30, 50) and X.dtype == torch.float32
    assert y.dtype == torch.int64
    assert y.tolist() == [0] * 10 + [1] * 10 + [2] * 10
    assert torch.isfinite(X).all()


def test_orthogonal_reproducible():
    a = orthogonal_dataset(3, 5, 20, generator=torch.Generator().manual_seed(7))
    b = orthogonal_dataset(3, 5, 20, generator=torch.Generator().manual_seed(7))
    c = orthogonal_dataset(3, 5, 20, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_orthogonal_without_perturbation_is_orthonormal(generator, dtype, tol):
    X, _ = orthogonal_dataset(4, 5, 30, perturbation=0.0, generator=generator, dtype=dtype)
    assert X.dtype == dtype
    torch.testing.assert_close(X @ X.T, torch.eye(20, dtype=dtype), atol=tol, rtol=0)


@pytest.mark.parametrize("perturbation", [0.3, 1.0, 2.5])
def test_orthogonal_perturbation_has_requested_frobenius_norm(perturbation):
    kw = dict(num_classes=3, num_per_class=4, dim=15, dtype=torch.float64)
    X0, _ = orthogonal_dataset(**kw, perturbation=0.0, generator=torch.Generator().manual_seed(3))
    X, _ = orthogonal_dataset(
        **kw, perturbation=perturbation, generator=torch.Generator().manual_seed(3)
    )
    assert torch.linalg.matrix_norm(X - X0).item() == pytest.approx(perturbation, rel=1e-12)


def test_orthogonal_near_orthogonality_matches_paper_sizes():
    """Paper §1.1 (N=30, d=50, K=3): max|‖x‖²−1| ≈ 0.16, max off-diagonal ≈ 0.125.

    The paper's numbers are one draw. Entries of Δ have standard deviation 1/sqrt(Nd), so
    the diagonal of X Xᵀ − I is about 1/30 + N(0, 4/1500) and an off-diagonal entry about
    N(0, 2/1500): the maxima average ≈ 0.14 and ≈ 0.12 (over 400 seeds: 0.139 ± 0.024 and
    0.117 ± 0.013 per draw; 20-seed means within 0.129–0.154 and 0.111–0.121).
    """
    norms, offs = [], []
    for seed in range(20):
        X, _ = orthogonal_dataset(
            3, 10, 50, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
        )
        G = X @ X.T
        norms.append((G.diagonal() - 1).abs().max().item())
        offs.append((G - torch.diag(G.diagonal())).abs().max().item())
    assert 0.12 < np.mean(norms) < 0.16
    assert 0.105 < np.mean(offs) < 0.13
    # the paper's draw is a typical one
    assert min(norms) < 0.16 < max(norms)
    assert min(offs) < 0.125 < max(offs)


def test_orthogonal_dim_smaller_than_samples_has_orthonormal_columns(generator):
    X, y = orthogonal_dataset(3, 10, 8, perturbation=0.0, generator=generator, dtype=torch.float64)
    assert X.shape == (30, 8) and y.shape == (30,)
    torch.testing.assert_close(X.T @ X, torch.eye(8, dtype=torch.float64))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(num_classes=1), "num_classes"),
        (dict(num_per_class=0), "num_per_class"),
        (dict(dim=0), "dim"),
        (dict(perturbation=-0.1), "perturbation"),
        (dict(perturbation=float("nan")), "perturbation"),
        (dict(num_classes=2.5), "num_classes"),
        (dict(generator=0), "generator"),
        (dict(dtype=torch.int64), "dtype"),
    ],
)
def test_orthogonal_errors(kwargs, match):
    args = dict(num_classes=3, num_per_class=2, dim=10) | kwargs
    with pytest.raises(ValueError, match=match):
        orthogonal_dataset(**args)


# ----------------------------------------------------------------------------------------
# gaussian_mixture and one_hot
# ----------------------------------------------------------------------------------------


def test_gaussian_mixture_shapes_balance_reproducibility():
    X, y = gaussian_mixture(4, 25, 16, generator=torch.Generator().manual_seed(1))
    X2, y2 = gaussian_mixture(4, 25, 16, generator=torch.Generator().manual_seed(1))
    assert X.shape == (100, 16) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.bincount(y).tolist() == [25] * 4
    assert y.tolist() == sorted(y.tolist())
    assert torch.equal(X, X2) and torch.equal(y, y2)
    assert torch.isfinite(X).all()


def test_gaussian_mixture_means_and_noise():
    X, y = gaussian_mixture(
        3,
        5,
        2000,
        class_sep=3.0,
        noise=0.0,
        generator=torch.Generator().manual_seed(0),
        dtype=torch.float64,
    )
    means = X[::5]  # (K, d): noise 0 puts every sample on its mean
    assert torch.equal(X, means[y])
    torch.testing.assert_close(
        means.norm(dim=1), torch.full((3,), 3.0, dtype=torch.float64), rtol=0.1, atol=0
    )
    X, y = gaussian_mixture(
        2,
        2000,
        3,
        class_sep=0.0,
        noise=0.7,
        generator=torch.Generator().manual_seed(0),
        dtype=torch.float64,
    )
    assert X.std().item() == pytest.approx(0.7, rel=0.05)


@pytest.mark.parametrize(
    "kwargs", [dict(class_sep=-1.0), dict(noise=-0.5), dict(dim=0), dict(num_classes=1)]
)
def test_gaussian_mixture_errors(kwargs):
    with pytest.raises(ValueError):
        gaussian_mixture(**(dict(num_classes=2, num_per_class=3, dim=4) | kwargs))


def test_one_hot():
    Y = one_hot(torch.tensor([1, 0, 1]), num_classes=4, dtype=torch.float64)
    assert Y.dtype == torch.float64
    assert Y.tolist() == [[0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]]
    assert one_hot(np.array([2, 0])).shape == (2, 3)
    for bad, match in [
        (torch.tensor([0, -1]), "negative"),
        (torch.tensor([[0]]), "1-D"),
        (torch.tensor([0.5]), "integer"),
    ]:
        with pytest.raises(ValueError, match=match):
            one_hot(bad)
    with pytest.raises(ValueError, match="out of range"):
        one_hot(torch.tensor([0, 3]), num_classes=3)


# ----------------------------------------------------------------------------------------
# load_dataset: IDX (MNIST, FashionMNIST)
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_values_shapes_and_order(tmp_path, name):
    write_default_idx(tmp_path / "d")
    X, y = load_dataset(name, root=tmp_path / "d")
    (mean,), (std,) = MEAN_STD[name]
    assert DATASETS[name].mean == (mean,) and DATASETS[name].std == (std,)
    assert X.shape == (12, 784) and X.dtype == torch.float32
    assert y.dtype == torch.int64 and y.tolist() == IDX_LABELS.tolist()
    raw = (20 * np.arange(12)) % 256
    expected = (raw / 255 - mean) / std
    torch.testing.assert_close(
        X, torch.tensor(expected, dtype=torch.float32)[:, None].expand(12, 784)
    )
    Xt, yt = load_dataset(name, split="test", root=tmp_path / "d", dtype=torch.float64)
    assert Xt.shape == (3, 784) and Xt.dtype == torch.float64 and yt.tolist() == [0, 1, 2]
    X01, _ = load_dataset(name, root=tmp_path / "d", normalize=False, device="cpu")
    assert X01.device.type == "cpu"
    torch.testing.assert_close(X01[:, 0], torch.tensor(raw / 255, dtype=torch.float32))


def test_idx_uncompressed_files_are_accepted(tmp_path):
    write_idx(tmp_path, _images(12), IDX_LABELS, compress=False)
    X, y = load_dataset("mnist", root=tmp_path)
    assert X.shape == (12, 784) and y.tolist() == IDX_LABELS.tolist()


def test_num_per_class_keeps_first_samples_in_file_order(tmp_path):
    write_default_idx(tmp_path)
    X, y = load_dataset("mnist", root=tmp_path)
    Xs, ys = load_dataset("mnist", root=tmp_path, num_per_class=2)
    # first two of each class: indices 0 (2), 1 (0), 2 (1), 3 (0), 4 (2), 5 (1)
    keep = [0, 1, 2, 3, 4, 5]
    assert ys.tolist() == IDX_LABELS[keep].tolist()
    assert torch.equal(Xs, X[keep])
    Xs, ys = load_dataset("mnist", root=tmp_path, num_per_class=4)
    assert torch.equal(Xs, X)
    with pytest.raises(ValueError, match="class 0 .* only 4"):
        load_dataset("mnist", root=tmp_path, num_per_class=5)


def test_search_order_root_then_pnc_data_then_system(tmp_path, monkeypatch):
    root = write_default_idx(tmp_path / "root", offset=1)
    env = write_default_idx(tmp_path / "env" / "fashion_mnist", offset=2)
    write_default_idx(tmp_path / "env", offset=3)  # $PNC_DATA itself: after the subfolder
    system = write_default_idx(tmp_path / "system", offset=4)
    monkeypatch.setenv("PNC_DATA", str(tmp_path / "env"))
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion_mnist", [str(system)])

    def first_pixel(**kw):
        X, _ = load_dataset("fashion_mnist", normalize=False, **kw)
        return round(X[0, 0].item() * 255)

    assert first_pixel(root=root) == 1
    assert first_pixel() == 2
    for f in env.iterdir():
        f.unlink()
    assert first_pixel() == 3
    monkeypatch.delenv("PNC_DATA")
    assert first_pixel() == 4
    assert first_pixel(root=tmp_path / "empty") == 4  # a root without files is skipped
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion_mnist", [])
    with pytest.raises(DatasetNotFoundError):
        first_pixel()


def test_root_subfolders_and_torchvision_layout(tmp_path):
    write_default_idx(tmp_path / "fashion_mnist", offset=5)
    write_default_idx(tmp_path / "MNIST" / "raw", offset=6)
    X, _ = load_dataset("fashion_mnist", root=tmp_path, normalize=False)
    assert round(X[0, 0].item() * 255) == 5
    X, _ = load_dataset("mnist", root=tmp_path, normalize=False)
    assert round(X[0, 0].item() * 255) == 6


def test_pnc_data_may_list_several_folders(tmp_path, monkeypatch):
    write_default_idx(tmp_path / "b" / "mnist", offset=7)
    monkeypatch.setenv("PNC_DATA", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]))
    X, _ = load_dataset("mnist", normalize=False)
    assert round(X[0, 0].item() * 255) == 7


def _corrupt(folder: Path, kind: str) -> Path:
    images = folder / "train-images-idx3-ubyte.gz"
    labels = folder / "train-labels-idx1-ubyte.gz"
    if kind == "truncated_gzip":
        payload = images.read_bytes()
        images.write_bytes(payload[: len(payload) // 2])
        return images
    if kind == "not_gzip":
        images.write_bytes(b"this is not gzip data at all")
        return images
    if kind == "bad_magic":
        labels.write_bytes(gzip.compress(_idx_bytes(IDX_LABELS, 2051)))
        return labels
    if kind == "short_payload":
        payload = _idx_bytes(_images(12), 2051)
        images.write_bytes(gzip.compress(payload[:-100]))
        return images
    if kind == "count_mismatch":
        labels.write_bytes(gzip.compress(_idx_bytes(IDX_LABELS[:5], 2049)))
        return labels
    if kind == "label_out_of_range":
        labels.write_bytes(gzip.compress(_idx_bytes(np.full(12, 10, np.uint8), 2049)))
        return labels
    if kind == "wrong_image_size":
        images.write_bytes(gzip.compress(_idx_bytes(_images(12, size=8), 2051)))
        return images
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "truncated_gzip",
        "not_gzip",
        "bad_magic",
        "short_payload",
        "count_mismatch",
        "label_out_of_range",
        "wrong_image_size",
    ],
)
def test_corrupt_idx_file_raises_value_error_naming_it(tmp_path, kind):
    write_default_idx(tmp_path)
    bad = _corrupt(tmp_path, kind)
    with pytest.raises(ValueError, match=bad.name) as info:
        load_dataset("mnist", root=tmp_path)
    assert not isinstance(info.value, DatasetNotFoundError)


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist", "cifar10"])
def test_missing_files_error_names_the_options(tmp_path, name):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(name, root=tmp_path)
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, FileNotFoundError)
    msg = str(err)
    for needle in ("root=", "PNC_DATA", "download=True", str(tmp_path)):
        assert needle in msg
    assert ("apt-get install dataset-fashion-mnist" in msg) == (name == "fashion_mnist")


def test_partial_files_are_not_enough(tmp_path):
    write_default_idx(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="train-labels-idx1-ubyte.gz"):
        load_dataset("mnist", root=tmp_path)
    assert load_dataset("mnist", split="test", root=tmp_path)[0].shape == (3, 784)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(name="imagenet"), "fashion_mnist"),
        (dict(split="validation"), "split"),
        (dict(split="all"), "split"),
        (dict(num_per_class=0), "num_per_class"),
        (dict(dtype=torch.int32), "dtype"),
        (dict(device="nonsense"), "device"),
        (dict(download="yes"), "download"),
        (dict(root=3), "root"),
    ],
)
def test_load_dataset_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_dataset(**(dict(name="mnist") | kwargs))


# ----------------------------------------------------------------------------------------
# load_dataset: CIFAR-10
# ----------------------------------------------------------------------------------------


def _check_cifar(X, y, split="train"):
    mean, std = MEAN_STD["cifar10"]
    assert DATASETS["cifar10"].mean == mean and DATASETS["cifar10"].std == std
    if split == "train":
        assert X.shape == (10, 3072)
        assert y.tolist() == sum(CIFAR_TRAIN_LABELS, [])
        red = np.array([10 * i + j for i in range(5) for j in range(2)])
    else:
        assert X.shape == (3, 3072) and y.tolist() == [2, 1, 0]
        red = 100 + np.arange(3)
    # CHW flattening: red plane, then green, then blue
    torch.testing.assert_close(
        X[:, 0], torch.tensor((red / 255 - mean[0]) / std[0], dtype=torch.float32)
    )
    assert torch.allclose(X[:, 1024:2048], torch.tensor(-mean[1] / std[1]))
    assert torch.allclose(X[:, 2048:], torch.tensor((1 - mean[2]) / std[2]))
    assert torch.equal(X[:, :1024], X[:, :1].expand(-1, 1024))


def test_cifar_batches_folder(tmp_path):
    write_cifar_dir(tmp_path / "cifar-10-batches-py")
    _check_cifar(*load_dataset("cifar10", root=tmp_path))
    _check_cifar(*load_dataset("cifar10", split="test", root=tmp_path), split="test")
    # the batch folder itself may be passed as root
    _check_cifar(*load_dataset("cifar10", root=tmp_path / "cifar-10-batches-py"))
    X, y = load_dataset("cifar10", root=tmp_path, num_per_class=1)
    assert y.tolist() == [0, 1, 2]


def test_cifar_archive_is_extracted_safely(tmp_path):
    folder = tmp_path / "data" / "cifar10"
    folder.mkdir(parents=True)
    (folder / "cifar-10-python.tar.gz").write_bytes(cifar_tar_bytes(extra_members=True))
    _check_cifar(*load_dataset("cifar10", root=tmp_path / "data"))
    extracted = folder / "cifar-10-batches-py"
    assert sorted(p.name for p in extracted.iterdir()) == sorted(cifar_files())
    assert not (tmp_path / "data" / "evil.txt").exists() and not (folder / "evil.txt").exists()
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no temp dirs
    _check_cifar(*load_dataset("cifar10", split="test", root=tmp_path / "data"), split="test")


def test_cifar_archive_read_directly_when_folder_not_writable(tmp_path, monkeypatch):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(cifar_tar_bytes())

    def read_only(*args, **kwargs):
        raise PermissionError("read-only folder")

    monkeypatch.setattr(data.tempfile, "mkdtemp", read_only)
    _check_cifar(*load_dataset("cifar10", root=tmp_path))
    assert not (tmp_path / "cifar-10-batches-py").exists()


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_corrupt_cifar_files(tmp_path, capsys):
    folder = write_cifar_dir(tmp_path / "cifar-10-batches-py")
    (folder / "data_batch_3").write_bytes(b"\x80\x02garbage")
    with pytest.raises(ValueError, match="data_batch_3"):
        load_dataset("cifar10", root=tmp_path)
    (folder / "data_batch_3").write_bytes(
        pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]})
    )
    with pytest.raises(ValueError, match="data_batch_3"):
        load_dataset("cifar10", root=tmp_path)
    # a pickle that would run code is refused, not executed
    (folder / "data_batch_3").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(ValueError, match="not allowed"):
        load_dataset("cifar10", root=tmp_path)
    assert "pwned" not in capsys.readouterr().out

    archive_dir = tmp_path / "tar"
    archive_dir.mkdir()
    (archive_dir / "cifar-10-python.tar.gz").write_bytes(cifar_tar_bytes()[:-200])
    with pytest.raises(ValueError, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10", root=archive_dir)
    assert [p.name for p in archive_dir.iterdir()] == ["cifar-10-python.tar.gz"]


# ----------------------------------------------------------------------------------------
# load_dataset: digits
# ----------------------------------------------------------------------------------------


def test_digits_splits_values_and_subsets():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    raw, labels = load_digits(return_X_y=True)
    X, y = load_dataset("digits", split="all", dtype=torch.float64)
    assert X.shape == (1797, 64) and y.tolist() == labels.tolist()
    info = DATASETS["digits"]
    np.testing.assert_allclose((X * info.std[0] + info.mean[0]).numpy(), raw / 16, atol=1e-12)
    assert abs(X.mean().item()) < 1e-3 and abs(X.std().item() - 1) < 1e-3
    Xtr, ytr = load_dataset("digits")
    Xte, yte = load_dataset("digits", split="test")
    assert (len(ytr), len(yte)) == (info.num_samples["train"], info.num_samples["test"])
    assert len(ytr) + len(yte) == 1797
    assert torch.bincount(yte).min() >= 34 and torch.bincount(ytr).min() >= 130
    parts = [load_dataset("digits", split=s, dtype=torch.float64)[0] for s in ("train", "test")]
    a, b = torch.cat(parts).numpy(), X.numpy()  # the same rows, in another order
    np.testing.assert_array_equal(a[np.lexsort(a.T)], b[np.lexsort(b.T)])
    Xs, ys = load_dataset("digits", num_per_class=3)
    assert Xs.shape == (30, 64) and torch.bincount(ys).tolist() == [3] * 10
    with pytest.raises(ValueError, match="num_per_class"):
        load_dataset("digits", split="test", num_per_class=100)


def test_digits_without_sklearn_gives_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="scikit-learn"):
        load_dataset("digits")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_cuda():
    X, y = load_dataset("digits", device="cuda")
    assert X.device.type == "cuda" and y.device.type == "cuda"


# ----------------------------------------------------------------------------------------
# downloads (served from memory: no network)
# ----------------------------------------------------------------------------------------


def _serve(files: dict[str, bytes], log: list[str] | None = None, fail_after=None):
    """A `_make_downloader` replacement: pooch downloaders that serve `files` from memory.

    With `fail_after`, the downloader writes that many bytes and then loses the connection.
    """

    def make(progressbar=False):
        def downloader(url, output_file, pooch=None):
            if log is not None:
                log.append(url)
            name = url.rsplit("/", 1)[-1]
            if name not in files:
                raise urllib.error.URLError(f"no such file {url}")
            payload = files[name]
            with open(output_file, "wb") as out:
                if fail_after is not None:
                    out.write(payload[:fail_after])
                    raise ConnectionResetError("connection lost")
                out.write(payload)

        return downloader

    return make


def _idx_payloads() -> dict[str, bytes]:
    return {
        "train-images-idx3-ubyte.gz": gzip.compress(_idx_bytes(_images(12), 2051)),
        "train-labels-idx1-ubyte.gz": gzip.compress(_idx_bytes(IDX_LABELS, 2049)),
        "t10k-images-idx3-ubyte.gz": gzip.compress(_idx_bytes(_images(3), 2051)),
        "t10k-labels-idx1-ubyte.gz": gzip.compress(_idx_bytes(np.arange(3, dtype=np.uint8), 2049)),
    }


def _with_hashes(monkeypatch, name, files):
    info = dataclasses.replace(
        DATASETS[name], hashes={k: ("sha256", _sha256(v)) for k, v in files.items()}
    )
    monkeypatch.setitem(DATASETS, name, info)


def test_download_writes_verified_files_and_loads(tmp_path, monkeypatch):
    files = _idx_payloads()
    _with_hashes(monkeypatch, "mnist", files)
    log: list[str] = []
    monkeypatch.setattr(data, "_make_downloader", _serve(files, log))
    X, y = load_dataset("mnist", root=tmp_path, download=True)
    assert X.shape == (12, 784) and y.tolist() == IDX_LABELS.tolist()
    target = tmp_path / "mnist"
    assert sorted(p.name for p in target.iterdir()) == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]
    assert all(u.startswith(DATASETS["mnist"].urls[0]) for u in log) and len(log) == 2
    monkeypatch.setattr(data, "_make_downloader", _no_network)  # now found on disk: no download
    assert torch.equal(load_dataset("mnist", root=tmp_path, download=True)[0], X)


def test_download_goes_to_pnc_data_then_cache(tmp_path, monkeypatch):
    files = _idx_payloads()
    _with_hashes(monkeypatch, "fashion_mnist", files)
    monkeypatch.setattr(data, "_make_downloader", _serve(files))
    monkeypatch.setenv("PNC_DATA", str(tmp_path / "env"))
    load_dataset("fashion_mnist", split="test", download=True)
    assert (tmp_path / "env" / "fashion_mnist" / "t10k-images-idx3-ubyte.gz").is_file()
    monkeypatch.delenv("PNC_DATA")
    load_dataset("fashion_mnist", split="test", download=True)
    cache = tmp_path / "xdg_cache" / "pncutils" / "fashion_mnist"
    assert (cache / "t10k-labels-idx1-ubyte.gz").is_file()
    monkeypatch.setattr(data, "_make_downloader", _no_network)
    assert load_dataset("fashion_mnist", split="test")[0].shape == (3, 784)  # found in cache


def test_download_falls_back_to_second_mirror(tmp_path, monkeypatch):
    files = _idx_payloads()
    _with_hashes(monkeypatch, "mnist", files)
    serve = _serve(files)

    def flaky(progressbar=False):
        def downloader(url, output_file, pooch=None):
            if url.startswith(DATASETS["mnist"].urls[0]):
                raise urllib.error.URLError("mirror down")
            return serve()(url, output_file, pooch)

        return downloader

    monkeypatch.setattr(data, "_make_downloader", flaky)
    assert load_dataset("mnist", root=tmp_path, download=True)[0].shape == (12, 784)


def test_download_checksum_mismatch_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_make_downloader", _serve(_idx_payloads()))  # real hashes: mismatch
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_dataset("mnist", root=tmp_path, download=True)
    assert list((tmp_path / "mnist").iterdir()) == []


def test_interrupted_download_leaves_no_file(tmp_path, monkeypatch):
    files = _idx_payloads()
    _with_hashes(monkeypatch, "mnist", files)
    monkeypatch.setattr(data, "_make_downloader", _serve(files, fail_after=10))
    with pytest.raises(OSError, match="could not download"):
        load_dataset("mnist", root=tmp_path, download=True)
    assert list((tmp_path / "mnist").iterdir()) == []


def test_fetch_is_atomic_on_keyboard_interrupt(tmp_path):
    def interrupted(url, output_file, pooch=None):
        with open(output_file, "wb") as out:
            out.write(b"a" * 1000)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        data._fetch("http://x/f", tmp_path / "f", _sha256(b"a" * 5000), "sha256",
                    downloader=interrupted)
    assert list(tmp_path.iterdir()) == []


def test_fetch_verifies_and_moves_atomically(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello" * 1000)
    dest_dir = tmp_path / "out"
    dest_dir.mkdir()
    sha = hashlib.sha256(src.read_bytes()).hexdigest()

    def copy(url, output_file, pooch=None):
        with open(output_file, "wb") as out:
            out.write(src.read_bytes())

    data._fetch("http://x/f.bin", dest_dir / "f.bin", sha, "sha256", downloader=copy)
    assert (dest_dir / "f.bin").read_bytes() == src.read_bytes()
    assert [p.name for p in dest_dir.iterdir()] == ["f.bin"]
    with pytest.raises(ValueError, match="checksum mismatch") as info:
        data._fetch("http://x/g.bin", dest_dir / "g.bin", "0" * 64, "sha256", downloader=copy)
    assert isinstance(info.value, data._ChecksumError)
    assert [p.name for p in dest_dir.iterdir()] == ["f.bin"]


def test_default_downloader_is_pooch_http_with_the_progress_rule(tmp_path, monkeypatch):
    import pooch

    made = REAL_MAKE_DOWNLOADER(True)
    assert isinstance(made, pooch.HTTPDownloader) and made.progressbar is True
    assert made.kwargs["timeout"] == 60
    seen: list[bool] = []
    serve = _serve({"f": b"x"})

    def record(progressbar):
        seen.append(progressbar)
        return serve(progressbar)

    monkeypatch.setattr(data, "_make_downloader", record)
    for i, (flag, expected) in enumerate((("1", True), ("0", False))):
        monkeypatch.setenv("PNC_PROGRESS", flag)
        data._fetch("http://x/f", tmp_path / f"f{i}", _sha256(b"x"))
        assert seen[-1] is expected and (tmp_path / f"f{i}").read_bytes() == b"x"


def test_download_cifar_archive(tmp_path, monkeypatch):
    files = {"cifar-10-python.tar.gz": cifar_tar_bytes()}
    _with_hashes(monkeypatch, "cifar10", files)
    monkeypatch.setattr(data, "_make_downloader", _serve(files))
    _check_cifar(*load_dataset("cifar10", root=tmp_path, download=True))
    assert (tmp_path / "cifar10" / "cifar-10-batches-py" / "data_batch_5").is_file()


def test_known_hashes_table():
    for name in ("fashion_mnist", "mnist", "cifar10"):
        info = DATASETS[name]
        needed = {info.archive} if info.archive else set(sum(info.files.values(), ()))
        assert set(info.hashes) == needed and info.urls
        for algo, digest in info.hashes.values():
            assert algo == "sha256" and len(digest) == 64 and int(digest, 16) >= 0
    # spot checks against the published SHA-256 of the canonical downloads
    assert DATASETS["cifar10"].hashes["cifar-10-python.tar.gz"][1].startswith("6d958be0")
    assert DATASETS["fashion_mnist"].hashes["train-images-idx3-ubyte.gz"][1].startswith(
        "3aede38d"
    )
    assert DATASETS["mnist"].hashes["train-images-idx3-ubyte.gz"][1].startswith("440fcabf")
    digests = [d for name in ("fashion_mnist", "mnist") for _, d in DATASETS[name].hashes.values()]
    assert len(set(digests)) == 8  # no copy-paste slip


# ----------------------------------------------------------------------------------------
# the real FashionMNIST of the Debian package
# ----------------------------------------------------------------------------------------


@pytest.mark.skipif(
    not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"{DEBIAN_FASHION} not installed (apt-get install dataset-fashion-mnist)",
)
def test_debian_fashion_mnist(monkeypatch):
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion_mnist", [str(DEBIAN_FASHION)])
    start = time.perf_counter()
    X, y = load_dataset("fashion_mnist")
    elapsed = time.perf_counter() - start
    assert X.shape == (60000, 784) and X.dtype == torch.float32
    assert torch.bincount(y).tolist() == [6000] * 10
    assert torch.isfinite(X).all()
    assert abs(X.mean().item()) < 0.01 and abs(X.std().item() - 1) < 0.01
    assert elapsed < 5, f"loading took {elapsed:.1f} s"
    Xt, yt = load_dataset("fashion_mnist", split="test")
    assert Xt.shape == (10000, 784) and torch.bincount(yt).tolist() == [1000] * 10
    Xs, ys = load_dataset("fashion_mnist", num_per_class=100)
    assert Xs.shape == (1000, 784) and torch.bincount(ys).tolist() == [100] * 10
    for k in range(10):  # the kept samples of class k are its first 100 in file order
        assert torch.equal(Xs[ys == k], X[y == k][:100])


def test_download_default_is_on_unless_pnc_download_forbids_it(tmp_path, monkeypatch):
    files = _idx_payloads()
    _with_hashes(monkeypatch, "mnist", files)
    monkeypatch.delenv("PNC_DOWNLOAD", raising=False)
    monkeypatch.setattr(data, "_make_downloader", _serve(files))
    # default: a laptop with internet gets the files on first use, Colab too
    assert load_dataset("mnist", root=tmp_path / "a")[0].shape == (12, 784)
    for off in ("0", "false", "no", "OFF"):
        monkeypatch.setenv("PNC_DOWNLOAD", off)
        with pytest.raises(DatasetNotFoundError, match="PNC_DOWNLOAD") as info:
            load_dataset("mnist", root=tmp_path / "b")
        assert "download=True" in str(info.value)
        assert not (tmp_path / "b").exists()
    assert load_dataset("mnist", root=tmp_path / "b", download=True)[0].shape == (12, 784)
    monkeypatch.setenv("PNC_DOWNLOAD", "1")
    assert load_dataset("mnist", root=tmp_path / "c")[0].shape == (12, 784)
    monkeypatch.delenv("PNC_DOWNLOAD")
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert load_dataset("mnist", root=tmp_path / "d")[0].shape == (12, 784)  # as in Colab
    with pytest.raises(DatasetNotFoundError):  # download=False wins, even in Colab
        load_dataset("mnist", root=tmp_path / "e", download=False)
    with pytest.raises(ValueError, match="download must be True, False or None"):
        load_dataset("mnist", root=tmp_path, download="yes")
