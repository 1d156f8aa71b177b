"""How far one PPO update moves the policy: the logged approx_kl of the first updates on HalfCheetah-v5.

The PPO settings of sb3_ed/zoo_configs/ed_ppo.yml (8 envs, n_steps 256, batch 256, 10 epochs), with
VecNormalize and 256-256 networks, at a few constant learning rates, for each policy. Prints one line per policy and
learning rate with the approx_kl of each update.

    python bench/ppo_kl.py      # about 2 minutes on a 2-core CPU
"""

import argparse

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecNormalize

from sb3_ed.zoo import zoo_ppo_settings  # also registers the policies by name with PPO

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--policies", nargs="+", default=["EDPolicy", "DaleBPPolicy", "MlpPolicy"])
parser.add_argument("--lrs", nargs="+", type=float, default=[3e-4, 1e-4, 3e-5])
parser.add_argument("--updates", type=int, default=6)
parser.add_argument("--threads", type=int, default=1)
args = parser.parse_args()
torch.set_num_threads(args.threads)
n_envs, ppo_kwargs = zoo_ppo_settings("ed_ppo", "HalfCheetah-v5")

for policy in args.policies:
    for lr in args.lrs:
        env = VecNormalize(make_vec_env("HalfCheetah-v5", n_envs=n_envs, seed=0))
        policy_kwargs = dict(log_std_init=-1.0, net_arch=dict(pi=[256, 256], vf=[256, 256]))
        if policy == "MlpPolicy":
            policy_kwargs["activation_fn"] = torch.nn.ReLU
        model = PPO(policy, env, **{**ppo_kwargs, "learning_rate": lr}, policy_kwargs=policy_kwargs, seed=0)
        model.set_logger(configure(None, []))
        kl = []
        for _ in range(args.updates):
            model.learn(model.n_steps * model.n_envs, reset_num_timesteps=False)
            kl.append(model.logger.name_to_value["train/approx_kl"])
        print(f"{policy:13s} lr {lr:.0e}: approx_kl per update", " ".join(f"{k:.3f}" for k in kl))
