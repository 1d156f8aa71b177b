"""Datasets through torchvision, held in memory as float tensors.

By name: ``mnist``, ``fashion-mnist``, ``kmnist`` (torchvision's MNIST-format sets) and ``cifar10``.
Online, torchvision downloads what is missing into ``data_dir``. Offline, it uses the files already
there: it verifies their md5 and extracts archives next to them, with no network.

By path: a folder of labelled images in torchvision's ``ImageFolder`` layout, ``ROOT/train/<class>/``
and ``ROOT/test/<class>/``, or an archive holding one (``.tar.gz``, ``.tgz``, ``.tar``, ``.zip`` ...:
extracted once into ``data_dir`` by torchvision's ``extract_archive``). The decoded images are
cached in ``data_dir/.cache/`` (keyed by every file's path, size and time), so a second run loads
them in seconds.

Test-only: ``CLASSIFY_SKIP_MD5=1`` makes CIFAR-10 accept batch files whose md5 is not the official
one, so that tests can run the real loading code on small files they write in the CIFAR-10 format.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from PIL import Image
from torchvision import datasets
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.datasets.utils import check_integrity, extract_archive

SKIP_MD5_ENV = "CLASSIFY_SKIP_MD5"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tar", ".zip")
LAYOUT = "ROOT/train/<class>/<image> and ROOT/test/<class>/<image> (torchvision's ImageFolder layout)"
EXTRACTED = ".extracted"  # the marker of a finished extraction, holding the archive's path, size and time


class DataError(RuntimeError):
    """Data missing or corrupt, or a setting the run cannot use: the message says which files or
    option, where, and what was expected."""


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


def _mnist_format(dataset: type) -> Spec:
    return Spec(dataset, f"{dataset.__name__}/raw", tuple(dataset.resources), dataset.mirrors[0])


SPECS = {
    "mnist": _mnist_format(datasets.MNIST),
    "fashion-mnist": _mnist_format(datasets.FashionMNIST),
    "kmnist": _mnist_format(datasets.KMNIST),
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
    classes: list[str] = field(default_factory=list)


def is_path(dataset: str) -> bool:
    """True where ``dataset`` names an image folder or archive rather than one of ``SPECS``."""
    return dataset not in SPECS


def short_name(dataset: str) -> str:
    """A name for folders and titles: the dataset's name, or the folder's / archive's stem."""
    if not is_path(dataset):
        return dataset
    name = Path(dataset).name
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


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


def _load_named(name: str, data_dir: Path, train: bool) -> Split:
    spec = SPECS[name]
    _check_present_files(name, data_dir)
    dataset_cls = _UnverifiedCIFAR10 if _skip_md5(name) else spec.dataset
    # torchvision extracts the archives in place: a run started beside would read half a file
    with _locked(data_dir / f"{spec.folder}.lock"):
        try:
            ds = dataset_cls(str(data_dir), train=train, download=not _skip_md5(name))
        except (RuntimeError, OSError) as err:
            expected = ", ".join(file for file, _ in spec.files)
            archive = f" (or {spec.archive[0]} in {data_dir.resolve()})" if spec.archive else ""
            raise DataError(
                f"{name}: cannot load it from {(data_dir / spec.folder).resolve()}, nor download it "
                f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no message'}). Expected files there: {expected}{archive}. "
                f"Get them from {spec.source} while online, or copy them in; delete any file there that is truncated "
                f"(torchvision extracts the archives again)."
            ) from err
    x = torch.as_tensor(ds.data)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    return Split(x.float().div_(255), torch.as_tensor(ds.targets, dtype=torch.long), list(ds.classes))


