"""fc_to_conv: trailing FC layers become convolutions with the same outputs, and slide over larger images."""
import numpy as np
import pytest

import cnnkit
import cnnkit.models as M
from cnnkit import nn


def run(model, x):
    model.eval()
    with cnnkit.no_grad():
        return model(cnnkit.tensor(x)).data


def test_lenet5_same_outputs_at_32x32_and_a_sliding_classifier_at_64x64():
    model = M.lenet5(activation="tanh")
    conv = M.fc_to_conv(model)
    assert isinstance(conv.f6, nn.Conv2d) and conv.f6.kernel_size == (1, 1)   # C5 already gives 1×1×120
    assert isinstance(conv.output, nn.Conv2d) and isinstance(conv.flatten, nn.Identity)
    assert isinstance(model.f6, nn.Linear)                                    # the original is untouched
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(run(conv, x).reshape(2, 10), run(model, x), rtol=1e-5, atol=1e-6)
    # On 64×64 the classifier slides with the network's total stride 4: a 9×9 score map whose (i, j)
    # entry is the original network on the 32×32 crop at (4i, 4j).
    big = np.random.default_rng(1).standard_normal((1, 1, 64, 64)).astype(np.float32)
    scores = run(conv, big)
    assert scores.shape == (1, 10, 9, 9)
    for i, j in [(0, 0), (2, 7), (8, 8)]:
        crop = big[:, :, 4 * i:4 * i + 32, 4 * j:4 * j + 32]
        np.testing.assert_allclose(scores[:, :, i, j], run(model, crop), rtol=1e-4, atol=1e-5)


def test_first_fc_gets_the_incoming_feature_map_as_kernel():
    model = M.from_pattern("INPUT -> [CONV -> RELU -> POOL]*2 -> FC -> RELU -> DROPOUT -> FC", input_size=(3, 12, 12),
                           num_classes=5, channels=4, fc_hidden=16)
    conv = M.fc_to_conv(model, input_size=(3, 12, 12))
    convs = [m for m in conv if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs[2:]] == [(8, 16, (3, 3)), (16, 5, (1, 1))]
    x = np.random.default_rng(2).standard_normal((3, 3, 12, 12)).astype(np.float32)
    np.testing.assert_allclose(run(conv, x).reshape(3, 5), run(model, x), rtol=1e-5, atol=1e-6)
    assert run(conv, np.zeros((1, 3, 20, 28), np.float32)).shape == (1, 5, 3, 5)


def test_adaptive_pool_before_the_classifier_becomes_a_fixed_window():
    cnnkit.manual_seed(0)
    model = M.resnet20(num_classes=4)          # 8×8×64 → AdaptiveAvgPool2d(1) → FC
    conv = M.fc_to_conv(model)
    assert isinstance(conv.avgpool, nn.AvgPool2d) and conv.avgpool.kernel_size == (8, 8)
    x = np.random.default_rng(3).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(run(conv, x).reshape(2, 4), run(model, x), rtol=1e-4, atol=1e-5)
    assert run(conv, np.zeros((1, 3, 64, 48), np.float32)).shape == (1, 4, 9, 5)
    assert conv.config == {"name": "resnet20", "kwargs": {"num_classes": 4},
                           "fc_to_conv": {"input_size": [3, 32, 32]}}
    again = M.rebuild(conv.config)
    again.load_state_dict(conv.state_dict())
    np.testing.assert_allclose(run(again, x), run(conv, x))


def test_adaptive_pool_that_keeps_the_size_becomes_identity():
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(48, 2))
    conv = M.fc_to_conv(model, input_size=(2, 4, 4))
    assert [type(m).__name__ for m in conv] == ["Conv2d", "Identity", "Identity", "Conv2d"]
    x = np.random.default_rng(4).standard_normal((2, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(run(conv, x).reshape(2, 2), run(model, x), rtol=1e-5, atol=1e-6)


def test_adaptive_pool_that_cannot_be_a_fixed_window_is_kept():
    model = nn.Sequential(nn.AdaptiveAvgPool2d(3), nn.Flatten(), nn.Linear(18, 2))
    conv = M.fc_to_conv(model, input_size=(2, 4, 4))
    assert isinstance(conv[0], nn.AdaptiveAvgPool2d) and conv[2].kernel_size == (3, 3)
    x = np.random.default_rng(5).standard_normal((1, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(run(conv, x).reshape(1, 2), run(model, x), rtol=1e-5, atol=1e-6)


def test_inplace_and_gradients_flow():
    model = M.lenet5()
    same = M.fc_to_conv(model, inplace=True)
    assert same is model and isinstance(model.output, nn.Conv2d)
    out = model(cnnkit.randn(1, 1, 40, 40))
    out.sum().backward()
    assert model.output.weight.grad is not None and model.output.weight.grad.shape == (10, 84, 1, 1)


def test_models_without_a_trailing_classifier_are_refused():
    with pytest.raises(ValueError, match="fc_to_conv: PatternNet does not end in Linear layers fed by a Flatten"):
        M.fc_to_conv(M.from_pattern("CONV -> RELU"))
    with pytest.raises(ValueError, match="was not built by cnnkit.models"):
        M.fc_to_conv(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match=r"input_size must be \(C, H, W\)"):
        M.fc_to_conv(M.lenet5(), input_size=(32, 32))
