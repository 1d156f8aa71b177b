"""``python -m classify mnist|fashion-mnist|kmnist|cifar10 [options]``, ``python -m classify folder
PATH [options]``, ``python -m classify report DATASET [options]``."""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from sb3_ed import retain_freed_memory
from sb3_ed.cli import output_folder, positive, seed
from sb3_ed.rules import RULES

from . import data
from .models import ARCHITECTURES, VARIANTS
from .train import Config

DEFAULTS = Config()
DATASETS = tuple(data.SPECS)


def rule_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE``, the value read as a Python literal where it is one (``0.01``, ``True``) and as
    a string otherwise (``exact``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def data_root(text: str) -> str:
    """An argparse ``type``: :func:`~sb3_ed.cli.output_folder`'s checks (downloads, extracted archives
    and the image cache are written there), the path kept as text, as the run's config records it."""
    return str(output_folder(text))


def common_arguments() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--arch",
        choices=["auto", *ARCHITECTURES],
        default=DEFAULTS.arch,
        help="network: mlp (the paper's MNIST network), conv (its CIFAR-10 network), auto: conv for colour images, mlp for grey ones (default: %(default)s)",
    )
    common.add_argument("--epochs", type=positive(int), default=DEFAULTS.epochs, help="epochs (default: %(default)s)")
    common.add_argument("--batch-size", type=positive(int), default=DEFAULTS.batch_size, help="mini-batch size (default: %(default)s)")
    common.add_argument(
        "--lr", type=positive(float), default=DEFAULTS.lr, help="SGD learning rate, times each layer's multiplier (bp's hidden layers have larger ones: docs/classify.md) (default: %(default)s)"
    )
    common.add_argument("--data-dir", type=data_root, default=DEFAULTS.data_dir, help="torchvision data root: downloads go here; offline, files already here are used (default: %(default)s)")
    common.add_argument("--device", choices=["auto", "cpu", "cuda"], default=DEFAULTS.device, help="auto: cuda when available (default: %(default)s)")
    common.add_argument("--train-subset", type=positive(int), default=0, metavar="N", help="train on N training images only, the same random N in every run (default: all)")
    common.add_argument("--tensorboard", type=output_folder, metavar="DIR", help="also log per-epoch scalars (accuracy, diagnostics) for TensorBoard under DIR")
    common.add_argument("--no-progress", action="store_true", help="no progress bars")
    return common


def rule_arguments() -> argparse.ArgumentParser:
    """The rule and its options: for the training commands only, since the report runs its fixed
    entries, each with its own rule (there they would be ignored or refused by the other rules)."""
    rules = argparse.ArgumentParser(add_help=False)
    rules.add_argument("--rule", choices=list(RULES), default=DEFAULTS.rule, help="learning rule (default: %(default)s)")
    rules.add_argument(
        "--rule-option",
        action="append",
        type=rule_option,
        default=[],
        dest="rule_options",
        metavar="KEY=VALUE",
        help="a keyword argument of the rule, repeatable: e.g. --rule-option estimator=exact --rule-option sigma=0.01 for np (see its docs; classify gives np normalize=True unless told otherwise)",
    )
    return rules


def parser() -> argparse.ArgumentParser:
    common, rules = common_arguments(), rule_arguments()
    top = argparse.ArgumentParser(
        prog="python -m classify",
        description="Train dual-stream Dale classifiers with ED, DFA or BP on MNIST-format sets, CIFAR-10 or any folder of labelled images, or run the reproduction report.",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="{" + ",".join([*DATASETS, "folder", "report"]) + "}")
    folder_help = f"an image folder laid out as {data.LAYOUT}, or an archive of one ({', '.join(data.ARCHIVE_SUFFIXES)})"
    for name in [*DATASETS, "folder"]:
        title = "a folder of labelled images" if name == "folder" else name
        sub = commands.add_parser(name, parents=[rules, common], help=f"train on {title}", description=f"Train a dual-stream Dale classifier on {title}.")
        if name == "folder":
            sub.add_argument("path", help=folder_help)
        variants = "proposed: all three innovations; seed: none; no-center, sym-init, uniform-width: one switched off"
        sub.add_argument("--variant", choices=list(VARIANTS), default=DEFAULTS.variant, help=f"{variants} (default: %(default)s)")
        seeds = sub.add_mutually_exclusive_group()
        seeds.add_argument("--seed", type=seed, default=DEFAULTS.seed, help="seed of a single run, 0 to 2**32 - 1 (default: %(default)s)")
        seeds.add_argument("--seeds", type=positive(int), metavar="N", help="run seeds 0..N-1, one after another")
        sub.add_argument("--out", type=output_folder, help="output folder; each seed writes results.json and checkpoint.pt into OUT/seed<k> (default: runs/<dataset>_<rule>_<variant>)")
        sub.add_argument("--resume", action="store_true", help="continue each seed from its checkpoint in OUT")
    report = commands.add_parser(
        "report",
        parents=[common],
        help="the six variants, np and BP over seeds: table and plots",
        description="Run the paper's six variants (proposed, dfa, seed, no-center, sym-init, uniform-width), learned feedback (np) "
        "and BP on the proposed network over seeds and write report.md and PNG plots.",
    )
    report.add_argument("dataset", metavar="DATASET", help=f"{', '.join(DATASETS)}, or {folder_help}")
    report.add_argument("--seeds", type=positive(int), default=5, metavar="N", help="seeds 0..N-1 for each variant (default: %(default)s)")
    report.add_argument("--out", type=output_folder, help="report folder; finished runs in it are reused (default: runs/report_<dataset>)")
    report.add_argument("--report-only", action="store_true", help="write the report from the finished runs in OUT, train nothing")
    report.add_argument(
        "--compare-with",
        type=Path,
        metavar="DIR",
        help="another report's folder (e.g. the MNIST report's): the order of its ablations beside this one's (reversed, the same, changed)",
    )
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    retain_freed_memory()
    try:
        if args.command == "report":
            from .report import report

            report(args)
            return 0
        from .train import train

        config = Config.from_args(args, dataset=args.path if args.command == "folder" else args.command)
        out = args.out or Path("runs") / f"{data.short_name(config.dataset)}_{config.rule}_{config.variant}"
        seeds = range(args.seeds) if args.seeds else [args.seed]
        for seed in seeds:
            config.seed = seed
            tensorboard = args.tensorboard / f"seed{seed}" if args.tensorboard else None
            result = train(config, out / f"seed{seed}", args.resume, tensorboard, progress=not args.no_progress)
            print(
                f"{data.short_name(config.dataset)} {config.rule} {config.variant} seed {seed}: test accuracy "
                f"{result['final_test_accuracy']:.4f} after {len(result['history'])} epochs, "
                f"{result['wall_time']:.0f}s -> {out / f'seed{seed}'}"
            )
    except data.DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except FloatingPointError as err:  # a run that diverged (the rules refuse non-finite errors)
        print(f"error: training diverged: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
