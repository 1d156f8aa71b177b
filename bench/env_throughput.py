"""Steps/s of the JAX VecEnvs (random actions, auto-reset on, SB3's interface) vs the raw jitted,
vmapped env step without resets, for Craftax-Symbolic-v1 and Brax halfcheetah.

The two run in alternating blocks within one process; compile time (the first call) is reported
apart. The raw step returns the observations and rewards it computed (were they dropped, XLA would
skip computing them, and the baseline would not be an env step). It gets its random actions on the
device; the VecEnv gets them from numpy and returns numpy observations, rewards, dones and infos,
as SB3 uses it.

    python bench/env_throughput.py --num-envs 256     # last line: vecenv/raw throughput ratio (worst): X.XX
"""

import argparse
import time

import jax
import numpy as np
from brax import envs as brax_envs
from craftax.craftax_env import make_craftax_env_from_name

from sb3_ed.envs import BraxVecEnv, CraftaxVecEnv

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--num-envs", type=int, default=256)
parser.add_argument("--blocks", type=int, default=5, help="timed blocks of each (after one warm-up block)")
parser.add_argument("--steps", type=int, default=40, help="steps per block")
parser.add_argument("--brax-backend", default="generalized")
args = parser.parse_args()
n = args.num_envs


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def craftax_raw():
    env = make_craftax_env_from_name("Craftax-Symbolic-v1", auto_reset=False)
    params = env.default_params
    _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(0), n), params)

    @jax.jit
    def step(state, key):
        k_act, k_step = jax.random.split(key)
        actions = jax.random.randint(k_act, (n,), 0, env.action_space(params).n)
        obs, state, reward, _, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(jax.random.split(k_step, n), state, actions, params)
        return state, (obs, reward)

    return step, state


def brax_raw():
    env = brax_envs.get_environment("halfcheetah", backend=args.brax_backend)
    state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), n))

    @jax.jit
    def step(state, key):
        actions = jax.random.uniform(key, (n, env.action_size), minval=-1, maxval=1)
        state = jax.vmap(env.step)(state, actions)
        return state, (state.obs, state.reward)

    return step, state


def run_raw(step, carry, key, steps):
    for _ in range(steps):
        key, sub = jax.random.split(key)
        carry, out = step(carry, sub)
        jax.block_until_ready(out)
    return carry, key


def run_vec(env, rng, steps):
    for _ in range(steps):
        if env.action_space.shape == ():
            actions = rng.integers(0, env.action_space.n, env.num_envs)
        else:
            actions = rng.uniform(-1, 1, (env.num_envs, *env.action_space.shape)).astype(np.float32)
        env.step(actions)


cases = {
    "Craftax-Symbolic-v1": (craftax_raw, lambda: CraftaxVecEnv(n, seed=0)),
    "Brax halfcheetah": (brax_raw, lambda: BraxVecEnv("halfcheetah", n, backend=args.brax_backend, seed=0)),
}
ratios = {}
for name, (make_raw, make_vec) in cases.items():
    step, carry = make_raw()
    key = jax.random.PRNGKey(1)
    compile_raw = timed(run_raw, step, carry, key, 1)
    env = make_vec()
    rng = np.random.default_rng(0)
    compile_vec = timed(env.reset) + timed(run_vec, env, rng, 1)
    raw_time = vec_time = 0.0
    for block in range(args.blocks + 1):
        start = time.perf_counter()
        carry, key = run_raw(step, carry, key, args.steps)
        raw_seconds = time.perf_counter() - start
        vec_seconds = timed(run_vec, env, rng, args.steps)
        if block:
            raw_time, vec_time = raw_time + raw_seconds, vec_time + vec_seconds
    total = args.blocks * args.steps * n
    ratios[name] = (total / vec_time) / (total / raw_time)
    print(
        f"{name}, {n} envs on {jax.devices()[0].platform}: vecenv {total / vec_time:,.0f} steps/s, raw {total / raw_time:,.0f} steps/s, "
        f"ratio {ratios[name]:.2f}; compile: vecenv {compile_vec:.1f}s (reset + step), raw step {compile_raw:.1f}s",
        flush=True,
    )
print(f"vecenv/raw throughput ratio (worst): {min(ratios.values()):.2f}")
