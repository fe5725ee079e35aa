"""from_pattern: the lecture's layer-pattern notation as a builder."""
import json

import numpy as np
import pytest

import cnnkit
import cnnkit.models as M
from cnnkit import nn

LECTURE = "INPUT -> [[CONV -> RELU]*2 -> POOL]*3 -> [FC -> RELU]*2 -> FC"


def kinds(model):
    return [type(m).__name__ for m in model]


def test_the_lectures_pattern_builds_the_expected_layers():
    m = M.from_pattern(LECTURE, input_size=(3, 32, 32), num_classes=10)
    assert kinds(m) == (["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d"] * 3
                        + ["Flatten", "Linear", "ReLU", "Linear", "ReLU", "Linear"])
    convs = [l for l in m if isinstance(l, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 32), (32, 32), (32, 64), (64, 64),
                                                                 (64, 128), (128, 128)]
    assert all(c.kernel_size == (3, 3) and c.stride == (1, 1) and c.padding == (1, 1) for c in convs)
    linears = [l for l in m if isinstance(l, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(4 * 4 * 128, 512), (512, 512), (512, 10)]
    out = m(cnnkit.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_the_lectures_common_architectures():
    # INPUT -> FC: a linear classifier.
    m = M.from_pattern("INPUT -> FC", input_size=(3, 32, 32))
    assert kinds(m) == ["Flatten", "Linear"] and m[1].in_features == 3072
    m = M.from_pattern("INPUT -> CONV -> RELU -> FC", input_size=(1, 8, 8), num_classes=3)
    assert kinds(m) == ["Conv2d", "ReLU", "Flatten", "Linear"] and m[3].in_features == 32 * 64
    m = M.from_pattern("INPUT -> [CONV -> RELU -> POOL] * 2 -> FC -> RELU -> FC")
    assert kinds(m) == ["Conv2d", "ReLU", "MaxPool2d"] * 2 + ["Flatten", "Linear", "ReLU", "Linear"]
    assert m(cnnkit.randn(1, 3, 32, 32)).shape == (1, 10)


def test_overrides_and_per_layer_arguments():
    m = M.from_pattern("CONV(16, k=5) -> RELU -> POOL(3, 2) -> BN -> CONV -> AVGPOOL -> DROPOUT(0.25) -> FC(64) "
                       "-> BN -> TANH -> DROPOUT -> FC", input_size=(1, 28, 28), num_classes=4, channels=[8, 24],
                       dropout=0.1, pool="max")
    assert kinds(m) == ["Conv2d", "ReLU", "MaxPool2d", "BatchNorm2d", "Conv2d", "AvgPool2d", "Dropout", "Flatten",
                        "Linear", "BatchNorm1d", "Tanh", "Dropout", "Linear"]
    assert m[0].out_channels == 16 and m[0].kernel_size == (5, 5) and m[0].padding == (2, 2)
    assert m[2].kernel_size == 3 and m[2].stride == 2                    # 28 → 13
    assert m[4].out_channels == 24                                      # second stage of channels=[8, 24]
    assert m[6].p == 0.25 and m[11].p == 0.1
    assert m[8].in_features == 24 * 6 * 6 and m[8].out_features == 64 and m[12].out_features == 4
    assert m(cnnkit.randn(2, 1, 28, 28)).shape == (2, 4)


def test_channel_doubling_is_capped():
    m = M.from_pattern("[CONV -> POOL]*5", input_size=(3, 64, 64), channels=128, max_channels=256)
    assert [l.out_channels for l in m if isinstance(l, nn.Conv2d)] == [128, 256, 256, 256, 256]


def test_optional_pool_is_skipped_when_the_map_is_too_small():
    m = M.from_pattern("[CONV -> RELU -> POOL?]*4 -> FC", input_size=(3, 4, 4))
    assert kinds(m).count("MaxPool2d") == 2
    assert m(cnnkit.randn(1, 3, 4, 4)).shape == (1, 10)


def test_unicode_arrows_and_repeat_zero():
    m = M.from_pattern("INPUT → [CONV → RELU]×2 → [POOL]*0 → FC", input_size=(1, 4, 4))
    assert kinds(m) == ["Conv2d", "ReLU", "Conv2d", "ReLU", "Flatten", "Linear"]


def test_config_rebuilds_the_same_model():
    m = M.from_pattern(LECTURE, input_size=(3, 16, 16), num_classes=3, channels=4, fc_hidden=[8, 6])
    again = M.rebuild(json.loads(json.dumps(m.config)))
    assert kinds(again) == kinds(m)
    again.load_state_dict(m.state_dict())
    x = cnnkit.randn(1, 3, 16, 16)
    np.testing.assert_array_equal(again(x).data, m(x).data)


def test_one_training_step():
    cnnkit.manual_seed(0)
    m = M.from_pattern("INPUT -> [CONV -> BN -> RELU -> POOL]*2 -> FC -> RELU -> DROPOUT -> FC",
                       input_size=(1, 8, 8), num_classes=3, channels=4, fc_hidden=16)
    x, y = cnnkit.randn(6, 1, 8, 8), cnnkit.tensor(np.array([0, 1, 2, 0, 1, 2]))
    loss = nn.CrossEntropyLoss()(m(x), y)
    loss.backward()
    assert all(p.grad is not None for p in m.parameters())


@pytest.mark.parametrize("pattern,message", [
    ("INPUT -> CONVV -> FC", r"unknown layer 'CONVV' \(expected one of INPUT, CONV.*\) at position 9\n"
                             r"  INPUT -> CONVV -> FC\n           \^"),
    ("[CONV -> RELU*2 -> FC", r"expected '\]' to close the '\[' at position 0, found end of pattern at position 21"),
    ("CONV -> RELU]", r"expected '->' or end of pattern, found '\]' at position 12"),
    ("CONV -> -> FC", r"expected a layer name or '\[', found '->' at position 8"),
    ("CONV*x", r"expected a repeat count after '\*', found 'x' at position 5"),
    ("CONV*2.5", r"repeat count must be a whole number, got 2.5 at position 5"),
    ("CONV -> FC -> INPUT", r"INPUT may only start the pattern at position 14"),
    ("FC -> CONV", r"CONV after FC \(the volume is already flattened\) at position 6"),
    ("CONV -> $", r"unexpected character '\$' at position 8"),
    ("[POOL]*6", r"POOL 2×2/2 does not fit the 1×1 input at position 1"),
    ("CONV(k=7, p=0) -> FC", r"CONV 7×7/1 \(padding 0\) does not fit the 4×4 input at position 0"),
    ("CONV(16 k=3)", r"expected ',' or '\)', found 'k' at position 8"),
    ("CONV(16.5)", r"CONV argument out must be a whole number, got 16.5 at position 5"),
    ("CONV(q=3)", r"CONV has no argument 'q' \(it takes out, k, s, p\) at position 5"),
    ("RELU(3)", r"RELU takes at most 0 arguments at position 5"),
    ("FC(1, 2)", r"FC takes at most 1 argument at position 6"),
    ("DROPOUT(2)", r"DROPOUT argument p must be in \[0, 1\), got 2 at position 8"),
])
def test_parse_errors_show_the_position(pattern, message):
    with pytest.raises(ValueError, match=message):
        M.from_pattern(pattern, input_size=(1, 4, 4) if "k=7" in pattern else (3, 32, 32))


def test_argument_errors():
    with pytest.raises(ValueError, match=r"from_pattern: kernel_size must be a positive odd int.*got kernel_size=4"):
        M.from_pattern("CONV", kernel_size=4)
    with pytest.raises(ValueError, match=r"from_pattern: pool must be 'max' or 'avg', got pool='min'"):
        M.from_pattern("POOL", pool="min")
    with pytest.raises(ValueError, match=r"input_size must be \(C, H, W\)"):
        M.from_pattern("FC", input_size=(32, 32))
    with pytest.raises(ValueError, match=r"channels lists 1 stages, this CONV is in stage 2"):
        M.from_pattern("CONV -> POOL -> CONV", channels=[8])
    with pytest.raises(TypeError, match="pattern must be a string"):
        M.from_pattern(None)


# ----------------------------------------------------------------------------- initialisation for the activation
def _weighted(model):
    layers = list(model)
    return [(m, next((type(x).__name__ for x in layers[i + 1:] if isinstance(x, (nn.ReLU, nn.Tanh, nn.Sigmoid,
                                                                                   nn.Conv2d, nn.Linear))), None))
            for i, m in enumerate(layers) if isinstance(m, (nn.Conv2d, nn.Linear))]


@pytest.mark.parametrize("pattern", [LECTURE, "INPUT -> [CONV -> TANH -> POOL]*2 -> FC -> SIGMOID -> FC",
                                     "INPUT -> [CONV -> BN -> RELU -> POOL]*2 -> FC"])
def test_layers_are_drawn_for_the_activation_after_them(pattern):
    """He et al. 2015 before ReLU (std √(2/fan_in)); Glorot (2010) with tanh's gain 5/3, or 1; zero biases;
    the logits at std 0.01: the published formulas, checked on the drawn weights."""
    cnnkit.manual_seed(0)
    m = M.from_pattern(pattern, input_size=(3, 32, 32), num_classes=3)
    pairs = _weighted(m)
    for i, (layer, after) in enumerate(pairs):
        w = layer.weight.data
        fan_in = int(np.prod(w.shape[1:]))
        fan_out = w.shape[0] * int(np.prod(w.shape[2:]))
        if i == len(pairs) - 1:
            want = 0.01
        elif after == "ReLU":
            want = np.sqrt(2 / fan_in)
        elif after == "Tanh":
            want = 5 / 3 * np.sqrt(2 / (fan_in + fan_out))
        else:
            want = np.sqrt(2 / (fan_in + fan_out))
        assert abs(w.mean()) < 4 * want / np.sqrt(w.size)
        assert w.std() == pytest.approx(want, rel=0.12), (type(layer).__name__, after)
        assert not np.any(layer.bias.data)


def test_the_readme_pattern_passes_its_input_on_where_pytorchs_default_loses_it():
    """The cause of issue 20's "sat at loss ln 3": with PyTorch's layer default (kaiming_uniform_(a=√5), drawn
    by PyTorch itself) the input's part of the last hidden layer's output is a few thousandths of its size at
    the input; with He's rule it stays of order one."""
    torch = pytest.importorskip("torch")
    cnnkit.manual_seed(0)
    m = M.from_pattern(LECTURE, input_size=(3, 32, 32), num_classes=3, fc_hidden=256)
    x = np.random.default_rng(0).standard_normal((32, 3, 32, 32)).astype(np.float32)

    def input_part(h):          # what the input changes: the spread over images, the bias part removed
        return float(np.sqrt(np.mean(np.var(h, axis=0))))
    with cnnkit.no_grad():
        h = cnnkit.tensor(x)
        for layer in list(m)[:-1]:
            h = layer(h)
        ours = input_part(h.data)
    torch.manual_seed(0)
    t = torch.nn.Sequential(*[torch.nn.Conv2d(a, b, 3, padding=1) if kind == "conv" else torch.nn.ReLU()
                              if kind == "relu" else torch.nn.MaxPool2d(2) for kind, a, b in
                              [("conv", 3, 32), ("relu", 0, 0), ("conv", 32, 32), ("relu", 0, 0), ("pool", 0, 0),
                               ("conv", 32, 64), ("relu", 0, 0), ("conv", 64, 64), ("relu", 0, 0), ("pool", 0, 0),
                               ("conv", 64, 128), ("relu", 0, 0), ("conv", 128, 128), ("relu", 0, 0), ("pool", 0, 0)]],
                            torch.nn.Flatten(), torch.nn.Linear(2048, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                            torch.nn.ReLU())
    with torch.no_grad():
        theirs = input_part(t(torch.from_numpy(x)).numpy())
    assert ours > 0.2 and theirs < 0.01, (ours, theirs)
