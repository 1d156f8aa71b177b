"""One training step of a 784-1000-1000-1000-10 dual-stream sigmoid MLP, ED vs BP, on CPU.

A step is forward + backward + SGD step + the Dale clamp (the optimizer hook). The two rules run
interleaved in one process so that both see the same machine state; the median of many steps is
reported. Peak memory is measured in a fresh child process per rule: the growth of its peak
resident set over building the model and a few steps (the CPU allocator keeps no statistics).
Like the training commands, it first makes malloc keep freed memory (``sb3_ed.retain_freed_memory``);
``--default-malloc`` measures with glibc's defaults instead.

    python bench/step_time.py            # last line: ed/bp step time ratio: X.XX
"""

import argparse
import multiprocessing as mp
import statistics
import time

import torch
import torch.nn.functional as F

from sb3_ed import dale_mlp, retain_freed_memory

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--steps", type=int, default=60, help="timed steps per rule")
parser.add_argument("--warmup", type=int, default=5, help="untimed steps per rule first")
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--threads", type=int, default=torch.get_num_threads())
parser.add_argument("--default-malloc", action="store_true", help="leave glibc's malloc settings as they are")
args = parser.parse_args()
RULES = ("ed", "bp")


def make(rule):
    torch.manual_seed(0)
    net = dale_mlp(784, [1000, 1000, 1000], 10, rule=rule, output_activation="sigmoid")
    return net, torch.optim.SGD(net.parameters(), lr=1e-3)


def step(net, optimizer, x, t):
    optimizer.zero_grad(set_to_none=True)
    F.mse_loss(net(x), t).backward()
    optimizer.step()


def set_up():
    """Threads and malloc as asked; True when freed memory is retained."""
    torch.set_num_threads(args.threads)
    return not args.default_malloc and retain_freed_memory()


def rss_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field))


def peak_rss_growth(rule, queue):
    set_up()
    x, t = torch.rand(args.batch_size, 784), torch.rand(args.batch_size, 10)
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets the peak (VmHWM) to the current resident set: import peaks don't count
    before = rss_kib("VmRSS:")
    net, optimizer = make(rule)
    for _ in range(5):
        step(net, optimizer, x, t)
    queue.put((rss_kib("VmHWM:") - before) / 1024)


if __name__ == "__main__":
    retained = set_up()
    x, t = torch.rand(args.batch_size, 784), torch.rand(args.batch_size, 10)
    models = {rule: make(rule) for rule in RULES}
    times = {rule: [] for rule in RULES}
    for i in range(args.warmup + args.steps):
        for rule in RULES:
            start = time.perf_counter()
            step(*models[rule], x, t)
            if i >= args.warmup:
                times[rule].append(time.perf_counter() - start)

    context = mp.get_context("spawn")
    for rule in RULES:
        queue = context.Queue()
        child = context.Process(target=peak_rss_growth, args=(rule, queue))
        child.start()
        peak = queue.get()
        child.join()
        median = statistics.median(times[rule])
        print(f"{rule}: median step {median * 1e3:.2f} ms over {args.steps} steps, peak memory +{peak:.0f} MiB")
    ratio = statistics.median(times["ed"]) / statistics.median(times["bp"])
    print(f"threads: {args.threads}, batch: {args.batch_size}, freed memory retained: {retained}")
    print(f"ed/bp step time ratio: {ratio:.2f}")
