"""PyTorch twins of cnnkit models: same architecture, parameter names and weights."""
from __future__ import annotations

import numpy as np


def _torch_classes(torch):
    nn = torch.nn

    class Chain(nn.Module):
        """Runs its children in order (cnnkit's Sequential-style containers)."""

        def __init__(self, children):
            super().__init__()
            for key, m in children:
                self.add_module(key, m)

        def forward(self, x):
            for m in self._modules.values():
                x = m(x)
            return x

    class BasicBlock(Chain):
        def forward(self, x):
            m = self._modules
            out = m["relu1"](m["bn1"](m["conv1"](x)))
            out = m["bn2"](m["conv2"](out))
            identity = m["downsample"](x) if "downsample" in m else x
            return m["relu2"](out + identity)

    class ShortcutA(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.cin, self.cout, self.stride = cin, cout, stride

        def forward(self, x):
            x = x[:, :, ::self.stride, ::self.stride]
            extra = self.cout - self.cin
            return nn.functional.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))

    return Chain, BasicBlock, ShortcutA


def torch_twin(model, torch, x=None):
    """A ``torch.nn`` model with ``model``'s architecture, parameter names and weights.

    Leaves are mapped one to one; containers run their children in order (ResNet's basic block adds
    its shortcut). With a sample batch ``x`` the two models' eval outputs are compared and the
    returned note says whether they agree.
    """
    nn = torch.nn
    Chain, BasicBlock, ShortcutA = _torch_classes(torch)

    def mirror(m):
        kind = type(m).__name__
        if kind == "Conv2d":
            return nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                             m.groups, bias=m.bias is not None)
        if kind == "Linear":
            return nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
        if kind in ("BatchNorm1d", "BatchNorm2d"):
            return getattr(nn, kind)(m.num_features, eps=m.eps, momentum=m.momentum)
        if kind in ("ReLU", "Tanh", "Sigmoid", "Identity"):
            return getattr(nn, kind)()
        if kind in ("MaxPool2d", "AvgPool2d"):
            extra = {"dilation": m.dilation} if kind == "MaxPool2d" else {}
            return getattr(nn, kind)(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode, **extra)
        if kind == "LocalResponseNorm":
            return nn.LocalResponseNorm(m.size, alpha=m.alpha, beta=m.beta, k=m.k)
        if kind == "AdaptiveAvgPool2d":
            return nn.AdaptiveAvgPool2d(m.output_size)
        if kind == "Flatten":
            return nn.Flatten(m.start_dim, m.end_dim)
        if kind == "Dropout":
            return nn.Dropout(m.p)
        if kind == "ShortcutA":
            return ShortcutA(m.in_channels, m.out_channels, m.stride)
        children = [(k, mirror(c)) for k, c in m._modules.items()]
        if not children:
            raise NotImplementedError(f"torch_twin: no PyTorch equivalent for {kind}")
        return (BasicBlock if kind == "BasicBlock" else Chain)(children)

    twin = mirror(model)
    state = {k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}
    missing, unexpected = twin.load_state_dict(state, strict=False)
    note = ""
    if x is not None:
        import cnnkit
        was_training = model.training
        model.eval()
        twin.eval()
        xs = x[:2]
        with cnnkit.no_grad(), torch.no_grad():
            a = model(cnnkit.tensor(xs)).data
            b = twin(torch.tensor(xs)).numpy()
        model.train(was_training)
        scale = max(1e-6, float(np.abs(b).max()))
        note = "outputs agree" if float(np.abs(a - b).max()) <= 1e-3 * scale else "twin outputs DIFFER"
    return twin, note
