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
