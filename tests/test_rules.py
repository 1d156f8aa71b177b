"""Each rule's updates against its formula, computed here by hand from the layers' own terms."""

import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from sb3_ed import DualStreamConv2d, DualStreamLinear, FeedbackNetwork, Sigmoid, StreamDifference, dale_mlp, mlp
from sb3_ed.diagnostics import cosine, hidden_error_alignment
from sb3_ed.rules import RULES, make_rule


def sigmoid_derivative(a, width):
    s = torch.sigmoid(a / width)
    return s * (1 - s) / width


def local_grads(layer, x_p, x_n, delta_p, delta_n, op_weight_grad):
    """The four matrices' gradients from presynaptic activity and the units' own deltas; the
    signs are the structural ones: a_p = W_pp x_p - W_pn x_n, a_n = W_nn x_n - W_np x_p."""
    return {
        "W_pp": op_weight_grad(delta_p, x_p),
        "W_pn": -op_weight_grad(delta_p, x_n),
        "W_np": -op_weight_grad(delta_n, x_p),
        "W_nn": op_weight_grad(delta_n, x_n),
    }


def linear_weight_grad(delta, x):
    return delta.T @ x


def conv_weight_grad(kernel, padding):
    def grad(delta, x):  # sum over batch and positions of delta x (input patch), via explicit patches
        patches = F.unfold(x, kernel, padding=padding)  # (B, C*k*k, L)
        g = torch.einsum("bol,bcl->oc", delta.flatten(2), patches)
        return g.view(delta.shape[1], x.shape[1], kernel, kernel)

    return grad


def assert_layer_grads(layer, expected, delta_p, delta_n, bias_dims):
    got = layer.sub_matrices(layer.weight.grad)
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, msg=name)
    torch.testing.assert_close(layer.bias.grad, torch.cat([delta_p.sum(bias_dims), delta_n.sum(bias_dims)]))


def activities(net, x):
    """Input and pre-activation of every Dale layer, from a plain forward (no rule involved)."""
    record = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: record.append((m, i[0].detach(), o.detach())))
        for m in net.modules()
        if isinstance(m, (DualStreamLinear, DualStreamConv2d))
    ]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return record


def streams_of(layer, x):
    return (x, x) if layer.shared_input else x.chunk(2, dim=1)


@pytest.mark.parametrize("out_features", [3, 1])
# hidden layers of one width share one routed-error tensor; sigmoid width 1 skips its division
@pytest.mark.parametrize("hidden, widths", [([7, 6], [2.0, 0.5, 1.5]), ([7, 7, 7], [1.0, 2.0, 1.0, 0.5])])
def test_ed_updates_of_an_mlp_equal_the_ed_formula(out_features, hidden, widths):
    torch.manual_seed(0)
    net = dale_mlp(5, hidden, out_features, rule="ed", output_activation="sigmoid", widths=widths)
    x, t = torch.rand(4, 5), torch.rand(4, out_features)
    y = net(x)
    (0.5 * (y - t).pow(2).sum()).backward()
    e = (y - t).detach()  # dL/dy of this loss

    for (layer, inp, a), width in zip(activities(net, x), widths):
        a_p, a_n = a.chunk(2, dim=1)
        routed = e[:, torch.arange(layer.out_features) % out_features]  # unit j <- channel j mod d
        # hidden layers: +e to the p-stream, -e to the n-stream; the output layer's y = h_p - h_n
        # gives it exactly the same signs, so one formula covers every layer.
        delta_p = routed * sigmoid_derivative(a_p, width)
        delta_n = -routed * sigmoid_derivative(a_n, width)
        x_p, x_n = streams_of(layer, inp)
        expected = local_grads(layer, x_p, x_n, delta_p, delta_n, linear_weight_grad)
        if layer.shared_input:  # x_p = x_n = x: the sub-matrix gradients are the ones above
            assert torch.equal(x_p, x_n)
        assert_layer_grads(layer, expected, delta_p, delta_n, 0)


def conv_net(rule, **kwargs):
    torch.manual_seed(0)
    hidden = [
        nn.Sequential(DualStreamConv2d(2, 5, 3, padding=1, shared_input=True), Sigmoid(2.0)),
        nn.Sequential(DualStreamConv2d(5, 4, 3, padding=1), Sigmoid(3.0)),
    ]
    output = nn.Sequential(nn.Flatten(), DualStreamLinear(4 * 6 * 6, 3), Sigmoid(1.0), StreamDifference())
    return FeedbackNetwork(hidden, output, rule, out_features=3, **kwargs)


