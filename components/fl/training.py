"""Models and local training, one client at a time or many at once.

Local training is plain minibatch SGD on the mean cross-entropy of each batch (plus FedProx's
proximal term), ``epochs`` passes over the client's own samples in an order drawn from the
client's own seed. :func:`train_one` does it for one client; :func:`train_many` does the same
for many clients in one vectorised step per batch (``torch.func.vmap`` over stacked
parameters, ``functional_call`` for the model): batch t of every client is stacked, a client
whose samples are used up takes a zero-weight step (plain SGD: no update). Each client keeps
its own data, order and parameters; the two agree to floating-point rounding (a test checks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from components.fl.strategies import proximal_term

ModelName = Literal["mlp", "cnn"]


def build_model(name: ModelName, features: int, classes: int, hidden: int = 32) -> nn.Module:
    """An MLP (features-hidden-classes) or a small CNN for square images (8 × 8 digits)."""
    if name == "mlp":
        return nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, classes))
    side = round(features**0.5)
    if side * side != features:
        raise ValueError(f"model=cnn needs square images; {features} features are not")
    return nn.Sequential(
        nn.Unflatten(1, (1, side, side)),
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * (side // 2) ** 2, hidden),
        nn.ReLU(),
        nn.Linear(hidden, classes),
    )


@dataclass(frozen=True)
class LocalTraining:
    """How each client trains.

    Attributes:
        epochs: Passes over the client's samples.
        batch_size: Samples per step.
        lr: SGD step size.
        mu: FedProx's μ (0: no proximal term).

    """

    epochs: int = 1
    batch_size: int = 32
    lr: float = 0.05
    mu: float = 0.0


def client_order(samples: int, epochs: int, seed: int) -> list[np.ndarray]:
    """The client's sample order for each epoch (positions into its own data)."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(samples) for _ in range(epochs)]


def _batches(samples: int, cfg: LocalTraining, seed: int) -> list[np.ndarray]:
    out = []
    for order in client_order(samples, cfg.epochs, seed):
        out += [order[i : i + cfg.batch_size] for i in range(0, samples, cfg.batch_size)]
    return out


def _loss(
    model: nn.Module,
    params: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    weight: torch.Tensor,
    anchor: Mapping[str, torch.Tensor],
    mu: float,
) -> torch.Tensor:
    """Mean cross-entropy over the real samples of a padded batch, plus the proximal term."""
    from torch.func import functional_call

    logits = functional_call(model, dict(params), (x,))
    # cross_entropy itself, vmapped, imports SymPy (+50 MB) for its batching rule; this is it.
    per_sample = -torch.log_softmax(logits, -1).gather(-1, y.unsqueeze(-1)).squeeze(-1)
    real = weight.sum()
    loss = (per_sample * weight).sum() / real.clamp(min=1)
    if mu > 0:  # only on a real step: a finished client must not keep pulling to the anchor
        loss = loss + proximal_term(params, anchor, mu) * (real > 0)
    return loss


def train_one(
    model: nn.Module,
    start: Mapping[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: LocalTraining,
    seed: int,
) -> dict[str, torch.Tensor]:
    """One client's local training from ``start``; its new parameters."""
    params = {k: v.detach().clone().requires_grad_(True) for k, v in start.items()}
    anchor = {k: v.detach() for k, v in start.items()}
    for batch in _batches(len(y), cfg, seed):
        index = torch.as_tensor(batch)
        weight = torch.ones(len(batch))
        loss = _loss(model, params, x[index], y[index], weight, anchor, cfg.mu)
        grads = torch.autograd.grad(loss, list(params.values()))
        with torch.no_grad():
            for (name, p), g in zip(params.items(), grads, strict=True):
                params[name] = (p - cfg.lr * g).requires_grad_(True)
    return {k: v.detach() for k, v in params.items()}


def train_many(
    model: nn.Module,
    start: Mapping[str, torch.Tensor],
    data: Sequence[tuple[torch.Tensor, torch.Tensor]],
    cfg: LocalTraining,
    seeds: Sequence[int],
) -> list[dict[str, torch.Tensor]]:
    """Every client's local training from the same ``start``, vectorised over clients.

    The forward pass is vmapped over the stacked parameters; one backward pass of the summed
    losses gives every client its own gradient (clients share no parameters). Plain autograd,
    not ``torch.func.grad``: that transform imports TorchDynamo and SymPy (+80 MB per process).
    """
    from torch.func import vmap

    clients = len(data)
    if clients == 0:
        return []
    plans = [_batches(len(y), cfg, s) for (_, y), s in zip(data, seeds, strict=True)]
    steps = max(len(p) for p in plans)
    width = max(len(b) for p in plans for b in p)
    features = data[0][0].shape[1:]
    anchor = {k: v.detach() for k, v in start.items()}
    params = {
        k: v.detach().unsqueeze(0).repeat(clients, *([1] * v.dim())).requires_grad_(True)
        for k, v in start.items()
    }
    losses = vmap(lambda p, x, y, w: _loss(model, p, x, y, w, anchor, cfg.mu))
    # Every client's samples in one tensor: a step's batches are one gather from it, not three
    # index operations per client (those were a fifth of a round at 2,048 devices).
    x_all = torch.cat([x for x, _ in data])
    y_all = torch.cat([y for _, y in data]).long()
    offsets = np.cumsum([0] + [len(y) for _, y in data[:-1]])
    for t in range(steps):
        index = np.zeros((clients, width), dtype=np.int64)
        real = np.zeros((clients, width), dtype=bool)
        for c, plan in enumerate(plans):
            if t < len(plan):
                n = len(plan[t])
                index[c, :n] = plan[t] + offsets[c]
                real[c, :n] = True
        gather, mask = torch.from_numpy(index), torch.from_numpy(real)
        x_batch = x_all[gather].masked_fill_(~mask.view(*mask.shape, *[1] * len(features)), 0)
        y_batch = y_all[gather].masked_fill_(~mask, 0)
        w_batch = mask.to(torch.float32)
        total = losses(params, x_batch, y_batch, w_batch).sum()
        grads = torch.autograd.grad(total, list(params.values()))
        with torch.no_grad():
            params = {
                k: (p - cfg.lr * g).requires_grad_(True)
                for (k, p), g in zip(params.items(), grads, strict=True)
            }
    # Each client's tensors are views of the stacked result, which nothing else holds: no copy
    # (a pickled list of them carries the stack once).
    rows = {k: v.detach().unbind(0) for k, v in params.items()}
    return [{k: row[c] for k, row in rows.items()} for c in range(clients)]


def evaluate(
    model: nn.Module, params: Mapping[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> tuple[float, float]:
    """Test (accuracy, mean cross-entropy) of ``params``."""
    from torch.func import functional_call

    with torch.no_grad():
        logits = functional_call(model, dict(params), (x,))
        loss = float(nn.functional.cross_entropy(logits, y))
        accuracy = float((logits.argmax(1) == y).float().mean())
    return accuracy, loss


def initial_params(model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """The model's parameters, initialised from ``seed``."""
    torch.manual_seed(seed)
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    return {k: v.detach().clone() for k, v in model.named_parameters()}
