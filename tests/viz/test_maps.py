"""cnnkit.viz.maps against references computed outside it: brute-force loops, hand-derived geometry,
PyTorch's autograd, and models whose answer is known (a linear model, a model that sees one corner)."""
import math

import numpy as np
import pytest
import torch

import cnnkit
from cnnkit import nn
from cnnkit.viz import maps
from tests.models.torch_ref import LeNet5 as TorchLeNet5


@pytest.fixture(scope="module")
def digit():
    return np.random.default_rng(0).random((1, 32, 32)).astype(np.float32)


def _torch_lenet(model):
    t = TorchLeNet5()
    t.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})
    return t.eval()


def _conv_loop(x, w, b):
    """Valid cross-correlation by explicit loops: x (C, H, W), w (K, C, F, F)."""
    k, c, f, _ = w.shape
    out = np.zeros((k, x.shape[1] - f + 1, x.shape[2] - f + 1))
    for o in range(k):
        for i in range(out.shape[1]):
            for j in range(out.shape[2]):
                out[o, i, j] = (x[:, i:i + f, j:j + f] * w[o]).sum() + b[o]
    return out


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ----------------------------------------------------------------------------- activation_maps
def test_activation_maps_every_leaf_in_call_order_equal_pytorch(lenet, digit):
    got = maps.activation_maps(lenet, digit)
    assert list(got) == ["c1", "act1", "s2", "c3", "act3", "s4", "c5", "act5", "flatten", "f6", "act6", "output"]
    t = _torch_lenet(lenet)
    h = torch.from_numpy(digit[None])
    with torch.no_grad():
        for name, m in t.named_children():
            h = m(h)
            assert got[name].shape == tuple(h.shape[1:]), name
            np.testing.assert_allclose(got[name], h[0].numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


def test_activation_maps_keep_values_an_inplace_relu_overwrites():
    cnnkit.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(inplace=True))
    x = np.random.default_rng(1).standard_normal((1, 6, 6)).astype(np.float32)
    got = maps.activation_maps(model, cnnkit.tensor(x[None]))
    ref = _conv_loop(x, model[0].weight.data, model[0].bias.data)
    assert ref.min() < 0
    np.testing.assert_allclose(got["0"], ref, atol=1e-5)
    np.testing.assert_allclose(got["1"], np.maximum(ref, 0), atol=1e-5)


def test_activation_maps_chosen_layers_and_errors(lenet, digit):
    assert list(maps.activation_maps(lenet, digit, layers=["s4", "c1"])) == ["c1", "s4"]
    assert list(maps.activation_maps(lenet, digit, layers="c3")) == ["c3"]
    with pytest.raises(ValueError, match=r"no layer named 'c9' in lenet5; layers: c1, act1, s2"):
        maps.activation_maps(lenet, digit, layers=["c9"])
    with pytest.raises(ValueError, match=r"x must be one image \(C, H, W\) or \(1, C, H, W\), got shape \(2, 1, 32, 32\)"):
        maps.activation_maps(lenet, np.zeros((2, 1, 32, 32), np.float32))
    with pytest.raises(TypeError, match="x must be a .* got list"):
        maps.activation_maps(lenet, [[0.0]])


def test_inspection_leaves_modes_flags_and_grads_alone(lenet, digit):
    lenet.train()
    maps.saliency_map(lenet, digit)
    maps.maximize_input(lenet, "c1", 0, steps=2)
    assert lenet.training and all(m.training for m in lenet.modules())
    assert all(p.requires_grad and p.grad is None for p in lenet.parameters())
    lenet.eval()


# ----------------------------------------------------------------------------- occlusion
def _corner_model(h=16, w=16, corner=4):
    """Two classes; only the top-left corner×corner pixels carry weight (for class 1)."""
    rng = np.random.default_rng(3)
    weight = np.zeros((2, 1, h, w), np.float32)
    weight[1, :, :corner, :corner] = rng.uniform(0.05, 0.2, (1, corner, corner))
    fc = nn.Linear(h * w, 2)
    fc.weight.data[...] = weight.reshape(2, -1)
    fc.bias.data[...] = [0.2, -0.1]
    return nn.Sequential(nn.Flatten(), fc), weight.reshape(2, -1), fc.bias.data.copy()


def test_occlusion_of_a_model_that_sees_one_corner_lights_up_that_corner():
    model, weight, bias = _corner_model()
    x = np.random.default_rng(4).random((1, 16, 16)).astype(np.float32) + 1.0
    size, stride, fill = 4, 2, 0.0
    got = maps.occlusion_map(model, x, target=1, size=size, stride=stride, fill=fill)
    assert got.shape == (8, 8)
    p0 = _softmax(weight @ x.ravel() + bias)[1]
    ref = np.empty((8, 8))
    for i in range(8):                                  # brute force: every position, by hand
        for j in range(8):
            occluded = x.copy()
            top, left = i * stride + stride // 2 - size // 2, j * stride + stride // 2 - size // 2
            for r in range(max(top, 0), min(top + size, 16)):
                for c in range(max(left, 0), min(left + size, 16)):
                    occluded[0, r, c] = fill
            ref[i, j] = _softmax(weight @ occluded.ravel() + bias)[1]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    touches = np.zeros((8, 8), bool)
    touches[:3, :3] = True                              # squares centred on rows/cols 1, 3, 5 reach the 4×4 corner
    assert 0.6 < p0 < 0.95 and np.all(got[touches] < p0 - 0.005)   # hiding the corner lowers p(class 1)
    np.testing.assert_allclose(got[~touches], p0, rtol=1e-6)