def test_ed_updates_of_a_conv_net_equal_the_ed_formula():
    net = conv_net("ed")
    x, t = torch.rand(2, 2, 6, 6), torch.rand(2, 3)
    y = net(x)
    (0.5 * (y - t).pow(2).sum()).backward()
    e = (y - t).detach()
    convs = activities(net, x)[:2]
    for (layer, inp, a), width in zip(convs, [2.0, 3.0]):
        a_p, a_n = a.chunk(2, dim=1)
        # channel c <- output channel c mod d, the same error at every position
        routed = e[:, torch.arange(layer.out_features) % 3][:, :, None, None]
        delta_p = routed * sigmoid_derivative(a_p, width)
        delta_n = -routed * sigmoid_derivative(a_n, width)
        x_p, x_n = streams_of(layer, inp)
        expected = local_grads(layer, x_p, x_n, delta_p, delta_n, conv_weight_grad(3, 1))
        assert_layer_grads(layer, expected, delta_p, delta_n, (0, 2, 3))


def hidden_layers(net):
    return [block[0] for block in net.hidden]


@pytest.mark.parametrize("rule", ["ed", "bp"])
def test_ed_hidden_updates_ignore_the_weights_above(rule):
    torch.manual_seed(0)
    net = dale_mlp(5, [8, 8], 2, rule=rule)
    x, c = torch.rand(6, 5), torch.randn(6, 2)  # loss (y * c).sum(): dL/dy = c whatever the weights

    def hidden_grads():
        net.zero_grad()
        (net(x) * c).sum().backward()
        return [layer.weight.grad.clone() for layer in hidden_layers(net)]

    before = hidden_grads()
    with torch.no_grad():
        hidden_layers(net)[1].weight.mul_(3.0)
        net.output[0].weight.uniform_(0.0, 5.0)
    after = hidden_grads()
    # under ed, layer 1 sees neither change; under bp (the control) both reach it
    assert torch.allclose(before[0], after[0]) == (rule == "ed")


@pytest.mark.parametrize("dual_stream", [True, False])
def test_dfa_hidden_error_is_B_times_e(dual_stream):
    torch.manual_seed(0)
    if dual_stream:
        net = dale_mlp(5, [7, 6], 3, rule="dfa", activation_fn="sigmoid", seed=4)
    else:
        net = mlp(5, [7, 6], 3, rule="dfa", activation_fn="sigmoid", seed=4)
    x, c = torch.rand(4, 5), torch.randn(4, 3)
    (net(x) * c).sum().backward()  # e = c
    inp = x
    for i, block in enumerate(net.hidden):
        layer = block[0]
        with torch.no_grad():
            a = layer(inp)
        B = net.rule.feedback_matrix(i, a.shape[1], c)
        delta = (c @ B.T) * sigmoid_derivative(a, 1.0)
        if dual_stream:
            d_p, d_n = delta.chunk(2, dim=1)
            x_p, x_n = streams_of(layer, inp)
            expected = local_grads(layer, x_p, x_n, d_p, d_n, linear_weight_grad)
            assert_layer_grads(layer, expected, d_p, d_n, 0)
        else:
            torch.testing.assert_close(layer.weight.grad, delta.T @ inp)
            torch.testing.assert_close(layer.bias.grad, delta.sum(0))
        inp = torch.sigmoid(a)


def test_dfa_matrices_are_seeded():
    nets = [dale_mlp(5, [7], 3, rule="dfa", seed=s) for s in (1, 1, 2)]
    x = torch.rand(2, 5)
    for net in nets:
        net(x).sum().backward()
    assert torch.equal(nets[0].rule.B_0, nets[1].rule.B_0)
    assert not torch.equal(nets[0].rule.B_0, nets[2].rule.B_0)


def test_bp_equals_autograd_of_the_written_out_network():
    torch.manual_seed(0)
    net = dale_mlp(5, [7, 6], 3, rule="bp", output_activation="sigmoid", widths=[2.0, 1.0, 0.5])
    layers = [m for m in net.modules() if isinstance(m, DualStreamLinear)]
    x, t = torch.rand(4, 5), torch.rand(4, 3)
    F.mse_loss(net(x), t).backward()

    # the same network from leaf copies of the four matrices, by the definition
    leaves = [{k: v.detach().clone().requires_grad_() for k, v in layer.sub_matrices().items()} for layer in layers]
    biases = [(layer.b_p.detach().clone().requires_grad_(), layer.b_n.detach().clone().requires_grad_()) for layer in layers]
    x_p = x_n = x
    for W, (b_p, b_n), width in zip(leaves, biases, [2.0, 1.0, 0.5]):
        a_p = x_p @ W["W_pp"].T - x_n @ W["W_pn"].T + b_p
        a_n = x_n @ W["W_nn"].T - x_p @ W["W_np"].T + b_n
        x_p, x_n = torch.sigmoid(a_p / width), torch.sigmoid(a_n / width)
    F.mse_loss(x_p - x_n, t).backward()
    for layer, W, (b_p, b_n) in zip(layers, leaves, biases):
        got = layer.sub_matrices(layer.weight.grad)
        for name in W:
            torch.testing.assert_close(got[name], W[name].grad)
        torch.testing.assert_close(layer.bias.grad, torch.cat([b_p.grad, b_n.grad]))


