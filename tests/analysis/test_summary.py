"""cnnkit.analysis.summary on small networks: the lecture's numbers, torch.nn twins, real forward passes."""
from __future__ import annotations

import csv
import io
import json
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cnnkit import nn
from cnnkit.analysis import summary

from .nets import (InceptionLike, Residual, TorchInceptionLike, TorchResidual, build_chain, lenet5_lecture,
                   measured_field, real_output_shapes)

# The lecture's LeNet-5 table: layer, input W×H×D, filter, output W×H×D, params.
LENET_TABLE = [
    ("C1", "32×32×1", "5×5×1/1", "28×28×6", 156),
    ("S2", "28×28×6", "2×2×1/2", "14×14×6", 0),
    ("C3", "14×14×6", "5×5×6/1", "10×10×16", 2416),
    ("S4", "10×10×16", "2×2×1/2", "5×5×16", 0),
    ("C5", "5×5×16", "5×5×16/1", "1×1×120", 48120),
    ("F6", "120", "", "84", 10164),
    ("Output", "84", "", "10", 850),
]


def test_lenet5_lecture_table():
    s = summary(lenet5_lecture(), (1, 32, 32))
    for name, vin, kernel, vout, params in LENET_TABLE:
        r = s[name]
        assert (r.input_volume, r.kernel, r.output_volume, r.params) == (vin, kernel, vout, params), name
    assert s["C1"].filters == 6 and s["C3"].filters == 16 and s["C5"].filters == 120
    assert s.total["params"] == 61706 == s.total["trainable_params"]
    assert s.input_size == (1, 32, 32)


def test_lenet5_macs_conventions():
    m = lenet5_lecture()
    # lecture: (F·F·D1 + 1)·K·W2·H2 for convs, (N_in + 1)·N_out for FC
    lecture = (26 * 6 * 28 * 28) + (151 * 16 * 10 * 10) + (401 * 120) + (121 * 84) + (85 * 10)
    default = (25 * 6 * 28 * 28) + (150 * 16 * 10 * 10) + (400 * 120) + (120 * 84) + (84 * 10)
    assert summary(m, (1, 32, 32), count="lecture").total["macs"] == lecture
    s = summary(m, (1, 32, 32))
    assert s.total["macs"] == default and s.total["flops"] == 2 * default
    assert s["C1"].macs == 117600 and s["C1"].flops == 235200
    pools = 6 * 4 * 14 * 14 + 16 * 4 * 5 * 5   # count="all": one op per window element per output
    assert summary(m, (1, 32, 32), count="all").total["macs"] == default + pools


@pytest.mark.parametrize("spec, size, out_volume, params", [
    # the lecture's CONV examples 5 and 6, and its 1×1 filter example
    ([("conv", 3, 10, 5, 1, 0, 1, 1)], (3, 32, 32), "28×28×10", 760),
    ([("conv", 3, 10, 5, 1, 2, 1, 1)], (3, 32, 32), "32×32×10", 760),
    ([("conv", 64, 32, 1, 1, 0, 1, 1)], (64, 56, 56), "56×56×32", 2080),
    # AlexNet conv1 and the overlapping pool1
    ([("conv", 3, 96, 11, 4, 0, 1, 1)], (3, 227, 227), "55×55×96", 34944),
    ([("conv", 3, 96, 11, 4, 0, 1, 1), ("max", 3, 2, 0)], (3, 227, 227), "27×27×96", 34944),
])
def test_lecture_conv_examples(spec, size, out_volume, params):
    s = summary(build_chain(spec, "cnnkit"), size)
    assert s.leaves()[-1].output_volume == out_volume
    assert s.total["params"] == params


def test_unprocessed_columns_flagged():
    # the lecture: a 7×7 input, 3×3 filter, stride 3 leaves the last column and row out; pad 1 fixes it
    s = summary(build_chain([("conv", 1, 1, 3, 3, 0, 1, 1)], "cnnkit"), (1, 7, 7))
    r = s.leaves()[0]
    assert r.output_volume == "2×2×1" and r.unprocessed == (1, 1) and r.flagged
    assert "unprocessed" in str(s)
    s = summary(build_chain([("conv", 1, 1, 3, 3, 1, 1, 1)], "cnnkit"), (1, 7, 7))
    r = s.leaves()[0]
    assert r.output_volume == "3×3×1" and not r.flagged


