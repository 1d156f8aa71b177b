import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_image_folder, write_mnist_format

from classify import data, models
from classify.__main__ import main
from classify.report import REPORT_ENTRIES
from classify.train import Config, network_record, one_vs_all_loss, train
from sb3_ed import DualStreamConv2d, DualStreamLinear, Sigmoid
from sb3_ed.diagnostics import weight_stats


def sigmoid_widths(net):
    return [m.width for m in net.modules() if isinstance(m, Sigmoid)]


def ei_ratios(net):
    return [s["ei_ratio"] for s in weight_stats(net).values()]


@pytest.mark.medium
def test_a_few_hundred_mnist_images_lift_accuracy_well_above_chance(mnist_root, tmp_path):
    config = Config(epochs=3, train_subset=500, data_dir=str(mnist_root))
    result = train(config, tmp_path, progress=False)
    accuracy = [h["test_accuracy"] for h in result["history"]]
    assert accuracy[-1] > 0.6, accuracy  # chance is 0.1; on the full 10,000-image test set
    # diagnostics are there, per layer
    last = result["history"][-1]
    assert set(last["surrogate_gradient"]) == set(last["weights"]) == {"hidden.0.1", "output.0"}
    assert all(v > 0 for v in last["surrogate_gradient"].values())


def test_mnist_loads_through_torchvision_offline(mnist_root):
    split = data.load("mnist", mnist_root, train=False)
    assert split.x.shape == (10000, 1, 28, 28) and split.y.shape == (10000,)
    assert 0.0 <= split.x.min() and split.x.max() <= 1.0


