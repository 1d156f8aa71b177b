"""One training step of the CIFAR-10 network (``classify``'s ``conv`` architecture, batch 64), ED vs
BP, with DFA beside them, on CPU.

A step is what ``python -m classify`` does per mini-batch: forward, the batch-centred one-vs-all
loss, backward, SGD with the per-layer learning rates, the Dale clamp. The rules run interleaved in
one process so that all see the same machine state; the median of many steps is reported, with the
images per second and the time an ED epoch of 50,000 images takes at that rate.

    python bench/conv_step_time.py     # last line: conv ed/bp step time ratio: X.XX, ED N images/s
"""

import argparse
import statistics
import time

import torch

from classify import models
from classify.train import Config, one_vs_all_loss
from sb3_ed import retain_freed_memory

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--steps", type=int, default=40, help="timed steps per rule")
parser.add_argument("--warmup", type=int, default=3, help="untimed steps per rule first")
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--threads", type=int, default=torch.get_num_threads())
args = parser.parse_args()
RULES = ("ed", "bp", "dfa")

torch.set_num_threads(args.threads)
retain_freed_memory()
torch.manual_seed(0)
x, y = torch.rand(args.batch_size, 3, 32, 32), torch.randint(0, 10, (args.batch_size,))
arch = models.ARCHITECTURES["conv"]
models_ = {}
for rule in RULES:
    net = models.build("conv", (3, 32, 32), 10, rule, "proposed")
    models.data_init(net, x)
    lr = Config().lr  # classify's default
    groups = [{"params": p, "lr": lr * m} for p, m in zip(models.layer_groups(net), arch.lr_multipliers(rule))]
    models_[rule] = (net, torch.optim.SGD(groups, lr=lr))


def step(net, optimizer):
    loss = one_vs_all_loss(net(x), y, center=True)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


times = {rule: [] for rule in RULES}
for i in range(args.warmup + args.steps):
    for rule in RULES:
        start = time.perf_counter()
        step(*models_[rule])
        if i >= args.warmup:
            times[rule].append(time.perf_counter() - start)
median = {rule: statistics.median(t) for rule, t in times.items()}
for rule in RULES:
    print(f"{rule}: median step {median[rule] * 1e3:.1f} ms over {args.steps} steps, {args.batch_size / median[rule]:.0f} images/s")
images_per_s = args.batch_size / median["ed"]
print(f"threads: {args.threads}, batch: {args.batch_size}; an ED epoch of 50,000 images at this rate: {50_000 / images_per_s / 60:.2f} min")
print(f"conv ed/bp step time ratio: {median['ed'] / median['bp']:.2f}, ED {images_per_s:.0f} images/s")
