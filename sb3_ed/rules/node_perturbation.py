"""Learned direct feedback by node perturbation (Lansdell, Prakash & Kording, "Learning to solve the
credit assignment problem", ICLR 2020, arXiv:1906.00889): DFA whose ``B_l`` learn to approach
backprop's ``dL/dh_l``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from ..checks import check_flag, check_number, non_negative_finite, positive_finite
from .dfa import DFA

UPDATES = ("ridge", "sgd")
ESTIMATORS = ("first_order", "exact")


class NodePerturbation(DFA):
    """Hidden layer ``l`` receives ``B_l e``, as under DFA; ``B_l`` learns, at every backward, to
    regress node-perturbation estimates of the true gradient ``dL/dh_l``.

    Each forward pass that will be differentiated is followed by a second, noisy pass of the same
    batch without gradients: ``xi_l ~ N(0, sigma^2)`` is added to the output of every hidden block at
    once (the output layer gets none). Per example, ``lambda_l = dL * xi_l / sigma^2`` estimates
    ``dL/dh_l`` (the total derivative through all layers above), where ``dL = L_noisy - L_clean``:

    - ``estimator="first_order"`` (default): ``dL = e . (y_noisy - y_clean)``, all that a backward
      knows (``e = dL/dy``). It drops the second-order term of the loss in ``y_noisy - y_clean``:
      more variance, no bias at first order.
    - ``estimator="exact"``: ``dL = loss(y_noisy) - loss(y_clean)`` from ``rule.per_example_loss``,
      a callable ``y -> (batch,)`` losses that the caller sets before each forward pass.

    The forward weights learn exactly as under DFA with the current ``B_l``; then ``B_l`` is updated:

    - ``update="ridge"`` (default): running sums ``V = decay V + E^T E`` (d x d, shared by the layers)
      and ``S_l = decay S_l + Lambda_l^T E``, and ``B_l = S_l (V + ridge * tr(V) / d * I)^-1``: the
      regularised least-squares fit of ``B_l e ~ lambda_l`` over the recent batches (``decay = 1``:
      all of them, as in the paper). It does not depend on the scale of ``e``.
    - ``update="sgd"``: ``B_l <- B_l - beta * (E B_l^T - Lambda_l)^T E / batch``, SGD on
      ``|B_l e - lambda_l|^2``; ``beta`` must suit the scale of ``e``.

    ``normalize=True`` delivers ``B_l e`` with ``B_l`` rescaled to ``sqrt(features)``, the expected
    Frobenius norm of DFA's random ``B_l``: the rule then learns the direction of its feedback and
    keeps DFA's step size. The fitted ``B_l`` has the scale of the true ``dL/dh_l``, far below DFA's
    on a wide layer (1.6 against 63 on classify's 4000-unit MNIST layer), so under plain SGD at
    DFA's learning rates its hidden layers would move that much slower; Adam does not care.

    ``B_l``, ``V``, ``S_l`` (buffers), the number of updates and the noise generator's state are
    saved and loaded with the ``state_dict``. The noise comes from a generator of its own (seeded
    by ``seed``), so the global random stream is the same as under DFA.

    :param out_features: the network's output dimension ``d``
    :param seed: seed of the initial ``B_l`` (as DFA's) and of the noise (default 0)
    :param sigma: standard deviation of the noise, > 0 and below 1e150, in units of the hidden activity (default 1e-3)
    :param update: ``"ridge"`` or ``"sgd"`` (default ``"ridge"``)
    :param beta: learning rate of ``update="sgd"``, >= 0 (default 0.01)
    :param decay: forgetting factor of ``update="ridge"``'s sums, in (0, 1] (default 0.999)
    :param ridge: regularisation of ``update="ridge"``, relative to ``tr(V) / d``, > 0 (default 1e-3)
    :param warmup: backward passes at the start that train only the ``B_l`` (every gradient of the
        forward weights is zero), >= 0 (default 0)
    :param estimator: ``"first_order"`` or ``"exact"`` (default ``"first_order"``)
    :param normalize: deliver the errors through ``B_l`` rescaled to Frobenius norm
        ``sqrt(features)`` (default False: the fitted ``B_l`` itself)
    :raises ValueError: an option out of its range or of the wrong type (naming it); ``estimator="exact"`` without
        ``per_example_loss``
    :raises TypeError: ``normalize`` is not a bool
    :raises FloatingPointError: a non-finite estimate or ``B_l`` (naming the layer); no update made
    """

    name = "np"
    requires_hidden = True
    normalize = False  # for rules pickled before the option existed

    def __init__(
        self,
        out_features: int | None = None,
        seed: int = 0,
        *,
        sigma: float = 1e-3,
        update: str = "ridge",
        beta: float = 0.01,
        decay: float = 0.999,
        ridge: float = 1e-3,
        warmup: int = 0,
        estimator: str = "first_order",
        normalize: bool = False,
    ):
        # the estimate divides by sigma**2, which must be a float too
        check_number("np: sigma", sigma, "> 0 and below 1e150", lambda v: 0 < v < 1e150)
        check_number("np: beta", beta, "finite and >= 0", non_negative_finite)
        check_number("np: decay", decay, "in (0, 1]", lambda v: 0 < v <= 1)
        check_number("np: ridge", ridge, "finite and > 0", positive_finite)
        check_number("np: warmup", warmup, "an integer >= 0", lambda v: v >= 0, integer=True)
        check_flag("np: normalize", normalize)
        if update not in UPDATES:
            raise ValueError(f"np: update must be one of {', '.join(UPDATES)}, got {update!r}")
        if estimator not in ESTIMATORS:
            raise ValueError(f"np: estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
        super().__init__(out_features, seed)
        self.sigma, self.update, self.beta, self.decay, self.ridge = sigma, update, beta, decay, ridge
        self.warmup, self.estimator, self.normalize = warmup, estimator, normalize
        self.per_example_loss = None
        self.updates = 0
        self._generators: dict[torch.device, torch.Generator] = {}

    def _generator(self, device: torch.device) -> torch.Generator:
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed * 1_000_003 + 999_983)
        return self._generators[device]

    def forward_context(self, points: Sequence[torch.Tensor], y: torch.Tensor, run_perturbed) -> Any:
        if not self.learning or not points:
            return None
        generator = self._generator(y.device)
        noises = [torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype).mul_(self.sigma) for p in points]
        y_noisy = run_perturbed(noises)
        if self.estimator == "first_order":
            return noises, y_noisy - y.detach()
        if self.per_example_loss is None:
            raise ValueError("np: estimator='exact' needs rule.per_example_loss, a callable y -> (batch,) losses, set before the forward pass")
        with torch.no_grad():
            return noises, self.per_example_loss(y_noisy) - self.per_example_loss(y.detach())

    def hidden_error(self, e, shape, index):
        error = super().hidden_error(e, shape, index)
        if not self.normalize:
            return error
        B = self.feedback_matrix(index, math.prod(shape[1:]), e)
        # e (c B)^T = c (e B^T); a B of all zeros (nothing fitted yet) delivers zeros
        return error * (math.sqrt(B.shape[0]) / B.norm().clamp_min(torch.finfo(B.dtype).tiny))

    def deliver(self, e: torch.Tensor, shapes: Sequence[torch.Size | None], context: Any):
        errors = self.hidden_errors(e, shapes)  # with the B_l of this forward pass
        if context is None:
            return e, errors
        self._learn_feedback(e, shapes, *context)
        if self.updates <= self.warmup:
            return torch.zeros_like(e), [None if err is None else torch.zeros_like(err) for err in errors]
        return e, errors

    @torch.no_grad()
    def gradient_estimates(self, e: torch.Tensor, context: Any) -> list[torch.Tensor]:
        """Per hidden point, ``lambda_l = dL * xi_l / sigma^2`` of each example, ``(batch, features)``:
        the node-perturbation estimates of ``dL/dh_l`` from one backward's ``e`` and the ``context``
        that :meth:`~sb3_ed.rules.LearningRule.forward_context` returned for its forward pass."""
        noises, difference = context
        loss_change = (e * difference).sum(1) if self.estimator == "first_order" else difference.reshape(-1)
        return [(loss_change[:, None] * xi.flatten(1)) / self.sigma**2 for xi in noises]

    @torch.no_grad()
    def _learn_feedback(self, e: torch.Tensor, shapes, noises, difference) -> None:
        targets = self.gradient_estimates(e, (noises, difference))
        d = e.shape[1]
        if self.update == "ridge":
            V = self._running("V", (d, d), e).mul(self.decay).add_(e.T @ e)
            scale = V.diagonal().sum() / d
            if scale <= 0:  # no error seen yet: nothing to fit
                self.updates += 1
                return
            regularised = V + self.ridge * scale * torch.eye(d, dtype=e.dtype, device=e.device)
        new = {}
        for index, (shape, target) in enumerate(zip(shapes, targets)):
            if shape is None:
                continue
            B = self.feedback_matrix(index, target.shape[1], e)
            if self.update == "ridge":
                S = self._running(f"S_{index}", B.shape, e).mul(self.decay).add_(target.T @ e)
                value = (torch.linalg.solve(regularised, S.T).T, S)
            else:
                value = (B - self.beta * (e @ B.T - target).T @ e / e.shape[0], None)
            if not (torch.isfinite(target).all() and torch.isfinite(value[0]).all()):
                raise FloatingPointError(
                    f"np: the feedback estimate for hidden layer {index} is not finite (sigma={self.sigma}, "
                    f"update={self.update!r}); no update made"
                )
            new[index] = value
        for index, (B, S) in new.items():
            getattr(self, f"B_{index}").copy_(B)
            if S is not None:
                getattr(self, f"S_{index}").copy_(S)
        if self.update == "ridge":
            self.V.copy_(V)
        self.updates += 1

    def _running(self, name: str, shape, like: torch.Tensor) -> torch.Tensor:
        """The running sum ``name`` (a buffer made on first use, zero)."""
        if not hasattr(self, name):
            self.register_buffer(name, torch.zeros(shape, dtype=like.dtype, device=like.device))
        return getattr(self, name)

    def get_extra_state(self) -> dict:
        return {"updates": self.updates, "generators": {str(k): g.get_state() for k, g in self._generators.items()}}

    def set_extra_state(self, state: dict) -> None:
        self.updates = state["updates"]
        for device, generator_state in state["generators"].items():
            self._generator(torch.device(device)).set_state(generator_state)

    def __getstate__(self):
        # generators do not pickle: their states travel as extra state
        return {**super().__getstate__(), "_generators": {}, "_generator_states": self.get_extra_state()["generators"]}

    def __setstate__(self, state):
        states = state.pop("_generator_states", {})
        super().__setstate__(state)
        for device, generator_state in states.items():
            self._generator(torch.device(device)).set_state(generator_state)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, sigma={self.sigma}, update={self.update!r}, beta={self.beta}, decay={self.decay}, "
            f"ridge={self.ridge}, warmup={self.warmup}, estimator={self.estimator!r}, normalize={self.normalize}"
        )
