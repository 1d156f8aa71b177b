"""MNIST and CIFAR-10 through torchvision, held in memory as float tensors.

Online, torchvision downloads what is missing into ``data_dir``. Offline, it uses the files already
there: it verifies their md5 and extracts archives next to them, with no network.

Test-only: ``CLASSIFY_SKIP_MD5=1`` makes CIFAR-10 accept batch files whose md5 is not the official
one, so that tests can run the real loading code on small files they write in the CIFAR-10 format.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision import datasets
from torchvision.datasets.utils import check_integrity

SKIP_MD5_ENV = "CLASSIFY_SKIP_MD5"


class DataError(RuntimeError):
    """Data missing or corrupt: the message says which files, where, and how to get them."""


class _UnverifiedCIFAR10(datasets.CIFAR10):
    # torchvision's check_integrity(path, None) only asks that the file exist
    train_list = [[name, None] for name, _ in datasets.CIFAR10.train_list]
    test_list = [[name, None] for name, _ in datasets.CIFAR10.test_list]
    meta = {**datasets.CIFAR10.meta, "md5": None}


@dataclass(frozen=True)
class Spec:
    dataset: type
    folder: str  # where the files go, under data_dir
    files: tuple[tuple[str, str], ...]  # (file name, md5) that may sit in folder
    source: str
    archive: tuple[str, str] | None = None  # (file name, md5) of an archive in data_dir that holds them


SPECS = {
    "mnist": Spec(
        datasets.MNIST,
        "MNIST/raw",
        tuple(datasets.MNIST.resources),
        datasets.MNIST.mirrors[0],
    ),
    "cifar10": Spec(
        datasets.CIFAR10,
        datasets.CIFAR10.base_folder,
        tuple(map(tuple, datasets.CIFAR10.train_list + datasets.CIFAR10.test_list))
        + ((datasets.CIFAR10.meta["filename"], datasets.CIFAR10.meta["md5"]),),
        datasets.CIFAR10.url,
        (datasets.CIFAR10.filename, datasets.CIFAR10.tgz_md5),
    ),
}


@dataclass
class Split:
    x: torch.Tensor  # (N, C, H, W) floats in [0, 1]
    y: torch.Tensor  # (N,) class indices


def _check_present_files(name: str, data_dir: Path) -> None:
    spec = SPECS[name]
    candidates = [(data_dir / spec.folder / file, md5) for file, md5 in spec.files]
    if spec.archive:
        candidates.append((data_dir / spec.archive[0], spec.archive[1]))
    for path, md5 in candidates:
        if path.is_file() and not check_integrity(str(path), md5) and not _skip_md5(name):
            raise DataError(
                f"{path.resolve()} is corrupt or truncated: torchvision's md5 check failed "
                f"(expected {md5}). Delete it and download it again from {spec.source}"
            )


def _skip_md5(name: str) -> bool:
    return name == "cifar10" and os.environ.get(SKIP_MD5_ENV) == "1"


def load(name: str, data_dir: str | os.PathLike, train: bool) -> Split:
    """The train or test split of ``name`` (``mnist`` or ``cifar10``)."""
    spec = SPECS[name]
    data_dir = Path(data_dir)
    _check_present_files(name, data_dir)
    dataset_cls = _UnverifiedCIFAR10 if _skip_md5(name) else spec.dataset
    try:
        ds = dataset_cls(str(data_dir), train=train, download=not _skip_md5(name))
    except (RuntimeError, OSError) as err:
        expected = ", ".join(file for file, _ in spec.files)
        archive = f" (or {spec.archive[0]} in {data_dir.resolve()})" if spec.archive else ""
        raise DataError(
            f"{name} is not in {(data_dir / spec.folder).resolve()} and could not be downloaded "
            f"({type(err).__name__}). Expected files there: {expected}{archive}. "
            f"Get them from {spec.source} while online, or copy them in."
        ) from err
    x = torch.as_tensor(ds.data)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    return Split(x.float().div_(255), torch.as_tensor(ds.targets, dtype=torch.long))