class CountMatmuls(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default):
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("rule, matmuls", [("ed", 4), ("dfa", 4 + 3), ("bp", 4 + 3)])
def test_direct_rules_make_no_transposed_weight_products(rule, matmuls):
    net = dale_mlp(10, [8, 8, 8], 2, rule=rule)
    loss = net(torch.rand(3, 10)).sum()
    with CountMatmuls() as counter:
        loss.backward()
    # one weight gradient per layer; bp adds one input gradient per layer above the first, dfa one
    # B_l e per hidden layer (a product with its random matrix, never with a forward weight)
    assert counter.count == matmuls


@pytest.mark.parametrize("rule", ["ed", "dfa", "np", "bp"])
def test_save_and_load_give_identical_outputs_and_feedback(rule):
    torch.manual_seed(0)
    net = conv_net(rule, seed=3)
    x = torch.rand(2, 2, 6, 6)
    net(x).sum().backward()
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(123)
    fresh = conv_net(rule, seed=99)
    fresh.load_state_dict(torch.load(buffer))
    torch.testing.assert_close(fresh(x), net(x), rtol=0, atol=0)
    for name, value in net.rule.state_dict().items():
        if name != "_extra_state":
            assert torch.equal(fresh.rule.state_dict()[name], value)
    if rule == "dfa":
        assert len(net.rule.state_dict()) == 2
    if rule == "np":  # B_0, B_1, their running sums S_0, S_1, V, and the count and noise state
        assert {"B_0", "B_1", "S_0", "S_1", "V", "_extra_state"} <= set(net.rule.state_dict())
        assert fresh.rule.updates == net.rule.updates == 1
        # the next update is the same too: same noise, same sums
        for model in (net, fresh):
            model(x).sum().backward()
        for name, value in net.rule.state_dict().items():
            if name != "_extra_state":
                assert torch.equal(fresh.rule.state_dict()[name], value), name


def test_bad_input_gives_one_clear_error():
    with pytest.raises(ValueError, match="unknown learning rule 'hebb'; choose from ed, dfa, np, bp"):
        dale_mlp(3, [4], 2, rule="hebb")
    with pytest.raises(ValueError, match="dfa needs the network's output dimension"):
        FeedbackNetwork([], nn.Linear(2, 2), "dfa")
    with pytest.raises(ValueError, match="needs dual-stream layers"):
        mlp(3, [4], 2, rule="ed")
    net = dale_mlp(3, [4], 2, rule="ed")
    with pytest.raises(FloatingPointError, match="NaN"):
        (net(torch.rand(2, 3)) * torch.tensor([float("nan"), 1.0])).sum().backward()
    wrong = FeedbackNetwork(net.hidden, nn.Sequential(DualStreamLinear(4, 5), StreamDifference()), "ed", out_features=2)
    with pytest.raises(ValueError, match="output error has 5 channels"):
        wrong(torch.rand(2, 3)).sum().backward()


# --- learned feedback by node perturbation ---


def np_net(**options):
    torch.manual_seed(0)
    return dale_mlp(6, [12, 10], 3, rule="np", activation_fn="sigmoid", seed=2, **options)


def exact_hidden_gradients(net, x, loss_of_y):
    """dL/dh_l of every hidden block output, by autograd through the written-out chain of blocks."""
    chained = x
    hs = []
    for block in net.hidden:
        chained = block(chained)
        chained.retain_grad()
        hs.append(chained)
    loss_of_y(net.output(chained)).backward()
    return [h.grad.flatten(1) for h in hs]


def captured_contexts(rule):
    """Keeps every context the rule's forward_context returns."""
    seen = []
    original = rule.forward_context
    rule.forward_context = lambda *args: seen.append(original(*args)) or seen[-1]
    return seen


