import copy
import pickle
import re

import pytest
import torch
import torch.nn.functional as F

from sb3_ed import DualStreamConv2d, DualStreamLinear, Sigmoid, StreamRMSNorm, dale_mlp, mlp, split_streams


def four_products(layer, x_p, x_n, op):
    """The layer's pre-activations from its four matrices, written out as in the definition."""
    W = layer.sub_matrices()
    spatial = [1] * (x_p.dim() - 2)
    a_p = op(x_p, W["W_pp"]) - op(x_n, W["W_pn"]) + layer.b_p.view(-1, *spatial)
    a_n = op(x_n, W["W_nn"]) - op(x_p, W["W_np"]) + layer.b_n.view(-1, *spatial)
    return a_p, a_n


def randomise(layer):
    with torch.no_grad():
        layer.weight.uniform_(0.0, 1.0)
        layer.bias.normal_()


@pytest.mark.parametrize("shared_input", [False, True])
def test_linear_forward_is_the_four_products(shared_input):
    layer = DualStreamLinear(5, 3, shared_input=shared_input)
    randomise(layer)
    x = torch.randn(4, 5 if shared_input else 10)
    x_p, x_n = (x, x) if shared_input else split_streams(x)
    a_p, a_n = four_products(layer, x_p, x_n, F.linear)
    torch.testing.assert_close(layer(x), torch.cat([a_p, a_n], 1))


@pytest.mark.parametrize("shared_input", [False, True])
def test_conv_forward_is_the_four_products(shared_input):
    layer = DualStreamConv2d(2, 3, 3, padding=1, stride=2, shared_input=shared_input)
    randomise(layer)
    x = torch.randn(2, 2 if shared_input else 4, 7, 7)
    x_p, x_n = (x, x) if shared_input else split_streams(x)

    def op(z, w):
        return F.conv2d(z, w, stride=2, padding=1)

    a_p, a_n = four_products(layer, x_p, x_n, op)
    torch.testing.assert_close(layer(x), torch.cat([a_p, a_n], 1))


def test_init_is_non_negative_with_separate_exc_and_inh_scales():
    for init in ("uniform", "abs_normal"):
        layer = DualStreamLinear(400, 300, exc_scale=3.0, inh_scale=1.0, init=init)
        W = layer.sub_matrices()
        assert (layer.weight >= layer.floor).all()
        ratio = (W["W_pp"].mean() + W["W_nn"].mean()) / (W["W_pn"].mean() + W["W_np"].mean())
        assert ratio.item() == pytest.approx(3.0, rel=0.05)
        # scaled by 1/sqrt(fan_in): the inhibitory blocks keep the base scale
        base = 0.5 / 20 if init == "uniform" else (2 / torch.pi) ** 0.5 / 20
        assert W["W_pn"].mean().item() == pytest.approx(base, rel=0.05)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_weights_stay_above_floor_after_many_large_steps(optimizer):
    torch.manual_seed(0)
    net = dale_mlp(6, [16, 16], 3, rule="ed", output_activation="sigmoid", floor=1e-3)
    opt = torch.optim.SGD(net.parameters(), lr=5.0) if optimizer == "sgd" else torch.optim.Adam(net.parameters(), lr=1.0)
    for _ in range(200):
        opt.zero_grad()
        F.mse_loss(net(torch.randn(32, 6)), torch.randn(32, 3) * 10).backward()
        opt.step()
        weights = [m.weight for m in net.modules() if isinstance(m, DualStreamLinear)]
        assert all((w >= 1e-3).all() for w in weights)
    assert any((w == 1e-3).any() for w in weights), "the test must actually push weights onto the floor"


def test_without_dale_the_same_steps_go_negative():
    torch.manual_seed(0)
    net = dale_mlp(6, [16], 3, rule="ed", dale=False)
    opt = torch.optim.SGD(net.parameters(), lr=5.0)
    for _ in range(20):
        opt.zero_grad()
        F.mse_loss(net(torch.randn(32, 6)), torch.randn(32, 3) * 10).backward()
        opt.step()
    assert any((m.weight < 0).any() for m in net.modules() if isinstance(m, DualStreamLinear))


def one_step_down(module):
    """One SGD step of lr 1 with a gradient of ones on every parameter: every weight falls by 1."""
    opt = torch.optim.SGD(module.parameters(), lr=1.0)
    for p in module.parameters():
        p.grad = torch.ones_like(p)
    opt.step()


