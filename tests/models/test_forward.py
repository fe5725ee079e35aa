"""Every zoo model runs forward (at a reduced input where the architecture allows) and the small ones
train one step; the lecture's volumes come out of a real forward pass."""
import numpy as np
import pytest

import cnnkit
import cnnkit.models as M

# name -> (kwargs, input (C, H, W), trains one step in the test)
FORWARD = {
    "lenet5": ({}, (1, 32, 32), True),
    "alexnet": ({}, (3, 227, 227), False),                 # the original has a fixed input
    "vgg11": ({}, (3, 32, 32), False),
    "vgg11_bn": ({}, (3, 32, 32), False),
    "vgg11_lrn": ({}, (3, 32, 32), False),
    "vgg13": ({}, (3, 32, 32), False),
    "vgg13_bn": ({}, (3, 32, 32), False),
    "vgg16_c": ({}, (3, 32, 32), False),
    "vgg16": ({}, (3, 32, 32), False),
    "vgg16_bn": ({}, (3, 32, 32), False),
    "vgg19": ({}, (3, 32, 32), False),
    "vgg19_bn": ({}, (3, 32, 32), False),
    "googlenet": ({}, (3, 64, 64), False),
    "mobilenet_v1": (dict(alpha=0.25), (3, 32, 32), True),
    "xception": ({}, (3, 32, 32), False),
    "resnet18": ({}, (3, 32, 32), True),
    "resnet34": ({}, (3, 32, 32), False),
    "resnet50": ({}, (3, 32, 32), False),
    "resnet101": ({}, (3, 32, 32), False),
    "resnet152": ({}, (3, 32, 32), False),
    "resnet20": ({}, (3, 32, 32), True),
    "resnet32": ({}, (3, 32, 32), False),
    "resnet44": ({}, (3, 32, 32), False),
    "resnet56": ({}, (3, 32, 32), False),
    "resnet110": ({}, (3, 16, 16), False),
}
SLOW = {"alexnet", "vgg11", "vgg11_bn", "vgg11_lrn", "vgg13", "vgg13_bn", "vgg16_c", "vgg16", "vgg16_bn",
        "vgg19", "vgg19_bn", "xception", "resnet101", "resnet152", "resnet110"}


def test_every_registered_model_is_exercised():
    assert set(FORWARD) == set(M.names())


def train_step(model, x, num_classes):
    """One SGD step; every parameter gets a finite gradient and the loss goes down on this batch."""
    y = cnnkit.tensor(np.arange(x.shape[0]) % num_classes)
    loss_fn = cnnkit.nn.CrossEntropyLoss()
    opt = cnnkit.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    loss = loss_fn(model(x), y)
    opt.zero_grad()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} has no gradient"
        assert np.all(np.isfinite(p.grad.data)), name
    opt.step()
    return loss.item(), loss_fn(model(x), y).item()


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in FORWARD])
def test_forward_pass(fast_init, name):
    kwargs, size, trains = FORWARD[name]
    model = M.create(name, num_classes=7, **kwargs)
    model.eval()
    x = cnnkit.tensor(np.random.default_rng(0).standard_normal((1, *size)).astype(np.float32))
    with cnnkit.no_grad():
        out = model(x)
    assert out.shape == (1, 7)
    assert np.all(np.isfinite(out.data))
    if trains:
        x2 = cnnkit.tensor(np.random.default_rng(1).standard_normal((4, *size)).astype(np.float32))
        before, after = train_step(model, x2, 7)
        assert after < before


def test_lenet5_tanh_avg_c3_table_trains_one_step():
    model = M.lenet5(activation="tanh", pooling="avg", c3_table=True)
    x = cnnkit.tensor(np.random.default_rng(0).standard_normal((4, 1, 32, 32)).astype(np.float32))
    before, after = train_step(model, x, 10)
    assert after < before


def volumes(model, x, names):
    """Output shapes of the named submodules during one forward pass."""
    out, handles = {}, []
    lookup = dict(model.named_modules())
    for n in names:
        handles.append(lookup[n].register_forward_hook(lambda m, i, o, n=n: out.__setitem__(n, tuple(o.shape))))
    with cnnkit.no_grad():
        model.eval()
        model(x)
    for h in handles:
        h.remove()
    return out


def test_lenet5_volumes_match_the_lecture_table():
    got = volumes(M.lenet5(), cnnkit.zeros(1, 1, 32, 32), ["c1", "s2", "c3", "s4", "c5", "f6", "output"])
    assert got == {"c1": (1, 6, 28, 28), "s2": (1, 6, 14, 14), "c3": (1, 16, 10, 10), "s4": (1, 16, 5, 5),
                   "c5": (1, 120, 1, 1), "f6": (1, 84), "output": (1, 10)}


@pytest.mark.slow
def test_alexnet_volumes_match_the_lecture(fast_init):
    # 227×227×3 → conv1 55×55×96 (since (227 − 11)/4 + 1 = 55) → pool1 27×27×96 ((55 − 3)/2 + 1 = 27).
    got = volumes(M.alexnet(), cnnkit.zeros(1, 3, 227, 227), ["features.0", "features.3", "features.7",
                                                              "features.14"])
    assert got == {"features.0": (1, 96, 55, 55), "features.3": (1, 96, 27, 27), "features.7": (1, 256, 13, 13),
                   "features.14": (1, 256, 6, 6)}