def image_root(dataset: str | os.PathLike, data_dir: str | os.PathLike) -> Path:
    """The folder holding ``train/`` and ``test/`` for an image folder, or for an archive after
    extracting it (once) into ``data_dir``; archives often hold one top folder, which is looked into.

    :raises DataError: the path does not exist, or it is a file of no known archive format
    """
    path = Path(dataset)
    if path.is_dir():
        return path
    if not path.is_file():
        raise DataError(f"{path}: no such folder or archive (expected a dataset name: {', '.join(SPECS)}, or an image folder laid out as {LAYOUT}, or an archive of one)")
    if not path.name.endswith(ARCHIVE_SUFFIXES):
        raise DataError(f"{path}: not a folder, nor an archive torchvision extracts ({', '.join(ARCHIVE_SUFFIXES)})")
    name = short_name(str(path))
    if name in ("", ".", ".."):
        raise DataError(f"{path}: an archive needs a name before its suffix: it is extracted to that folder in --data-dir")
    target = Path(data_dir) / name
    if target.resolve() in path.resolve().parents:
        raise DataError(f"{path} lies inside {target}, the folder it is extracted to: move it out, or pass another --data-dir")
    # another archive of the same name, or this one made anew, must not reuse the old extraction
    stat = path.stat()
    source = f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    # runs started together (the seeds of a report side by side) extract once: unlocked, the second
    # deleted the first's folder half-way and the first read a training split of 5 of 10 classes
    with _locked(Path(f"{target}.lock")):
        if not (target / EXTRACTED).is_file() or (target / EXTRACTED).read_text() != source:
            _extract(path, target, source)
    entries = [p for p in target.iterdir() if not p.name.startswith(".")]
    if not (target / "train").is_dir() and len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return target


@contextlib.contextmanager
def _locked(lock_path: Path):
    """Holds the file lock ``lock_path`` (waiting for another process that holds it).

    :raises DataError: the lock file (or its folder) cannot be made (one line)
    """
    lock = FileLock(str(lock_path))
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError as err:
        raise DataError(f"{lock_path}: cannot lock it ({err.strerror or err}); remove it, or pass another --data-dir") from err
    try:
        yield
    finally:
        lock.release()


def _extract(path: Path, target: Path, source: str) -> None:
    """Extracts ``path`` into a staging folder beside ``target``, renamed to ``target`` with its
    marker (``source``) once complete. So a folder without the marker is never an extraction (a
    user's own folder, torchvision's downloads: an archive named ``MNIST.zip`` had deleted
    ``MNIST/raw``) and is refused, not deleted; one with it is an earlier archive's and is replaced."""
    if target.exists() and not (target / EXTRACTED).is_file():
        raise DataError(f"{target} exists and is no extraction of an archive (it has no {EXTRACTED} marker): move it away, or pass another --data-dir")
    for stale in target.parent.glob(f".{target.name}-extracting-*"):  # a run killed half-way; the lock is ours
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-extracting-", dir=target.parent))
    try:
        with _tar_data_filter():
            extract_archive(str(path), str(staging))
        (staging / EXTRACTED).write_text(source)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    except DataError:
        raise
    except Exception as err:  # tarfile, zipfile and gzip each raise their own errors
        raise DataError(f"{path}: cannot extract it ({type(err).__name__}: {err})") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _tar_data_filter():
    """Tar extraction with tarfile's ``data`` filter (each entry checked as it is written, so also
    links that earlier entries made: no absolute path, ``..`` or link may land outside the folder,
    no device files). torchvision extracts tar files with no filter on Python < 3.14, where such an
    entry was written anywhere. Zip files need none: zipfile drops ``..`` and leading slashes."""
    if not hasattr(tarfile, "data_filter"):  # Python < 3.10.12 / 3.11.4
        raise DataError(f"extracting tar archives safely needs Python 3.10.12, 3.11.4 or newer (this is {sys.version.split()[0]}); extract it yourself and pass the folder")
    saved = tarfile.TarFile.extraction_filter
    tarfile.TarFile.extraction_filter = staticmethod(tarfile.data_filter)
    try:
        yield
    finally:
        tarfile.TarFile.extraction_filter = saved