def swap_by_assign(layer):
    layer.load_state_dict({k: v.clone() for k, v in layer.state_dict().items()}, assign=True)


def swap_by_attribute(layer):
    layer.weight = torch.nn.Parameter(layer.weight.detach().clone())


def swap_by_conversion(layer):
    # torch's opt-in conversion path swaps the tensors inside the Parameter objects
    torch.__future__.set_swap_module_params_on_conversion(True)
    try:
        layer.double()
    finally:
        torch.__future__.set_swap_module_params_on_conversion(False)


@pytest.mark.parametrize(
    "swap",
    [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m)), lambda m: m.double(), swap_by_assign, swap_by_attribute, swap_by_conversion],
    ids=["deepcopy", "pickle", "double", "load_state_dict_assign", "attribute", "swap_tensors"],
)
def test_every_way_of_replacing_the_weight_keeps_the_floor(swap):
    layer = DualStreamLinear(4, 4, floor=0.01)
    layer = swap(layer) or layer
    one_step_down(layer)
    assert layer.weight.min().item() == pytest.approx(0.01)  # without the floor: about -0.99


def test_a_net_built_on_the_meta_device_loads_with_assign_and_keeps_the_floor():
    source = dale_mlp(4, [8], 2, rule="ed")
    with torch.device("meta"):
        net = dale_mlp(4, [8], 2, rule="ed")
    net.load_state_dict(source.state_dict(), assign=True)
    x = torch.rand(3, 4)
    torch.testing.assert_close(net(x), source(x), rtol=0, atol=0)
    one_step_down(net)
    assert all(m.weight.min().item() == pytest.approx(m.floor) for m in net.modules() if isinstance(m, DualStreamLinear))


def test_a_net_built_on_the_meta_device_materialises_with_to_empty_and_reset_parameters():
    with torch.device("meta"):
        net = dale_mlp(4, [200], 50, rule="ed", exc_scale=3.0)
    net.to_empty(device="cpu")
    for m in net.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()  # PyTorch's recipe: no arguments
    layers = [m for m in net.modules() if isinstance(m, DualStreamLinear)]
    assert all((m.weight >= m.floor).all() and (m.bias == 0).all() for m in layers)
    W = layers[1].sub_matrices()
    assert (W["W_pp"].mean() / W["W_pn"].mean()).item() == pytest.approx(3.0, rel=0.05)  # the init scales survive
    assert torch.isfinite(net(torch.rand(3, 4))).all()
    one_step_down(net)
    assert all(m.weight.min().item() == pytest.approx(m.floor) for m in layers)


def test_a_parametrized_weight_is_refused_not_left_unclamped():
    from torch.nn.utils import parametrize

    class Identity(torch.nn.Module):
        def forward(self, w):
            return w

    layer = DualStreamLinear(3, 2)
    parametrize.register_parametrization(layer, "weight", Identity())
    with pytest.raises(TypeError, match="parametrized"):
        one_step_down(layer)


@pytest.mark.parametrize("rule", ["ed", "dfa", "np", "bp"])
@pytest.mark.parametrize("copier", ["pickle", "torch.save", "deepcopy"])
def test_networks_pickle_deepcopy_and_round_trip(rule, copier, tmp_path):
    torch.manual_seed(0)
    net = dale_mlp(4, [8, 8], 2, rule=rule, seed=5)
    x = torch.rand(3, 4)
    net(x).sum().backward()  # DFA makes its feedback matrices on first use: they must travel too
    if copier == "pickle":
        copied = pickle.loads(pickle.dumps(net))
    elif copier == "torch.save":
        torch.save(net, tmp_path / "net.pt")
        copied = torch.load(tmp_path / "net.pt", weights_only=False)
    else:
        copied = copy.deepcopy(net)
    torch.testing.assert_close(copied(x), net(x), rtol=0, atol=0)
    assert copied.rule.state_dict().keys() == net.rule.state_dict().keys()
    one_step_down(copied)
    assert all(m.weight.min().item() == pytest.approx(m.floor) for m in copied.modules() if isinstance(m, DualStreamLinear))


def test_loading_weights_below_floor_clamps_them():
    layer = DualStreamLinear(3, 2)
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    state["weight"][0, 0] = -5.0
    layer.load_state_dict(state)
    assert (layer.weight >= layer.floor).all()


