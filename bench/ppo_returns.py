"""Final returns on HalfCheetah-v5: ED-PPO vs DaleBP-PPO (same hyperparameters) vs SB3 MlpPolicy PPO.

Every run is `python -m sb3_ed.train` with zoo_configs' settings (1M steps), 3 seeds per
algorithm, one after another. The final return of a run is the mean episode return of its last
evaluation (10 deterministic episodes, every --eval-freq steps). Writes a Markdown table (mean ±
std, Welch's t-test against ED-PPO) and a learning-curve PNG into --out, and checks the bars:
ED-PPO >= 0.9 x DaleBP-PPO and >= 1500.

    python bench/ppo_returns.py --out docs/results/ppo_returns      # about 1.5 hours on 2 CPU cores

or, in about 45 minutes, two processes of one thread each, then the table from the finished runs:

    python bench/ppo_returns.py --algos ed_ppo ppo --threads 1 &
    python bench/ppo_returns.py --algos dale_bp_ppo --threads 1
    wait
    python bench/ppo_returns.py --out docs/results/ppo_returns

Runs that already finished (their final model exists) are read, not repeated, so the
algorithms can be split over processes (``--algos``) and the table made by one last call.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from sb3_ed.train import main as zoo_train

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--env", default="HalfCheetah-v5")
parser.add_argument("--algos", nargs="+", default=["ed_ppo", "dale_bp_ppo", "ppo"])
parser.add_argument("--seeds", type=int, default=3)
parser.add_argument("--steps", type=int, default=1_000_000)
parser.add_argument("--eval-freq", type=int, default=50_000, help="env steps between evaluations")
parser.add_argument("--device", default="auto")
parser.add_argument("--threads", type=int, default=-1, help="torch threads per run (-1: torch's default)")
parser.add_argument("--logs", default="runs/ppo_returns", help="rl_zoo3 log folder")
parser.add_argument("--out", type=Path, default=Path("docs/results/ppo_returns"))
args = parser.parse_args()

curves = {}
for algo in args.algos:
    curves[algo] = []
    for seed in range(args.seeds):
        # One rl_zoo3 log folder per seed, so that each run lands in a known <algo>/<env>_1.
        logs = Path(args.logs) / f"seed{seed}"
        folder = logs / algo / f"{args.env}_1"
        # evaluations.npz is rewritten at every evaluation; the final model marks a finished run
        if not (folder / f"{args.env}.zip").is_file():
            zoo_train(
                ["--algo", algo, "--env", args.env, "-n", str(args.steps), "--seed", str(seed), "-f", str(logs),
                 "--eval-freq", str(args.eval_freq), "--eval-episodes", "10", "--device", args.device,
                 "--num-threads", str(args.threads)]
            )
        evaluations = np.load(folder / "evaluations.npz")
        curves[algo].append((evaluations["timesteps"], evaluations["results"].mean(axis=1)))

final = {algo: np.array([returns[-1] for _, returns in runs]) for algo, runs in curves.items()}
base = final[args.algos[0]]
lines = ["| algorithm | final return (mean ± std) | Welch p vs " + args.algos[0] + " | seeds |", "| --- | --- | --- | --- |"]
for algo, values in final.items():
    p = "—" if algo == args.algos[0] else f"{stats.ttest_ind(values, base, equal_var=False).pvalue:.2g}"
    lines.append(f"| {algo} | {values.mean():.0f} ± {values.std(ddof=1):.0f} | {p} | {len(values)} |")
args.out.mkdir(parents=True, exist_ok=True)
(args.out / "table.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))

fig, ax = plt.subplots(figsize=(7, 4.5))
for algo, runs in curves.items():
    steps = runs[0][0]
    returns = np.array([r for _, r in runs])
    ax.plot(steps, returns.mean(0), label=algo)
    ax.fill_between(steps, returns.min(0), returns.max(0), alpha=0.2)
ax.set(xlabel="env steps", ylabel="evaluation return", title=f"{args.env} (mean; band: min-max over {args.seeds} seeds)")
ax.legend()
fig.tight_layout()
fig.savefig(args.out / "learning_curves.png", dpi=120)

if {"ed_ppo", "dale_bp_ppo"} <= set(final):
    ed, bp = final["ed_ppo"].mean(), final["dale_bp_ppo"].mean()
    print(f"bar: ED-PPO {ed:.0f} >= 0.9 x DaleBP-PPO {bp:.0f} = {0.9 * bp:.0f}: {'met' if ed >= 0.9 * bp else 'NOT met'}")
    print(f"bar: ED-PPO {ed:.0f} >= 1500: {'met' if ed >= 1500 else 'NOT met'}")