def test_vgg_block_volumes_and_memory_example():
    # the lecture's memory example: three 3×3 convs with 64 filters, pad 1, on 224×224×3:
    # 3 activation volumes of 224×224×64 ≈ 10 million activations, ≈ 72 MB with their gradients (float32)
    m = build_chain([("conv", 3, 64, 3, 1, 1, 1, 1), ("conv", 64, 64, 3, 1, 1, 1, 1),
                     ("conv", 64, 64, 3, 1, 1, 1, 1)], "cnnkit")
    s = summary(m, (3, 224, 224))
    assert [r.output_volume for r in s.leaves()] == ["224×224×64"] * 3
    assert s.total["activations"] == 3 * 224 * 224 * 64
    both = 2 * s.total["activation_bytes"]
    assert 72e6 <= both <= 78e6 and abs(both / 2 ** 20 - 72) < 2  # 73.5 MiB: the lecture's "72MB"


def test_containers_never_double_count_and_shared_params():
    inner = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Sequential(nn.Conv2d(8, 8, 3, padding=1)))
    m = nn.Sequential(inner, nn.Conv2d(8, 4, 1))
    s = summary(m, (3, 16, 16))
    independent = sum(p.numel() for p in build_torch_twin().parameters())
    assert s.total["params"] == independent == sum(r.params for r in s.layers)
    assert s["0"].subtree_params == 224 + 584 and s["0"].params == 0
    assert s["0.2"].subtree_params == 584 and s["0.2.0"].depth == 3
    # a layer used twice: parameters once, multiplies twice
    conv = nn.Conv2d(4, 4, 3, padding=1)
    twice = nn.Sequential(conv, nn.ReLU(), conv)
    s = summary(twice, (4, 8, 8))
    assert s.total["params"] == 148 == sum(r.params for r in s.layers)
    assert s.total["macs"] == 2 * 4 * 9 * 4 * 64
    assert s.layers[-1].repeat and s.layers[-1].params == 0


def build_torch_twin():
    t = torch.nn
    inner = t.Sequential(t.Conv2d(3, 8, 3, padding=1), t.ReLU(), t.Sequential(t.Conv2d(8, 8, 3, padding=1)))
    return t.Sequential(inner, t.Conv2d(8, 4, 1))


def test_frozen_params_and_memory():
    m = build_chain([("conv", 3, 8, 3, 1, 1, 1, 1), ("bn", 8), ("relu",), ("conv", 8, 8, 3, 1, 1, 1, 1)], "cnnkit")
    m[0].requires_grad_(False)
    s = summary(m, (3, 10, 10), optimizer="adam", dtype="float64", batch_size=4)
    t = s.total
    assert t["params"] == 224 + 16 + 584 and t["frozen_params"] == 224 and t["trainable_params"] == 600
    assert s["0"].frozen_params == 224 and s["3"].frozen_params == 0
    assert t["buffers"] == 16  # BatchNorm running mean and var (num_batches_tracked is an integer)
    assert t["param_bytes"] == 824 * 8
    assert t["gradient_bytes"] == 600 * 8
    assert t["optimizer_bytes"] == 2 * 600 * 8       # Adam: two moments
    acts = 4 * 8 * 100                                # conv, bn, relu, conv outputs
    assert t["activations"] == acts
    assert t["activation_bytes"] == acts * 4 * 8      # batch 4, 8 bytes
    assert t["training_bytes"] == 824 * 8 + 16 * 8 + 600 * 8 + 2 * 600 * 8 + 300 * 4 * 8 + 2 * acts * 4 * 8
    # a chain: at most one layer's input and output alive at once
    assert t["peak_activations"] == 800 + 800
    assert t["inference_bytes"] == 824 * 8 + 16 * 8 + 1600 * 4 * 8
    for dtype, b in (("float32", 4), ("int8", 1), ("float64", 8)):
        assert summary(m, (3, 10, 10), dtype=dtype).total["param_bytes"] == 824 * b
    for opt, k in (("sgd", 0), ("momentum", 1), ("adam", 2)):
        assert summary(m, (3, 10, 10), optimizer=opt).total["optimizer_bytes"] == k * 600 * 4


