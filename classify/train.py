"""Training one classifier: the loop, per-epoch diagnostics, results JSON and checkpoints."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import pickle
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from sb3_ed.diagnostics import hidden_error_alignment, surrogate_gradients, weight_stats
from sb3_ed.reporting import read_record
from sb3_ed.rules import rule_options

from . import data, models

CHECKPOINT, RESULTS = "checkpoint.pt", "results.json"


# Options classify gives a rule unless told otherwise. np: its fitted feedback has the scale of the
# true gradient, about 40x below DFA's random one on the MNIST network, and classify trains with
# plain SGD at rates set for ED and DFA (docs/results/mnist/NOTES.md: 92.4 % against 96.7 % after
# 10 epochs).
RULE_DEFAULTS = {"np": {"normalize": True}}


@dataclass
class Config:
    dataset: str = "mnist"  # a name of data.SPECS, or an image folder / archive path
    arch: str = "auto"  # a key of models.ARCHITECTURES, or auto: from the image shape
    rule: str = "ed"
    variant: str = "proposed"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.1
    seed: int = 0
    data_dir: str = "data"
    device: str = "auto"
    train_subset: int = 0  # a fixed random N of the training images only (0: all)
    rule_options: dict = dataclasses.field(default_factory=dict)  # keyword arguments of the rule (e.g. np's sigma)

    def __post_init__(self):
        # the rule's classify defaults under the given options, so that results.json records them
        self.rule_options = {**RULE_DEFAULTS.get(self.rule, {}), **self.rule_options}

    @classmethod
    def from_args(cls, args, **fields) -> Config:
        """A config from parsed CLI arguments (those named like its fields), then ``fields``."""
        given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
        if isinstance(given.get("rule_options"), list):  # the CLI's (key, value) pairs
            given["rule_options"] = dict(given["rule_options"])
        return cls(**{**given, **fields})


def per_example_loss(y: torch.Tensor, labels: torch.Tensor, center: bool) -> torch.Tensor:
    """``0.5 * |r_b|^2 / batch`` of each example ``b``, ``(batch,)``: the terms whose sum is
    :func:`one_vs_all_loss` (the loss the ``np`` rule's exact estimator compares)."""
    r = y - F.one_hot(labels, y.shape[1]).to(y.dtype)
    if center:
        r = r - r.mean(dim=0, keepdim=True)
    return 0.5 * r.pow(2).sum(dim=1) / len(r)


def one_vs_all_loss(y: torch.Tensor, labels: torch.Tensor, center: bool) -> torch.Tensor:
    """``0.5 * |r|^2`` per sample, ``r = y - t`` (t one-hot), averaged over the batch, so that
    ``dL/dy = r / batch``.

    Batch-centred: ``r`` minus its per-class mini-batch mean. That is the gradient of the same loss
    on centred residuals, so the centring needs no help from the learning rule.
    """
    return per_example_loss(y, labels, center).sum()


def learning_rate(config: Config, epoch: int) -> float:
    """Cosine decay from ``config.lr`` to zero over the run. A function of the epoch alone, so a
    resumed run (even one given more epochs) needs no scheduler state."""
    return config.lr * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda, but torch sees no CUDA device")
    return torch.device(device)


# How fast the running mean of the output residual follows the batches (about the last 100)
OFFSET_MOMENTUM = 0.01


def batch_residual_mean(y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``mean_b(y_b - t_b)``, ``(classes,)``: what batch-centring takes out of the residual."""
    return (y - F.one_hot(labels, y.shape[1]).to(y.dtype)).mean(dim=0)


@torch.no_grad()
def accuracy(net, x, y, offset: torch.Tensor, batch_size=1000) -> float:
    """Fraction of ``x`` classified as ``y``, by ``argmax(net(x) - offset)``.

    Under batch-centred error the loss cannot see a constant per-class shift of the outputs, so a
    trained net estimates the one-hot target only up to that shift: ``y_k = t_k + c_k`` with
    ``c = mean(y - t)``. The prediction takes it out again (``offset`` = the running mean of
    :func:`batch_residual_mean` over training); with a plain residual, whose loss does see the
    shift, the outputs are ranked as they are (``offset`` zero).
    """
    correct = sum(((net(x[i : i + batch_size]) - offset).argmax(1) == y[i : i + batch_size]).sum().item() for i in range(0, len(x), batch_size))
    return correct / len(x)


# settings that change where and how fast a run computes, not what it computes
PLACE_FIELDS = ("data_dir", "device")
CHECKPOINT_KEYS = frozenset({"config", "model", "optimizer", "rng", "history", "epoch", "wall_time"})


def read_results(path: Path) -> dict:
    """The run that ``path`` (a ``results.json``) records.

    :raises SystemExit: one line, where the file is not JSON or not a run's record: ``config`` an
        object, ``history`` a list of epochs with their ``test_accuracy``, ``final_test_accuracy``
    """
    remedy = "delete its folder to train that seed again"
    record = read_record(path, remedy, ("config", "history", "final_test_accuracy"))
    history = record["history"]
    if not isinstance(record["config"], dict) or not isinstance(history, list) or not all(isinstance(h, dict) and "test_accuracy" in h for h in history):
        raise SystemExit(f"error: cannot read {path} (config must be an object, history a list of epochs with their test_accuracy); {remedy}")
    return record


def finished_results(config: Config, out: Path) -> dict | None:
    """The results of ``out`` where they hold a finished run of ``config`` (every field equal but
    :data:`PLACE_FIELDS`, all its epochs done), else None. Needs no checkpoint: a results folder kept
    without its checkpoints (as in git) is reused as it is."""
    path = out / RESULTS
    if not path.is_file():
        return None
    results = read_results(path)
    return results if not unlike(config, results) else None


def finished(results: dict) -> bool:
    """Whether the run of ``results`` (a ``results.json``) trained every epoch its config asks for."""
    return len(results.get("history", [])) == results["config"]["epochs"]


def network_record(arch_name: str, rule: str) -> dict:
    """The network a run of ``rule`` trains on architecture ``arch_name``, as ``results.json`` and
    the checkpoint record it: the layer sizes, widths, init and each layer's learning-rate
    multiplier. A run recorded under other values (an older default) is another experiment."""
    arch = models.ARCHITECTURES[arch_name]
    # bp_hidden_lr reaches a run through its lr_multipliers only (under bp), so runs of the other
    # rules do not differ by it
    fields = {k: v for k, v in asdict(arch).items() if k != "bp_hidden_lr"}
    # through JSON, so that a record read back from results.json compares equal (tuples become lists)
    return json.loads(json.dumps({"name": arch_name, **fields, "lr_multipliers": arch.lr_multipliers(rule)}))


def network_change(recorded, rule: str, arch_name: str | None = None) -> str:
    """How ``recorded`` (a run's :func:`network_record`) differs from what ``rule`` trains on its
    architecture today (e.g. ``"network lr_mult [0.1, 1.0], not [0.2, 1.0]"``), or from architecture
    ``arch_name`` where given; empty where it does not."""
    name = recorded.get("name") if isinstance(recorded, dict) else None
    if not isinstance(name, str) or name not in models.ARCHITECTURES:
        return "it records no network of this version (written before runs recorded theirs, or edited)"
    if arch_name is not None and name != arch_name:
        return f"network {name!r}, not {arch_name!r}"
    today = network_record(name, rule)
    return "; ".join(f"network {k} {recorded.get(k)!r}, not {v!r}" for k, v in today.items() if recorded.get(k) != v)


def unlike(config: Config, results: dict) -> str:
    """How the run of ``results`` differs from a finished run of ``config`` (e.g. ``"epochs 1, not
    5"``, ``"network lr_mult [...], not [...]"`` or ``"3 of 10 epochs done"``); empty where it is one."""
    saved = {**asdict(Config()), **results["config"]}
    differ = [f"{k} {saved[k]!r}, not {v!r}" for k, v in asdict(config).items() if k not in PLACE_FIELDS and saved[k] != v]
    arch_name = None if config.arch == "auto" else config.arch  # auto: what the data gave, not known here
    differ += [change] if (change := network_change(results.get("architecture"), config.rule, arch_name)) else []
    if differ:
        return "; ".join(differ)
    return "" if finished(results) else f"{len(results['history'])} of {config.epochs} epochs done"


def train(config: Config, out: Path, resume: bool = False, tensorboard: Path | None = None, progress: bool = True) -> dict:
    """Trains one seed, writing ``results.json`` and ``checkpoint.pt`` into ``out`` every epoch.

    :raises data.DataError: data or options that cannot give this run (one line)
    :raises SystemExit: under ``resume``, a checkpoint that is missing, unreadable or of other settings (one line)
    :raises FloatingPointError: training diverged: a rule met non-finite errors, or the output
        layer's error became exactly zero (saturated units) before the training set was learned
    """
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    train_set, test_set = data.load_splits(config.dataset, config.data_dir)
    if config.train_subset > len(train_set.y):
        raise data.DataError(f"--train-subset {config.train_subset}: the training split of {config.dataset} has only {len(train_set.y)} images")
    if config.train_subset:
        # a fixed random subset: image folders list their images class by class
        keep = torch.randperm(len(train_set.y), generator=torch.Generator().manual_seed(0))[: config.train_subset]
        train_set = data.Split(train_set.x[keep], train_set.y[keep], train_set.classes)
    x, y = train_set.x.to(device), train_set.y.to(device)
    x_test, y_test = test_set.x.to(device), test_set.y.to(device)

    in_shape = tuple(x.shape[1:])
    arch_name = models.default_architecture(in_shape) if config.arch == "auto" else config.arch
    # what classify itself gives the rule (the classes, --seed) is no option of the user's
    options = [name for name in rule_options(config.rule) if name not in ("out_features", "seed")]
    unknown = sorted(set(config.rule_options) - set(options))
    if unknown:
        raise data.DataError(f"--rule-option {', '.join(unknown)}: not an option of rule {config.rule} (its options: {', '.join(options) or 'none'})")
    try:
        net = models.build(arch_name, in_shape, len(train_set.classes), config.rule, config.variant, config.seed, **config.rule_options).to(device)
    except ValueError as err:  # the images do not fit the network, or a rule option is out of range
        raise data.DataError(f"{config.dataset}: {err}") from err
    except TypeError as err:  # a rule option of the wrong type (an on/off option given as "yes")
        raise data.DataError(f"--rule-option for rule {config.rule}: {err}") from err
    probe = torch.randperm(len(x), generator=torch.Generator().manual_seed(config.seed))[:256].to(device)
    models.data_init(net, x[probe])
    arch = models.ARCHITECTURES[arch_name]
    lr_mult = arch.lr_multipliers(config.rule)
    network = network_record(arch_name, config.rule)
    largest = config.lr * max(lr_mult)
    if largest > torch.finfo(x.dtype).max:  # SGD could not even take its first step
        raise data.DataError(f"--lr {config.lr:g}: times the largest layer multiplier ({max(lr_mult):g}) it is {largest:.3g}, beyond the range of {x.dtype}")
    optimizer = torch.optim.SGD(
        [{"params": p, "lr": config.lr * m} for p, m in zip(models.layer_groups(net), lr_mult)],
        lr=config.lr,
    )
    center = models.VARIANTS[config.variant]["center"]
    # running mean of the residual's batch mean: the per-class shift a centred loss leaves free
    offset = torch.zeros(len(train_set.classes), device=device)
    history: list[dict] = []
    start_epoch, wall = 0, 0.0
    if resume:
        if not (out / CHECKPOINT).is_file():
            raise SystemExit(f"error: --resume, but there is no {CHECKPOINT} in {out}")
        try:
            state = torch.load(out / CHECKPOINT, map_location=device, weights_only=False)
        except (EOFError, pickle.UnpicklingError, RuntimeError) as err:
            raise SystemExit(f"error: cannot read {out / CHECKPOINT} ({str(err).split('. ')[0]}); delete it to train this seed from the start") from err
        if not isinstance(state, dict) or not isinstance(state.get("config"), dict) or not CHECKPOINT_KEYS <= state.keys():
            raise SystemExit(f"error: cannot read {out / CHECKPOINT} (not a checkpoint of classify: it lacks {', '.join(sorted(CHECKPOINT_KEYS))}); delete it to train this seed from the start")
        # fields added since the checkpoint was written had their defaults then
        saved = {**asdict(Config()), **state["config"]}
        differ = {k: (v, saved[k]) for k, v in asdict(config).items() if k != "epochs" and saved[k] != v}
        if differ:
            settings = ", ".join(f"{k} {new!r} (checkpoint: {old!r})" for k, (new, old) in differ.items())
            raise SystemExit(f"error: {out / CHECKPOINT} was written with other settings: {settings}")
        # checkpoints from before the network was recorded in them: results.json of the same epoch has it
        recorded = state.get("architecture") or (read_results(out / RESULTS).get("architecture") if (out / RESULTS).is_file() else None)
        if change := network_change(recorded, config.rule, arch_name):
            raise SystemExit(f"error: {out / CHECKPOINT} does not hold today's {arch_name} network ({change}); delete it to train this seed from the start")
        try:
            net.load_state_dict(state["model"])
        except RuntimeError as err:  # the same settings on data of another shape (classes, image size)
            raise SystemExit(f"error: {out / CHECKPOINT} holds a network of other shapes than {config.dataset} gives now (its classes or image size changed?)") from err
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        history, start_epoch, wall = state["history"], state["epoch"], state["wall_time"]
        if start_epoch > config.epochs:
            raise SystemExit(f"error: {out / CHECKPOINT} has {start_epoch} epochs done, more than --epochs {config.epochs}: give --epochs {start_epoch} or more")
        offset = state.get("offset", offset).to(device)  # checkpoints from before the offset: it starts at zero
    writer = None
    if tensorboard is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(tensorboard))

    for epoch in range(start_epoch, config.epochs):
        for group, mult in zip(optimizer.param_groups, lr_mult):
            group["lr"] = learning_rate(config, epoch) * mult
        started = time.perf_counter()
        order = torch.randperm(len(x)).to(device)
        bar = tqdm(range(0, len(x), config.batch_size), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False)
        loss_sum = correct = seen = 0
        net.train()
        for i in bar:
            batch = order[i : i + config.batch_size]
            if hasattr(net.rule, "per_example_loss"):  # a rule that can compare losses (np's exact estimator)
                net.rule.per_example_loss = functools.partial(per_example_loss, labels=y[batch], center=center)
            out_y = net(x[batch])
            loss = one_vs_all_loss(out_y, y[batch], center)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(batch)
            if center:
                offset.lerp_(batch_residual_mean(out_y.detach(), y[batch]), OFFSET_MOMENTUM)
            correct += ((out_y.detach() - offset).argmax(1) == y[batch]).sum().item()
            seen += len(batch)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
        net.eval()
        def probe_loss():
            return one_vs_all_loss(net(x[probe]), y[probe], center)

        record = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / seen,
            "train_accuracy": correct / seen,
            "test_accuracy": accuracy(net, x_test, y_test, offset),
            "surrogate_gradient": surrogate_gradients(net, probe_loss),
            "alignment_to_bp": hidden_error_alignment(net, probe_loss),
            "weights": weight_stats(net),
        }
        output_error = list(record["surrogate_gradient"].values())[-1]
        if output_error == 0.0 and record["train_accuracy"] < 1.0:
            # every output unit saturated on every probe image: no rule has an error to learn from again
            raise FloatingPointError(
                f"after epoch {epoch + 1} the output layer's error is exactly zero on every probe image (its units saturated), "
                f"at train accuracy {record['train_accuracy']:.3f}; --lr {config.lr:g} is likely too large"
            )
        wall += time.perf_counter() - started
        record["wall_time"] = wall  # training, evaluation and diagnostics of every epoch so far
        history.append(record)
        if progress:
            tqdm.write(
                f"epoch {epoch + 1}/{config.epochs}: loss {record['train_loss']:.4f}, train {record['train_accuracy']:.4f}, "
                f"test {record['test_accuracy']:.4f}, {wall:.0f}s"
            )
        if writer is not None:
            log_scalars(writer, record)
        out.mkdir(parents=True, exist_ok=True)  # only now: a run stopped in its first epoch leaves no empty folder
        (out / RESULTS).write_text(json.dumps(results_record(config, network, history, wall), indent=1))
        torch.save(
            {
                "config": asdict(config),
                "architecture": network,
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": torch.get_rng_state(),
                "history": history,
                "offset": offset,
                "epoch": epoch + 1,
                "wall_time": wall,
            },
            out / CHECKPOINT,
        )
    if writer is not None:
        writer.close()
    results = results_record(config, network, history, wall)
    if start_epoch == config.epochs:  # a finished checkpoint: its results.json may be gone, or older than the record
        (out / RESULTS).write_text(json.dumps(results, indent=1))
    return results


def results_record(config: Config, network: dict, history: list[dict], wall: float) -> dict:
    """What ``results.json`` holds: the config, the network (its :func:`network_record`: what "auto"
    resolved to and the rates each layer trained at), the per-epoch history, the final test accuracy
    and the wall time."""
    return {
        "config": asdict(config),
        "architecture": network,
        "history": history,
        "final_test_accuracy": history[-1]["test_accuracy"],
        "wall_time": wall,
    }


def log_scalars(writer, record: dict) -> None:
    step = record["epoch"]
    for key in ("train_loss", "train_accuracy", "test_accuracy"):
        writer.add_scalar(key, record[key], step)
    for key in ("surrogate_gradient", "alignment_to_bp"):
        for layer, value in record[key].items():
            writer.add_scalar(f"{key}/{layer}", value, step)
    for layer, stats in record["weights"].items():
        for key, value in stats.items():
            writer.add_scalar(f"{key}/{layer}", value, step)
