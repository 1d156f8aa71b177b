"""Env-steps/s of PPO.learn() on HalfCheetah-v5 (8 envs): EDPolicy vs MlpPolicy of the same widths.

A dual-stream layer of width h holds h excitatory and h inhibitory units and 4h^2 weights, so
the MlpPolicy of the same width has 2h units per layer: the same units, weights and multiply-adds
per forward pass. EDPolicy's 256-256 policy and value networks (sb3_ed/zoo_configs/ed_ppo.yml) are
compared with a ReLU MlpPolicy of 512-512; the ratio against a 256-256 MlpPolicy (a quarter of
the weights) is printed as well. All models use the zoo's HalfCheetah-v5 PPO settings and learn
in alternating chunks within one process, so that they see the same machine state; the first
chunk of each is warm-up and not counted.

    python bench/ppo_throughput.py            # last line: ed/mlp throughput ratio: X.XX
"""

import argparse
import time

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from sb3_ed import EDPolicy
from sb3_ed.zoo import zoo_ppo_settings

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--env", default="HalfCheetah-v5")
parser.add_argument("--chunks", type=int, default=4, help="timed chunks per policy (after one warm-up chunk)")
parser.add_argument("--rollouts-per-chunk", type=int, default=2)
parser.add_argument("--device", default="cpu")
args = parser.parse_args()

n_envs, ppo_kwargs = zoo_ppo_settings("ed_ppo", args.env)
policies = {
    "ed": (EDPolicy, dict(net_arch=dict(pi=[256, 256], vf=[256, 256]))),
    "mlp": ("MlpPolicy", dict(net_arch=dict(pi=[512, 512], vf=[512, 512]), activation_fn=torch.nn.ReLU)),
    "mlp_256": ("MlpPolicy", dict(net_arch=dict(pi=[256, 256], vf=[256, 256]), activation_fn=torch.nn.ReLU)),
}

models = {}
for name, (policy, kwargs) in policies.items():
    env = VecNormalize(make_vec_env(args.env, n_envs=n_envs, seed=0))
    models[name] = PPO(policy, env, policy_kwargs=kwargs, device=args.device, seed=0, **ppo_kwargs)
chunk = args.rollouts_per_chunk * ppo_kwargs["n_steps"] * n_envs
elapsed = {name: 0.0 for name in models}
for i in range(args.chunks + 1):
    for name, model in models.items():
        start = time.perf_counter()
        model.learn(chunk, reset_num_timesteps=False)
        if i > 0:
            elapsed[name] += time.perf_counter() - start
steps = {name: args.chunks * chunk / seconds for name, seconds in elapsed.items()}
for name, rate in steps.items():
    print(f"{name}: {rate:.0f} env-steps/s ({args.chunks} x {chunk} steps, {n_envs} envs, {args.device}, {torch.get_num_threads()} threads)")
print(f"ed/mlp_256 throughput ratio (a quarter of the weights): {steps['ed'] / steps['mlp_256']:.2f}")
print(f"ed/mlp throughput ratio: {steps['ed'] / steps['mlp']:.2f}")