def test_residual_block_peak_keeps_the_skip_alive():
    m = Residual(4, 4)
    s = summary(m, (4, 8, 8))
    v = 4 * 64
    # while conv2/bn2 run, the block input (needed by the addition) is still alive
    assert s.total["peak_activations"] == 3 * v
    # the addition is the block's own op: its output is counted on the block's (the model's) row
    assert s[""].activations == v and s[""].joins[0]["op"] == "add"
    assert s.total["activations"] == 7 * v  # conv1 bn1 relu conv2 bn2 add relu
    assert summary(m, (4, 8, 8), count="all").total["macs"] == s.total["macs"] + 3 * v  # 2 BN + add


def test_count_all_pooling_batchnorm_addition():
    m = build_chain([("conv", 3, 8, 3, 1, 1, 1, 1), ("bn", 8), ("max", 2, 2, 0)], "cnnkit")
    conv = 3 * 9 * 8 * 16 * 16
    assert summary(m, (3, 16, 16)).total["macs"] == conv
    assert summary(m, (3, 16, 16), count="all").total["macs"] == conv + 8 * 256 + 8 * 4 * 64
    assert summary(m, (3, 16, 16), count="lecture").total["macs"] == (27 + 1) * 8 * 256


@pytest.mark.parametrize("cls, tcls, args, size", [
    (InceptionLike, TorchInceptionLike, (16, 8, 4, 8, 2, 4, 4), (16, 12, 12)),
    (Residual, TorchResidual, (4, 8, 2), (4, 12, 12)),
])
def test_branching_shapes_params_vs_torch(cls, tcls, args, size):
    cn, th = cls(*args), tcls(*args)
    s = summary(cn, size)
    with torch.no_grad():
        out = th.eval()(torch.zeros((1,) + size))
    assert s.total["params"] == sum(p.numel() for p in th.parameters())
    top = s.layers[0] if s.layers[0].name == "" else None
    assert (top.output if top else s.leaves()[-1].output) == tuple(out.shape[1:])


def test_inception_concatenation_and_field():
    s = summary(InceptionLike(192, 64, 96, 128, 16, 32, 32), (192, 28, 28))
    # the lecture's Inception 3a: 28×28×192 → 28×28×256; 163,328 weights (+ 368 biases); ≈128M MACs
    biases = 64 + 96 + 128 + 16 + 32 + 32
    assert s.total["params"] - biases == 163328
    assert round(s.total["macs"] / 1e6) == 128
    root = s[""]
    assert root.output_volume == "28×28×256"
    assert root.joins[0]["op"] == "cat" and [i[0] for i in root.joins[0]["inputs"]] == [64, 128, 32, 32]
    assert root.receptive_field == (5, 5)  # the largest branch (5×5) wins


@pytest.mark.parametrize("make", [
    lambda: (build_chain([("conv", 1, 2, 3, 1, 1, 1, 1)] * 1 + [("conv", 2, 2, 3, 1, 1, 1, 1)] * 2, "cnnkit"),
             build_chain([("conv", 1, 2, 3, 1, 1, 1, 1)] + [("conv", 2, 2, 3, 1, 1, 1, 1)] * 2, "torch"), (1, 31, 31)),
    lambda: (InceptionLike(3, 2, 2, 2, 2, 2, 2), TorchInceptionLike(3, 2, 2, 2, 2, 2, 2, pool="avg"), (3, 21, 21)),
    lambda: (Residual(2, 2, 2), TorchResidual(2, 2, 2), (2, 33, 33)),
])
def test_receptive_field_matches_measured_gradient_extent(make):
    cn, th, size = make()
    if isinstance(cn, InceptionLike):  # the cnnkit twin pools with max; measure with avg (same window)
        cn.branch4[0] = nn.AvgPool2d(3, stride=1, padding=1)
    s = summary(cn, size)
    out = s.layers[0] if s.layers[0].name == "" else s.leaves()[-1]
    (rf_h, rf_w), (ch, cw), (i, j) = measured_field(th, size)
    assert out.receptive_field == (rf_h, rf_w)
    assert (out.start[0] + i * out.jump[0], out.start[1] + j * out.jump[1]) == (ch, cw)


