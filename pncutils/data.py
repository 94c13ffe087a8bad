"""Synthetic data of the paper and offline-first loaders of real datasets.

Conventions: samples are rows. Every function returns ``(X, y)`` with ``X`` a float
tensor of shape ``(N, d)`` and ``y`` an int64 tensor of shape ``(N,)`` holding labels in
``[0, K)``. The paper stacks samples as columns (``X`` is ``d × N`` there), so its
``X^T X`` is our ``X @ X.T``.

Synthetic data (no files, no network):

- :func:`orthogonal_dataset`: the paper's nearly orthogonal data (Assumption 1), a port of
  the reference code's ``assumption/dataset.py::orthogonal_dataset``;
- :func:`gaussian_mixture`: a Gaussian mixture for the nonlinear toy chapters.

Real data (:func:`load_dataset`): FashionMNIST, MNIST, CIFAR-10 and scikit-learn's
bundled digits. The loader reads the standard files itself (no torchvision), looks for
them on disk first and downloads them (checksummed, with pooch) only when they are missing
and downloads are allowed (:func:`downloads_allowed`; never in the test suite).
:data:`DATASETS` describes every dataset: sizes, files, mirrors and checksums.

See Also
--------
book/notation.md : symbols and shapes.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pncutils._catalog import (
    _CIFAR_FOLDER,
    DATASETS,
    SYSTEM_DIRS,
    DatasetInfo,
    cache_base,
    find,
    locate,
)
from pncutils._catalog import pnc_data_dirs as _pnc_data_dirs
from pncutils._checks import (
    as_tensor,
    check_choice,
    check_device,
    check_float,
    check_int,
    check_labels,
)

__all__ = [
    "DATASETS",
    "SYSTEM_DIRS",
    "DatasetInfo",
    "DatasetNotFoundError",
    "orthogonal_dataset",
    "gaussian_mixture",
    "one_hot",
    "load_dataset",
    "downloads_allowed",
]


# ----------------------------------------------------------------------------------------
# Synthetic data
# ----------------------------------------------------------------------------------------


def _check_generator(generator: Any) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU torch.Generator, got one on {generator.device}")
    return generator


def _check_dtype(dtype: Any) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            f"dtype must be a floating torch.dtype (e.g. torch.float32), got {dtype!r}"
        )
    return dtype


def _block_labels(num_classes: int, num_per_class: int) -> Tensor:
    """Class-blocked labels: ``num_per_class`` zeros, then ones, ... (shape ``(K n,)``)."""
    return torch.arange(num_classes, dtype=torch.int64).repeat_interleave(num_per_class)


def orthogonal_dataset(
    num_classes: int,
    num_per_class: int,
    dim: int,
    perturbation: float = 1.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Nearly orthogonal data with class-blocked labels (the paper's synthetic data).

    A port of the reference code's ``orthogonal_dataset``. With ``N = K n`` samples:

    1. if ``dim >= N``, draw ``A ~ N(0, 1)^{d×d}``, take ``Q`` from ``A = QR`` and use the
       first ``N`` columns of ``Q`` as the samples (rows of ``X``): orthonormal rows;
    2. if ``dim < N``, the rows cannot be orthogonal. As the reference code does, QR-factorise
       an ``N × d`` Gaussian and take the rows of its ``Q`` factor: the *columns* of ``X``
       are then orthonormal, the rows are not (``X X^T`` is a rank-``d`` projection, not
       ``I_N``), so the paper's Assumption 1 fails;
    3. add ``Δ ~ N(0, 1)^{N×d}`` rescaled to ``‖Δ‖_F = perturbation``.

    For ``K=3, n=10, d=50, perturbation=1`` (the paper's sizes) ``max_i |‖x_i‖² − 1|`` is
    about 0.16 and ``max_{i≠j} |<x_i, x_j>|`` about 0.125 (book §1.1).

    Parameters
    ----------
    num_classes : int
        K >= 2.
    num_per_class : int
        n >= 1 samples per class.
    dim : int
        Input dimension d >= 1; the data are nearly orthogonal only when ``d >= K n``.
    perturbation : float, default 1.0
        Frobenius norm of the perturbation ``Δ``; 0 gives exactly orthonormal rows.
    generator : torch.Generator, optional
        CPU generator for all random draws (``Q`` first, then ``Δ``; ``Δ`` is drawn even
        when ``perturbation=0``, so the same seed gives the same ``Q`` for every
        perturbation). ``None`` uses torch's global generator.
    dtype : torch.dtype, default torch.float32
        Output dtype; the computation is done in float64.

    Returns
    -------
    X : Tensor, shape (N, dim)
        One sample per row, ``N = num_classes * num_per_class``.
    y : Tensor, shape (N,)
        int64 labels in class blocks: the first ``n`` rows are class 0, and so on.

    References
    ----------
    Wang et al. (2023), arXiv:2311.02960, Assumption 1; reference code
    ``assumption/dataset.py``.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> X, y = orthogonal_dataset(3, 2, 10, perturbation=0.0, generator=g, dtype=torch.float64)
    >>> X.shape, y.tolist()
    (torch.Size([6, 10]), [0, 0, 1, 1, 2, 2])
    >>> torch.allclose(X @ X.T, torch.eye(6, dtype=torch.float64))
    True

    Used in: ch01, ch02, ch03.
    """
    num_classes = check_int(num_classes, "num_classes", minimum=2)
    num_per_class = check_int(num_per_class, "num_per_class", minimum=1)
    dim = check_int(dim, "dim", minimum=1)
    perturbation = check_float(perturbation, "perturbation", minimum=0.0)
    generator = _check_generator(generator)
    dtype = _check_dtype(dtype)

    n_samples = num_classes * num_per_class
    if dim >= n_samples:
        A = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
        Q, _ = torch.linalg.qr(A)
        X = Q[:, :n_samples].T.contiguous()  # (N, d), orthonormal rows
    else:
        A = torch.randn(n_samples, dim, generator=generator, dtype=torch.float64)
        X, _ = torch.linalg.qr(A)  # (N, d), orthonormal columns only
    delta = torch.randn(n_samples, dim, generator=generator, dtype=torch.float64)
    X = X + delta * (perturbation / torch.linalg.matrix_norm(delta))
    return X.to(dtype), _block_labels(num_classes, num_per_class)


