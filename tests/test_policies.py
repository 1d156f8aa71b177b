import copy

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from sb3_ed import DaleBPPolicy, DFAPolicy, DualStreamLinear, EDPolicy, NPPolicy, Sigmoid
from sb3_ed.rules import ED


def same_state(a, b) -> bool:
    """Equal state dicts, extra states (dicts of tensors and numbers) included."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def dale_weights(policy):
    return [m.weight for m in policy.modules() if isinstance(m, DualStreamLinear)]


@pytest.mark.parametrize("env_id, d", [("Pendulum-v1", 1), ("CartPole-v1", 2)])
def test_networks_end_in_the_distribution_parameters_and_the_value(env_id, d):
    # a plain `import sb3_ed` (as in test_policies' imports) registers the names with PPO
    model = PPO("EDPolicy", env_id, n_steps=64, batch_size=64, seed=0)
    extractor = model.policy.mlp_extractor
    assert extractor.policy_net.output[0].out_features == d  # Gaussian mean, or Categorical logits
    assert extractor.value_net.output[0].out_features == 1
    assert isinstance(extractor.policy_net.rule, ED) and isinstance(extractor.value_net.rule, ED)
    assert all((w >= 0).all() for w in dale_weights(model.policy))


def test_the_policy_network_learns_from_dL_dmean():
    model = PPO(EDPolicy, "Pendulum-v1", n_steps=64, batch_size=64, seed=0)
    policy, rule = model.policy, model.policy.mlp_extractor.policy_net.rule
    seen = []
    original = rule.hidden_error
    rule.hidden_error = lambda e, shape, i: seen.append(e.clone()) or original(e, shape, i)
    obs = torch.randn(5, 3)
    actions = torch.randn(5, 1)
    _, log_prob, _ = policy.evaluate_actions(obs, actions)
    (-log_prob.mean()).backward()
    mean = policy.mlp_extractor.forward_actor(obs).detach()
    sigma2 = policy.log_std.exp().detach() ** 2
    # d/dmean of -mean_b log N(a_b; mean_b, sigma^2) = -(a - mean) / sigma^2 / B
    torch.testing.assert_close(seen[0], -(actions - mean) / sigma2 / 5)


def test_dfa_policy_starts_from_sb3s_mlp_policy_init():
    # orthogonal weights: W W^T = gain^2 I over the smaller side; SB3's gains: sqrt(2) in the hidden
    # layers, 0.01 for the action head and 1 for the value head, whose places the output layers take
    policy = PPO(DFAPolicy, "CartPole-v1", seed=0).policy
    for net, outputs, head_gain in ((policy.mlp_extractor.policy_net, 2, 0.01), (policy.mlp_extractor.value_net, 1, 1.0)):
        linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
        assert [m.weight.shape for m in linears] == [(64, 4), (64, 64), (outputs, 64)]
        for layer, gain in zip(linears, (2**0.5, 2**0.5, head_gain)):
            w = layer.weight.double()
            gram = w.T @ w if w.shape[0] > w.shape[1] else w @ w.T
            torch.testing.assert_close(gram, gain**2 * torch.eye(len(gram), dtype=torch.double), atol=1e-6, rtol=0)
            assert (layer.bias == 0).all()
    # the dual-stream policies keep their own non-negative init: SB3's touches nn.Linear only
    assert not any(isinstance(m, torch.nn.Linear) for m in PPO(EDPolicy, "CartPole-v1").policy.mlp_extractor.modules())


@pytest.mark.parametrize("policy", [EDPolicy, DFAPolicy, DaleBPPolicy, NPPolicy])
def test_save_load_gives_identical_actions_and_feedback(policy, tmp_path):
    model = PPO(policy, "Pendulum-v1", n_steps=64, batch_size=32, n_epochs=2, seed=0)
    model.learn(128)
    model.save(tmp_path / "model")
    loaded = PPO.load(tmp_path / "model")
    obs = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    for a, b in zip(model.policy.mlp_extractor.modules(), loaded.policy.mlp_extractor.modules()):
        if hasattr(a, "rule"):
            assert same_state(a.rule.state_dict(), b.rule.state_dict())
    if policy is DFAPolicy:
        assert "B_0" in loaded.policy.mlp_extractor.policy_net.rule.state_dict()


@pytest.mark.parametrize("policy", [EDPolicy, DFAPolicy, DaleBPPolicy, NPPolicy])
def test_policies_pickle_and_deepcopy_like_sb3_policies(policy, tmp_path):
    model = PPO(policy, "Pendulum-v1", n_steps=64, batch_size=32, n_epochs=1, seed=0)
    fresh_copy = copy.deepcopy(model.policy)  # SB3's own policies deepcopy before training only
    model.learn(64)
    torch.save(model.policy, tmp_path / "policy.pt")
    loaded = torch.load(tmp_path / "policy.pt", weights_only=False)
    obs = torch.randn(8, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(obs, deterministic=True)[0], model.policy(obs, deterministic=True)[0], rtol=0, atol=0)
    assert type(fresh_copy) is policy
    # the unpickled policy's optimizer still keeps the floor
    for p in loaded.parameters():
        p.grad = torch.full_like(p, 1e3)
    loaded.optimizer = torch.optim.SGD(loaded.parameters(), lr=1.0)
    loaded.optimizer.step()
    assert all((m.weight >= m.floor).all() for m in loaded.modules() if isinstance(m, DualStreamLinear) and m.dale)


def test_weights_stay_above_floor_through_learn_and_after_load(tmp_path):
    model = PPO(EDPolicy, "CartPole-v1", n_steps=64, batch_size=64, learning_rate=0.05, seed=0, policy_kwargs={"floor": 1e-4})
    model.learn(512)
    weights = dale_weights(model.policy)
    assert all((w >= 1e-4).all() for w in weights)
    assert any((w == torch.tensor(1e-4)).any() for w in weights)  # the floor was actually reached
    model.save(tmp_path / "m")
    loaded = PPO.load(tmp_path / "m")
    loaded.set_env(model.get_env())
    loaded.learn(256)
    assert all((w >= 1e-4).all() for w in dale_weights(loaded.policy))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("policy", [EDPolicy, DFAPolicy, DaleBPPolicy, NPPolicy])
def test_learns_and_reloads_on_cuda(policy, tmp_path):
    model = PPO(policy, "Pendulum-v1", n_steps=64, batch_size=32, n_epochs=2, learning_rate=0.05, device="cuda", seed=0)
    model.learn(256)
    tensors = [*model.policy.parameters(), *model.policy.buffers()]
    assert all(t.device.type == "cuda" for t in tensors)
    assert all((m.weight >= m.floor).all() for m in model.policy.modules() if isinstance(m, DualStreamLinear))
    model.save(tmp_path / "model")
    obs = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    for device in ("cuda", "cpu"):
        loaded = PPO.load(tmp_path / "model", device=device)
        np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0], rtol=1e-5, atol=1e-6)


def test_non_dalean_variant_is_a_policy_kwarg():
    model = PPO(EDPolicy, "CartPole-v1", n_steps=64, batch_size=64, learning_rate=0.05, seed=0, policy_kwargs={"dale": False})
    model.learn(512)
    assert any((w < 0).any() for w in dale_weights(model.policy))


def test_dual_stream_policies_centre_their_updates_and_init_hidden_biases_as_nn_linear():
    policy = PPO(EDPolicy, "Pendulum-v1", n_steps=64, batch_size=64, seed=0).policy
    net = policy.mlp_extractor.policy_net
    layers = [block[0] for block in net.hidden] + [net.output[0]]
    assert all(layer.centered for layer in layers)
    first, second = layers[0], layers[1]
    assert 0 < first.bias.abs().max() <= 1 / 3**0.5  # fan_in 3 (Pendulum's observation)
    assert 0 < second.bias.abs().max() <= 1 / 64**0.5
    assert (layers[-1].bias == 0).all()  # the output starts unbiased, as SB3's heads
    # np keeps the plain update: with centring its CartPole medium test fell from 500 to 166
    np_policy = PPO(NPPolicy, "Pendulum-v1", n_steps=64, batch_size=64, seed=0).policy
    assert not any(m.centered for m in np_policy.modules() if isinstance(m, DualStreamLinear))
    # the zoo's MuJoCo and Craftax settings keep the earlier defaults: the plain update, zero biases
    old = PPO(EDPolicy, "Pendulum-v1", n_steps=64, batch_size=64, seed=0, policy_kwargs=dict(bias_init="zeros", centered=False)).policy
    assert all(not m.centered and (m.bias == 0).all() for m in old.modules() if isinstance(m, DualStreamLinear))


class LinearExtractor(BaseFeaturesExtractor):
    def __init__(self, observation_space):
        super().__init__(observation_space, 8)
        self.linear = torch.nn.Linear(observation_space.shape[0], 8)

    def forward(self, obs):
        return self.linear(obs)


def test_what_the_rule_cannot_use_fails_at_construction():
    with pytest.raises(ValueError, match="features extractor has trainable parameters"):
        PPO(EDPolicy, "Pendulum-v1", policy_kwargs={"features_extractor_class": LinearExtractor})
    with pytest.raises(ValueError, match="gSDE"):
        PPO(EDPolicy, "Pendulum-v1", use_sde=True)
    with pytest.raises(ValueError, match="activation_fn"):
        PPO(EDPolicy, "Pendulum-v1", policy_kwargs={"activation_fn": torch.nn.ELU})
    # options of the Dale networks would be silently ignored by DFA's single-stream MLPs
    for kwargs in ({"dale": False}, {"rms_norm": True}, {"centered": False, "output_scale": 1.0}, {"dale": 1}, {"centered": 1}):
        with pytest.raises(ValueError, match=f"DFAPolicy: {', '.join(kwargs)}: options of dual-stream networks only"):
            PPO(DFAPolicy, "Pendulum-v1", policy_kwargs=kwargs)
    # what rl_zoo3's --hyperparams hands over when the YAML quotes a number
    for kwargs, message in [({"output_scale": "0.01"}, "output_scale must be > 0 and finite, got '0.01'"),
                            ({"feedback_seed": 1.5}, r"feedback_seed must be an integer from 0 to 2\*\*32 - 2, got 1.5"),
                            ({"exc_scale": "1"}, "exc_scale must be > 0 and finite, got '1'"),
                            ({"widths": True}, "widths must be > 0 and finite, got True"),
                            # the default ReLU network has no sigmoid: a width would be ignored
                            ({"widths": 2.0}, "widths: 2.0 is a sigmoid width, but this layer's activation is relu, which has none")]:
        with pytest.raises(ValueError, match=message):
            PPO(EDPolicy, "Pendulum-v1", policy_kwargs=kwargs)
    sigmoid = PPO(EDPolicy, "Pendulum-v1", policy_kwargs={"widths": 2.0, "activation_fn": "sigmoid"}).policy
    assert [m.width for m in sigmoid.modules() if isinstance(m, Sigmoid)] == [2.0] * 4  # two hidden layers, actor and critic


@pytest.mark.parametrize("policy", [EDPolicy, DFAPolicy])
def test_net_arch_and_the_other_sb3_options_are_checked_where_they_are_typed(policy):
    # each of these built a network (or failed deep inside) without naming the option
    for net_arch in ([0], [-4], [16.5], ["16"], 64, {"pi": 16, "vf": 16}, [16, {"pi": [8], "vf": [8]}]):
        with pytest.raises(ValueError, match=r"net_arch must be a list of hidden sizes \(integers >= 1\) or dict"):
            PPO(policy, "CartPole-v1", policy_kwargs={"net_arch": net_arch})
    with pytest.raises(ValueError, match="net_arch: unknown key.s. Pi; it must be"):
        PPO(policy, "CartPole-v1", policy_kwargs={"net_arch": {"Pi": [16], "vf": [16]}})
    # "no" would have switched SB3's orthogonal init on
    with pytest.raises(TypeError, match="ortho_init must be True or False, got 'no'"):
        PPO(policy, "CartPole-v1", policy_kwargs={"ortho_init": "no"})
    # the value network's rule takes feedback_seed + 1
    with pytest.raises(ValueError, match=r"feedback_seed must be an integer from 0 to 2\*\*32 - 2, got 4294967295"):
        PPO(policy, "CartPole-v1", policy_kwargs={"feedback_seed": 2**32 - 1})
    for value in (float("nan"), float("inf"), "0.5"):
        with pytest.raises(ValueError, match="log_std_init must be a finite number"):
            PPO(policy, "Pendulum-v1", policy_kwargs={"log_std_init": value})
    with pytest.raises(TypeError, match="rule_kwargs must be a dict of the rule's options, got 'x'"):
        PPO(policy, "Pendulum-v1", policy_kwargs={"rule_kwargs": "x"})
    # SB3's meaning of a missing key stays: no hidden layer in that network
    model = PPO(policy, "CartPole-v1", policy_kwargs={"net_arch": {"pi": [8]}})
    assert len(model.policy.mlp_extractor.policy_net.hidden) == 1 and len(model.policy.mlp_extractor.value_net.hidden) == 0


def test_nan_observations_raise():
    model = PPO(EDPolicy, "Pendulum-v1", n_steps=64, batch_size=64)
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.array([np.nan, 0.0, 0.0], dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        model.policy.predict_values(torch.tensor([[np.inf, 0.0, 0.0]]))


CARTPOLE = dict(n_envs=8, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98, gae_lambda=0.8, learning_rate=1e-3)


@pytest.mark.medium
@pytest.mark.parametrize(
    "policy, env_id, steps, kwargs, threshold",
    [
        (EDPolicy, "CartPole-v1", 40_000, CARTPOLE, 100),
        (EDPolicy, "InvertedPendulum-v5", 40_000, dict(n_envs=4, n_steps=512, batch_size=64, n_epochs=10, learning_rate=1e-3), 100),
        (NPPolicy, "CartPole-v1", 40_000, CARTPOLE, 100),
        # Pendulum's returns are negative: -1270 before training (measured), better is higher
        (NPPolicy, "Pendulum-v1", 50_000, dict(n_envs=4, n_steps=1024, batch_size=64, n_epochs=10, gamma=0.9, learning_rate=1e-3, policy_kwargs=dict(log_std_init=-1.0)), -900),
    ],
    ids=["ed-CartPole", "ed-InvertedPendulum", "np-CartPole", "np-Pendulum"],
)
def test_ppo_improves_returns(policy, env_id, steps, kwargs, threshold):
    from stable_baselines3.common.env_util import make_vec_env

    kwargs = dict(kwargs)
    env = make_vec_env(env_id, n_envs=kwargs.pop("n_envs"), seed=0)
    model = PPO(policy, env, seed=0, **kwargs)
    before, _ = evaluate_policy(model, env, n_eval_episodes=10)
    model.learn(steps)
    after, _ = evaluate_policy(model, env, n_eval_episodes=10)
    assert after > before + 200 and after > threshold, (before, after)


@pytest.mark.parametrize("policy, cosine_one", [(EDPolicy, False), (DaleBPPolicy, True)])
def test_diagnostics_callback_logs_per_layer(policy, cosine_one):
    from stable_baselines3.common.logger import configure

    from sb3_ed.callbacks import DaleDiagnosticsCallback

    model = PPO(policy, "CartPole-v1", n_steps=128, batch_size=64, n_epochs=2, seed=0)
    logged = {}
    model.set_logger(configure(None, []))
    record = model.logger.record
    model.logger.record = lambda key, value, exclude=None: logged.__setitem__(key, value) or record(key, value, exclude)
    model.learn(384, callback=DaleDiagnosticsCallback(cosine_every=1))
    layers = ["policy_net.hidden.0.0", "policy_net.hidden.1.0", "policy_net.output.0", "value_net.output.0"]
    for layer in layers:
        assert logged[f"dale/{layer}/ei_ratio"] > 0 and 0 <= logged[f"dale/{layer}/floor_W_pn"] <= 1
        cosine = logged[f"dale/{layer}/cosine_to_bp"]
        # bp's update is the bp gradient; ed's differs from it below the output layers
        assert (abs(cosine - 1) < 1e-4) == (cosine_one or layer.endswith("output.0"))
    # only a direct rule routes errors to hidden layers
    assert (logged.get("dale/policy/routed_error_0", 0) > 0) == (policy is EDPolicy)
    # the hidden errors' alignment with backprop's dL/dh: exact under bp, not under ed
    for block in ("policy_net.hidden.0", "policy_net.hidden.1", "value_net.hidden.1"):
        assert (abs(logged[f"dale/{block}/alignment_to_bp"] - 1) < 1e-4) == cosine_one


@pytest.mark.parametrize("clip_range_vf", [None, 0.05])
def test_the_diagnostics_loss_is_ppos_own(clip_range_vf, monkeypatch):
    from sb3_ed.callbacks import DaleDiagnosticsCallback

    # two epochs: in the second the values have moved away from the rollout's, so clipping them counts
    model = PPO(EDPolicy, "Pendulum-v1", n_steps=64, batch_size=64, n_epochs=2, clip_range_vf=clip_range_vf, learning_rate=0.01, seed=0)
    batches, losses = [], []
    get, backward = model.rollout_buffer.get, torch.Tensor.backward

    def recording_backward(loss, *args, **kwargs):  # PPO's loss, and the parameters it was computed at
        losses.append((loss.item(), {k: v.clone() for k, v in model.policy.state_dict().items()}))
        return backward(loss, *args, **kwargs)

    monkeypatch.setattr(model.rollout_buffer, "get", lambda size: (batches.append(b) or b for b in get(size)))
    monkeypatch.setattr(torch.Tensor, "backward", recording_backward)
    diagnostics = DaleDiagnosticsCallback()
    model.learn(64, callback=diagnostics)
    assert len(batches) == len(losses) == 2
    loss, state = losses[-1]
    model.policy.load_state_dict(state)
    assert diagnostics.ppo_loss(batches[-1]).item() == pytest.approx(loss, rel=1e-6)
