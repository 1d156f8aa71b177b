"""The JAX simulators as SB3 VecEnvs. Each env compiles its step once per test module (slow on CPU)."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("craftax")
pytest.importorskip("brax")

from stable_baselines3 import PPO

from sb3_ed import EDPolicy
from sb3_ed.envs import BraxVecEnv, CraftaxVecEnv, JaxVecEnv
from sb3_ed.envs.base import jax, jnp

pytestmark = pytest.mark.medium


@pytest.fixture(scope="module")
def brax_env():
    return BraxVecEnv("halfcheetah", 3, episode_length=5, seed=0)


@pytest.fixture(scope="module")
def craftax_env():
    return CraftaxVecEnv(4, max_timesteps=6, seed=0, pool_size=16)


def sampled_actions(env, rng):
    if env.action_space.shape == ():
        return rng.integers(0, env.action_space.n, env.num_envs)
    return rng.uniform(-1, 1, (env.num_envs, *env.action_space.shape)).astype(np.float32)


@pytest.mark.parametrize("name", ["brax_env", "craftax_env"])
def test_shapes_dtypes_and_finished_episodes(name, request):
    env = request.getfixturevalue(name)
    obs = env.reset()
    assert obs.shape == (env.num_envs, *env.observation_space.shape) and obs.dtype == np.float32
    limit = 5 if name == "brax_env" else 6
    episodes = 0
    for t in range(1, 2 * limit + 1):
        actions = sampled_actions(env, np.random.default_rng(t))
        new_obs, rewards, dones, infos = env.step(actions)
        assert new_obs.shape == obs.shape and rewards.shape == (env.num_envs,) and rewards.dtype == np.float32
        assert dones.dtype == bool and len(infos) == env.num_envs
        for i, info in enumerate(infos):
            assert ("episode" in info) == dones[i]  # reported exactly once, when it ends
            if dones[i]:
                episodes += 1
                assert info["episode"]["l"] == limit and info["TimeLimit.truncated"]
                assert info["terminal_observation"].shape == env.observation_space.shape
                assert not np.array_equal(info["terminal_observation"], new_obs[i])  # reset to a new start
        assert dones.all() == (t % limit == 0) and dones.any() == (t % limit == 0)
    assert episodes == 2 * env.num_envs
    if name == "craftax_env":
        assert "collect_wood" in infos[0]["achievements"]


def test_every_craftax_episode_starts_in_a_world_of_its_own():
    env = CraftaxVecEnv(64, env_name="Craftax-Classic-Symbolic-v1", max_timesteps=30)
    env.reset()
    rng = np.random.default_rng(0)
    starts = []
    for _ in range(120):
        obs, _, dones, _ = env.step(rng.integers(0, env.action_space.n, env.num_envs))
        starts += [obs[i].tobytes() for i in np.flatnonzero(dones)]
    assert len(starts) >= 256
    assert len(set(starts)) == len(starts)  # a pool handed out again and again gave 64 of 256


def test_deterministic_evaluation_episodes_of_one_env_differ(brax_env):
    from stable_baselines3.common.evaluation import evaluate_policy

    class Still:
        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            return np.zeros((len(obs), 6), np.float32), None

    returns, _ = evaluate_policy(Still(), brax_env, n_eval_episodes=9, return_episode_rewards=True, warn=False)
    assert len(set(returns)) == 9  # restarting each env from its first state gave 3


class Counter(JaxVecEnv):
    """Episodes of random length; a start is a number drawn from its own key."""

    def __init__(self, num_envs, end=0.7, **kwargs):
        from gymnasium import spaces

        self.end = end  # the chance that an episode ends at a step
        super().__init__(num_envs, spaces.Box(-np.inf, np.inf, (2,), np.float32), spaces.Discrete(2), 0, **kwargs)

    def _initial_states(self, key, n):
        ids = jax.random.uniform(key, (n, 2))  # two numbers: one float32 repeats by chance in a few hundred
        return ids, ids

    def _env_step(self, states, actions, key):
        done = jax.random.uniform(key, (self.num_envs,)) < self.end
        return states, states, jnp.zeros(self.num_envs), done, jnp.zeros_like(done), {}


def test_the_pool_hands_out_each_start_once_and_refills_when_short():
    env = Counter(8, pool_size=8)
    handed = [tuple(start) for start in env.reset()]
    rng = np.random.default_rng(0)
    for _ in range(50):  # most envs finish every step: the pool runs short again and again
        obs, _, dones, _ = env.step(rng.integers(0, 2, 8))
        handed += [tuple(start) for start in obs[dones]]
    assert len(handed) > 8 + 200 and len(set(handed)) == len(handed)
    with pytest.raises(ValueError, match=r"pool_size must be an integer >= num_envs \(8\), got 4"):
        Counter(8, pool_size=4)


@pytest.mark.parametrize("end", [0.02, 0.3, 1.0])
def test_finished_envs_take_new_starts_and_the_others_keep_theirs(end):
    # a few finished envs per step, many, and all of them
    env = Counter(64, end=end, pool_size=100)
    obs = env.reset()
    seen = {tuple(start) for start in obs}
    rng = np.random.default_rng(0)
    jitted, compiled = (env._restart_jit, env._step_jit, env._starts_jit), None
    for _ in range(30):
        new, _, dones, _ = env.step(rng.integers(0, 2, 64))
        assert np.array_equal(new[~dones], obs[~dones])
        starts = {tuple(start) for start in new[dones]}
        assert not seen & starts and len(starts) == dones.sum()
        seen |= starts
        obs = new
        compiled = compiled or [f._cache_size() for f in jitted]
    assert len(seen) > 64 + 30 * 64 * end / 2
    # any count of finished envs reuses what reset and the first step compiled: a new shape would
    # compile inside a later step (a second or more for a Craftax world), as one try did, which
    # cost the throughput bench 0.1
    assert [f._cache_size() for f in jitted] == compiled


@pytest.mark.parametrize("name", ["brax_env", "craftax_env"])
def test_a_seed_fixes_the_trajectory(name, request):
    env = request.getfixturevalue(name)

    def run(seed):
        env.seed(seed)
        rng = np.random.default_rng(0)
        out = [env.reset()]
        for _ in range(7):
            out.append(env.step(sampled_actions(env, rng))[0])
        return np.stack(out)

    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", ["brax_env", "craftax_env"])
def test_step_torch_hands_the_same_step_to_torch(name, request):
    import torch

    env = request.getfixturevalue(name)
    actions = [sampled_actions(env, np.random.default_rng(t)) for t in range(7)]
    env.seed(3)
    env.reset()
    expected = [env.step(a)[:3] for a in actions]
    env.seed(3)
    env.reset()
    for a, (obs, reward, done) in zip(actions, expected):
        t_obs, t_reward, terminated, truncated = env.step_torch(torch.from_numpy(a))
        assert all(isinstance(x, torch.Tensor) for x in (t_obs, t_reward, terminated, truncated))
        np.testing.assert_array_equal(t_obs.numpy(), obs)
        np.testing.assert_array_equal(t_reward.numpy(), reward)
        np.testing.assert_array_equal((terminated | truncated).numpy(), done)
    with pytest.raises(ValueError, match="actions must have shape"):
        env.step_torch(torch.zeros(env.num_envs + 1, *env.action_space.shape))


@pytest.mark.parametrize("name", ["brax_env", "craftax_env"])
def test_ed_ppo_learns_on_it_and_logs_episode_returns(name, request):
    env = request.getfixturevalue(name)
    model = PPO(EDPolicy, env, n_steps=16, batch_size=32, n_epochs=1, seed=0)
    model.learn(96)
    assert len(model.ep_info_buffer) > 0  # what SB3 logs as rollout/ep_rew_mean


def test_bad_input_gives_clear_errors(brax_env):
    with pytest.raises(ValueError, match="unknown Brax env 'cheetah'; choose from ant, halfcheetah, humanoid"):
        BraxVecEnv("cheetah", 2)
    with pytest.raises(ValueError, match="unknown Craftax env"):
        CraftaxVecEnv(2, env_name="Craftax-Pixels-v9")
    with pytest.raises(ValueError, match="num_envs must be an integer >= 1"):
        BraxVecEnv("halfcheetah", 0)
    brax_env.reset()
    with pytest.raises(ValueError, match=r"actions must have shape \(3, 6\)"):
        brax_env.step(np.zeros((3, 5), np.float32))


def test_importing_sb3_ed_needs_no_jax_and_a_missing_jax_says_what_to_install():
    code = "import sb3_ed, sb3_ed.envs, sys; assert 'jax' not in sys.modules, 'jax imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
    code = "import sys; sys.modules['jax'] = None; from sb3_ed.envs import BraxVecEnv"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0 and "pip install 'sb3-ed[jax]'" in result.stderr


def test_cli_trains_on_a_jax_env_id(tmp_path):
    from sb3_ed.train import main

    argv = ["--algo", "ed_ppo", "--env", "Brax-HalfCheetah-v0", "-n", "64", "-f", str(tmp_path), "--eval-freq", "-1"]
    main([*argv, "--env-kwargs", "episode_length:5", "--hyperparams", "n_envs:2", "n_steps:16", "batch_size:32"])
    run = tmp_path / "ed_ppo" / "Brax-HalfCheetah-v0_1"
    assert (run / "Brax-HalfCheetah-v0.zip").is_file()
    assert (run / "monitor.csv").read_text().count("\n") > 2  # finished episodes were logged (VecMonitor)
