"""The lecture's worked convolution examples, computed from the inputs the lecture prints."""
import numpy as np
import pytest

import cnnkit
from cnnkit import nn, shape
from cnnkit.nn import functional as F


def _conv(image, kernel, bias=None, **kw):
    x = cnnkit.tensor(np.asarray(image, dtype=np.float32)[None, None] if np.ndim(image) == 2
                      else np.asarray(image, dtype=np.float32)[None])
    w = np.asarray(kernel, dtype=np.float32)
    w = w[None, None] if w.ndim == 2 else w[None]
    b = None if bias is None else cnnkit.tensor(np.array([bias], dtype=np.float32))
    return F.conv2d(x, cnnkit.tensor(w), b, **kw).data[0, 0]


STEP = np.array([[10, 10, 10, 0, 0, 0]] * 6)
VERTICAL = [[1, 0, -1], [1, 0, -1], [1, 0, -1]]
SOBEL = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]


def test_vertical_edge_filter_on_step_image():
    np.testing.assert_array_equal(_conv(STEP, VERTICAL), [[0, 30, 30, 0]] * 4)
    np.testing.assert_array_equal(_conv(STEP[:, ::-1], VERTICAL), [[0, -30, -30, 0]] * 4)


def test_sobel_vertical_edge_on_step_image():
    # The slide prints six rows; a valid 3×3 convolution of a 6×6 image has four.
    np.testing.assert_array_equal(_conv(STEP, SOBEL), [[0, 40, 40, 0]] * 4)
    np.testing.assert_array_equal(_conv(STEP[:, ::-1], SOBEL), [[0, -40, -40, 0]] * 4)


def test_convolution_example_2_three_filters_on_two_channels():
    x = np.zeros((2, 5, 5), dtype=np.float32)
    x[0] = 1
    x[1, 2, 2] = 1
    w = np.zeros((3, 2, 3, 3), dtype=np.float32)
    w[0, 0, 1, 1] = w[0, 1, 1, 1] = 0.5
    w[1, 0, 1, 1], w[1, 1, 1, 1] = 1, -1
    w[2, 0] = [[1, 0, -1], [1, 0, -2], [1, 0, -1]]
    w[2, 1] = [[1, 2, -1], [0, 0, 0], [-1, -2, -1]]
    z = F.conv2d(cnnkit.tensor(x[None]), cnnkit.tensor(w)).data[0]
    assert z.shape == (3, 3, 3)
    np.testing.assert_array_equal(z[0], [[0.5, 0.5, 0.5], [0.5, 1, 0.5], [0.5, 0.5, 0.5]])
    np.testing.assert_array_equal(z[1], [[1, 1, 1], [1, 0, 1], [1, 1, 1]])
    # The slide prints Z2 = [[-1,-2,-1],[0,0,0],[1,2,1]], which does not follow from its own W2,0, W2,1 and
    # inputs: W2,0 sums to -1 over the all-ones channel, and the centred impulse picks W2,1 rotated by 180°.
    expected_z2 = -1 + np.rot90(w[2, 1], 2)
    np.testing.assert_array_equal(z[2], expected_z2)
    np.testing.assert_array_equal(z[2], [[-2, -3, -2], [-1, -1, -1], [-2, 1, 0]])


def test_conv_example_1_top_left_is_4():
    image = [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]
    out = _conv(image, [[1, 0, 1], [0, 1, 0], [1, 0, 1]])
    assert out.shape == (3, 3) and out[0, 0] == 4
    np.testing.assert_array_equal(out, [[4, 3, 4], [2, 4, 3], [2, 3, 4]])


def test_conv_example_4_rgb_with_bias_gives_minus_25():
    red = [[156, 155, 156, 158, 158], [153, 154, 157, 159, 159], [149, 151, 155, 158, 159],
           [146, 146, 149, 153, 158], [145, 143, 143, 148, 158]]
    green = [[167, 166, 167, 169, 169], [164, 165, 168, 170, 170], [160, 162, 166, 169, 170],
             [156, 156, 159, 163, 168], [155, 153, 153, 158, 168]]
    blue = [[163, 162, 163, 165, 165], [160, 161, 164, 166, 166], [156, 158, 162, 165, 166],
            [155, 155, 158, 162, 167], [154, 152, 152, 157, 167]]
    kernel = [[[-1, -1, 1], [0, 1, -1], [0, 1, 1]], [[1, 0, 0], [1, -1, -1], [1, 0, -1]],
              [[0, 1, 1], [0, 1, 0], [1, -1, 1]]]
    out = _conv([red, green, blue], kernel, bias=1, padding=1)
    assert out.shape == (5, 5)        # same padding: M × N × 1
    assert out[0, 0] == 308 - 498 + 164 + 1 == -25


@pytest.mark.parametrize("stride,padding,size", [(1, 0, 5), (2, 0, 3), (3, 0, 2), (3, 1, 3)])
def test_7x7_input_3x3_filter_output_sizes(stride, padding, size):
    out = nn.Conv2d(1, 1, 3, stride=stride, padding=padding)(cnnkit.zeros(1, 1, 7, 7))
    assert out.shape == (1, 1, size, size)
    assert shape.conv_output_size(7, 3, stride, padding) == size


def test_stride_3_leaves_the_last_column_unprocessed_and_padding_fixes_it():
    assert shape.unprocessed(7, 3, 3, 0) == 1
    assert shape.unprocessed(7, 3, 3, 1) == 0
    assert shape.unprocessed(7, 3, 1, 0) == 0


@pytest.mark.parametrize("f", [3, 5])
def test_same_padding_keeps_size(f):
    assert shape.same_padding(f) == ((f - 1) // 2, (f - 1) // 2)
    assert nn.Conv2d(3, 4, f, padding="same")(cnnkit.zeros(1, 3, 32, 32)).shape == (1, 4, 32, 32)


def test_one_by_one_example_56x56x64_to_32_channels_has_2080_parameters():
    conv = nn.Conv2d(64, 32, 1)
    assert conv(cnnkit.zeros(1, 64, 56, 56)).shape == (1, 32, 56, 56)
    assert sum(p.numel() for p in conv.parameters()) == 2080 == shape.conv_params(64, 32, (1, 1))


@pytest.mark.parametrize("padding,size", [(0, 28), (2, 32)])
def test_conv_examples_5_and_6_ten_5x5_filters_have_760_parameters(padding, size):
    conv = nn.Conv2d(3, 10, 5, padding=padding)
    assert conv(cnnkit.zeros(1, 3, 32, 32)).shape == (1, 10, size, size)
    assert sum(p.numel() for p in conv.parameters()) == 760


def test_conv_example_3_stride_2_pad_1():
    assert nn.Conv2d(3, 2, 3, stride=2, padding=1)(cnnkit.zeros(1, 3, 5, 5)).shape == (1, 2, 3, 3)
