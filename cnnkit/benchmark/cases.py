"""The benchmark cases: conv layers, pooling, batch norm and whole networks, each built for cnnkit and
PyTorch on the same arrays."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .twins import torch_twin


@dataclass
class Case:
    """One row of the table: ``build(quick, torch)`` returns ``(cnnkit_fn, torch_fn or None, flops)``."""
    name: str
    group: str
    build: object = field(repr=False)


def _rng():
    return np.random.default_rng(0)


def _conv_case(shape, k_out, k, stride, pad, groups, backward):
    def build(quick, torch):
        import cnnkit
        from cnnkit.nn import functional as F
        from cnnkit.nn.functional.conv import conv2d_path
        n, c, h, w = shape
        if quick:
            n, h, w = max(1, n // 16), min(h, 32), min(w, 32)
        rng = _rng()
        x = rng.standard_normal((n, c, h, w), dtype=np.float32)
        wt = (rng.standard_normal((k_out, c // groups, k, k), dtype=np.float32) * 0.1)
        paths = [conv2d_path(x.shape, wt.shape, stride, pad, 1, groups, direction=d)
                 for d in (("forward", "input_grad", "weight_grad") if backward else ("forward",))]
        note = paths[0] if not backward else f"{paths[0]}; dX {paths[1]}; dW {paths[2]}"
        out_hw = [cnnkit.shape.conv_output_size(s, k, stride, pad) for s in (h, w)]
        flops = 2 * n * cnnkit.shape.conv_macs(c, k_out, (k, k), out_hw, groups) * (3 if backward else 1)
        gy = rng.standard_normal((n, k_out, *out_hw), dtype=np.float32)
        cx, cw = cnnkit.tensor(x, requires_grad=backward), cnnkit.tensor(wt, requires_grad=backward)

        def cn():
            if not backward:
                with cnnkit.no_grad():
                    return F.conv2d(cx, cw, None, stride, pad, 1, groups)
            cx.grad = cw.grad = None
            F.conv2d(cx, cw, None, stride, pad, 1, groups).backward(gy)
        th = None
        if torch is not None:
            tx, tw = torch.tensor(x, requires_grad=backward), torch.tensor(wt, requires_grad=backward)
            tgy = torch.tensor(gy)

            def th():
                if not backward:
                    with torch.no_grad():
                        return torch.nn.functional.conv2d(tx, tw, None, stride, pad, 1, groups)
                tx.grad = tw.grad = None
                torch.nn.functional.conv2d(tx, tw, None, stride, pad, 1, groups).backward(tgy)
        return cn, th, flops, note
    return build


#: Notes that name it mark cases whose 3×3 layers run Winograd's F(2×2, 3×3) (their FLOPs counted as direct ones).
WINOGRAD_NOTE = "winograd"


def conv_path(module, input_shape) -> str | None:
    """The forward algorithm ``module`` (a layer of a model) takes on an input of ``input_shape`` if it is a Conv2d
    (:func:`cnnkit.nn.functional.conv.conv2d_path`: ``"gemm"``, ``"winograd-rows"``, ``"direct"``, …)."""
    import cnnkit
    from cnnkit.nn.functional.conv import conv2d_path
    if not isinstance(module, cnnkit.nn.Conv2d):
        return None
    return conv2d_path(tuple(input_shape), module.weight.shape, module.stride, module.padding, module.dilation,
                       module.groups)


def layer_algorithms(model, size, n) -> dict:
    """``{forward algorithm: number of Conv2d layers}`` of ``model`` on ``n`` inputs of ``size``: the input shape of
    every Conv2d from a pass over an empty batch (no arithmetic), then :func:`conv_path` at batch ``n`` (which
    measures, where measurement is on and nothing is cached yet)."""
    import cnnkit
    seen, hooks, training = [], [], model.training
    for m in model.modules():
        if isinstance(m, cnnkit.nn.Conv2d):
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out: seen.append(conv_path(mod, (n,) + tuple(inp[0].shape[1:])))))
    try:
        with cnnkit.no_grad():
            model.eval()                                     # batch norm takes an empty batch in eval mode only
            model(cnnkit.tensor(np.zeros((0,) + tuple(size), dtype=np.float32)))
    finally:
        model.train(training)
        for h in hooks:
            h.remove()
    return dict(Counter(seen).most_common())


def _pool_case(shape, k, stride, pad, backward):
    def build(quick, torch):
        import cnnkit
        from cnnkit.nn import functional as F
        n, c, h, w = shape
        if quick:
            n = max(1, n // 16)
        rng = _rng()
        x = rng.standard_normal((n, c, h, w), dtype=np.float32)
        out_hw = [cnnkit.shape.conv_output_size(s, k, stride, pad) for s in (h, w)]
        gy = rng.standard_normal((n, c, *out_hw), dtype=np.float32)
        cx = cnnkit.tensor(x, requires_grad=backward)

        def cn():
            if not backward:
                with cnnkit.no_grad():
                    return F.max_pool2d(cx, k, stride, pad)
            cx.grad = None
            F.max_pool2d(cx, k, stride, pad).backward(gy)
        th = None
        if torch is not None:
            tx, tgy = torch.tensor(x, requires_grad=backward), torch.tensor(gy)

            def th():
                if not backward:
                    with torch.no_grad():
                        return torch.nn.functional.max_pool2d(tx, k, stride, pad)
                tx.grad = None
                torch.nn.functional.max_pool2d(tx, k, stride, pad).backward(tgy)
        return cn, th, 0
    return build


def _batch_norm_case(shape):
    def build(quick, torch):
        import cnnkit
        from cnnkit.nn import functional as F
        n, c, h, w = shape
        if quick:
            n = max(2, n // 16)
        rng = _rng()
        x = rng.standard_normal((n, c, h, w), dtype=np.float32)
        gy = rng.standard_normal((n, c, h, w), dtype=np.float32)
        cx = cnnkit.tensor(x, requires_grad=True)
        cg, cb = cnnkit.ones(c, requires_grad=True), cnnkit.zeros(c, requires_grad=True)
        rm, rv = cnnkit.zeros(c), cnnkit.ones(c)

        def cn():
            cx.grad = cg.grad = cb.grad = None
            F.batch_norm(cx, rm, rv, cg, cb, training=True).backward(gy)
        th = None
        if torch is not None:
            tx, tgy = torch.tensor(x, requires_grad=True), torch.tensor(gy)
            tg, tb = torch.ones(c, requires_grad=True), torch.zeros(c, requires_grad=True)
            trm, trv = torch.zeros(c), torch.ones(c)

            def th():
                tx.grad = tg.grad = tb.grad = None
                torch.nn.functional.batch_norm(tx, trm, trv, tg, tb, training=True).backward(tgy)
        return cn, th, 0
    return build


def _model_flops(model, input_size, batch) -> float:
    try:
        import cnnkit
        return float(cnnkit.summary(model, input_size, batch_size=batch).total["flops"]) * batch
    except Exception:  # the analysis package is optional here
        return 0.0


class Skip(Exception):
    """A case that does not run in this mode."""


#: Models whose parameters alone make a --quick run slow (VGG-16: 138 M parameters).
QUICK_SKIP = {"vgg16"}


def _network_case(name, batch, input_size, train, num_classes=10):
    def build(quick, torch):
        import cnnkit
        from cnnkit.nn import functional as F
        n, size = batch, input_size
        if quick and name in QUICK_SKIP:
            raise Skip("too large for --quick")
        if quick:
            n = max(2, batch // 16)
            size = (size[0],) + tuple(min(s, 64) for s in size[1:])
        cnnkit.manual_seed(0)
        kwargs = {} if name == "vgg16" or name == "mobilenet_v1" else {"num_classes": num_classes}
        model = cnnkit.models.create(name, **kwargs)
        rng = _rng()
        x = rng.standard_normal((n,) + tuple(size), dtype=np.float32)
        flops = _model_flops(model, size, n) * (3 if train else 1)
        cx = cnnkit.tensor(x)
        if train:
            y = rng.integers(0, num_classes, n)
            opt = cnnkit.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            model.train()

            def cn():
                opt.zero_grad()
                F.cross_entropy(model(cx), cnnkit.tensor(y)).backward()
                opt.step()
        else:
            model.eval()

            def cn():
                with cnnkit.no_grad():
                    return model(cx)
        th, note = None, ""
        if torch is not None:
            twin, note = torch_twin(model, torch, x)
            tx = torch.tensor(x)
            if train:
                ty = torch.tensor(y)
                topt = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9)
                twin.train()

                def th():
                    topt.zero_grad()
                    torch.nn.functional.cross_entropy(twin(tx), ty).backward()
                    topt.step()
            else:
                twin.eval()

                def th():
                    with torch.no_grad():
                        return twin(tx)
        used = layer_algorithms(model, size, n)
        note = "; ".join(filter(None, [note, "conv: " + ", ".join(f"{k} {v}" for k, v in used.items())]))
        return cn, th, flops, note
    return build


#: (label, input shape, out channels, kernel, stride, padding, groups) — the issue's layer cases.
CONV_LAYERS = [
    ("LeNet C1 1→6 5×5, 128×32²", (128, 1, 32, 32), 6, 5, 1, 0, 1),
    ("ResNet-20 3×3 16→16, 128×32²", (128, 16, 32, 32), 16, 3, 1, 1, 1),
    ("ResNet 3×3 64→64, 128×8²", (128, 64, 8, 8), 64, 3, 1, 1, 1),
    ("VGG-16 3×3 128→128, 4×112²", (4, 128, 112, 112), 128, 3, 1, 1, 1),
    ("1×1 256→256, 8×28²", (8, 256, 28, 28), 256, 1, 1, 0, 1),
    ("depthwise 3×3 256, 8×28²", (8, 256, 28, 28), 256, 3, 1, 1, 256),
    ("stride-2 3×3 16→32, 128×32²", (128, 16, 32, 32), 32, 3, 2, 1, 1),
]


def cases() -> list:
    """Every benchmark case, in table order."""
    out = []
    for label, shape, k_out, k, s, p, g in CONV_LAYERS:
        out.append(Case(f"conv {label} fwd", "conv", _conv_case(shape, k_out, k, s, p, g, False)))
        out.append(Case(f"conv {label} fwd+bwd", "conv", _conv_case(shape, k_out, k, s, p, g, True)))
    for label, k, s, p in (("2×2/2", 2, 2, 0), ("3×3/2 pad 1", 3, 2, 1)):
        out.append(Case(f"max pool {label}, 32×64×56² fwd", "pool", _pool_case((32, 64, 56, 56), k, s, p, False)))
        out.append(Case(f"max pool {label}, 32×64×56² fwd+bwd", "pool", _pool_case((32, 64, 56, 56), k, s, p, True)))
    out.append(Case("batch norm 2d, 128×16×32² fwd+bwd", "norm", _batch_norm_case((128, 16, 32, 32))))
    out += [
        Case("LeNet-5 train step, batch 128", "network", _network_case("lenet5", 128, (1, 32, 32), True)),
        Case("ResNet-20 train step, batch 128", "network", _network_case("resnet20", 128, (3, 32, 32), True)),
        Case("ResNet-20 inference, batch 128", "network", _network_case("resnet20", 128, (3, 32, 32), False)),
        Case("VGG-16 inference 224², batch 4", "network", _network_case("vgg16", 4, (3, 224, 224), False)),
        Case("MobileNet v1 inference 224², batch 8", "network",
             _network_case("mobilenet_v1", 8, (3, 224, 224), False)),
    ]
    return out


#: Peak-memory cases: (label, model, batch, input size, train).
MEMORY_CASES = [
    ("ResNet-20 train step, batch 128", "resnet20", 128, (3, 32, 32), True),
    ("VGG-16 inference 224², batch 4", "vgg16", 4, (3, 224, 224), False),
]