def gaussian_mixture(
    num_classes: int,
    num_per_class: int,
    dim: int,
    class_sep: float = 2.0,
    noise: float = 0.5,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Isotropic Gaussian mixture with random class means and class-blocked labels.

    The class means are ``μ_k = class_sep · g_k / sqrt(d)`` with ``g_k ~ N(0, I_d)``, so
    ``‖μ_k‖ ≈ class_sep`` and ``‖μ_k − μ_j‖ ≈ sqrt(2) · class_sep``. Each sample is
    ``x = μ_{y} + noise · ε`` with ``ε ~ N(0, I_d)``. With the defaults the distance between
    two means is about 5.7 noise standard deviations (nearly separable classes), and
    ``tr Σ_W / tr Σ_B ≈ d · noise² / class_sep² = d / 16``.

    Parameters
    ----------
    num_classes : int
        K >= 2.
    num_per_class : int
        n >= 1 samples per class.
    dim : int
        d >= 1.
    class_sep : float, default 2.0
        Typical norm of a class mean (>= 0).
    noise : float, default 0.5
        Standard deviation of the isotropic noise in each coordinate (>= 0; 0 puts
        every sample on its class mean).
    generator : torch.Generator, optional
        CPU generator for all draws (the means first, then the noise).
    dtype : torch.dtype, default torch.float32
        Output dtype; the computation is done in float64.

    Returns
    -------
    X : Tensor, shape (K n, dim)
    y : Tensor, shape (K n,)
        int64 labels in class blocks.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> X, y = gaussian_mixture(2, 3, 4, noise=0.0, generator=g)
    >>> X.shape, y.tolist()
    (torch.Size([6, 4]), [0, 0, 0, 1, 1, 1])
    >>> bool((X[0] == X[2]).all())
    True

    Used in: ch01, ch02.
    """
    num_classes = check_int(num_classes, "num_classes", minimum=2)
    num_per_class = check_int(num_per_class, "num_per_class", minimum=1)
    dim = check_int(dim, "dim", minimum=1)
    class_sep = check_float(class_sep, "class_sep", minimum=0.0)
    noise = check_float(noise, "noise", minimum=0.0)
    generator = _check_generator(generator)
    dtype = _check_dtype(dtype)

    means = torch.randn(num_classes, dim, generator=generator, dtype=torch.float64)
    means = means * (class_sep / math.sqrt(dim))  # (K, d)
    y = _block_labels(num_classes, num_per_class)
    eps = torch.randn(y.shape[0], dim, generator=generator, dtype=torch.float64)
    X = means[y] + noise * eps
    return X.to(dtype), y


def one_hot(y: Any, num_classes: int | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """One-hot encoding of integer labels.

    Parameters
    ----------
    y : Tensor, shape (N,)
        Integer labels in ``[0, K)`` (a numpy array or list is converted).
    num_classes : int, optional
        K; ``y.max() + 1`` when omitted. Classes need not all be present.
    dtype : torch.dtype, default torch.float32
        Output dtype (the paper's targets are float).

    Returns
    -------
    Tensor, shape (N, K)
        ``Y[i, k] = 1`` if ``y[i] == k`` else 0, on the device of `y` when it is a tensor.

    Examples
    --------
    >>> one_hot(torch.tensor([0, 2, 1]))
    tensor([[1., 0., 0.],
            [0., 0., 1.],
            [0., 1., 0.]])

    Used in: ch02.
    """
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"dtype must be a torch.dtype, got {dtype!r}")
    y = as_tensor(y, "y")
    if y.ndim == 1 and y.numel() == 0 and num_classes is None:
        raise ValueError("num_classes must be given when y is empty")
    y, num_classes = check_labels(y, y.shape[0] if y.ndim else 0, num_classes,
                                  require_all=False, rows="y")
    return torch.nn.functional.one_hot(y, num_classes).to(dtype)


_SPLITS_OF_DIGITS = ("train", "test", "all")


class DatasetNotFoundError(FileNotFoundError, ValueError):
    """The files of a dataset were not found (and ``download=False``).

    A subclass of both :class:`FileNotFoundError` and :class:`ValueError`, so either
    ``except`` clause catches it. The message lists the folders searched and the ways to
    get the data.
    """


class _ChecksumError(ValueError):
    """A downloaded file does not match its expected digest."""



_OFF = ("0", "false", "no", "off")


def downloads_allowed() -> bool:
    """Whether :func:`load_dataset` may download missing files by default (``download=None``).

    Yes, unless ``$PNC_DOWNLOAD`` is ``0``, ``false``, ``no`` or ``off``: the test suite and
    ``make test`` set it to 0 so that nothing downloads at test time. A reader on a laptop
    with internet, in plain Jupyter or in Colab, gets the files on first use.

    Used in: ch05, ch07, ch08 (through :func:`load_dataset`).

    Examples
    --------
    >>> import os; old = os.environ.get("PNC_DOWNLOAD")
    >>> os.environ["PNC_DOWNLOAD"] = "0"; downloads_allowed()
    False
    >>> os.environ["PNC_DOWNLOAD"] = "1"; downloads_allowed()
    True
    >>> _ = os.environ.pop("PNC_DOWNLOAD") if old is None else os.environ.update(PNC_DOWNLOAD=old)
    """
    return os.environ.get("PNC_DOWNLOAD", "").strip().lower() not in _OFF


def _not_found(info: DatasetInfo, split: str, searched: list[Path]) -> DatasetNotFoundError:
    wanted = ", ".join(info.files[split])
    if info.archive:
        wanted = f"{info.archive}, or {wanted} (in {_CIFAR_FOLDER}/ or directly)"
    lines = [f"{info.title} ({info.name!r}, split {split!r}) was not found."]
    lines.append(f"Looked for {wanted} in:")
    lines += [f"  - {d}" + ("" if d.is_dir() else " (does not exist)") for d in searched]
    lines.append("Ways to get the data:")
    lines.append(
        f"  - pass root='/folder/with/the/files' (or a folder with a '{info.name}' subfolder);"
    )
    lines.append(
        f"  - set the environment variable PNC_DATA to such a folder (searched as "
        f"$PNC_DATA/{info.name} and $PNC_DATA itself);"
    )
    if info.name == "fashion_mnist":
        lines.append(
            "  - on Debian/Ubuntu: apt-get install dataset-fashion-mnist "
            "(installs /usr/share/datasets/fashion-mnist/);"
        )
    lines.append(
        f"  - when online: pass download=True (fetches from {info.urls[0]})"
        + (
            f"; downloads are off by default here because PNC_DOWNLOAD="
            f"{os.environ.get('PNC_DOWNLOAD', '')!r}."
            if not downloads_allowed()
            else "."
        )
    )
    return DatasetNotFoundError("\n".join(lines))


# ----------------------------------------------------------------------------------------
# Downloads
# ----------------------------------------------------------------------------------------

def _make_downloader(progressbar: bool) -> Callable[..., Any]:
    """The pooch downloader of :func:`_fetch`: HTTP(S) with ``requests``, 60 s time-out.

    Tests replace this function to serve local bytes (a callable
    ``downloader(url, output_file, pooch)`` that writes the file).
    """
    import pooch

    return pooch.HTTPDownloader(progressbar=progressbar, timeout=60)


def _fetch(
    url: str,
    dest: str | os.PathLike[str],
    expected_hash: str,
    algo: str = "sha256",
    downloader: Callable[..., Any] | None = None,
    progressbar: bool | None = None,
) -> Path:
    """Download `url` to `dest` with pooch, atomically, verifying its digest.

    pooch streams the bytes into a temporary file in `dest`'s folder, checks its digest
    against ``"{algo}:{expected_hash}"`` and only then moves it to `dest`; on any failure
    (network error, checksum mismatch, interruption, even ``KeyboardInterrupt``) the
    temporary file is removed and `dest` is not created. A checksum mismatch raises
    :class:`_ChecksumError` (a ValueError); network errors raise OSError (``requests``'
    exceptions are OSErrors). `downloader` defaults to :func:`_make_downloader`, with a
    progress bar when :func:`pncutils.utils.progress_enabled` (or `progressbar`) says so.
    """
    import pooch

    dest = Path(dest)
    if downloader is None:
        if progressbar is None:
            from pncutils.utils import progress_enabled

            progressbar = progress_enabled()
        downloader = _make_downloader(progressbar)
    try:
        pooch.retrieve(url, known_hash=f"{algo}:{expected_hash}", fname=dest.name,
                       path=dest.parent, downloader=downloader)
    except ValueError as err:
        if "hash" not in str(err):
            raise
        raise _ChecksumError(
            f"checksum mismatch for {url}: expected {algo} {expected_hash} ({err}); "
            "the download was discarded"
        ) from err
    return dest


def _download(info: DatasetInfo, split: str, folder: Path) -> None:
    """Fetch the files `split` needs into `folder`, trying every mirror in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    names = (info.archive,) if info.archive else info.files[split]
    for name in names:
        if (folder / name).is_file():
            continue
        algo, digest = info.hashes[name]
        errors: list[BaseException] = []
        for base in info.urls:
            try:
                _fetch(base + name, folder / name, digest, algo)
                break
            except (OSError, ValueError) as err:
                errors.append(err)
        else:
            detail = "; ".join(f"{type(e).__name__}: {e}" for e in errors)
            message = f"could not download {name} for {info.title} from {info.urls}: {detail}"
            if any(isinstance(e, _ChecksumError) for e in errors):
                raise ValueError(message) from errors[-1]
            raise OSError(message) from errors[-1]


# ----------------------------------------------------------------------------------------
# File formats
# ----------------------------------------------------------------------------------------

_IDX_MAGIC = {"images": 2051, "labels": 2049}  # 0x00000803 (ubyte, 3 dims), 0x00000801


def _read_idx(path: Path, kind: str) -> np.ndarray:
    """Parse an IDX file (gzip or raw) of unsigned bytes; raise a ValueError naming `path`."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(
            f"{path}: corrupt or truncated gzip file ({err}); delete it and get it again"
        ) from err
    expected = _IDX_MAGIC[kind]
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != expected:
        raise ValueError(
            f"{path}: not an IDX {kind} file (magic number {magic}, expected {expected}); "
            "the file is corrupt or of another kind"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = math.prod(dims)
    if len(raw) != header + size:
        raise ValueError(
            f"{path}: corrupt or truncated IDX file: its header announces shape {dims} "
            f"({header + size} bytes) but it holds {len(raw)} bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8, count=size, offset=header).reshape(dims)


def _load_idx(info: DatasetInfo, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = paths
    images = _read_idx(images_path, "images")
    labels = _read_idx(labels_path, "labels")
    if images.shape[1:] != info.shape[1:]:
        raise ValueError(
            f"{images_path}: images of shape {images.shape[1:]}, expected {info.shape[1:]} "
            f"for {info.title}"
        )
    if labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{labels_path} holds {labels.shape[0]} labels but {images_path} holds "
            f"{images.shape[0]} images"
        )
    _check_file_labels(labels, info, labels_path)
    return images.reshape(images.shape[0], -1), labels.astype(np.int64)


def _check_file_labels(labels: np.ndarray, info: DatasetInfo, path: Any) -> None:
    if labels.size and int(labels.max()) >= info.num_classes:
        raise ValueError(
            f"{path}: label {int(labels.max())} out of range for {info.title} "
            f"({info.num_classes} classes); the file is corrupt"
        )


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler that only builds the numpy arrays a CIFAR-10 batch holds (no code runs)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes pickled by Python 3 with protocol 2
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module.removeprefix("numpy.core.")
        return super().find_class(module, name)


def _parse_batch(stream: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch (a pickled dict); raise a ValueError naming `where`."""
    try:
        batch = _BatchUnpickler(stream, encoding="bytes").load()
    except Exception as err:  # any unpickling failure means a bad file
        raise ValueError(f"{where}: not a readable CIFAR-10 python batch ({err})") from err
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{where}: not a CIFAR-10 batch (a dict with b'data' and b'labels')")
    data = batch[b"data"]
    labels = np.asarray(batch[b"labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise ValueError(f"{where}: b'data' must be a uint8 array of shape (n, 3072)")
    if data.shape[1] != 3072 or labels.shape != (data.shape[0],):
        raise ValueError(
            f"{where}: corrupt batch: data of shape {data.shape} and {labels.shape} labels, "
            "expected (n, 3072) and n"
        )
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise ValueError(f"{where}: labels must be non-negative integers")
    return data, labels.astype(np.int64)


def _archive_batches(archive: Path, sink: Callable[[str, Any], None]) -> None:
    """Call ``sink(name, fileobj)`` for each regular file ``cifar-10-batches-py/<name>``.

    Other members (links, directories, paths elsewhere or with ``..``) are skipped, so
    nothing is ever written outside the chosen folder.
    """
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if member.isfile() and len(parts) == 2 and parts[0] == _CIFAR_FOLDER:
                    if parts[1] not in (".", "..") and "\\" not in parts[1]:
                        with tar.extractfile(member) as src:  # type: ignore[union-attr]
                            sink(parts[1], src)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ValueError(
            f"{archive}: corrupt or truncated archive ({err}); delete it and get it again"
        ) from err


def _extract_cifar(archive: Path, names: tuple[str, ...]) -> Path | None:
    """Extract the archive's batches next to it; ``None`` if the folder is not writable."""
    parent = archive.parent
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{_CIFAR_FOLDER}.", dir=parent))
    except OSError:
        return None
    try:

        def write(name: str, src: Any) -> None:
            with open(tmp / name, "wb") as dst:
                shutil.copyfileobj(src, dst)

        _archive_batches(archive, write)
        missing = [n for n in names if not (tmp / n).is_file()]
        if missing:
            raise ValueError(f"{archive}: the archive lacks {_CIFAR_FOLDER}/{missing[0]}")
        try:
            os.replace(tmp, parent / _CIFAR_FOLDER)
        except OSError:  # e.g. a partial folder of that name already exists
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        return parent / _CIFAR_FOLDER
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _load_cifar(
    info: DatasetInfo, split: str, kind: str, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    names = info.files[split]
    batches: list[tuple[np.ndarray, np.ndarray]] = []
    if kind == "tar":
        folder = _extract_cifar(path, names)
        if folder is None:  # read-only folder: read the batches from the archive itself
            found: dict[str, tuple[np.ndarray, np.ndarray]] = {}

            def keep(name: str, src: Any) -> None:
                if name in names:
                    found[name] = _parse_batch(src, f"{path}:{_CIFAR_FOLDER}/{name}")

            _archive_batches(path, keep)
            missing = [n for n in names if n not in found]
            if missing:
                raise ValueError(f"{path}: the archive lacks {_CIFAR_FOLDER}/{missing[0]}")
            batches = [found[n] for n in names]
        else:
            kind, path = "dir", folder
    if kind == "dir":
        for name in names:
            with open(path / name, "rb") as f:
                batches.append(_parse_batch(f, str(path / name)))
    data = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    _check_file_labels(labels, info, path)
    return data, labels


def _load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError(
            "load_dataset('digits') needs scikit-learn: pip install scikit-learn "
            "(or pip install 'pncutils[digits]')"
        ) from err
    images, labels = load_digits(return_X_y=True)
    labels = labels.astype(np.int64)
    if split != "all":
        is_test = _rank_within_class(labels) % 5 == 4  # every 5th sample of each class
        keep = is_test if split == "test" else ~is_test
        images, labels = images[keep], labels[keep]
    return images.astype(np.uint8), labels  # values 0..16


# ----------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------


def _rank_within_class(labels: np.ndarray) -> np.ndarray:
    """Position of each sample among the samples of its class, in file order."""
    counts = np.bincount(labels)
    starts = np.cumsum(counts) - counts
    order = np.argsort(labels, kind="stable")
    rank = np.empty(labels.shape[0], dtype=np.int64)
    rank[order] = np.arange(labels.shape[0]) - np.repeat(starts, counts)
    return rank


def _first_per_class(labels: np.ndarray, num_per_class: int, title: str) -> np.ndarray:
    """Return the indices (in file order) of the first `num_per_class` samples per class."""
    counts = np.bincount(labels)
    short = np.flatnonzero(counts < num_per_class)
    if short.size:
        k = int(short[0])
        raise ValueError(
            f"num_per_class={num_per_class} but class {k} of {title} has only "
            f"{int(counts[k])} samples in this split"
        )
    return np.flatnonzero(_rank_within_class(labels) < num_per_class)


def load_dataset(
    name: str,
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    num_per_class: int | None = None,
    download: bool | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    normalize: bool = True,
) -> tuple[Tensor, Tensor]:
    """Load a real dataset as flattened, standardised tensors, offline first.

    **Where the files are searched**, in order; the first folder holding every file the
    split needs wins:

    1. ``root`` (when given): ``root/<name>``, then ``root/<torchvision folder>``
       (``FashionMNIST/raw``, ``MNIST/raw``), then ``root`` itself;
    2. ``$PNC_DATA`` (several folders may be joined with ``os.pathsep``): the same three
       places under each;
    3. system folders, :data:`SYSTEM_DIRS` (FashionMNIST: ``/usr/share/datasets/fashion-mnist``,
       installed by ``apt-get install dataset-fashion-mnist``);
    4. the download cache ``$XDG_CACHE_HOME/pncutils/<name>`` (default
       ``~/.cache/pncutils/<name>``).

    MNIST and FashionMNIST use the same file names: keep them in per-dataset subfolders.

    **Files.** MNIST/FashionMNIST: the IDX files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``
    (or the same names without ``.gz``). CIFAR-10: the pickle batches ``data_batch_1..5`` and
    ``test_batch`` in ``cifar-10-batches-py/`` (or directly in the folder), or the archive
    ``cifar-10-python.tar.gz``, whose batches are extracted next to it on first use (only
    regular files of ``cifar-10-batches-py/``; read from the archive directly when the folder
    is read-only). The batches are unpickled with an unpickler that only builds numpy arrays.
    Digits: scikit-learn's bundled ``load_digits`` (no files).

    **Downloads.** Only when the files are not found, and only with ``download=True`` or
    with ``download=None`` (the default) unless :func:`downloads_allowed` says no (the
    environment variable ``PNC_DOWNLOAD=0``, which the test suite sets): the canonical files
    are fetched with pooch (FashionMNIST from Zalando's S3 bucket, MNIST from the
    ossci-datasets S3 mirror, CIFAR-10 from cs.toronto.edu, with a second mirror where one
    exists; a progress bar where :func:`pncutils.utils.progress_enabled`) into
    ``<base>/<name>``, where ``<base>`` is ``root``, else the first ``$PNC_DATA`` folder,
    else the cache of step 4. Each file is checked against the SHA-256 digest of the
    canonical file (:data:`DATASETS` ``.hashes``) and written atomically (pooch streams it
    into a temporary file and moves it only once the digest matches): a failed or
    interrupted download leaves no file.

    Parameters
    ----------
    name : {"fashion_mnist", "mnist", "cifar10", "digits"}
    split : {"train", "test"} or "all" (digits only), default "train"
        Digits ships as one set of 1797 samples; here every 5th sample of each class (in
        file order) forms ``"test"`` (355 samples), the rest ``"train"`` (1442), and
        ``"all"`` gives all 1797 in file order. The split is fixed and deterministic.
    root : path, optional
        Folder searched first (and the download folder).
    num_per_class : int, optional
        Keep only the first ``num_per_class`` samples of each class in file order (as the
        paper's ``Cifar10Partial`` does). The kept samples stay in file order (not sorted
        by class). ValueError if a class has fewer samples.
    download : bool, optional
        Allow fetching the files from the internet when they are not found; None (default):
        allowed unless ``$PNC_DOWNLOAD`` is ``0``/``false`` (:func:`downloads_allowed`).
    device : str or torch.device, optional
        Device of the returned tensors (default CPU).
    dtype : torch.dtype, default torch.float32
        Floating dtype of ``X``.
    normalize : bool, default True
        Standardise the pixels per channel; ``False`` returns them scaled to ``[0, 1]``.

    Returns
    -------
    X : Tensor, shape (N, C·H·W)
        Flattened in CHW order (CIFAR-10: 3072 = red plane, green plane, blue plane, as
        the reference code's ``img.flatten()``), with pixels divided by their maximum
        (255; digits: 16) and standardised per channel, ``(x - mean_c) / std_c``, with the
        constants of :data:`DATASETS`: FashionMNIST 0.2860/0.3530, MNIST 0.1307/0.3081,
        CIFAR-10 mean (0.4914, 0.4822, 0.4465) and std (0.2023, 0.1994, 0.2010) (the
        reference code's), digits 0.3053/0.3760 (its global mean and std after /16).
    y : Tensor, shape (N,)
        int64 labels, in file order.

    Raises
    ------
    ValueError
        Unknown `name` or `split`, bad arguments, a corrupt or truncated file (the message
        names the file), a class with fewer than `num_per_class` samples, or a download
        whose checksum does not match.
    DatasetNotFoundError
        The files were not found and ``download=False``; it is a ValueError and a
        FileNotFoundError, and its message lists the folders searched and the ways to get
        the data (``root=``, ``$PNC_DATA``, the Debian package, ``download=True``).
    OSError
        A download failed (network error) on every mirror.

    Examples
    --------
    >>> X, y = load_dataset("digits", split="all")
    >>> X.shape, X.dtype, y.shape
    (torch.Size([1797, 64]), torch.float32, torch.Size([1797]))
    >>> X, y = load_dataset("digits", num_per_class=5)
    >>> X.shape, torch.bincount(y).tolist()
    (torch.Size([50, 64]), [5, 5, 5, 5, 5, 5, 5, 5, 5, 5])

    Used in: ch05, ch06, ch07.
    """
    name = check_choice(name, "name", tuple(DATASETS))
    info = DATASETS[name]
    split = check_choice(split, "split", info.splits)
    if num_per_class is not None:
        num_per_class = check_int(num_per_class, "num_per_class", minimum=1)
    if download is None:
        download = downloads_allowed()
    if not isinstance(download, bool):
        raise ValueError(f"download must be True, False or None, got {download!r}")
    if not isinstance(normalize, bool):
        raise ValueError(f"normalize must be True or False, got {normalize!r}")
    dtype = _check_dtype(dtype)
    device = check_device("cpu" if device is None else device)
    if root is not None:
        if not isinstance(root, str | os.PathLike):
            raise ValueError(f"root must be a path, got {type(root).__name__}")
        root = Path(root).expanduser()

    if name == "digits":
        pixels, labels = _load_digits(split)
    else:
        pixels, labels = _read_files(info, split, root, download)

    if num_per_class is not None:
        keep = _first_per_class(labels, num_per_class, info.title)
        pixels, labels = pixels[keep], labels[keep]
    return _to_tensors(pixels, labels, info, device, dtype, normalize)


def _read_files(
    info: DatasetInfo, split: str, root: Path | None, download: bool
) -> tuple[np.ndarray, np.ndarray]:
    found, searched = find(info, split, root)
    if found is None:
        if not download:
            raise _not_found(info, split, searched)
        pnc_data = _pnc_data_dirs()
        base = root if root is not None else (pnc_data[0] if pnc_data else cache_base())
        target = base / info.name
        _download(info, split, target)
        found = locate(info, split, target)
        if found is None:  # cannot happen unless the folder changed under us
            raise _not_found(info, split, [target])
    kind, where = found
    if kind == "idx":
        return _load_idx(info, where)
    return _load_cifar(info, split, kind, where)


def _to_tensors(
    pixels: np.ndarray,
    labels: np.ndarray,
    info: DatasetInfo,
    device: torch.device,
    dtype: torch.dtype,
    normalize: bool,
) -> tuple[Tensor, Tensor]:
    """uint8 pixels ``(N, C·H·W)`` -> standardised ``X`` on `device`; labels -> int64."""
    if not pixels.flags.writeable:  # np.frombuffer of bytes: torch wants a writable array
        pixels = pixels.copy()
    n, channels = pixels.shape[0], info.shape[0]
    X = torch.from_numpy(np.ascontiguousarray(pixels)).to(device).to(dtype)
    X = X.view(n, channels, -1)  # (N, C, H·W)
    X.mul_(1.0 / info.max_value)
    if normalize:
        mean = torch.tensor(info.mean, dtype=dtype, device=device).view(1, channels, 1)
        std = torch.tensor(info.std, dtype=dtype, device=device).view(1, channels, 1)
        X.sub_(mean).div_(std)
    y = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64)).to(device)
    return X.view(n, -1), y
