"""The lecture's comparisons and derivations, number for number."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnkit import nn
from cnnkit.analysis import compare, explain, summary

from .nets import InceptionLike, build_chain, lenet5_lecture


def test_seven_by_seven_vs_three_stacked():
    c = compare("stacked", depth=64)
    big, small = c.rows
    assert big["receptive_field"] == small["receptive_field"] == 7
    assert big["params"] == (7 * 7 * 64 + 1) * 64 and small["params"] == 3 * (3 * 3 * 64 + 1) * 64
    assert big["params_per_D2"] == 49 and small["params_per_D2"] == 27
    assert "49D²" in str(c) and "27D²" in str(c)


@given(st.integers(1, 8))
def test_stacked_field_is_1_plus_2L(n):
    c = compare("stacked", layers=n)
    assert c.rows[1]["receptive_field"] == c.rows[0]["receptive_field"] == 1 + 2 * n


def test_inception_bottleneck():
    c = compare("bottleneck")
    direct, reduced = c.rows
    assert direct["params"] == 5 * 5 * 192 * 32 == 153600
    assert reduced["params"] == 1 * 1 * 192 * 16 + 5 * 5 * 16 * 32 == 15872
    assert round(direct["macs"] / 1e6) == 120           # the lecture's "120M"
    assert round(reduced["macs"] / 1e5) / 10 == 12.4     # the lecture's "12.4M"
    text = str(c)
    assert "153,600" in text and "15,872" in text


def test_bottleneck_agrees_with_a_built_branch():
    # the same branch built from layers and measured by summary (bias-free, like the lecture)
    direct = nn.Sequential(nn.Conv2d(192, 32, 5, padding=2, bias=False))
    reduced = nn.Sequential(nn.Conv2d(192, 16, 1, bias=False), nn.Conv2d(16, 32, 5, padding=2, bias=False))
    c = compare("bottleneck")
    for model, row in ((direct, c.rows[0]), (reduced, c.rows[1])):
        t = summary(model, (192, 28, 28)).total
        assert (t["params"], t["macs"]) == (row["params"], row["macs"])


def test_depthwise_separable():
    c = compare("separable")
    regular, separable = c.rows
    assert (regular["params"], regular["macs"]) == (72, 1152)
    assert (separable["params"], separable["macs"]) == (26, 416)
    built = nn.Sequential(nn.Conv2d(2, 2, 3, groups=2, bias=False), nn.Conv2d(2, 4, 1, bias=False))
    t = summary(built, (2, 6, 6)).total
    assert (t["params"], t["macs"]) == (26, 416)


def test_compare_errors():
    with pytest.raises(ValueError, match="unknown comparison 'stack'"):
        compare("stack")
    with pytest.raises(ValueError, match="layers must be a positive int"):
        compare("stacked", layers=0)


def test_explain_lenet_substitutes_numbers():
    text = explain(lenet5_lecture(), input_size=(1, 32, 32))
    assert "W2 = (W1 − F + 2P)/S + 1 = (32 − 5 + 0)/1 + 1 = 28" in text
    assert "params = (F·F·D1 + 1)·K = (5·5·1 + 1)·6 = 156" in text
    assert "params = (F·F·D1 + 1)·K = (5·5·6 + 1)·16 = 2,416" in text
    assert "(28 − 2 + 0)/2 + 1 = 14" in text
    assert "params = (N_in + 1)·N_out = (120 + 1)·84 = 10,164" in text
    assert "MULs = (F·F·D1 + 1)·K·W2·H2 = (5·5·1 + 1)·6·28·28 = 122,304" in text
    assert "RF = RF_in + (F − 1)·jump_in = 6 + (5 − 1)·2 = 14" in text


def test_explain_one_layer_and_blocks():
    text = explain(lenet5_lecture(), layer="C5", input_size=(1, 32, 32))
    assert "C5 (Conv2d): 5×5×16 → 1×1×120" in text and "48,120" in text and "C1" not in text
    block = explain(InceptionLike(192, 64, 96, 128, 16, 32, 32), input_size=(192, 28, 28))
    assert "D2 = 64 + 128 + 32 + 32 = 256" in block
    with pytest.raises(ValueError, match="no layer named 'C9'"):
        explain(lenet5_lecture(), layer="C9", input_size=(1, 32, 32))


def test_explain_unprocessed_padding_dilation_groups():
    text = explain(build_chain([("conv", 1, 1, 3, 3, 0, 1, 1)], "cnnkit"), input_size=(1, 7, 7))
    assert "⌊(7 − 3 + 0)/3⌋ + 1 = ⌊4/3⌋ + 1 = 2" in text and "never processed" in text
    text = explain(build_chain([("conv", 4, 8, 3, 1, 2, 2, 2)], "cnnkit"), input_size=(4, 9, 9))
    assert "F' = d·(F − 1) + 1 = 2·(3 − 1) + 1 = 5" in text
    assert "(9 − 5 + 2·2)/1 + 1 = 9" in text
    assert "(F·F·D1/g + 1)·K = (3·3·4/2 + 1)·8 = 152" in text


def test_explain_ceil_mode():
    m = nn.Sequential(nn.MaxPool2d(3, stride=2, ceil_mode=True))
    text = explain(m, input_size=(1, 112, 112))
    assert "⌈(112 − 3 + 0)/2⌉ + 1 = ⌈109/2⌉ + 1 = 56" in text