def test_occlusion_defaults_and_errors(lenet, digit):
    got = maps.occlusion_map(lenet, digit)              # size 8, stride 2: a 16×16 map
    assert got.shape == (16, 16) and np.all((got >= 0) & (got <= 1))
    with pytest.raises(ValueError, match="target must be a class index in 0..9, got target=10"):
        maps.occlusion_map(lenet, digit, target=10)
    with pytest.raises(ValueError, match="size must be an int >= 1, got size=0"):
        maps.occlusion_map(lenet, digit, size=0)
    with pytest.raises(ValueError, match=r"fill must be a number or 1 numbers"):
        maps.occlusion_map(lenet, digit, fill=[1, 2])
    with pytest.raises(ValueError, match=r"outputs shape \(1, 2, 4, 4\) per batch; class scores"):
        maps.occlusion_map(nn.Conv2d(1, 2, 3), np.zeros((1, 6, 6), np.float32))


# ----------------------------------------------------------------------------- saliency
def test_saliency_of_a_linear_model_is_its_weights():
    rng = np.random.default_rng(5)
    fc = nn.Linear(3 * 8 * 8, 4)
    model = nn.Sequential(nn.Flatten(), fc)
    x = rng.standard_normal((3, 8, 8)).astype(np.float32)
    for target in range(4):
        expected = np.abs(fc.weight.data[target].reshape(3, 8, 8)).max(axis=0)
        np.testing.assert_allclose(maps.saliency_map(model, x, target=target), expected, rtol=1e-6)


def test_saliency_of_lenet_equals_pytorch_autograd(lenet, digit):
    t = _torch_lenet(lenet)
    xt = torch.from_numpy(digit[None].copy()).requires_grad_()
    out = t(xt)
    target = int(out.argmax())
    out[0, target].backward()
    np.testing.assert_allclose(maps.saliency_map(lenet, digit), xt.grad[0].abs().amax(0).numpy(), rtol=1e-4,
                               atol=1e-7)


# ----------------------------------------------------------------------------- receptive field
@pytest.mark.parametrize("layer, rf, jump", [("c1", 5, 1), ("s2", 6, 2), ("c3", 14, 2), ("s4", 16, 4)])
def test_receptive_box_of_lenet_by_hand(lenet, layer, rf, jump):
    # the lecture's recurrence by hand: rf' = rf + (F - 1)·jump, jump' = jump·S, no padding
    for i, j in [(0, 0), (1, 2), (3, 1)]:
        assert maps.receptive_box(lenet, layer, (i, j), (1, 32, 32)) == (i * jump, i * jump + rf, j * jump,
                                                                         j * jump + rf)
    assert maps.receptive_box(lenet, "f6", (0,), (1, 32, 32)) == (0, 32, 0, 32)


def test_receptive_box_equals_where_the_gradient_reaches():
    # padding, stride, pooling and a 1x1 layer: the box is exactly the input pixels the unit depends on
    # (average pooling: max pooling passes a gradient to one pixel per window only)
    cnnkit.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 3, 3, stride=2, padding=1),
                          nn.AvgPool2d(2), nn.Conv2d(3, 2, 3, padding=1), nn.Conv2d(2, 2, 1))
    for p in model.parameters():
        p.data[...] = np.abs(p.data) + 0.05            # positive weights: no gradient cancels by chance
    x = np.random.default_rng(6).random((1, 1, 20, 20)).astype(np.float32) + 0.5
    out_hw = model(cnnkit.tensor(x)).shape[2:]
    for i, j in [(0, 0), (2, 3), (out_hw[0] - 1, out_hw[1] - 1)]:
        xt = cnnkit.tensor(x, requires_grad=True)
        model(xt)[0, 1, i, j].backward()
        rows, cols = np.nonzero(xt.grad.data[0, 0])
        expected = (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1)
        assert maps.receptive_box(model, "5", (i, j), (1, 20, 20)) == expected


def test_receptive_box_errors(lenet):
    with pytest.raises(ValueError, match=r"index \(28, 0\) is outside the layer's 28×28 map"):
        maps.receptive_box(lenet, "c1", (28, 0), (1, 32, 32))
    with pytest.raises(ValueError, match="no layer named 'conv1' in lenet5"):
        maps.receptive_box(lenet, "conv1", (0, 0), (1, 32, 32))