def _signature(files: list[tuple[str, int]], stats: list[os.stat_result], root: Path) -> str:
    digest = hashlib.sha1(str(root.resolve()).encode())
    for (path, _), stat in zip(files, stats):
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


# PIL modes of 8-bit grey images (kept as one channel) and of 8-bit colour ones (made RGB); the
# 16- and 32-bit modes (I;16, I, F) are refused: np.asarray gives their raw values, and no scale
# to [0, 1] is known for them
GREY_MODES = ("1", "L", "LA")
COLOUR_MODES = ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")


def _decode(path: str) -> torch.Tensor:
    """``(C, H, W)`` uint8: 8-bit grey images keep one channel, 8-bit colour ones become RGB.

    :raises DataError: an image of more than 8 bits per channel
    """
    with Image.open(path) as image:
        if image.mode not in GREY_MODES + COLOUR_MODES:
            raise DataError(f"{path}: a {image.mode} image (more than 8 bits per channel); convert it to 8-bit grey or RGB")
        pixels = np.asarray(image.convert("L" if image.mode in GREY_MODES else "RGB"))
    tensor = torch.from_numpy(pixels.copy())
    return tensor.unsqueeze(0) if tensor.dim() == 2 else tensor.permute(2, 0, 1)


def as_rgb(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)``: grey images ``(N, 1, H, W)`` with their channel repeated, as torchvision's
    ImageFolder loader makes every image RGB; colour images as they are."""
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


def _decode_all(files: list[tuple[str, int]]) -> torch.Tensor:
    """``(N, C, H, W)`` uint8, all images of one size; grey ones among colour ones made RGB."""
    images, size = [], None
    for path, _ in files:
        try:
            image = _decode(path)
        except (OSError, ValueError, SyntaxError) as err:  # PIL's errors for unreadable, truncated files
            raise DataError(f"{path}: cannot decode this image ({err}); remove or replace it") from err
        if size is None:
            size, first = image.shape[1:], path
        elif image.shape[1:] != size:
            raise DataError(
                f"{path}: image of {tuple(image.shape[1:])} (height, width), but {first} is "
                f"{tuple(size)}: every image of a dataset must have one size (resize them first)"
            )
        images.append(image)
    if len({image.shape[0] for image in images}) > 1:
        images = [as_rgb(image[None])[0] for image in images]
    return torch.stack(images)


def _stat_images(samples: list[tuple[str, int]], folder: Path, seen: dict) -> list[os.stat_result]:
    """Each image's ``os.stat``; refuses an image that cannot be read (a broken or looping symbolic
    link) and an image reached twice (torchvision follows symbolic links: a link to a folder above
    made a loop that counted each image many times, under the wrong class too; a linked copy, hard
    or symbolic, in two classes, or in both splits: a test image trained on). ``seen`` maps the
    ``(st_dev, st_ino)`` of the images stat'ed so far (the other split's too) to their paths."""
    stats = []
    for path, _ in samples:
        try:
            stat = os.stat(path)
        except OSError as err:
            raise DataError(f"{path}: cannot read it ({err.strerror}); remove or replace it") from err
        if (stat.st_dev, stat.st_ino) in seen:
            raise DataError(f"{folder}: {path} and {seen[stat.st_dev, stat.st_ino]} are one image (a symbolic link loop, or a linked copy): each image must be in the dataset once")
        seen[stat.st_dev, stat.st_ino] = path
        stats.append(stat)
    return stats


def _read_cache(cache: Path, count: int) -> torch.Tensor | None:
    """The decoded images of ``cache``, or None where there is none to trust: missing, unreadable
    (a disk that filled up) or of another number of images than the folder has. They are decoded
    again then; a truncated cache of 3 of 12 images had trained into a "diverged" run."""
    if not cache.is_file():
        return None
    try:
        x = torch.load(cache)
    except Exception:  # torch.load raises many kinds for a damaged file: each means "decode again"
        return None
    return x if isinstance(x, torch.Tensor) and x.dtype == torch.uint8 and x.dim() == 4 and len(x) == count else None


def _write_cache(cache: Path, x: torch.Tensor) -> None:
    """Writes ``x`` to ``cache`` through a temporary file renamed into place: never a half-written
    cache, also where two runs decode the same images at once.

    :raises DataError: the cache folder cannot be written (one line)
    """
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(suffix=".tmp", dir=cache.parent)
        os.close(handle)
        try:
            torch.save(x, partial)
            os.replace(partial, cache)
        finally:
            Path(partial).unlink(missing_ok=True)
    except OSError as err:
        raise DataError(f"{cache}: cannot write the cache of decoded images ({err.strerror or err}); make {cache.parent} writable, or pass another --data-dir") from err


def _load_folder(dataset: str, data_dir: Path, train: bool, seen: dict) -> Split:
    root = image_root(dataset, data_dir)
    split = "train" if train else "test"
    folder = root / split
    if not folder.is_dir():
        raise DataError(f"{root} has no {split}/ folder; expected {LAYOUT}")
    try:
        found = datasets.ImageFolder(str(folder), loader=lambda p: p)
    except FileNotFoundError as err:  # no class folders, or a class folder without images
        raise DataError(f"{folder}: {str(err).rstrip('.')}; expected {LAYOUT}, with images of {', '.join(IMG_EXTENSIONS)}") from err
    stats = _stat_images(found.samples, folder, seen)
    cache = data_dir / ".cache" / f"{short_name(dataset)}-{split}-{_signature(found.samples, stats, folder)}.pt"
    x = _read_cache(cache, len(found.samples))
    if x is None:
        x = _decode_all(found.samples)
        _write_cache(cache, x)
    y = torch.tensor([label for _, label in found.samples], dtype=torch.long)
    return Split(x.float().div_(255), y, list(found.classes))


def load(dataset: str, data_dir: str | os.PathLike, train: bool) -> Split:
    """The train or test split of ``dataset``: a name of ``SPECS`` or an image folder / archive path.

    :param dataset: ``"mnist"``, ``"fashion-mnist"``, ``"kmnist"``, ``"cifar10"``, or a path
    :param data_dir: torchvision's data root (downloads, extracted archives, the image cache)
    :param train: the training split (else the test split)
    :return: images ``(N, C, H, W)`` as floats in [0, 1], labels ``(N,)``, class names
    :raises DataError: missing, corrupt or badly laid out data (one line naming the path and what
        was expected)
    """
    data_dir = Path(data_dir)
    if is_path(dataset):
        return _load_folder(dataset, data_dir, train, {})
    return _load_named(dataset, data_dir, train)


def load_splits(dataset: str, data_dir: str | os.PathLike) -> tuple[Split, Split]:
    """``(train, test)`` of ``dataset``, checked to share their classes and image size.

    :raises DataError: as :func:`load`, or where the two splits do not match or share an image
        file (a link from one split into the other)
    """
    if is_path(dataset):  # one record of the images seen: an image in both splits is refused
        seen: dict = {}
        train, test = (_load_folder(dataset, Path(data_dir), split, seen) for split in (True, False))
    else:
        train, test = load(dataset, data_dir, True), load(dataset, data_dir, False)
    if train.classes != test.classes:
        raise DataError(f"{dataset}: train/ has classes {train.classes}, test/ has {test.classes}: they must be the same")
    if len(train.classes) < 2:
        raise DataError(f"{dataset}: one class ({train.classes[0]}); a classifier needs at least two")
    if {train.x.shape[1], test.x.shape[1]} == {1, 3}:  # grey in one split, colour in the other
        train, test = (Split(as_rgb(split.x), split.y, split.classes) for split in (train, test))
    if train.x.shape[1:] != test.x.shape[1:]:
        raise DataError(f"{dataset}: train images are {tuple(train.x.shape[1:])}, test images {tuple(test.x.shape[1:])}")
    return train, test
