import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "MNIST"


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory):
    """A writable torchvision data root holding the real MNIST files (from ../shared)."""
    if not (SHARED_MNIST / "raw").is_dir():
        pytest.skip(f"real MNIST files not found in {SHARED_MNIST / 'raw'}")
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(SHARED_MNIST, root / "MNIST")
    return root


@pytest.fixture
def cifar10_root(tmp_path, per_batch: int = 20, test: int = 40) -> Path:
    """A data root with small CIFAR-10 python batches in the real format (pickled dicts, 3072 uint8
    per image, channel-major): data_batch_1..5, test_batch and batches.meta in cifar-10-batches-py/."""
    root = tmp_path / "cifar_data"
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]:
        labels = rng.integers(0, 10, n)
        # images whose colour depends on the label, so that a model can learn something
        data = (rng.integers(0, 128, (n, 3, 32, 32)) + (labels[:, None, None, None] * 12)).astype(np.uint8)
        batch = {
            "batch_label": name,
            "labels": labels.tolist(),
            "data": data.reshape(n, 3072),
            "filenames": [f"{name}_{i}.png" for i in range(n)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}, f)
    return root


def write_image_folder(root, sizes=None, classes=("cat", "dog", "frog"), per_class=(8, 4), fmt="png"):
    """ROOT/train/<class>/ and ROOT/test/<class>/ of small RGB images whose colour gives the class
    (red channel = 60 * class index), ``per_class`` images per class in train and test."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in zip(("train", "test"), per_class):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                h, w = (sizes or {}).get((split, name, i), (16, 16))
                pixels = rng.integers(0, 50, (h, w, 3), dtype=np.uint8)
                pixels[..., 0] = 60 * label
                Image.fromarray(pixels).save(folder / f"{i:03d}.{fmt}")
    return root


def write_mnist_format(folder, n_train=60, n_test=20):
    """The four uncompressed MNIST-format files (idx3 images, idx1 labels) of random 28x28 digits:
    what torchvision's MNIST-family datasets read from ``<Name>/raw``."""
    import struct

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())
    return labels