# ----------------------------------------------------------------------------- top patches
def test_top_patches_equal_a_brute_force_loop(lenet):
    images = np.random.default_rng(7).random((20, 1, 32, 32)).astype(np.float32)
    images[5] = images[3]                               # a tie: the earlier image ranks first
    got = maps.top_patches(lenet, "s2", images, k=4, channels=[0, 3, 5])
    rf, jump = 6, 2                                     # S2 of LeNet-5, by hand
    assert got.receptive_field == (rf, rf) and got.patches.shape == (3, 4, 1, rf, rf)
    for a, ch in enumerate([0, 3, 5]):
        per_image = []
        for n in range(len(images)):                    # each image's strongest position, by loops
            m = maps.activation_maps(lenet, images[n], layers="s2")["s2"][ch]
            best, at = -np.inf, None
            for i in range(m.shape[0]):
                for j in range(m.shape[1]):
                    if m[i, j] > best:
                        best, at = m[i, j], (i, j)
            per_image.append((-best, n, at))
        per_image.sort()
        for b, (negv, n, (i, j)) in enumerate(per_image[:4]):
            assert got.image_index[a, b] == n
            assert got.values[a, b] == pytest.approx(-negv, rel=1e-6)
            assert tuple(got.positions[a, b]) == (i, j)
            box = (i * jump, i * jump + rf, j * jump, j * jump + rf)
            assert tuple(got.boxes[a, b]) == box
            np.testing.assert_array_equal(got.patches[a, b], images[n, :, box[0]:box[1], box[2]:box[3]])


def test_top_patches_pad_with_nan_over_the_border():
    cnnkit.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 2, 5, padding=2))
    images = np.zeros((3, 1, 10, 10), np.float32)
    images[1, 0, 0, 0] = 5.0                            # the strongest response sits at the corner
    model[0].weight.data[...] = 1.0
    got = maps.top_patches(model, "0", images, k=1, channels=[0])
    assert got.image_index[0, 0] == 1 and tuple(got.positions[0, 0]) in {(0, 0), (0, 1), (1, 0), (1, 1), (0, 2),
                                                                          (2, 0), (1, 2), (2, 1), (2, 2)}
    i, j = got.positions[0, 0]
    patch = got.patches[0, 0, 0]                        # field rows i-2 .. i+2: the rows above 0 are NaN
    assert np.isnan(patch[:2 - i]).all() and np.isnan(patch[:, :2 - j]).all()
    np.testing.assert_array_equal(patch[2 - i:, 2 - j:], images[1, 0, :i + 3, :j + 3])
    with pytest.raises(ValueError, match=r"channels must be indices in 0..1 of 0, got \[2\]"):
        maps.top_patches(model, "0", images, channels=[2])


# ----------------------------------------------------------------------------- maximisation
def test_maximizing_one_conv_unit_recovers_its_filter():
    # one 5×5 filter on a 5×5 input: a single unit w·x + b, maximised under an L2 decay by x ∝ w
    dx = np.array([[-1, -2, 0, 2, 1]], np.float64)      # OpenCV's 5-tap derivative ⊗ smoothing (Sobel 5×5)
    smooth = np.array([[1, 4, 6, 4, 1]], np.float64)
    w = (smooth.T @ dx).astype(np.float32)
    model = nn.Sequential(nn.Conv2d(1, 1, 5))
    model[0].weight.data[...] = w
    got = maps.maximize_input(model, "0", 0, input_size=(1, 5, 5))
    assert np.corrcoef(got.ravel(), w.ravel())[0, 1] >= 0.9


def test_maximizing_a_class_of_a_linear_model_recovers_its_weights():
    rng = np.random.default_rng(8)
    fc = nn.Linear(16 * 16, 3)
    model = nn.Sequential(nn.Flatten(), fc)
    smooth = np.outer(np.hanning(16), np.hanning(16))
    fc.weight.data[...] = np.stack([smooth * np.cos(np.arange(16) / (2 + k))[None] for k in range(3)]).reshape(3, -1)
    for target in range(3):
        got = maps.maximize_input(model, target=target, input_size=(1, 16, 16), seed=int(rng.integers(100)))
        assert np.corrcoef(got.ravel(), fc.weight.data[target])[0, 1] >= 0.9


def test_maximize_errors(lenet):
    with pytest.raises(ValueError, match="give either layer \\(with channel\\) or target"):
        maps.maximize_input(lenet)
    with pytest.raises(ValueError, match="channel must be in 0..5 for c1, got channel=6"):
        maps.maximize_input(lenet, "c1", 6, steps=1)
    with pytest.raises(ValueError, match="l2 must be a number >= 0 and < 1, got l2=1"):
        maps.maximize_input(lenet, target=0, l2=1)
    with pytest.raises(ValueError, match="no layer named 'c2'"):
        maps.maximize_input(lenet, "c2", 0)
    assert math.isfinite(float(maps.maximize_input(lenet, target=3, steps=3).sum()))
