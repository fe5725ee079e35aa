"""The reusable blocks: the lecture's worked numbers and PyTorch as the reference for values."""
import numpy as np
import pytest
import torch

import cnnkit
import cnnkit.models as M
from cnnkit import nn


def count(module, weights_only=False):
    return sum(p.data.size for n, p in module.named_parameters() if not weights_only or n.endswith("weight"))


def test_depthwise_separable_matches_the_lectures_example():
    # 6×6×2 → 4×4×4 with 3×3 filters: regular 3·3·2·4 = 72 weights, separable 3·3·2 + 2·4 = 26.
    regular = nn.Conv2d(2, 4, 3, bias=False)
    separable = M.DepthwiseSeparableConv(2, 4, padding=0, batch_norm=False, activation=None)
    assert count(regular) == 72 and count(separable) == 26
    assert separable(cnnkit.zeros(1, 2, 6, 6)).shape == (1, 4, 4, 4)


def test_depthwise_separable_values_match_torch():
    block = M.DepthwiseSeparableConv(3, 5, stride=2)        # MobileNet's: dw → BN → ReLU → pw → BN → ReLU
    ref = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, 2, 1, groups=3, bias=False), torch.nn.BatchNorm2d(3),
                              torch.nn.ReLU(), torch.nn.Conv2d(3, 5, 1, bias=False), torch.nn.BatchNorm2d(5),
                              torch.nn.ReLU())
    keys = ["depthwise.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
            "bn1.num_batches_tracked", "pointwise.weight", "bn2.weight", "bn2.bias", "bn2.running_mean",
            "bn2.running_var", "bn2.num_batches_tracked"]
    assert list(block.state_dict()) == keys
    block.load_state_dict({k: v.numpy() for k, v in zip(keys, ref.state_dict().values())})
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 9)).astype(np.float32)
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()      # training mode: batch statistics
    np.testing.assert_allclose(block(cnnkit.tensor(x)).data, expected, rtol=1e-4, atol=1e-5)


def test_inception_bottleneck_matches_the_lecture():
    # 5×5 branch on 28×28×192 → 32 maps: 5·5·192·32 = 153,600 weights without the 1×1 bottleneck,
    # 1·1·192·16 + 5·5·16·32 = 15,872 with it.
    block = M.InceptionBlock(192, 64, 96, 128, 16, 32, 32)
    assert count(block.branch3, weights_only=True) == 15_872
    assert count(nn.Conv2d(192, 32, 5, bias=False)) == 153_600
    out = block(cnnkit.zeros(1, 192, 28, 28))
    assert out.shape == (1, 256, 28, 28)


def test_inception_concatenates_the_branches_in_order():
    block = M.InceptionBlock(4, 1, 2, 3, 2, 4, 5)
    x = cnnkit.randn(1, 4, 6, 6)
    out = block(x).data
    parts = [block.branch1(x).data, block.branch2(x).data, block.branch3(x).data, block.branch4(x).data]
    np.testing.assert_array_equal(out, np.concatenate(parts, axis=1))
    assert block.branch3[1].conv.kernel_size == (5, 5)
    tv = M.InceptionBlock(4, 1, 2, 3, 2, 4, 5, batch_norm=True, branch3_kernel=3)
    assert tv.branch3[1].conv.kernel_size == (3, 3)


def test_shortcut_a_pads_zero_channels():
    x = cnnkit.randn(2, 3, 5, 5)
    out = M.ShortcutA(3, 8, stride=2)(x).data
    expected = torch.nn.functional.pad(torch.from_numpy(x.data)[:, :, ::2, ::2], (0, 0, 0, 0, 2, 3)).numpy()
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match=r"ShortcutA: out_channels \(2\) must be >= in_channels \(3\)"):
        M.ShortcutA(3, 2)


def test_basic_and_bottleneck_blocks():
    assert M.BasicBlock(64, 64)(cnnkit.zeros(1, 64, 8, 8)).shape == (1, 64, 8, 8)
    down = nn.Sequential(nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256))
    block = M.Bottleneck(64, 64, downsample=down)
    assert block(cnnkit.zeros(1, 64, 8, 8)).shape == (1, 256, 8, 8)
    assert count(block) == 64 * 64 + 9 * 64 * 64 + 64 * 256 + 64 * 256 + 2 * (64 + 64 + 256 + 256)


def test_connection_table_validation():
    with pytest.raises(ValueError, match=r"ConnectionTableConv2d: table\[1\] = \(0, 7\) must list distinct input maps"):
        M.ConnectionTableConv2d(6, [(0, 1), (0, 7)], 5)
    c3 = M.ConnectionTableConv2d(6, M.lenet.LECUN_C3_TABLE, 5)
    with pytest.raises(ValueError, match=r"expected input \(N, 6, H, W\), got shape \(1, 3, 14, 14\)"):
        c3(cnnkit.zeros(1, 3, 14, 14))
    assert c3(cnnkit.zeros(1, 6, 14, 14)).shape == (1, 16, 10, 10)