def test_missing_data_names_folder_and_files(tmp_path, capsys):
    assert main(["mnist", "--data-dir", str(tmp_path), "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert str(tmp_path / "MNIST" / "raw") in err and "train-images-idx3-ubyte.gz" in err and "t10k-labels-idx1-ubyte.gz" in err


def test_a_corrupt_file_is_reported_as_an_md5_failure(mnist_root, tmp_path):
    root = tmp_path / "data"
    (root / "MNIST" / "raw").mkdir(parents=True)
    good = (mnist_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte.gz is corrupt or truncated: torchvision's md5 check failed"):
        data.load("mnist", root, train=False)


def test_cifar10_format_files_load_and_a_conv_model_trains_a_step(cifar10_root, monkeypatch):
    root = cifar10_root
    with pytest.raises(data.DataError, match="data_batch_1 is corrupt"):
        data.load("cifar10", root, train=True)  # not the official files: md5 fails
    monkeypatch.setenv(data.SKIP_MD5_ENV, "1")
    train_split, test_split = data.load("cifar10", root, train=True), data.load("cifar10", root, train=False)
    assert train_split.x.shape == (100, 3, 32, 32) and test_split.x.shape == (40, 3, 32, 32)
    net = models.build("conv", (3, 32, 32), 10, "ed", "proposed")
    models.data_init(net, train_split.x[:64])
    layers = [[type(m) for m in block.modules() if isinstance(m, (DualStreamConv2d, DualStreamLinear))] for block in net.hidden]
    assert layers == [[DualStreamConv2d], [DualStreamConv2d], [DualStreamLinear]]
    before = [p.detach().clone() for p in net.parameters()]
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    loss = one_vs_all_loss(net(train_split.x[:16]), train_split.y[:16], center=True)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(not torch.equal(b, p) for b, p in zip(before, net.parameters()))
    assert all((m.weight >= m.floor).all() for m in net.modules() if isinstance(m, (DualStreamConv2d, DualStreamLinear)))


@pytest.mark.medium
def test_cifar10_cli_runs_an_epoch_on_the_written_files(cifar10_root, tmp_path, monkeypatch):
    root = cifar10_root
    monkeypatch.setenv(data.SKIP_MD5_ENV, "1")
    assert main(["cifar10", "--data-dir", str(root), "--epochs", "1", "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    result = json.loads((tmp_path / "out" / "seed0" / "results.json").read_text())
    assert len(result["history"]) == 1 and 0.0 <= result["final_test_accuracy"] <= 1.0
    assert result["architecture"]["name"] == "conv" and result["architecture"]["lr_multipliers"] == [0.1, 0.1, 0.1, 1.0]


def test_a_learning_rate_beyond_float32_after_the_multipliers_is_one_line(tmp_path, capsys):
    root = write_image_folder(tmp_path / "images")  # colour: the conv network, bp's largest multiplier 0.1 x 3000
    assert main(["folder", str(root), "--rule", "bp", "--lr", "1e37", "--epochs", "1", "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --lr 1e+37: times the largest layer multiplier (300) it is 3e+39, beyond the range of torch.float32"
    assert not (tmp_path / "out" / "seed0" / "results.json").exists()


def test_backprop_trains_the_hidden_layers_at_its_own_rates_and_the_optimizer_uses_them(tmp_path):
    # conv: 0.1 times 3000 in each hidden layer; mlp: 0.1 times 100; the output layer's rate is every rule's
    assert models.ARCHITECTURES["conv"].lr_multipliers("bp") == (300.0, 300.0, 300.0, 1.0)
    assert models.ARCHITECTURES["mlp"].lr_multipliers("bp") == (10.0, 1.0)
    for rule in ("ed", "dfa", "np"):
        assert models.ARCHITECTURES["mlp"].lr_multipliers(rule) == (0.1, 1.0)
    root = write_image_folder(tmp_path / "images")
    result = train(Config(dataset=str(root), arch="mlp", rule="bp", epochs=1), tmp_path / "out", progress=False)
    assert result["architecture"]["lr_multipliers"] == [10.0, 1.0]


@pytest.mark.parametrize("variant", [v for v in models.VARIANTS if v != "proposed"])
def test_each_variant_switches_off_exactly_what_it_names(variant):
    torch.manual_seed(0)
    proposed, other = (models.build("conv", (3, 32, 32), 10, "ed", v) for v in ("proposed", variant))
    flags = models.VARIANTS[variant]
    # layer-specific widths: conv, FC and output widths differ; off, all layers share one width
    assert (sigmoid_widths(other) == sigmoid_widths(proposed)) == flags["layer_widths"]
    assert len(set(sigmoid_widths(other))) == (3 if flags["layer_widths"] else 1)
    # asymmetric init: E/I about 3:1 in hidden layers with dual-stream input; 1:1 in the first
    # (shared-input) layer and the output layer; off, 1:1 everywhere
    first, *dual_hidden, last = ei_ratios(other)
    assert len(dual_hidden) == 2
    assert all(abs(r - (3.0 if flags["asym_init"] else 1.0)) < 0.1 for r in dual_hidden)
    assert abs(first - 1.0) < 0.1 and abs(last - 1.0) < 0.1
    # batch-centred class error: dL/dy sums to zero over the batch for every class; off, it does not
    y = torch.rand(8, 10, requires_grad=True)
    one_vs_all_loss(y, torch.arange(8) % 10, flags["center"]).backward()
    assert torch.allclose(y.grad.sum(0), torch.zeros(10), atol=1e-6) == flags["center"]


def test_resume_continues_to_the_same_result(mnist_root, tmp_path):
    config = Config(epochs=2, train_subset=200, data_dir=str(mnist_root))
    straight = train(config, tmp_path / "straight", progress=False)
    train(Config(**{**config.__dict__, "epochs": 1}), tmp_path / "split", progress=False)
    resumed = train(config, tmp_path / "split", resume=True, progress=False)
    assert [h["test_accuracy"] for h in resumed["history"]] == [h["test_accuracy"] for h in straight["history"]]
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_rejects_unknown_choices(capsys):
    for argv in (["svhn"], ["mnist", "--rule", "hebb"], ["mnist", "--variant", "best"]):
        with pytest.raises(SystemExit):
            main(argv)
        assert "invalid choice" in capsys.readouterr().err


@pytest.mark.medium
def test_report_writes_table_and_plots(mnist_root, tmp_path):
    out = tmp_path / "report"
    argv = ["report", "mnist", "--seeds", "2", "--epochs", "1", "--train-subset", "100", "--data-dir", str(mnist_root), "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    text = (out / "report.md").read_text()
    main_table = text.split("| variant", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert [row.split("|")[1].strip() for row in main_table] == list(REPORT_ENTRIES)
    ablations = text.split("## Ablation ordering", 1)[1].split("\n\n")[2].splitlines()[2:]
    assert sorted(row.split("|")[2].strip() for row in ablations) == ["no-center", "sym-init", "uniform-width"]
    for png in ("accuracy_curves.png", "ablation_bars.png", "weights.png", "alignment.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    network = json.loads(text.split("Network (proposed ED's; bp scales the hidden layers' multipliers): `", 1)[1].split("`", 1)[0])
    assert network["name"] == "mlp" and network["lr_multipliers"] == [0.1, 1.0]
    # kept without its checkpoints (as git keeps docs/results), a finished run is reused, not run again
    results = {p: p.read_bytes() for p in out.glob("*/seed*/results.json")}
    assert len(results) == 2 * len(REPORT_ENTRIES)
    for checkpoint in out.glob("*/seed*/checkpoint.pt"):
        checkpoint.unlink()
    assert main(argv) == 0
    assert {p: p.read_bytes() for p in out.glob("*/seed*/results.json")} == results
    assert (out / "report.md").read_text() == text
    # --report-only trains nothing: with seed 1 of every entry gone, the report says what is missing
    for folder in out.glob("*/seed1"):
        shutil.rmtree(folder)
    assert main([*argv, "--report-only"]) == 0
    partial = (out / "report.md").read_text()
    assert "**Partial**" in partial and "np (1)" in partial and not list(out.glob("*/seed1"))
    # asked for more epochs, a run without its checkpoint starts again rather than pass for finished
    assert main([*argv[:5], "2", *argv[6:]]) == 0
    assert all(len(json.loads(p.read_text())["history"]) == 2 for p in results)


def test_an_image_folder_loads_with_its_labels_and_trains_a_step(tmp_path):
    root = write_image_folder(tmp_path / "pets")
    train_split, test_split = data.load_splits(str(root), tmp_path / "data")
    assert train_split.classes == ["cat", "dog", "frog"] and train_split.x.shape == (24, 3, 16, 16)
    assert test_split.x.shape == (12, 3, 16, 16) and 0.0 <= train_split.x.min() and train_split.x.max() <= 1.0
    # the red channel was written as 60 * class index: labels follow ImageFolder's sorted classes
    red = (train_split.x[:, 0] * 255).round().mean(dim=(1, 2))
    torch.testing.assert_close(red, 60.0 * train_split.y.float())
    net = models.build(models.default_architecture((3, 16, 16)), (3, 16, 16), 3, "ed", "proposed")
    loss = one_vs_all_loss(net(train_split.x), train_split.y, center=True)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("suffix, fmt", [(".tar.gz", "gztar"), (".zip", "zip")])
def test_an_archive_of_an_image_folder_is_extracted_once_and_cached(tmp_path, suffix, fmt):
    import shutil

    source = write_image_folder(tmp_path / "src" / "pets")
    archive = shutil.make_archive(str(tmp_path / "pets"), fmt, root_dir=tmp_path / "src", base_dir="pets")
    assert archive.endswith(suffix)
    first = data.load(archive, tmp_path / "data", train=True)
    assert (tmp_path / "data" / "pets" / "pets" / "train" / "dog").is_dir()
    assert list((tmp_path / "data" / ".cache").glob("pets-train-*.pt"))
    shutil.rmtree(source)  # the second load needs neither the archive's contents again nor decoding
    second = data.load(archive, tmp_path / "data", train=True)
    assert torch.equal(first.x, second.x) and torch.equal(first.y, second.y)


def test_runs_started_together_extract_an_archive_once_and_each_reads_all_of_it(tmp_path, monkeypatch):
    import threading
    import time

    write_image_folder(tmp_path / "src" / "pets")
    archive = shutil.make_archive(str(tmp_path / "pets"), "gztar", root_dir=tmp_path / "src", base_dir="pets")
    extract, calls = data.extract_archive, []

    def slow_extract(*args):  # the window in which the other run used to delete this one's folder
        calls.append(args)
        extract(*args)
        time.sleep(0.5)

    monkeypatch.setattr(data, "extract_archive", slow_extract)
    loaded, failed = [], []

    def run():
        try:
            loaded.append(data.load_splits(archive, tmp_path / "data"))
        except data.DataError as err:
            failed.append(err)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failed and len(calls) == 1
    assert [len(train.y) for train, _ in loaded] == [3 * 8, 3 * 8] and all(train.classes == ["cat", "dog", "frog"] for train, _ in loaded)
    assert not list((tmp_path / "data" / ".cache").glob("*.tmp"))


@pytest.mark.parametrize("fault", ["own folder", "torchvision folder", "archive inside", "no stem", "lock folder"])
def test_extraction_never_deletes_what_it_did_not_extract_and_is_one_line_where_it_cannot(tmp_path, capsys, fault):
    write_image_folder(tmp_path / "src" / "pets")
    made = Path(shutil.make_archive(str(tmp_path / "pets"), "gztar", root_dir=tmp_path / "src", base_dir="pets"))
    data_dir = tmp_path / "data"
    # a file of the user's in the folder the archive would be extracted to (for "no stem": --data-dir itself)
    keep = {"torchvision folder": data_dir / "MNIST" / "raw", "no stem": data_dir}.get(fault, data_dir / "pets") / "keep.txt"
    keep.parent.mkdir(parents=True)
    keep.write_text("the user's")
    archive = {
        "torchvision folder": data_dir.parent / "MNIST.tar.gz",  # torchvision's download of MNIST lives in DATA_DIR/MNIST
        "archive inside": data_dir / "pets" / "pets.tar.gz",
        "no stem": tmp_path / ".tar.gz",
    }.get(fault, made)
    made.rename(archive)
    if fault == "lock folder":
        shutil.rmtree(data_dir / "pets")
        (data_dir / "pets.lock").mkdir()
    message = {
        "own folder": rf"{data_dir / 'pets'} exists and is no extraction of an archive \(it has no \.extracted marker\): move it away",
        "torchvision folder": rf"{data_dir / 'MNIST'} exists and is no extraction of an archive",
        "archive inside": rf"pets\.tar\.gz lies inside {data_dir / 'pets'}, the folder it is extracted to",
        "no stem": r"\.tar\.gz: an archive needs a name before its suffix",
        "lock folder": rf"{data_dir / 'pets.lock'}: cannot lock it \(Is a directory\)",
    }[fault]
    argv = ["folder", str(archive), "--arch", "mlp", "--epochs", "1", "--data-dir", str(data_dir), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err), err
    assert archive.is_file() and (fault == "lock folder" or keep.read_text() == "the user's")


def test_a_named_set_whose_lock_cannot_be_made_is_one_line(tmp_path):
    write_mnist_format(tmp_path / "FashionMNIST" / "raw")
    lock = tmp_path / "FashionMNIST" / "raw.lock"  # torchvision extracts the files under this lock
    lock.mkdir()
    with pytest.raises(data.DataError, match=rf"^{re.escape(str(lock))}: cannot lock it \(Is a directory\); remove it, or pass another --data-dir$"):
        data.load("fashion-mnist", tmp_path, train=True)


def test_a_damaged_or_stale_image_cache_is_decoded_again_and_an_unwritable_one_is_one_line(tmp_path, capsys):
    root = write_image_folder(tmp_path / "pets")
    first = data.load(root, tmp_path / "data", train=True)
    (cache,) = (tmp_path / "data" / ".cache").glob("pets-train-*.pt")
    for damage in (b"garbage", None):  # a file torch cannot read; a readable one of other images
        if damage is None:
            torch.save(first.x[:3].mul(255).to(torch.uint8), cache)
        else:
            cache.write_bytes(damage)
        again = data.load(root, tmp_path / "data", train=True)
        assert torch.equal(again.x, first.x) and torch.equal(again.y, first.y)
    shutil.rmtree(tmp_path / "data" / ".cache")
    (tmp_path / "data" / ".cache").write_text("")  # a file where the cache folder goes
    argv = ["folder", str(root), "--arch", "mlp", "--epochs", "1", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(r"\.cache/pets-train-.*\.pt: cannot write the cache of decoded images \(.*\); make .*/\.cache writable", err), err


@pytest.mark.medium
def test_the_cli_trains_an_image_folder_end_to_end(tmp_path):
    root = write_image_folder(tmp_path / "pets")
    argv = ["folder", str(root), "--epochs", "1", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 0
    result = json.loads((tmp_path / "out" / "seed0" / "results.json").read_text())
    assert result["config"]["dataset"] == str(root) and 0.0 <= result["final_test_accuracy"] <= 1.0


def bad_folder(tmp_path, fault):
    root = write_image_folder(tmp_path / "pets", sizes={("train", "dog", 2): (16, 20)} if fault == "mixed sizes" else None)
    if fault == "corrupt image":
        (root / "train" / "frog" / "001.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    elif fault == "no test split":
        import shutil

        shutil.rmtree(root / "test")
    elif fault == "empty class":
        for f in (root / "test" / "dog").iterdir():
            f.unlink()
    elif fault == "16-bit image":  # np.asarray gave raw 16-bit values, made 255 by the RGB conversion
        from PIL import Image

        Image.fromarray(np.full((16, 16), 40000, dtype=np.uint16)).save(root / "train" / "cat" / "000.png")
    elif fault == "symlink loop":  # torchvision follows links: each image was counted many times, under dog too
        (root / "train" / "dog" / "up").symlink_to("..")
    elif fault == "broken link":
        (root / "train" / "cat" / "broken.png").symlink_to(root / "missing.png")
    elif fault == "hard link":
        (root / "train" / "dog" / "copy.png").hardlink_to(root / "train" / "cat" / "000.png")
    elif fault == "train image in test":  # the splits were loaded apart: a test image trained on
        (root / "test" / "cat" / "extra.png").symlink_to(root / "train" / "cat" / "000.png")
    elif fault == "one class":
        import shutil

        for split in ("train", "test"):
            for name in ("dog", "frog"):
                shutil.rmtree(root / split / name)
    elif fault == "no class folders":
        import shutil

        shutil.rmtree(root / "train")
        (root / "train").mkdir()
        (root / "train" / "loose.png").write_bytes((root / "test" / "cat" / "000.png").read_bytes())
    return root


@pytest.mark.parametrize(
    "fault, message",
    [
        ("corrupt image", r"pets/train/frog/001\.png: cannot decode this image"),
        ("mixed sizes", r"pets/train/dog/002\.png: image of \(16, 20\) \(height, width\).*must have one size"),
        ("16-bit image", r"pets/train/cat/000\.png: a I;16 image \(more than 8 bits per channel\); convert it"),
        ("symlink loop", r"pets/train: .* are one image \(a symbolic link loop, or a linked copy\)"),
        ("train image in test", r"pets/test: .*pets/test/cat/extra\.png and .*pets/train/cat/000\.png are one image"),
        ("one class", r"pets: one class \(cat\); a classifier needs at least two"),
        ("broken link", r"pets/train/cat/broken\.png: cannot read it \(No such file or directory\)"),  # a traceback
        ("hard link", r"pets/train: .*/(cat/000|dog/copy)\.png and .* are one image"),  # one image under two labels
        ("no test split", r"pets has no test/ folder; expected ROOT/train/<class>/<image> and ROOT/test/<class>/<image>"),
        ("empty class", r"pets/test: Found no valid file for the classes dog"),
        ("no class folders", r"pets/train: Couldn't find any class folder"),
    ],
)
def test_a_bad_image_folder_is_one_line_naming_the_path(tmp_path, capsys, fault, message):
    root = bad_folder(tmp_path, fault)
    argv = ["folder", str(root), "--epochs", "1", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err), err
    assert not (tmp_path / "out" / "seed0" / "results.json").exists()  # nothing trained on a half-read dataset


@pytest.mark.parametrize("name, folder", [("fashion-mnist", "FashionMNIST"), ("kmnist", "KMNIST")])
def test_mnist_format_sets_load_by_name_from_files_written_here(tmp_path, name, folder):
    labels = write_mnist_format(tmp_path / folder / "raw")
    split = data.load(name, tmp_path, train=False)
    assert split.x.shape == (20, 1, 28, 28) and torch.equal(split.y, torch.as_tensor(labels, dtype=torch.long))
    assert len(split.classes) == 10


@pytest.mark.parametrize("estimator", ["first_order", "exact"])
def test_np_trains_with_either_estimator_through_rule_options(mnist_root, tmp_path, estimator):
    argv = ["mnist", "--rule", "np", "--rule-option", f"estimator={estimator}", "--rule-option", "sigma=0.01", "--epochs", "1",
            "--train-subset", "300", "--data-dir", str(mnist_root), "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    result = json.loads((tmp_path / "seed0" / "results.json").read_text())
    assert result["config"]["rule_options"] == {"normalize": True, "estimator": estimator, "sigma": 0.01}  # classify's default kept
    assert result["final_test_accuracy"] > 0.3  # chance is 0.1
    assert 0 < result["history"][-1]["alignment_to_bp"]["hidden.0"] <= 1


def test_classify_gives_np_feedback_at_dfa_scale_unless_told_otherwise():
    from classify import models
    from classify.train import Config

    assert Config(rule="np").rule_options == {"normalize": True}
    assert Config(rule="np", rule_options={"normalize": False}).rule_options == {"normalize": False}
    assert Config(rule="dfa").rule_options == {} and Config().rule_options == {}
    net = models.build("mlp", (1, 28, 28), 10, "np", "proposed", 0, **Config(rule="np").rule_options)
    assert net.rule.normalize is True


def test_a_rule_option_the_rule_does_not_take_is_one_line(mnist_root, tmp_path, capsys):
    argv = ["mnist", "--rule", "np", "--rule-option", "sigmaa=1", "--epochs", "1", "--data-dir", str(mnist_root), "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--rule-option sigmaa: not an option of rule np (its options: sigma, " in err
    # what classify gives the rule itself is not the user's to set: ed takes no options of its own
    assert main([*argv[:2], "ed", "--rule-option", "seed=1", *argv[5:]]) == 2
    assert capsys.readouterr().err == "error: --rule-option seed: not an option of rule ed (its options: none)\n"


def test_grey_and_colour_images_mixed_load_as_rgb(tmp_path):
    from PIL import Image

    root = write_image_folder(tmp_path / "pets")
    Image.fromarray(np.full((16, 16), 77, dtype=np.uint8)).save(root / "train" / "cat" / "000.png")  # grey, mode L
    split = data.load(str(root), tmp_path / "data", train=True)
    assert split.x.shape == (24, 3, 16, 16)
    # torchvision's RGB conversion of a grey image: its value in all three channels
    torch.testing.assert_close(split.x[0], torch.full((3, 16, 16), 77 / 255))


@pytest.mark.parametrize("shape", ["dotdot", "absolute", "link_chain"])
def test_a_tar_archive_never_writes_outside_its_folder(tmp_path, capsys, shape):
    import io
    import tarfile

    def link(name, target):
        entry = tarfile.TarInfo(name)
        entry.type, entry.linkname = tarfile.SYMTYPE, target
        return entry

    escaped = tmp_path / "escaped.txt"  # where each archive aims: two levels above the extraction
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        if shape == "link_chain":  # each link harmless alone; together they lead two levels up
            for entry in (link("l1", "."), link("l1/l2", ".."), link("l2/l3", "..")):
                tar.addfile(entry)
        name = {"dotdot": "../../escaped.txt", "absolute": str(escaped), "link_chain": "l2/l3/escaped.txt"}[shape]
        entry = tarfile.TarInfo(name)
        entry.size = 3
        tar.addfile(entry, io.BytesIO(b"bad"))
    argv = ["folder", str(archive), "--data-dir", str(tmp_path / "deep" / "data"), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    # refused while extracting, or (an absolute name) written inside with its leading / dropped
    assert err.startswith(f"error: {archive}: cannot extract it" if shape != "absolute" else "error: ") and err.count("\n") == 1, err
    assert not escaped.exists() and not (tmp_path / "deep" / "escaped.txt").exists()


def test_another_archive_of_the_same_name_is_extracted_anew(tmp_path):
    import shutil

    for folder, classes in (("a", ("cat", "dog")), ("b", ("emu", "fox", "gnu"))):
        write_image_folder(tmp_path / folder / "src" / "pets", classes=classes)
        shutil.make_archive(str(tmp_path / folder / "pets"), "zip", root_dir=tmp_path / folder / "src", base_dir="pets")
    assert data.load(str(tmp_path / "a" / "pets.zip"), tmp_path / "data", train=True).classes == ["cat", "dog"]
    # the same name in data_dir: the second archive's classes, not the first one's extraction
    assert data.load(str(tmp_path / "b" / "pets.zip"), tmp_path / "data", train=True).classes == ["emu", "fox", "gnu"]


def test_a_data_dir_that_is_a_file_and_a_resume_with_fewer_epochs_are_one_line(tmp_path, capsys):
    root = write_image_folder(tmp_path / "pets", per_class=(2, 1))
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(SystemExit):
        main(["folder", str(root), "--data-dir", str(tmp_path / "notes.txt")])
    assert f"argument --data-dir: {tmp_path / 'notes.txt'} is a file, not a folder" in capsys.readouterr().err
    argv = ["folder", str(root), "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--no-progress", "--epochs"]
    assert main([*argv, "2"]) == 0
    with pytest.raises(SystemExit, match=r"has 2 epochs done, more than --epochs 1: give --epochs 2 or more$"):
        main([*argv, "1", "--resume"])


def test_report_only_reads_the_seeds_that_ran_however_many_are_asked_for(tmp_path):
    root = write_image_folder(tmp_path / "pets", per_class=(2, 1))
    out = tmp_path / "report"
    # 10**9 seeds: one file check per seed and entry took hours; no run at all writes no folder
    with pytest.raises(SystemExit, match="no finished run of proposed ED"):
        main(["report", str(root), "--out", str(out), "--report-only", "--seeds", str(10**9)])
    assert not out.exists()


def test_centred_prediction_takes_out_the_shift_the_centred_loss_leaves_free():
    from classify.train import accuracy, batch_residual_mean

    labels = torch.tensor([0, 1, 2, 2])
    shift = torch.tensor([0.0, 0.0, 2.0])  # the centred loss cannot see it: every image looks like class 2
    outputs = torch.eye(3)[labels] + shift

    def net(x):
        return outputs[x]

    # the loss is blind to the shift: the same gradient with and without it
    grads = []
    for y in (torch.eye(3)[labels], outputs):
        y = y.clone().requires_grad_()
        one_vs_all_loss(y, labels, center=True).backward()
        grads.append(y.grad)
    torch.testing.assert_close(*grads)
    index = torch.arange(4)
    assert accuracy(net, index, labels, torch.zeros(3)) == 0.5  # ranked as they are: class 2 wins
    offset = batch_residual_mean(outputs, labels)
    torch.testing.assert_close(offset, shift)
    assert accuracy(net, index, labels, offset) == 1.0


def test_the_offset_follows_training_and_stays_zero_without_centring(mnist_root, tmp_path):
    for variant in ("proposed", "no-center"):
        config = Config(epochs=1, train_subset=640, data_dir=str(mnist_root), variant=variant)
        train(config, tmp_path / variant, progress=False)
        offset = torch.load(tmp_path / variant / "checkpoint.pt", weights_only=False)["offset"]
        assert offset.shape == (10,)
        assert (offset.abs().max() > 1e-3) if variant == "proposed" else torch.equal(offset, torch.zeros(10))


@pytest.mark.parametrize("arch, shape", [("mlp", (1, 28, 28)), ("conv", (3, 32, 32))])
def test_data_init_puts_every_sigmoid_on_its_slope(arch, shape):
    from sb3_ed.diagnostics import dale_layers

    torch.manual_seed(0)
    net = models.build(arch, shape, 10, "ed", "proposed")
    x = torch.rand(128, *shape)
    models.data_init(net, x)
    pre = {}
    hooks = [m.register_forward_hook(lambda m, i, a, n=n: pre.__setitem__(n, a)) for n, m in dale_layers(net).items()]
    net(x)
    for h in hooks:
        h.remove()
    widths = [m.width for block in [*net.hidden, net.output] for m in block.modules() if isinstance(m, models.Sigmoid)]
    targets = [*widths[:-1], widths[-1] * models.OUTPUT_STD]
    assert len(pre) == len(targets)
    for (name, a), target in zip(pre.items(), targets):
        dims = [d for d in range(a.dim()) if d != 1]
        assert a.mean(dim=dims).abs().max() < 1e-4 * target, name
        per_unit_std = (a - a.mean(dim=dims, keepdim=True)).pow(2).mean(dim=dims).sqrt()
        assert abs(per_unit_std.mean().item() - target) < 1e-3 * target, name
    assert all((layer.weight >= layer.floor).all() for layer in dale_layers(net).values())


def write_finished(folder, accuracies):
    """Finished report runs (one epoch each) with the given final test accuracies per entry."""
    for name, values in accuracies.items():
        for seed, accuracy in enumerate(values):
            run = folder / name / f"seed{seed}"
            run.mkdir(parents=True)
            result = {"config": {"epochs": 1}, "history": [{"test_accuracy": accuracy}], "final_test_accuracy": accuracy}
            (run / "results.json").write_text(json.dumps(result))


def test_ablation_ordering_ranks_the_drops_and_names_a_reversal(tmp_path):
    from classify.report import ablation_ordering, load_finished

    write_finished(tmp_path / "a", {"proposed": [0.60, 0.62], "no-center": [0.10, 0.12], "uniform-width": [0.50, 0.52], "sym-init": [0.58, 0.60]})
    write_finished(tmp_path / "b", {"proposed": [0.96, 0.98], "no-center": [0.94, 0.98], "uniform-width": [0.90, 0.92], "sym-init": [0.80, 0.82]})
    text = ablation_ordering(load_finished(tmp_path / "a"), load_finished(tmp_path / "b"), "mnist")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line[:3] in ("| 1", "| 2", "| 3")]
    # by hand: 11 - 61 = -50, 51 - 61 = -10, 59 - 61 = -2 points here; -1, -6, -16 points in b
    assert [r[1] for r in rows] == ["no-center", "uniform-width", "sym-init"]
    assert [r[2].split(" (")[0] for r in rows] == ["-50.00", "-10.00", "-2.00"]
    assert [r[4].split(" (")[0] for r in rows] == ["-1.00", "-6.00", "-16.00"] and [r[5] for r in rows] == ["3", "2", "1"]
    assert "the order is **reversed**" in text
    same = ablation_ordering(load_finished(tmp_path / "a"), load_finished(tmp_path / "a"), "a")
    assert "the same order in both" in same
    # an ablation that is the same network as proposed (sym-init on a one-hidden-layer MLP) says so
    write_finished(tmp_path / "c", {"proposed": [0.9, 0.8], "sym-init": [0.9, 0.8], "no-center": [0.5, 0.4]})
    assert "+0.00 (1), the same runs as proposed" in ablation_ordering(load_finished(tmp_path / "c"))


def test_compare_with_a_folder_without_proposed_runs_says_what_it_expected(tmp_path):
    from classify.report import load_finished

    write_finished(tmp_path / "b", {"no-center": [0.5]})
    with pytest.raises(SystemExit, match=r"--compare-with .*b: no finished run of proposed ED in it \(expected .*proposed/seed<k>/results.json\)"):
        load_finished(tmp_path / "b")


@pytest.mark.parametrize(
    "argv",
    [
        ["mnist", "--epochs", "0"],
        ["mnist", "--epochs", "-1"],
        ["mnist", "--lr", "-0.1"],
        ["mnist", "--lr", "nan"],
        ["mnist", "--lr", "inf"],
        ["mnist", "--batch-size", "0"],
        ["mnist", "--train-subset", "0"],
        ["mnist", "--seeds", "0"],
        ["report", "mnist", "--seeds", "-2"],
    ],
)
def test_counts_sizes_and_rates_must_be_positive(argv, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--data-dir", str(tmp_path)])
    flag, value = argv[-2:]
    assert exit_info.value.code == 2 and f"argument {flag}: must be finite and > 0, got {value}" in capsys.readouterr().err


def test_report_only_on_runs_of_other_settings_names_the_setting(tmp_path):
    from dataclasses import asdict

    run = tmp_path / "proposed" / "seed0"
    run.mkdir(parents=True)
    config = {**asdict(Config(epochs=1)), "rule": "ed", "variant": "proposed"}
    network = network_record("mlp", "ed")
    (run / "results.json").write_text(json.dumps({"config": config, "architecture": network, "history": [{"test_accuracy": 0.5}], "final_test_accuracy": 0.5}))
    argv = ["report", "mnist", "--report-only", "--out", str(tmp_path), "--no-progress"]
    with pytest.raises(SystemExit, match=r"no finished run of proposed ED with these settings in .*: .*seed0 holds a run of other settings \(epochs 1, not 30\)"):
        main([*argv])
    # an interrupted run of the same settings
    (run / "results.json").write_text(json.dumps({"config": {**config, "epochs": 2}, "architecture": network, "history": [{"test_accuracy": 0.5}], "final_test_accuracy": 0.5}))
    with pytest.raises(SystemExit, match=r"\(1 of 2 epochs done\)"):
        main([*argv, "--epochs", "2"])


def test_runs_of_the_same_settings_on_a_network_changed_since_are_neither_reused_nor_resumed(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "images", per_class=(2, 1))
    out = tmp_path / "report"
    argv = ["report", str(root), "--arch", "mlp", "--seeds", "1", "--epochs", "1", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    mlp = models.ARCHITECTURES["mlp"]
    # a default changed since the runs: the hidden layer's learning-rate multiplier doubled
    monkeypatch.setitem(models.ARCHITECTURES, "mlp", replace(mlp, lr_mult=(0.2, 1.0)))
    with pytest.raises(SystemExit, match=r"proposed/seed0 holds a run of other settings \(network lr_mult \[0\.1, 1\.0\], not \[0\.2, 1\.0\]; network lr_multipliers"):
        main([*argv, "--report-only"])
    run = ["folder", str(root), "--arch", "mlp", "--epochs", "2", "--out", str(out / "proposed"), "--no-progress", "--resume"]
    with pytest.raises(SystemExit, match=r"seed0/checkpoint\.pt does not hold today's mlp network \(network lr_mult \[0\.1, 1\.0\], not \[0\.2, 1\.0\]"):
        main(run)
    # a checkpoint written before checkpoints recorded the network: results.json of its epoch tells
    checkpoint = out / "proposed" / "seed0" / "checkpoint.pt"
    state = torch.load(checkpoint, weights_only=False)
    del state["architecture"]
    torch.save(state, checkpoint)
    with pytest.raises(SystemExit, match=r"does not hold today's mlp network \(network lr_mult"):
        main(run)
    monkeypatch.setitem(models.ARCHITECTURES, "mlp", mlp)
    assert main(run) == 0


@pytest.mark.parametrize("record", [[1, 2], "mlp", 5, {"name": ["mlp"]}, None, "conv"])
def test_a_network_record_of_the_wrong_kind_or_of_another_network_is_refused_in_one_line(tmp_path, record):
    root = write_image_folder(tmp_path / "images", per_class=(2, 1))
    out = tmp_path / "report"
    argv = ["report", str(root), "--arch", "mlp", "--seeds", "1", "--epochs", "1", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    run = out / "proposed" / "seed0"
    results = json.loads((run / "results.json").read_text())
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    results["architecture"] = state["architecture"] = network_record("conv", "ed") if record == "conv" else record
    (run / "results.json").write_text(json.dumps(results))
    torch.save(state, run / "checkpoint.pt")
    why = r"network 'conv', not 'mlp'" if record == "conv" else r"it records no network of this version"
    with pytest.raises(SystemExit, match=rf"holds a run of other settings \({why}"):
        main([*argv, "--report-only"])
    with pytest.raises(SystemExit, match=rf"^error: .*checkpoint\.pt does not hold today's mlp network \({why}.*\); delete it to train this seed from the start$"):
        main(["folder", str(root), "--arch", "mlp", "--epochs", "2", "--out", str(out / "proposed"), "--no-progress", "--resume"])


def test_a_finished_checkpoint_writes_its_results_again_and_damaged_records_are_one_line(tmp_path):
    root = write_image_folder(tmp_path / "images", per_class=(2, 1))
    out = tmp_path / "report"
    argv = ["report", str(root), "--arch", "mlp", "--seeds", "1", "--epochs", "1", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    results = out / "proposed" / "seed0" / "results.json"
    kept = json.loads(results.read_text())
    # results.json lost (or written before runs recorded their network): the checkpoint, of today's
    # network, gives it back, record and all, instead of a traceback or a run without a record
    for damage in ("deleted", "no record"):
        if damage == "deleted":
            results.unlink()
        else:
            results.write_text(json.dumps({k: v for k, v in kept.items() if k != "architecture"}))
        assert main(argv) == 0
        assert json.loads(results.read_text()) == kept
    for field, value in (("config", [1]), ("history", 5), ("history", [{"epoch": 1}]), ("final_test_accuracy", None)):
        broken = {**kept, field: value} if value is not None else {k: v for k, v in kept.items() if k != field}
        results.write_text(json.dumps(broken))
        with pytest.raises(SystemExit, match=rf"^error: cannot read {re.escape(str(results))} \(.*\); delete its folder to train that seed again$"):
            main([*argv, "--report-only"])
    results.write_text(json.dumps(kept))
    checkpoint = out / "proposed" / "seed0" / "checkpoint.pt"
    for state in ([1, 2], {"model": {}}):
        torch.save(state, checkpoint)
        with pytest.raises(SystemExit, match=r"^error: cannot read .*checkpoint\.pt \(not a checkpoint of classify: it lacks .*\); delete it"):
            main(["folder", str(root), "--arch", "mlp", "--epochs", "2", "--out", str(out / "proposed"), "--no-progress", "--resume"])


def test_resume_from_a_corrupt_checkpoint_or_on_data_of_other_shapes_is_one_line(tmp_path, capsys):
    root = write_image_folder(tmp_path / "images")
    out = tmp_path / "out"
    argv = ["folder", str(root), "--arch", "mlp", "--out", str(out), "--no-progress"]
    assert main([*argv, "--epochs", "1"]) == 0
    checkpoint = out / "seed0" / "checkpoint.pt"
    whole = checkpoint.read_bytes()
    checkpoint.write_bytes(whole[:100])
    with pytest.raises(SystemExit, match=rf"^error: cannot read {re.escape(str(checkpoint))} \(.*\); delete it to train this seed from the start$"):
        main([*argv, "--epochs", "2", "--resume"])
    checkpoint.write_bytes(whole)
    shutil.copytree(root / "train" / "cat", root / "train" / "owl")  # a fourth class since the checkpoint
    shutil.copytree(root / "test" / "cat", root / "test" / "owl")
    with pytest.raises(SystemExit, match=rf"^error: {re.escape(str(checkpoint))} holds a network of other shapes than {re.escape(str(root))} gives now"):
        main([*argv, "--epochs", "2", "--resume"])


def test_a_subset_larger_than_the_training_split_a_seed_out_of_range_and_a_rule_for_the_report_are_refused(tmp_path, capsys):
    root = write_image_folder(tmp_path / "images")  # 3 classes x 8 training images
    assert main(["folder", str(root), "--train-subset", "25", "--epochs", "1", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == f"error: --train-subset 25: the training split of {root} has only 24 images"
    for seed in ("-1", str(2**32)):
        with pytest.raises(SystemExit):
            main(["folder", str(root), "--seed", seed])
        assert f"argument --seed: must be from 0 to 2**32 - 1, got {seed}" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the report's entries each have their own rule
        main(["report", str(root), "--rule", "bp", "--report-only"])
    assert "unrecognized arguments: --rule bp" in capsys.readouterr().err


def test_a_learning_rate_that_saturates_every_output_unit_stops_with_one_line(tmp_path, capsys):
    # finite weights, but after the first steps every output sigmoid sits at 0 or 1: the error every
    # rule learns from is exactly zero and the run would report chance accuracy as its result
    root = write_image_folder(tmp_path / "images")
    for arch in ("mlp", "conv"):
        out = tmp_path / arch
        assert main(["folder", str(root), "--arch", arch, "--lr", "1e10", "--epochs", "2", "--out", str(out), "--no-progress"]) == 1
        err = capsys.readouterr().err.strip()
        assert re.fullmatch(
            r"error: training diverged: after epoch 1 the output layer's error is exactly zero on every probe image \(its units saturated\), "
            r"at train accuracy 0\.\d+; --lr 1e\+10 is likely too large",
            err,
        ), err
        assert not (out / "seed0").exists()  # not even an empty seed folder


def test_a_corrupt_results_file_and_an_out_that_is_a_file_are_one_line(tmp_path, capsys):
    root = write_image_folder(tmp_path / "images")
    results = tmp_path / "report" / "proposed" / "seed0" / "results.json"
    results.parent.mkdir(parents=True)
    for text, why in (('{"config": {"epochs": 1', "Expecting"), ("[1, 2]", "no config, history, final_test_accuracy in it")):
        results.write_text(text)
        with pytest.raises(SystemExit, match=rf"^error: cannot read {re.escape(str(results))} \({why}.*\); delete its folder to train that seed again$"):
            main(["report", str(root), "--out", str(tmp_path / "report"), "--report-only"])
    (tmp_path / "notes.txt").write_text("")
    for argv in (["folder", str(root)], ["report", str(root)]):
        with pytest.raises(SystemExit):
            main([*argv, "--out", str(tmp_path / "notes.txt")])
        assert f"argument --out: {tmp_path / 'notes.txt'} is a file, not a folder" in capsys.readouterr().err


def test_an_out_or_data_dir_through_a_broken_or_looping_link_is_argparses_one_line(tmp_path, capsys):
    root = write_image_folder(tmp_path / "pets", per_class=(2, 1))
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    cases = [("--out", tmp_path / "dangling", f"{tmp_path / 'dangling'}: a symbolic link that cannot be followed (No such file or directory)"),
             ("--data-dir", tmp_path / "loop" / "x", f"{tmp_path / 'loop'}: a symbolic link that cannot be followed (Too many levels of symbolic links) (in {tmp_path / 'loop' / 'x'})")]
    for flag, path, message in cases:  # mkdir failed on them after the run had started: a traceback
        with pytest.raises(SystemExit):
            main(["folder", str(root), flag, str(path)])
        assert f"argument {flag}: {message}" in capsys.readouterr().err


def test_a_truncated_extracted_file_says_to_delete_it(tmp_path, capsys):
    write_mnist_format(tmp_path / "MNIST" / "raw")
    labels = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:12])
    assert main(["mnist", "--data-dir", str(tmp_path), "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    # it said only "mnist is not in ... and could not be downloaded", with the files right there
    assert err.startswith(f"error: mnist: cannot load it from {tmp_path / 'MNIST' / 'raw'}, nor download it (") and err.count("\n") == 1
    assert "delete any file there that is truncated" in err