def test_rms_norm_is_per_stream():
    h = torch.rand(3, 8) + torch.tensor([0.0] * 4 + [5.0] * 4)
    out = split_streams(StreamRMSNorm()(h))
    for stream in out:
        torch.testing.assert_close(stream.pow(2).mean(1), torch.ones(3), rtol=1e-4, atol=1e-4)


def test_rms_norm_backward_is_the_exact_gradient():
    # BP through the norm must stay exact (the DaleBP control): compare with the textbook formula
    h = torch.randn(4, 2, 5, requires_grad=True)
    grad = torch.randn(4, 10)
    StreamRMSNorm(eps=1e-6)(h.view(4, 10)).backward(grad)
    reference = h.detach().clone().requires_grad_()
    (reference / reference.pow(2).mean(2, keepdim=True).add(1e-6).sqrt()).view(4, 10).backward(grad)
    torch.testing.assert_close(h.grad, reference.grad)


def test_wrong_input_shape_names_the_expected_layout():
    with pytest.raises(ValueError, match=r"\(batch, 10, \.\.\.\) holding \[x_p \| x_n\]"):
        DualStreamLinear(5, 3)(torch.randn(4, 5))
    with pytest.raises(ValueError, match="fed to both streams"):
        DualStreamConv2d(3, 4, 3, shared_input=True)(torch.randn(2, 6, 8, 8))


def test_bad_construction_arguments():
    with pytest.raises(ValueError, match="unknown init"):
        DualStreamLinear(2, 2, init="gaussian")
    with pytest.raises(ValueError, match="unknown bias_init 'normal'; choose from zeros, uniform"):
        DualStreamLinear(2, 2, bias_init="normal")
    # an on/off option given as a string would count as on
    for name in ("centered", "dale", "shared_input"):
        with pytest.raises(TypeError, match=f"{name} must be True or False, got 'no'"):
            DualStreamLinear(2, 2, **{name: "no"})
    with pytest.raises(TypeError, match="rms_norm must be True or False"):
        dale_mlp(3, [4], 2, rms_norm="no")
    for kwargs, message in [
        (dict(floor=float("nan")), "floor must be >= 0 and finite, got nan"),
        (dict(exc_scale=-1.0), "exc_scale must be > 0 and finite"),
        (dict(inh_scale=0.0), "inh_scale must be > 0 and finite"),
    ]:
        with pytest.raises(ValueError, match=message):
            DualStreamLinear(2, 2, **kwargs)
    for sizes in ((0, 2), (3, 0)):
        with pytest.raises(ValueError, match=">= 1 unit per stream in and out"):
            DualStreamLinear(*sizes)
    with pytest.raises(ValueError, match=">= 1 unit per stream in and out"):
        DualStreamConv2d(3, 0, 3)
    with pytest.raises(TypeError, match=r"unknown option 'centered': not the network's, nor one of the dfa rule's \(out_features, seed\)"):
        mlp(3, [4], 2, centered=True)
    for dale in (True, False):  # without Dale's sign constraint the floor has no use, but -1 is still a typo
        with pytest.raises(ValueError, match="floor"):
            DualStreamLinear(2, 2, floor=-1.0, dale=dale)


@pytest.mark.parametrize("value", ["0.5", True, None, float("nan"), float("inf")])
def test_numeric_options_refuse_what_is_not_a_finite_number(value):
    # "0.5" would fail deep inside with an error naming no option, True would pass as 1
    for build, name in [
        (lambda: DualStreamLinear(2, 2, floor=value), "floor"),
        (lambda: DualStreamLinear(2, 2, exc_scale=value), "exc_scale"),
        (lambda: DualStreamConv2d(2, 2, 3, inh_scale=value), "inh_scale"),
        (lambda: Sigmoid(value), "sigmoid width"),
        (lambda: dale_mlp(3, [4], 2, widths=value), "sigmoid width"),
        (lambda: dale_mlp(3, [4], 2, exc_scale=[1.0, value]), "exc_scale"),
    ]:
        with pytest.raises(ValueError, match=f"^{name} must be .* got {re.escape(repr(value))}$"):
            build()