def test_np_estimates_average_to_the_true_hidden_gradient():
    net = np_net()
    x, c = torch.rand(4, 6), torch.randn(4, 3)
    exact = exact_hidden_gradients(net, x, lambda y: (y * c).sum())  # dL/dy = c
    contexts = captured_contexts(net.rule)
    total = [torch.zeros_like(g) for g in exact]
    draws = 3000
    for _ in range(draws):
        y = net(x)
        for t, estimate in zip(total, net.rule.gradient_estimates(c, contexts[-1])):
            t += estimate / draws
        (y * 0).sum().backward()  # completes the pass; e = 0 leaves B at its ridge fit of zeros
    for mean, truth in zip(total, exact):
        assert F.cosine_similarity(mean.flatten(), truth.flatten(), dim=0) >= 0.9


def test_np_after_warmup_aligns_better_with_backprop_than_dfa():
    net, dfa = np_net(warmup=200), dale_mlp(6, [12, 10], 3, rule="dfa", activation_fn="sigmoid", seed=2)
    dfa.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("rule.")}, strict=False)
    before = [p.detach().clone() for p in net.parameters()]
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    W = torch.randn(6, 3)
    for _ in range(200):
        x = torch.rand(32, 6)
        optimizer.zero_grad()
        F.mse_loss(net(x), x @ W).backward()
        optimizer.step()
    # the warm-up trained only the feedback: the forward weights are those of the DFA net
    assert all(torch.equal(b, p) for b, p in zip(before, net.parameters()))
    x = torch.rand(64, 6)
    np_cos = hidden_error_alignment(net, lambda: F.mse_loss(net(x), x @ W))
    dfa_cos = hidden_error_alignment(dfa, lambda: F.mse_loss(dfa(x), x @ W))
    assert all(np_cos[k] > dfa_cos[k] + 0.3 and np_cos[k] > 0.8 for k in np_cos), (np_cos, dfa_cos)


def perturbed_output(net, x, noises):
    h = x
    for block, xi in zip(net.hidden, noises):
        h = block(h) + xi
    return net.output(h)


@pytest.mark.parametrize("update", ["sgd", "ridge"])
def test_np_feedback_equals_the_hand_computed_update_after_one_step(update):
    net = np_net(update=update, beta=0.7, sigma=0.05, ridge=0.1)
    x, c = torch.rand(5, 6), torch.randn(5, 3)
    net(x).sum().backward()  # makes B_0, B_1 (DFA's init) and one update
    B = [net.rule.B_0.clone(), net.rule.B_1.clone()]
    V = net.rule.V.clone() if update == "ridge" else None
    S = [net.rule.S_0.clone(), net.rule.S_1.clone()] if update == "ridge" else None
    contexts = captured_contexts(net.rule)
    (net(x) * c).sum().backward()  # e = c
    noises = contexts[-1][0]
    with torch.no_grad():
        y, y_noisy = net(x), perturbed_output(net, x, noises)
    loss_change = ((y_noisy - y) * c).sum(1)
    for i, xi in enumerate(noises):
        lam = loss_change[:, None] * xi / 0.05**2
        if update == "sgd":
            expected = B[i] - 0.7 * (c @ B[i].T - lam).T @ c / 5
        else:
            V_new = 0.999 * V + c.T @ c
            S_new = 0.999 * S[i] + lam.T @ c
            expected = S_new @ torch.linalg.inv(V_new + 0.1 * torch.trace(V_new) / 3 * torch.eye(3))
        torch.testing.assert_close(getattr(net.rule, f"B_{i}"), expected, rtol=1e-4, atol=1e-6)
    # the forward weights learned from the B of the forward pass, as DFA would
    assert net.rule.updates == 2


def test_np_normalize_delivers_the_fitted_direction_at_dfa_scale():
    fitted, normalized = np_net(), np_net(normalize=True)
    x, c = torch.rand(5, 6), torch.randn(5, 3)
    for net in (fitted, normalized):
        net(x).sum().backward()  # the same first fit: the rescaling only touches what is delivered
    for i in (0, 1):
        B = fitted.rule.get_buffer(f"B_{i}")
        torch.testing.assert_close(normalized.rule.get_buffer(f"B_{i}"), B, rtol=0, atol=0)
        rows = B.shape[0]
        expected = (c @ B.T) * rows**0.5 / torch.linalg.matrix_norm(B)
        torch.testing.assert_close(normalized.rule.hidden_error(c, torch.Size([5, rows]), i), expected)
        torch.testing.assert_close(fitted.rule.hidden_error(c, torch.Size([5, rows]), i), c @ B.T)
        # DFA's random B of this layer has about this norm: the delivered scale is DFA's
        assert 0.5 < torch.linalg.matrix_norm(dale_mlp(6, [12, 10], 3, rule="dfa", seed=2).rule.feedback_matrix(i, rows, c)) / rows**0.5 < 2


