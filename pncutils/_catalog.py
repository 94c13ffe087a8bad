"""The real datasets :func:`pncutils.data.load_dataset` knows, and where their files are.

Standard library only, on purpose: ``tools/ensure_system.py`` loads this file by path
(before any package is installed) to decide whether ``make test``/``make book`` must
download FashionMNIST or install it from Debian, with the same table, folders and search
order as the loader itself. Nothing here reads or downloads a file.

Used in: ch05, ch07, ch08 (through :func:`pncutils.data.load_dataset`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DATASETS", "SYSTEM_DIRS", "DatasetInfo", "cache_base", "pnc_data_dirs", "candidate_dirs",
    "locate", "find",
]


# ----------------------------------------------------------------------------------------
# Real datasets: the table
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    """Description of one real dataset (an entry of :data:`DATASETS`).

    Attributes
    ----------
    name : str
        Key in :data:`DATASETS`, also the subfolder searched under ``root``/``$PNC_DATA``.
    title : str
        Human-readable name.
    num_classes : int
        K; file labels must lie in ``[0, K)``.
    shape : tuple of int
        ``(C, H, W)`` of one image; a sample is flattened CHW to ``C·H·W`` features.
    num_samples : dict
        Samples per split in the canonical files (informative: smaller files are accepted).
    files : dict
        Split -> file names needed (IDX: ``(images, labels)``; CIFAR-10: pickle batches).
    subfolders : tuple of str
        Subfolders searched under each base folder, in order (``name`` first, then the
        layout torchvision uses, e.g. ``FashionMNIST/raw``).
    archive : str or None
        An archive accepted in place of the files (CIFAR-10's ``cifar-10-python.tar.gz``).
    urls : tuple of str
        Base URLs of the mirrors, tried in order by ``download=True``.
    hashes : dict
        File name -> ``(algorithm, hex digest)`` of the canonical downloads.
    mean, std : tuple of float
        Per-channel mean and std of the pixel values scaled to [0, 1], used to standardise.
    max_value : int
        Raw pixel maximum (255, or 16 for digits): pixels are divided by it first.
    """

    name: str
    title: str
    num_classes: int
    shape: tuple[int, int, int]
    num_samples: Mapping[str, int]
    files: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    subfolders: tuple[str, ...] = ()
    archive: str | None = None
    urls: tuple[str, ...] = ()
    hashes: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    max_value: int = 255

    @property
    def splits(self) -> tuple[str, ...]:
        """Allowed values of ``split``."""
        return tuple(self.num_samples)

    @property
    def num_features(self) -> int:
        """``C·H·W``, the length of a flattened sample."""
        return math.prod(self.shape)


_IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_CIFAR_FOLDER = "cifar-10-batches-py"
_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"

#: The datasets :func:`load_dataset` knows. Hashes are the SHA-256 digests of the canonical
#: downloads, as TensorFlow Datasets' ``url_checksums`` list them (torchvision lists MD5s
#: of the same files: FashionMNIST train images 8d4fb7e6..., CIFAR-10 c58f3010...). The
#: FashionMNIST files of the Debian package are recompressed (same images, different gzip
#: bytes), which is why files found on disk are not checked against these digests.
DATASETS: dict[str, DatasetInfo] = {
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist",
        title="FashionMNIST",
        num_classes=10,
        shape=(1, 28, 28),
        num_samples={"train": 60000, "test": 10000},
        files=_IDX_FILES,
        subfolders=("fashion_mnist", "FashionMNIST/raw"),
        urls=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        hashes={
            "train-images-idx3-ubyte.gz": (
                "sha256",
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            ),
            "train-labels-idx1-ubyte.gz": (
                "sha256",
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            ),
            "t10k-images-idx3-ubyte.gz": (
                "sha256",
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "sha256",
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            ),
        },
        mean=(0.2860,),
        std=(0.3530,),
    ),
    "mnist": DatasetInfo(
        name="mnist",
        title="MNIST",
        num_classes=10,
        shape=(1, 28, 28),
        num_samples={"train": 60000, "test": 10000},
        files=_IDX_FILES,
        subfolders=("mnist", "MNIST/raw"),
        urls=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        hashes={
            "train-images-idx3-ubyte.gz": (
                "sha256",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            ),
            "train-labels-idx1-ubyte.gz": (
                "sha256",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            ),
            "t10k-images-idx3-ubyte.gz": (
                "sha256",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            ),
            "t10k-labels-idx1-ubyte.gz": (
                "sha256",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
        },
        mean=(0.1307,),
        std=(0.3081,),
    ),
    "cifar10": DatasetInfo(
        name="cifar10",
        title="CIFAR-10",
        num_classes=10,
        shape=(3, 32, 32),
        num_samples={"train": 50000, "test": 10000},
        files={
            "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
            "test": ("test_batch",),
        },
        subfolders=("cifar10",),
        archive=_CIFAR_ARCHIVE,
        urls=("https://www.cs.toronto.edu/~kriz/",),
        hashes={
            _CIFAR_ARCHIVE: (
                "sha256", "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
            )
        },
        # the reference code's transforms.Normalize constants
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2023, 0.1994, 0.2010),
    ),
    "digits": DatasetInfo(
        name="digits",
        title="scikit-learn digits",
        num_classes=10,
        shape=(1, 8, 8),
        num_samples={"train": 1442, "test": 355, "all": 1797},
        # global mean and std of all 1797 x 64 pixel values divided by 16
        mean=(0.3053,),
        std=(0.3760,),
        max_value=16,
    ),
}

#: System folders searched (after ``root`` and ``$PNC_DATA``) for each dataset.
#: ``apt-get install dataset-fashion-mnist`` installs the four standard IDX files there.
SYSTEM_DIRS: dict[str, list[str]] = {
    "fashion_mnist": ["/usr/share/datasets/fashion-mnist"],
}


# ----------------------------------------------------------------------------------------
# Locating files
# ----------------------------------------------------------------------------------------


def cache_base() -> Path:
    """``$XDG_CACHE_HOME/pncutils`` (default ``~/.cache/pncutils``): where downloads go last."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pncutils"


def pnc_data_dirs() -> list[Path]:
    value = os.environ.get("PNC_DATA", "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def candidate_dirs(info: DatasetInfo, root: Path | None) -> list[Path]:
    """Folders searched for `info`'s files, in order (see :func:`load_dataset`)."""
    bases = ([root] if root is not None else []) + pnc_data_dirs()
    dirs: list[Path] = []
    for base in bases:
        dirs += [base / sub for sub in info.subfolders] + [base]
    dirs += [Path(p) for p in SYSTEM_DIRS.get(info.name, [])]
    dirs.append(cache_base() / info.name)
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def _idx_path(folder: Path, name: str) -> Path | None:
    """``folder/name`` (gzip), else the uncompressed ``folder/name`` without ``.gz``."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def locate(info: DatasetInfo, split: str, folder: Path) -> tuple[str, Any] | None:
    """Find what `folder` offers for (`info`, `split`).

    Returns ``("idx", [images, labels])``, ``("dir", batch_folder)``, ``("tar", archive)``
    or ``None``.
    """
    if not folder.is_dir():
        return None
    names = info.files[split]
    if info.archive is None:
        paths = [_idx_path(folder, n) for n in names]
        return ("idx", paths) if all(p is not None for p in paths) else None
    for batch_dir in (folder / _CIFAR_FOLDER, folder):
        if all((batch_dir / n).is_file() for n in names):
            return ("dir", batch_dir)
    if (folder / info.archive).is_file():
        return ("tar", folder / info.archive)
    return None


def find(
    info: DatasetInfo, split: str, root: Path | None = None
) -> tuple[tuple[str, Any] | None, list[Path]]:
    """The first folder of :func:`candidate_dirs` that holds every file of `split`.

    Returns ``(found, searched)``: ``found`` is what :func:`locate` returned for the first
    folder that has the files (``None`` when no folder has them), ``searched`` the folders
    in search order.

    Examples
    --------
    >>> _, searched = find(DATASETS["mnist"], "train", root=Path("/nonexistent"))
    >>> searched[0]
    PosixPath('/nonexistent/mnist')
    """
    searched = candidate_dirs(info, root)
    for folder in searched:
        found = locate(info, split, folder)
        if found is not None:
            return found, searched
    return None, searched
