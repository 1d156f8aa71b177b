"""The reproduction report: the paper's six variants, learned feedback (np) and BP over seeds, a Markdown table with Welch's
t-tests, plots."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sb3_ed.reporting import format_p, plot_band, welch_p, welch_table

from .data import short_name
from .train import CHECKPOINT, RESULTS, Config, finished, finished_results, read_results, train, unlike

# name -> (rule, variant): proposed ED, DFA on the same network, seed ED, the three single ablations,
# learned direct feedback (node perturbation) and exact backprop through the same network
REPORT_ENTRIES = {
    "proposed": ("ed", "proposed"),
    "dfa": ("dfa", "proposed"),
    "seed": ("ed", "seed"),
    "no-center": ("ed", "no-center"),
    "sym-init": ("ed", "sym-init"),
    "uniform-width": ("ed", "uniform-width"),
    "np": ("np", "proposed"),
    "bp": ("bp", "proposed"),
}


def run_all(args: argparse.Namespace, out: Path) -> dict[str, list[dict]]:
    runs = {name: [] for name in REPORT_ENTRIES}
    seeds = range(args.seeds)
    if args.report_only:  # the seeds with folders only: --seeds may be far larger than what ran
        seeds = sorted({int(p.name[4:]) for p in out.glob("*/seed*") if p.name[4:].isdigit() and int(p.name[4:]) < args.seeds})
    # seed by seed: a report stopped half-way has every entry at the seeds done so far
    for seed in seeds:
        for name, (rule, variant) in REPORT_ENTRIES.items():
            config = Config.from_args(args, rule=rule, variant=variant, seed=seed)
            folder = out / name / f"seed{seed}"
            result = finished_results(config, folder)
            if result is None and args.report_only:
                continue
            if result is None:
                tensorboard = args.tensorboard / name / f"seed{seed}" if args.tensorboard else None
                result = train(config, folder, (folder / CHECKPOINT).is_file(), tensorboard, progress=not args.no_progress)
            print(f"{name} seed {seed}: test accuracy {result['final_test_accuracy']:.4f}, {result['wall_time']:.0f}s")
            runs[name].append(result)
    return {name: results for name, results in runs.items() if results}


ABLATIONS = ("no-center", "uniform-width", "sym-init")


def load_finished(folder: Path) -> dict[str, list[dict]]:
    """The finished runs (every epoch done) of another report's folder, per entry, for
    ``--compare-with``.

    :raises SystemExit: ``folder`` holds no finished run of proposed ED
    """
    runs = {}
    for name in REPORT_ENTRIES:
        for path in sorted((folder / name).glob("seed*/results.json")):
            result = read_results(path)
            if finished(result):
                runs.setdefault(name, []).append(result)
    if "proposed" not in runs:
        raise SystemExit(f"error: --compare-with {folder}: no finished run of proposed ED in it (expected {folder}/proposed/seed<k>/results.json)")
    return runs


def ablation_ordering(runs: dict[str, list[dict]], other: dict[str, list[dict]] | None = None, other_name: str = "") -> str:
    """Markdown: the paper's single ablations from the most to the least destructive (Δ: mean test
    accuracy minus proposed ED's, in points, as in the main table, with Welch's p), beside their
    order in ``other`` (another dataset's report) and whether the order is the same, reversed or
    changed."""

    def deltas(group):
        base = [r["final_test_accuracy"] * 100 for r in group["proposed"]]
        found = {}
        for name in ABLATIONS:
            if name in group:
                values = [r["final_test_accuracy"] * 100 for r in group[name]]
                found[name] = (np.mean(values) - np.mean(base), welch_p(values, base), values, values == base)
        return dict(sorted(found.items(), key=lambda item: item[1][0]))

    here = deltas(runs)
    if not here:
        return "## Ablation ordering\n\nNo ablation finished yet."
    theirs = deltas(other) if other is not None else {}
    lines = ["## Ablation ordering", "", "The single ablations, most destructive first (Δ: the mean test accuracy minus proposed ED's, in points):", ""]
    head = ["rank", "ablation", "Δ here (Welch p)", "per seed here (%)"] + ([f"Δ in {other_name} (Welch p)", f"rank in {other_name}"] if other is not None else [])
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for rank, (name, (delta, p, values, same)) in enumerate(here.items(), 1):
        cells = [str(rank), name, f"{delta:+.2f} ({format_p(p)})" + (", the same runs as proposed" if same else ""), ", ".join(f"{v:.1f}" for v in values)]
        if other is not None:
            cells += [f"{theirs[name][0]:+.2f} ({format_p(theirs[name][1])})", str(list(theirs).index(name) + 1)] if name in theirs else ["not run", "—"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if other is not None:
        common = [name for name in here if name in theirs]
        order_there = [name for name in theirs if name in common]
        if len(common) < 2:
            verdict = "too few ablations finished in both to compare their order"
        elif order_there == common:
            verdict = "the same order in both"
        elif order_there == common[::-1]:
            verdict = "the order is **reversed**"
        else:
            verdict = "the order **changed** (not a plain reversal)"
        lines.append(f"Against {other_name}: {verdict} (here: {' > '.join(common)}; there: {' > '.join(order_there)}).")
    lines.append(
        "An ablation identical to proposed ED in every seed is the same network on this dataset (e.g. sym-init where no hidden "
        "layer has a dual-stream input). Two drops whose difference is within the seeds' spread (Welch p above 0.05, "
        "or n/a with one seed) do not order the ablations reliably."
    )
    return "\n".join(lines)


def table(runs: dict[str, list[dict]]) -> str:
    accuracies = {name: [r["final_test_accuracy"] * 100 for r in results] for name, results in runs.items()}
    extra = {
        "rule": {name: REPORT_ENTRIES[name][0] for name in runs},
        "wall time / run (s)": {name: f"{np.mean([r['wall_time'] for r in results]):.0f}" for name, results in runs.items()},
    }
    return welch_table(accuracies, "proposed", label="variant", value_name="test accuracy %", extra=extra)


def plot_curves(runs, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, results in runs.items():
        acc = [[h["test_accuracy"] * 100 for h in r["history"]] for r in results]
        plot_band(ax, np.arange(1, max(map(len, acc)) + 1), acc, name)
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy (mean; band: min-max over seeds)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_bars(runs, path: Path) -> None:
    names = list(runs)
    acc = [np.array([r["final_test_accuracy"] * 100 for r in runs[n]]) for n in names]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.bar(names, [a.mean() for a in acc], yerr=[a.std(ddof=1) if len(a) > 1 else 0 for a in acc], capsize=4)
    low = min(a.min() for a in acc)
    ax.set_ylim(max(0, low - 5), 100)
    ax.set(ylabel="final test accuracy (%)", title="Ablations (mean ± std over seeds)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_alignment(runs, path: Path) -> None:
    """Cosine of each rule's hidden error with backprop's dL/dh, per hidden layer, over training, for
    the entries that share the proposed network (the rules compared on one network)."""
    same_net = {n: r for n, r in runs.items() if REPORT_ENTRIES[n][1] == "proposed" and all("alignment_to_bp" in h for x in r for h in x["history"])}
    layers = sorted({k for r in same_net.values() for x in r for h in x["history"] for k in h["alignment_to_bp"]})
    fig, axes = plt.subplots(1, max(1, len(layers)), figsize=(4.5 * max(1, len(layers)), 4), squeeze=False)
    for ax, layer in zip(axes[0], layers):
        for name, results in same_net.items():
            cos = [[h["alignment_to_bp"][layer] for h in r["history"]] for r in results]
            plot_band(ax, np.arange(1, max(map(len, cos)) + 1), cos, f"{name} ({REPORT_ENTRIES[name][0]})")
        ax.set(xlabel="epoch", ylabel="cosine(hidden error, BP's dL/dh)", title=layer, ylim=(-0.1, 1.05))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_weights(runs, path: Path, variant: str = "proposed") -> None:
    finals = [r["history"][-1]["weights"] for r in runs[variant]]
    layers = list(finals[0])
    blocks = [k for k in finals[0][layers[0]] if k.startswith("floor_")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    x = np.arange(len(layers))
    left.bar(x, [np.mean([f[layer]["ei_ratio"] for f in finals]) for layer in layers])
    left.set(xticks=x, xticklabels=layers, ylabel="mean E / mean I weight", title=f"E/I weight ratio per layer ({variant})")
    width = 0.8 / len(blocks)
    for i, block in enumerate(blocks):
        right.bar(x + i * width, [np.mean([f[layer][block] for f in finals]) for layer in layers], width, label=block[6:])
    right.set(xticks=x + 0.4 - width / 2, xticklabels=layers, ylabel="fraction at floor", title="Weights at the floor")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(args: argparse.Namespace) -> None:
    out = args.out or Path("runs") / f"report_{short_name(args.dataset)}"
    if not args.report_only:
        out.mkdir(parents=True, exist_ok=True)
    other = load_finished(args.compare_with) if args.compare_with else None
    runs = run_all(args, out)
    if "proposed" not in runs:
        first = out / "proposed" / "seed0" / RESULTS
        found = " (its seeds come first)"
        if first.is_file():
            wanted = Config.from_args(args, rule="ed", variant="proposed", seed=0)
            found = f": {first.parent} holds a run of other settings ({unlike(wanted, read_results(first))})"
        raise SystemExit(f"error: no finished run of proposed ED with these settings in {out} yet{found}")
    plots = (("accuracy_curves.png", plot_curves), ("ablation_bars.png", plot_bars), ("weights.png", plot_weights), ("alignment.png", plot_alignment))
    for name, draw in plots:
        draw(runs, out / name)
    config = runs["proposed"][0]["config"]
    missing = [f"{name} ({args.seeds - len(runs.get(name, []))})" for name in REPORT_ENTRIES if len(runs.get(name, [])) < args.seeds]
    text = "\n".join(
        [
            f"# {short_name(args.dataset)}: the six variants, np and BP over {args.seeds} seed(s)",
            "",
            *([f"**Partial**: runs not finished yet, per entry: {', '.join(missing)}. The same command finishes them.", ""] if missing else []),
            f"Command: `python -m classify report {args.dataset} --seeds {args.seeds} --epochs {args.epochs} "
            f"--batch-size {args.batch_size} --lr {args.lr}"
            + (f" --train-subset {args.train_subset}" if args.train_subset else "")
            + "`",
            "",
            table(runs),
            "",
            "Welch's t-test of each variant's final test accuracies against proposed ED's.",
            "",
            "![accuracy curves](accuracy_curves.png) ![ablations](ablation_bars.png) ![weights](weights.png)",
            "",
            "![alignment of the hidden errors with backprop](alignment.png)",
            "",
            ablation_ordering(runs, other, str(args.compare_with) if other else ""),
            "",
            f"Configuration (per run): `{json.dumps({k: v for k, v in config.items() if k not in ('seed', 'rule', 'variant')})}`",
            "",
            # each layer's rate differs by rule (bp's hidden layers), so proposed ED's stands for the network
            f"Network (proposed ED's; bp scales the hidden layers' multipliers): `{json.dumps(runs['proposed'][0]['architecture'])}`",
        ]
    )
    (out / "report.md").write_text(text + "\n")
    print(text)
    print(f"report written to {out / 'report.md'}")