layer_spec = st.tuples(st.sampled_from(["conv", "avg"]), st.integers(1, 5), st.integers(1, 3),
                       st.integers(0, 2), st.integers(1, 2))


@given(st.lists(layer_spec, min_size=1, max_size=4))
def test_receptive_field_random_chains(layers):
    spec = []
    for kind, k, s, p, d in layers:
        p = min(p, k // 2)  # PyTorch: padding at most half the (effective) kernel for pooling
        spec.append(("conv", 1, 1, k, s, p, d, 1) if kind == "conv" else ("avg", k, s, p))
    size = 64
    try:
        s = summary(build_chain(spec, "cnnkit"), (1, size, size))
    except ValueError:
        return  # the chain shrinks the input below 1×1: covered by test_too_small_input_names_the_layer
    out = s.leaves()[-1]
    (rf_h, rf_w), (ch, cw), (i, j) = measured_field(build_chain(spec, "torch"), (1, size, size))
    centre = out.start[0] + i * out.jump[0]
    lo, hi = centre - (out.receptive_field[0] - 1) / 2, centre + (out.receptive_field[0] - 1) / 2
    if lo >= 0 and hi <= size - 1:  # the field lies inside the image: measured exactly
        assert out.receptive_field == (rf_h, rf_w)
        assert (centre, out.start[1] + j * out.jump[1]) == (ch, cw)
    else:  # clipped by the border: the measured extent can only be smaller
        assert rf_h <= out.receptive_field[0]


@given(st.integers(1, 6))
def test_stacked_3x3_field_is_1_plus_2L(n):
    s = summary(build_chain([("conv", 1, 1, 3, 1, 1, 1, 1)] * n, "cnnkit"), (1, 16, 16))
    assert s.leaves()[-1].receptive_field == (1 + 2 * n, 1 + 2 * n)


@pytest.mark.parametrize("model, size", [
    (lenet5_lecture(), (1, 32, 32)),
    (InceptionLike(8, 4, 4, 4, 2, 2, 2), (8, 9, 9)),
    (Residual(3, 6, 2), (3, 15, 15)),
    (build_chain([("conv", 3, 4, 3, 2, 1, 2, 1), ("conv", 4, 8, 3, 1, 1, 1, 2), ("max", 3, 2, 1)], "cnnkit"),
     (3, 17, 23)),
])
def test_shapes_match_a_real_forward_pass(model, size):
    real = real_output_shapes(model, size)
    s = summary(model, size)
    for r in s.layers:
        assert r.output in real[r.name], r.name


def test_too_small_input_names_the_layer():
    with pytest.raises(ValueError, match=r"layer C3 \(Conv2d.*\) receives 4×4×6 and would output less than 1×1"):
        summary(lenet5_lecture(), (1, 12, 12))
    with pytest.raises(ValueError, match=r"layer C1 \(Conv2d\).*channel"):
        summary(lenet5_lecture(), (3, 32, 32))


@pytest.mark.parametrize("kw, match", [
    (dict(count="flops"), "count must be one of"),
    (dict(dtype="float7"), "unknown dtype"),
    (dict(optimizer="lbfgs"), "unknown optimizer"),
    (dict(batch_size=0), "batch_size must be a positive int"),
    (dict(depth=0), "depth must be a positive int"),
])
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        summary(lenet5_lecture(), (1, 32, 32), **kw)


@pytest.mark.parametrize("size, exc, match", [
    ((1, 0, 32), ValueError, "positive"), (32, TypeError, "tuple"), ((1.0, 32, 32), TypeError, "ints")])
def test_input_size_validation(size, exc, match):
    with pytest.raises(exc, match=match):
        summary(lenet5_lecture(), size)


def test_model_modes_restored():
    m = build_chain([("conv", 3, 4, 3, 1, 1, 1, 1), ("bn", 4)], "cnnkit")
    m.train()
    summary(m, (3, 8, 8))
    assert all(x.training for x in m.modules())
    m.eval()
    summary(m, (3, 8, 8))
    assert not any(x.training for x in m.modules())


def test_views(tmp_path):
    s = summary(lenet5_lecture(), (1, 32, 32), name="LeNet-5")
    d = json.loads(s.to_json())
    assert d["model"] == "LeNet-5" and d["input"] == [1, 32, 32]
    for key in ("params", "trainable_params", "macs", "activations", "param_bytes", "activation_bytes",
                "training_bytes", "inference_bytes"):
        assert key in d["total"]
    first = d["layers"][0]
    for key in ("name", "type", "input", "output", "params", "macs", "receptive_field"):
        assert key in first
    assert first["name"] == "C1" and first["output"] == [6, 28, 28] and first["receptive_field"] == [5, 5]
    rows = list(csv.DictReader(io.StringIO(s.to_csv())))
    assert len(rows) == len(s.layers) and rows[0]["params"] == "156" and rows[0]["output_volume"] == "28×28×6"
    md = s.to_markdown()
    assert "| C1 | Conv2d | 28×28×6 | 5×5×1/1 | 0 | 156 | 118 K | 5 |" in md
    assert "| C1 | Conv2d | 32×32×1 | 28×28×6 | 5×5×1/1 | 0 | 6 | 156 | 156 | 0 | 118 K | 235 K | 4,704 | 5 | 1 | 2 |" \
        in s.to_markdown(wide=True)
    text = str(s)
    assert "61,706" in text and "C1" in text and "FLOPs = 2 × MACs" in text
    s.to_json(tmp_path / "s.json")
    assert json.loads((tmp_path / "s.json").read_text())["total"]["params"] == 61706
    from rich.console import Console
    con = Console(file=io.StringIO(), width=200)
    con.print(s)
    assert "C1" in con.file.getvalue()


def test_depth_folds_blocks():
    m = nn.Sequential(Residual(3, 4), Residual(4, 4))
    s = summary(m, (3, 8, 8))
    text = s.to_text(depth=1)
    assert "conv1" not in text
    block = s["0"]
    assert f"{block.subtree_params:,}" in text
    assert block.subtree_params == sum(p.data.size for p in m[0].parameters())
    full = s.to_text()
    assert "\n  conv1 " in full and f"({block.subtree_params:,})" in full      # the tree: names under their block
    assert "0.conv1" in s.to_text(wide=True)                                   # the wide view: full names


def test_linear_on_sequence_counts_every_position():
    m = nn.Sequential(nn.Linear(8, 4))
    s = summary(m, (5, 8))  # (N, 5, 8): five positions
    assert s.total["macs"] == 5 * 8 * 4 and s.total["params"] == 36
    assert math.prod(s.leaves()[0].output) == 20


@given(cin=st.integers(1, 4), cout_mult=st.integers(1, 3), groups=st.sampled_from([1, 2]),
       kh=st.integers(1, 5), kw=st.integers(1, 5), s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2),
       h=st.integers(8, 20), w=st.integers(8, 20), bias=st.booleans())