def test_np_noise_leaves_the_clean_output_and_the_weight_update_unchanged():
    torch.manual_seed(0)
    net, dfa = np_net(), dale_mlp(6, [12, 10], 3, rule="dfa", activation_fn="sigmoid", seed=2)
    dfa.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("rule.")}, strict=False)
    x, c = torch.rand(5, 6), torch.randn(5, 3)
    torch.testing.assert_close(net(x), dfa(x), rtol=0, atol=0)
    (net(x) * c).sum().backward()
    (dfa(x) * c).sum().backward()
    for a, b in zip(net.parameters(), dfa.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)


def test_np_bad_options_and_a_diverging_feedback_are_one_clear_error():
    for option, value, expected in [("sigma", 0.0, "sigma must be > 0 and below 1e150"), ("sigma", 1e308, "sigma must be > 0 and below 1e150"), ("beta", -1.0, "beta must be finite and >= 0"),
                                    ("decay", 1.5, "decay must be in"), ("warmup", -2, "warmup must be an integer >= 0"),
                                    ("update", "newton", "update must be one of ridge, sgd")]:
        with pytest.raises(ValueError, match=f"np: {expected}"):
            np_net(**{option: value})
    with pytest.raises(TypeError, match="^np: normalize must be True or False, got 'no'$"):
        np_net(normalize="no")
    # what the CLI reads from --rule-option beta=abc, and values Python would take as numbers
    for option, value, expected in [("beta", "abc", "beta must be finite and >= 0, got 'abc'"), ("sigma", True, "sigma must be > 0 and below 1e150, got True"),
                                    ("warmup", 2.5, "warmup must be an integer >= 0, got 2.5"), ("ridge", float("nan"), "ridge must be finite and > 0, got nan")]:
        with pytest.raises(ValueError, match=f"^np: {expected}$"):
            np_net(**{option: value})
    for rule in ("ed", "dfa", "np", "bp"):
        with pytest.raises(ValueError, match=f"^{rule}: seed must be an integer from 0 to 2\\*\\*32 - 1, got '1'$"):
            make_rule(rule, out_features=2, seed="1")
        with pytest.raises(ValueError, match=f"^{rule}: out_features must be an integer >= 1"):
            make_rule(rule, out_features=0)
    with pytest.raises(ValueError, match="np learns the feedback to hidden layers: the network has none"):
        FeedbackNetwork([], nn.Sequential(DualStreamLinear(3, 2, shared_input=True), StreamDifference()), "np", out_features=2)
    net = np_net(update="sgd", beta=1e38)
    x = torch.rand(5, 6)
    with pytest.raises(FloatingPointError, match="np: the feedback estimate for hidden layer 0 is not finite"):
        net(x).sum().backward()
    initial = dale_mlp(6, [12, 10], 3, rule="dfa", seed=2)
    initial(x).sum().backward()
    assert torch.equal(net.rule.B_0, initial.rule.B_0) and torch.equal(net.rule.B_1, initial.rule.B_1)  # no update made
    exact = np_net(estimator="exact")
    with pytest.raises(ValueError, match="per_example_loss"):
        exact(x)


def test_alignment_cosines_stay_exact_over_a_conv_layers_millions_of_entries():
    # the size of one probe batch's activity in the CIFAR network's first layer (256 x 2 x 32 x 32 x 32)
    x = torch.randn(256 * 2 * 32 * 32 * 32, generator=torch.Generator().manual_seed(0))
    assert cosine(x, x) == pytest.approx(1.0, abs=1e-9)  # float32 sums gave 1.0013
    assert cosine(torch.tensor([[1.0, 0.0]]), torch.tensor([1.0, 1.0])) == pytest.approx(2**-0.5, abs=1e-12)


@pytest.mark.parametrize("seed", [-1, 2**32, 10**14])
def test_a_seed_outside_what_sb3_and_numpy_take_is_refused_by_every_rule(seed):
    # 10**14: DFA derives each layer's seed as seed * 1_000_003 + l, beyond torch's 64 bits
    for rule in RULES:
        with pytest.raises(ValueError, match=rf"^{rule}: seed must be an integer from 0 to 2\*\*32 - 1, got {seed}$"):
            make_rule(rule, out_features=2, seed=seed)