def test_a_string_is_not_one_value_per_layer():
    # "22" has two characters, as many as the layers: read as a sequence it would give widths 2, 2
    with pytest.raises(ValueError, match="sigmoid width must be > 0 and finite, got '22'"):
        dale_mlp(3, [4], 2, widths="22")
    net = dale_mlp(3, [4], 2, widths=(2, 0.5), activation_fn="sigmoid", output_activation="sigmoid")
    assert [m.width for m in net.modules() if isinstance(m, Sigmoid)] == [2, 0.5]


def test_a_width_for_a_layer_without_a_sigmoid_is_refused_not_ignored():
    with pytest.raises(ValueError, match="^widths: 2.0 is a sigmoid width, but this layer's activation is relu, which has none$"):
        dale_mlp(3, [4], 2, activation_fn="relu", widths=2.0)
    with pytest.raises(ValueError, match="^widths: 0.5 is a sigmoid width, but this layer's activation is identity, which has none$"):
        dale_mlp(3, [4], 2, widths=[2.0, 0.5])
    # one width is that of the sigmoid layers: the identity output keeps none
    net = dale_mlp(3, [4, 4], 2, widths=3.0)
    assert [m.width for m in net.modules() if isinstance(m, Sigmoid)] == [3.0, 3.0]
    assert isinstance(net.output[1], torch.nn.Identity)


def test_uniform_bias_init_is_torch_linears():
    layer = DualStreamLinear(16, 500, bias_init="uniform")
    bound = 1 / 4  # 1/sqrt(fan_in), fan_in = 16 units per stream
    assert layer.bias.abs().max() <= bound and layer.bias.abs().max() > 0.9 * bound
    assert layer.bias.mean().abs() < 0.02  # centred on zero (the mean of 1000 has std 0.005)
    assert (DualStreamLinear(16, 5).bias == 0).all()  # the default stays zero


@pytest.mark.parametrize("shared_input", [False, True])
def test_centered_update_keeps_the_output_and_takes_the_batch_mean_out_of_the_weight_gradient(shared_input):
    plain = DualStreamLinear(3, 2, shared_input=shared_input)
    randomise(plain)
    centered = copy.deepcopy(plain)
    centered.centered = True
    x = torch.rand(5, 3 if shared_input else 6) + 1.0  # all positive, as activity is
    delta = torch.randn(5, 4)
    out_plain, out_centered = plain(x), centered(x)
    torch.testing.assert_close(out_centered, out_plain)
    out_plain.backward(delta)
    out_centered.backward(delta)
    # by hand: z = x with the n-stream's sign (or x itself for a shared input), a = W z * out_sign + b
    out_sign = torch.tensor([1.0, 1.0, -1.0, -1.0])
    z = x if shared_input else x * torch.tensor([1.0] * 3 + [-1.0] * 3)
    zc = z - z.mean(0)
    g = (delta * out_sign).T @ zc
    expected = torch.cat([g, -g], 1) if shared_input else g
    torch.testing.assert_close(centered.weight.grad, expected)
    torch.testing.assert_close(centered.bias.grad, delta.sum(0))
    torch.testing.assert_close(plain.bias.grad, delta.sum(0))
    assert not torch.allclose(plain.weight.grad, centered.weight.grad)


def test_centered_update_of_a_convolution_takes_the_mean_over_batch_and_positions():
    plain = DualStreamConv2d(2, 3, 3, padding=1)
    randomise(plain)
    centered = copy.deepcopy(plain)
    centered.centered = True
    x = torch.rand(3, 4, 5, 5) + 0.5
    out = centered(x)
    torch.testing.assert_close(out, plain(x))  # padding included: the mean's part is convolved, not added
    delta = torch.randn_like(out)
    out.backward(delta)
    m = x.mean(dim=(0, 2, 3), keepdim=True)
    reference = copy.deepcopy(plain)
    reference(x - m).backward(delta)  # the weight gradient of the centred input
    torch.testing.assert_close(centered.weight.grad, reference.weight.grad)


def test_centered_update_of_one_sample_is_the_plain_one():
    layer = DualStreamLinear(3, 2, centered=True)
    randomise(layer)
    x = torch.rand(1, 6)
    layer(x).sum().backward()
    reference = copy.deepcopy(layer)
    reference.centered, reference.weight.grad = False, None
    reference(x).sum().backward()
    # one sample has no deviation from its own mean: the update would be zero, so it stays plain
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad)
    assert layer.weight.grad.abs().min() > 0