def test_conv_geometry_vs_torch(cin, cout_mult, groups, kh, kw, s, p, d, h, w, bias):
    cin, cout = cin * groups, cout_mult * groups
    if h + 2 * p < d * (kh - 1) + 1 or w + 2 * p < d * (kw - 1) + 1:
        return
    cn = nn.Sequential(nn.Conv2d(cin, cout, (kh, kw), stride=s, padding=p, dilation=d, groups=groups, bias=bias))
    th = torch.nn.Conv2d(cin, cout, (kh, kw), stride=s, padding=p, dilation=d, groups=groups, bias=bias)
    out = th(torch.zeros(1, cin, h, w))
    r = summary(cn, (cin, h, w)).leaves()[0]
    assert r.output == tuple(out.shape[1:])
    assert r.output_volume == f"{out.shape[3]}×{out.shape[2]}×{cout}"      # the lecture's W×H×D
    assert r.params == sum(q.numel() for q in th.parameters())
    assert r.macs == out.numel() * (cin // groups) * kh * kw                # one MAC per weight per output
    assert r.kernel == f"{kw}×{kh}×{cin // groups}/{s}"
    # the lecture's "unprocessed" columns: what the last window leaves of the real input
    covered_w = (out.shape[3] - 1) * s + d * (kw - 1) + 1
    assert r.unprocessed[1] == max(0, (w + 2 * p - covered_w) - p)


def test_conv1d_and_rectangular_volumes():
    s = summary(nn.Sequential(nn.Conv1d(2, 4, 3)), (2, 10))
    assert s.leaves()[0].output_volume == "8×4" and s.leaves()[0].receptive_field == (3,)
    s = summary(nn.Sequential(nn.Conv2d(3, 5, (3, 1))), (3, 17, 23))
    r = s.leaves()[0]
    assert (r.input_volume, r.output_volume, r.receptive_field) == ("23×17×3", "23×15×5", (3, 1))


class _ViewNet(nn.Module):
    """Flattens with ``x.reshape(N, -1)``: impossible for NumPy on an empty batch (-1 is ambiguous)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(2 * 6 * 6, 3)

    def forward(self, x):
        x = self.conv(x)
        return self.fc(x.reshape(x.shape[0], -1))


def test_falls_back_to_one_image_and_flatten_sees_everything():
    s = summary(_ViewNet(), (1, 8, 8))
    assert s.traced_batch == 1 and any("one real image" in n for n in s.notes)
    assert s["fc"].output == (3,) and s.total["params"] == 20 + 219
    assert s["fc"].receptive_field == (8, 8)  # after the flatten every output sees the whole 8×8 input


@pytest.mark.parametrize("make", [
    lambda: (InceptionLike(16, 8, 4, 8, 2, 4, 4), TorchInceptionLike(16, 8, 4, 8, 2, 4, 4), (16, 12, 12)),
    lambda: (Residual(4, 8, 2), TorchResidual(4, 8, 2), (4, 15, 15)),
    lambda: (lenet5_lecture(), None, (1, 32, 32)),
])
def test_macs_match_pytorch_flop_counter(make):
    """PyTorch's FlopCounterMode counts 2 FLOPs per multiply-accumulate of convolutions and matrix
    products, bias and BatchNorm excluded: the default convention, doubled."""
    from torch.utils.flop_counter import FlopCounterMode
    cn, th, size = make()
    if th is None:
        t = torch.nn
        th = t.Sequential(t.Conv2d(1, 6, 5), t.Tanh(), t.AvgPool2d(2), t.Conv2d(6, 16, 5), t.Tanh(), t.AvgPool2d(2),
                          t.Conv2d(16, 120, 5), t.Tanh(), t.Flatten(), t.Linear(120, 84), t.Tanh(), t.Linear(84, 10))
    with FlopCounterMode(display=False) as counter:
        th.eval()(torch.zeros((1,) + size))
    s = summary(cn, size)
    assert s.total["flops"] == 2 * s.total["macs"] == counter.get_total_flops()


class _WithAux(nn.Module):
    """An auxiliary head used only in training mode (as GoogLeNet's)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.aux = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 5))

    def forward(self, x):
        x = self.conv(x)
        return (x, self.aux(x)) if self.training else x


def test_modules_not_run_in_eval_keep_their_parameters():
    m = _WithAux()
    s = summary(m, (1, 6, 6))
    assert s.total["params"] == 20 + 165 == sum(r.params for r in s.layers)
    aux = s["aux"]
    assert not aux.called and aux.params == 165 and aux.depth == 1
    assert s.total["macs"] == 2 * 9 * 16  # the head's multiplies are not counted: it does not run
    assert any("aux" in n for n in s.notes) and "(not run)" in str(s)
    assert m.training  # mode restored
