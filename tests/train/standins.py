"""Tiny stand-ins for the trainer tests: a linear classifier with random noise (exercises the RNG
state in checkpoints), cross-entropy from Tensor ops, SGD with momentum and a StepLR with
``state_dict``, and a seeded loader with ``set_epoch``. They keep these tests independent of the
zoo, optimisers and data sets (tested elsewhere) and fast."""
from __future__ import annotations

import numpy as np

from cnnkit import Tensor, get_rng
from cnnkit.nn import Module, Parameter


class NoisyLinear(Module):
    """``x.flatten() @ W + b`` plus N(0, noise²) in training mode (drawn from cnnkit's generator)."""

    def __init__(self, in_features=8, num_classes=3, noise=0.1):
        super().__init__()
        self.config = {"name": "noisy_linear", "kwargs": {"in_features": in_features, "num_classes": num_classes}}
        self.weight = Parameter(get_rng().standard_normal((in_features, num_classes)).astype(np.float32) * 0.1)
        self.bias = Parameter(np.zeros(num_classes, np.float32))
        self.noise = noise

    def forward(self, x):
        out = x.reshape(x.shape[0], -1) @ self.weight + self.bias
        if self.training and self.noise:
            out = out + Tensor(get_rng().standard_normal(out.shape).astype(np.float32) * self.noise)
        return out


def cross_entropy(logits, y):
    z = logits - Tensor(logits.data.max(axis=1, keepdims=True))
    logp = z - z.exp().sum(1, keepdim=True).log()
    yy = y.data if isinstance(y, Tensor) else np.asarray(y)
    return -logp[np.arange(len(yy)), yy].mean()


class SGD:
    def __init__(self, params, lr=0.1, momentum=0.9):
        self.params = list(params)
        self.param_groups = [{"params": self.params, "lr": lr, "momentum": momentum}]
        self.defaults = {"lr": lr, "momentum": momentum}
        self.state = {}

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        g = self.param_groups[0]
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            buf = self.state.setdefault(i, {"momentum_buffer": np.zeros_like(p.data), "step": np.int64(0)})
            buf["momentum_buffer"] = g["momentum"] * buf["momentum_buffer"] + p.grad.data
            buf["step"] += 1
            p.data = p.data - np.float32(g["lr"]) * buf["momentum_buffer"]

    def state_dict(self):
        return {"state": {i: dict(s) for i, s in self.state.items()},
                "param_groups": [{k: v for k, v in self.param_groups[0].items() if k != "params"} | {"params": list(range(len(self.params)))}]}

    def load_state_dict(self, sd):
        self.state = {i: dict(s) for i, s in sd["state"].items()}
        self.param_groups[0].update({k: v for k, v in sd["param_groups"][0].items() if k != "params"})


class StepLR:
    def __init__(self, optimizer, step_size=2, gamma=0.5):
        self.optimizer, self.step_size, self.gamma, self.last_epoch = optimizer, step_size, gamma, 0

    def step(self):
        self.last_epoch += 1
        if self.last_epoch % self.step_size == 0:
            self.optimizer.param_groups[0]["lr"] *= self.gamma

    def state_dict(self):
        return {k: v for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, sd):
        vars(self).update(sd)


class Loader:
    def __init__(self, x, y, batch_size=16, shuffle=True, seed=0):
        self.x, self.y, self.batch_size, self.shuffle, self.seed, self.epoch = x, y, batch_size, shuffle, seed, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        idx = np.arange(len(self.x))
        if self.shuffle:
            idx = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))
        for i in range(0, len(idx), self.batch_size):
            j = idx[i:i + self.batch_size]
            yield Tensor(self.x[j]), Tensor(self.y[j])


def blobs(n=120, features=8, classes=3, seed=0):
    """Gaussian blobs, linearly separable: (x float32 (n, features), y int64 (n,))."""
    r = np.random.default_rng(seed)
    centres = r.standard_normal((classes, features)) * 3
    y = r.integers(0, classes, n)
    x = (centres[y] + r.standard_normal((n, features))).astype(np.float32)
    return x, y.astype(np.int64)
