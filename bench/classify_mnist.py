"""The MNIST bars: the default `python -m classify mnist` run for proposed ED, DFA and seed ED.

Each run is the CLI's default configuration (only --rule / --variant change), one after another
on this machine. Prints each command, its final test accuracy and wall time, and the bars:
proposed ED >= 96.7 % within 60 minutes, DFA >= 97.6 %, seed ED below proposed ED.

    python bench/classify_mnist.py --data-dir data            # about 20 minutes on 2 CPU cores
"""

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from classify.__main__ import main as classify

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--data-dir", default="data", help="torchvision data root holding MNIST/raw")
parser.add_argument("--out", default="runs/bench_mnist", help="where the runs write their results")
parser.add_argument("--runs", nargs="+", default=["ed/proposed", "dfa/proposed", "ed/seed"], help="rule/variant pairs to run")
args = parser.parse_args()

results = {}
for run in args.runs:
    rule, variant = run.split("/")
    argv = ["mnist", "--rule", rule, "--variant", variant, "--data-dir", args.data_dir, "--out", f"{args.out}/{rule}_{variant}", "--no-progress"]
    print("$ python -m classify " + shlex.join(argv), flush=True)
    started = time.perf_counter()
    if classify(argv) != 0:
        sys.exit(1)
    minutes = (time.perf_counter() - started) / 60
    final = json.loads((Path(args.out) / f"{rule}_{variant}" / "seed0" / "results.json").read_text())["final_test_accuracy"]
    results[run] = (final * 100, minutes)
    print(f"{run}: test accuracy {final * 100:.2f} %, {minutes:.1f} min (process wall time, data loading included)", flush=True)

bars = {"ed/proposed": 96.7, "dfa/proposed": 97.6}
for run, (accuracy, minutes) in results.items():
    if run in bars:
        ok = accuracy >= bars[run] and (run != "ed/proposed" or minutes <= 60)
        print(f"bar {run}: {accuracy:.2f} % >= {bars[run]} %" + (f" in {minutes:.1f} <= 60 min" if run == "ed/proposed" else "") + f": {'met' if ok else 'NOT met'}")
if "ed/seed" in results and "ed/proposed" in results:
    below = results["ed/seed"][0] < results["ed/proposed"][0]
    print(f"seed ED {results['ed/seed'][0]:.2f} % below proposed ED {results['ed/proposed'][0]:.2f} %: {'yes' if below else 'NO'}")