@pytest.mark.slow
def test_googlenet_output_sizes_match_every_row_of_table1():
    rows = {  # Szegedy et al. 2014, Table 1 "output size" (W×H×D)
        "conv1": (112, 64), "maxpool1": (56, 64), "conv3": (56, 192), "maxpool2": (28, 192),
        "inception3a": (28, 256), "inception3b": (28, 480), "maxpool3": (14, 480),
        "inception4a": (14, 512), "inception4b": (14, 512), "inception4c": (14, 512), "inception4d": (14, 528),
        "inception4e": (14, 832), "maxpool4": (7, 832), "inception5a": (7, 832), "inception5b": (7, 1024),
        "avgpool": (1, 1024), "dropout": (None, 1024), "fc": (None, 1000),
    }
    model = M.googlenet(aux_logits=True)
    got = volumes(model, cnnkit.zeros(1, 3, 224, 224), list(rows))
    for name, (size, depth) in rows.items():
        expected = (1, depth) if size is None else (1, depth, size, size)
        assert got[name] == expected, name
    # Aux heads (training mode) on 4a and 4d: 14×14 → 5×5/3 average pool → 4×4×128 → 2048 → 1024 → 1000.
    model.train()
    out = model(cnnkit.zeros(1, 3, 224, 224))
    assert [o.shape for o in out] == [(1, 1000)] * 3
    assert out._fields == ("logits", "aux_logits2", "aux_logits1")


def macs(model, x):
    """Multiply-accumulates of conv and linear layers, from the shapes of a real forward pass."""
    total = []

    def hook(m, inputs, out):
        if type(m).__name__ == "Conv2d":
            total.append(m.weight.data.size * out.shape[2] * out.shape[3])
        elif type(m).__name__ == "Linear":
            total.append(m.weight.data.size)
    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with cnnkit.no_grad():
        model.eval()
        model(x)
    for h in handles:
        h.remove()
    return sum(total)


@pytest.mark.slow
def test_mobilenet_v1_has_569m_mult_adds(fast_init):
    # Howard et al. 2017, Table 8: 1.0 MobileNet-224, 569 million mult-adds (the last depthwise conv at
    # stride 1; the printed stride 2 would give a 4×4 map and fewer).
    assert round(macs(M.mobilenet_v1(), cnnkit.zeros(1, 3, 224, 224)) / 1e6) == 569


def test_mobilenet_v1_keeps_7x7_at_the_end(fast_init):
    got = volumes(M.mobilenet_v1(alpha=0.25), cnnkit.zeros(1, 3, 224, 224), ["features.12", "features.13"])
    assert got == {"features.12": (1, 256, 7, 7), "features.13": (1, 256, 7, 7)}


def test_resnet_v1_puts_the_stride_on_the_first_1x1(no_init):
    v1, v15 = M.resnet50(variant="v1"), M.resnet50()
    assert v1.layer2[0].conv1.stride == (2, 2) and v1.layer2[0].conv2.stride == (1, 1)
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)
    assert v1.layer2[0].downsample[0].stride == (2, 2)


def test_resnet50_v1_has_fewer_macs_than_v1_5(fast_init):
    # Same parameters; the stride moved before the 3×3 conv makes it cheaper (paper 3.8 G vs torchvision 4.1 G).
    # At 64×64 the ratio is that of 224×224 (every map is 1/12.25 of the size).
    x = cnnkit.zeros(1, 3, 64, 64)
    assert macs(M.resnet50(variant="v1"), x) < macs(M.resnet50(), x)


def test_networks_with_global_pooling_accept_any_input_size():
    for name, size in [("resnet20", (3, 45, 37)), ("mobilenet_v1", (3, 50, 70)), ("googlenet", (3, 70, 90))]:
        model = M.create(name, num_classes=5, **({"alpha": 0.25} if name == "mobilenet_v1" else {}))
        model.eval()
        with cnnkit.no_grad():
            assert model(cnnkit.zeros(1, *size)).shape == (1, 5)


def test_lenet5_rejects_other_sizes_with_a_clear_error():
    with pytest.raises(ValueError, match="Linear"):
        M.lenet5()(cnnkit.zeros(1, 1, 36, 36))


# torchvision's published GFLOPS (= conv + linear MACs, batch 1, 224×224) and the papers' figures.
PUBLISHED_MACS = [
    ("resnet18", {}, (3, 224, 224), 1.814e9),
    ("resnet50", {}, (3, 224, 224), 4.089e9),
    ("resnet50", {"variant": "v1"}, (3, 224, 224), 3.858e9),     # the paper's 3.8 × 10⁹ FLOPs (MACs)
    ("alexnet", {"variant": "torchvision"}, (3, 224, 224), 0.714e9),
    ("googlenet", {"variant": "torchvision"}, (3, 224, 224), 1.498e9),
    ("vgg16", {}, (3, 224, 224), 15.470e9),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs,size,expected", PUBLISHED_MACS,
                         ids=[f"{n}{k or ''}" for n, k, _, _ in PUBLISHED_MACS])
def test_published_mac_counts(no_init, name, kwargs, size, expected):
    model = M.create(name, **kwargs)
    for p in model.parameters():             # any finite values: only the shapes matter here
        p.data[...] = 0.01
    assert abs(macs(model, cnnkit.zeros(1, *size)) - expected) < 0.0005 * expected


@pytest.mark.slow
def test_vgg16_block_volumes_match_the_lecture(no_init):
    # "1st and 2nd CONV layers: 224×224×64; 3rd POOL: 112×112×64; 4th and 5th CONV: 112×112×128;
    # 6th POOL: 56×56×128" and on through 7×7×512 after the last pool.
    model = M.vgg16()
    for p in model.parameters():
        p.data[...] = 0.01
    names = {"features.0": (64, 224), "features.2": (64, 224), "features.4": (64, 112), "features.5": (128, 112),
             "features.7": (128, 112), "features.9": (128, 56), "features.16": (256, 28), "features.23": (512, 14),
             "features.30": (512, 7)}
    got = volumes(model, cnnkit.zeros(1, 3, 224, 224), list(names))
    assert got == {n: (1, c, s, s) for n, (c, s) in names.items()}
