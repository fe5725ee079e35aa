"""The convolution's algorithms one by one, where each has more to check than the registry-wide test
(``test_conv_algorithms.py``): randomised shapes against PyTorch, chunking (on 1, 2 and 3 threads: ``threads``
fixture), Winograd's two layouts, the rules of the default order, the stride-1 frame view
(``kernels.flat_windows``) against the plain window view, and what ``conv2d_path`` reports against what runs."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import cnnkit
from cnnkit import jit, kernels
from cnnkit.nn import functional as F
from cnnkit.nn.functional import conv as conv_mod
from cnnkit.nn.functional.conv import depthwise_numpy, direct, plan as plan_mod, winograd, winograd_images
from cnnkit.nn.functional.conv.geometry import Geometry
from tests.helpers import check_op, record_selection

CN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TH = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}


@st.composite
def depthwise_configs(draw):
    nd = draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    p = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    size = tuple(max(1, dd * (kk - 1) + 1 - 2 * pp) + draw(st.integers(0, 3)) for kk, dd, pp in zip(k, d, p))
    return dict(nd=nd, c=draw(st.integers(2, 4)), k=k, d=d, s=s, p=p, size=size, n=draw(st.integers(1, 2)),
                bias=draw(st.booleans()), dtype=draw(st.sampled_from([np.float32, np.float64])))


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "numpy"])
@given(cfg=depthwise_configs())
def test_depthwise_path_matches_torch(compiled, cfg):
    before = jit.ENABLED, jit.MIN_BYTES
    jit.ENABLED, jit.MIN_BYTES = compiled, 0
    try:
        _check_depthwise_against_torch(cfg)
    finally:
        jit.ENABLED, jit.MIN_BYTES = before


def _check_depthwise_against_torch(cfg):
    rng = np.random.default_rng(1)
    nd, c = cfg["nd"], cfg["c"]
    x = rng.standard_normal((cfg["n"], c) + cfg["size"])
    w = rng.standard_normal((c, 1) + cfg["k"])
    b = rng.standard_normal(c)
    args = (cfg["s"], cfg["p"], cfg["d"], c)
    if cfg["bias"]:
        check_op(lambda x, w, b: CN[nd](x, w, b, *args), lambda x, w, b: TH[nd](x, w, b, *args), x, w, b,
                 dtype=cfg["dtype"])
    else:
        check_op(lambda x, w: CN[nd](x, w, None, *args), lambda x, w: TH[nd](x, w, None, *args), x, w,
                 dtype=cfg["dtype"])


@pytest.mark.parametrize("block_bytes", [1, 2**20])  # one image per block; the whole batch
@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 1), (1, 0), (1, "same")])
def test_depthwise_path_equals_the_general_grouped_path(stride, padding, block_bytes, threads, rng, monkeypatch):
    monkeypatch.setattr(depthwise_numpy, "DEPTHWISE_BLOCK_BYTES", block_bytes)
    x = rng.standard_normal((3, 5, 9, 8))
    w = rng.standard_normal((5, 1, 3, 3))
    b = rng.standard_normal(5)
    g = rng.standard_normal(F.conv2d(cnnkit.tensor(x), cnnkit.tensor(w), None, stride, padding, 1, 5).shape)

    def run():
        tx, tw, tb = (cnnkit.tensor(a, requires_grad=True) for a in (x, w, b))
        F.conv2d(tx, tw, tb, stride, padding, 1, 5).backward(g)
        return F.conv2d(tx, tw, tb, stride, padding, 1, 5).data, tx.grad.data, tw.grad.data, tb.grad.data
    fast = run()
    with conv_mod.switched_off("depthwise"):
        general = run()
    for a, e in zip(fast, general):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk_bytes", [1, 60000])  # one frame row per chunk; two images per chunk
@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 1, 1, 1), (2, 1, 1, 1), (1, 2, 2, 2), (1, 0, 1, 3)])
def test_chunks_give_the_same_result(stride, padding, dilation, groups, chunk_bytes, threads, rng, monkeypatch):
    monkeypatch.setattr(plan_mod, "CHUNK_BYTES", chunk_bytes)
    x = rng.standard_normal((3, 6, 7, 9))
    w = rng.standard_normal((6, 6 // groups, 3, 2))
    b = rng.standard_normal(6)
    args = (stride, padding, dilation, groups)
    check_op(lambda x, w, b: F.conv2d(x, w, b, *args), lambda x, w, b: TF.conv2d(x, w, b, *args), x, w, b)


def test_flat_frame_view_holds_the_same_numbers_as_the_window_view(rng):
    x = rng.standard_normal((2, 3, 6, 7, 5))
    k, d, pads = (2, 3, 2), (1, 2, 1), ((1, 0), (2, 1), (0, 1))
    xp = kernels.pad(x, pads)
    padded = xp.shape[2:]
    out = tuple(s - dd * (kk - 1) for s, kk, dd in zip(padded, k, d))
    xe = kernels.pad(x, pads, tail=kernels.needs_tail(k, d))
    flat = kernels.flat_windows(xe, k, d, out, padded)
    frame = kernels.flat_frame(out, padded)
    valid = flat.reshape(flat.shape[:-1] + frame)[..., :out[0], :out[1], :out[2]]
    np.testing.assert_array_equal(valid, kernels.windows(xp, k, (1, 1, 1), d, out))


@pytest.mark.parametrize("stride", [(1, 1), (2, 1)])
@pytest.mark.parametrize("chunk_bytes", [1, 2000, 2**30])
def test_col2im_is_the_adjoint_of_columns(stride, chunk_bytes, rng, monkeypatch):
    # <columns(x), c> == <x, col2im(c)> for any x and c, whatever the chunks
    monkeypatch.setattr(plan_mod, "CHUNK_BYTES", chunk_bytes)
    k, d, pads = (3, 2), (1, 2), ((1, 1), (0, 2))
    x = rng.standard_normal((3, 2, 7, 6))
    plan = plan_mod.Plan(Geometry.of(x.shape, (1, 2) + k, stride, pads, d, 1, x.dtype))
    xe = plan.pad(x)
    gxe = np.zeros_like(xe)
    lhs = 0.0
    for chunk in plan.chunks:
        cols = plan.columns(xe, chunk)
        c = rng.standard_normal(cols.shape)
        lhs += (cols * c).sum()
        plan.col2im(c, gxe, chunk)
    assert len(plan.chunks) > 1 or chunk_bytes == 2**30
    np.testing.assert_allclose(lhs, (xe * gxe).sum(), rtol=1e-10)


def test_float32_stays_float32(rng):
    x = cnnkit.tensor(rng.standard_normal((2, 4, 6, 6)).astype(np.float32), requires_grad=True)
    for w_shape, groups in (((4, 4, 3, 3), 1), ((4, 1, 3, 3), 4), ((8, 4, 1, 1), 1)):
        w = cnnkit.tensor(rng.standard_normal(w_shape).astype(np.float32), requires_grad=True)
        y = F.conv2d(x, w, None, 1, 1 if w_shape[-1] == 3 else 0, 1, groups)
        y.sum().backward()
        assert y.dtype == x.grad.dtype == w.grad.dtype == np.float32
        x.grad = None


@pytest.mark.skipif(not jit.available(), reason="Numba is not installed (the NumPy path is the only one)")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd,size,k,dilation,padding,stride", [
    (1, (11,), (3,), (2,), 1, 1), (2, (9, 8), (3, 3), (1, 1), 1, 1), (2, (7, 10), (3, 2), (2, 1), "same", 1),
    (2, (8, 8), (5, 5), (1, 1), 2, 1), (1, (9,), (4,), (1,), "same", 1),
    (2, (9, 8), (3, 3), (1, 1), 1, 2), (2, (12, 11), (3, 3), (1, 1), (0, 1), 2),     # MobileNet's: odd, even sizes
    (2, (13, 14), (5, 3), (1, 2), 2, (2, 3)), (1, (17,), (3,), (2,), 1, 3), (2, (9, 9), (3, 3), (2, 2), 2, 2)])
def test_compiled_depthwise_equals_the_numpy_tap_sums(nd, size, k, dilation, padding, stride, dtype, threads, rng,
                                                     monkeypatch):
    monkeypatch.setattr(jit, "MIN_BYTES", 0)                               # these small inputs too
    c = 4
    x, w, b = rng.standard_normal((5, c) + size), rng.standard_normal((c, 1) + k), rng.standard_normal(c)
    args = (stride, padding, dilation, c)
    g = rng.standard_normal(CN[nd](cnnkit.tensor(x), cnnkit.tensor(w), None, *args).shape).astype(dtype)
    taken = record_selection(monkeypatch)

    def run():
        tx, tw, tb = (cnnkit.tensor(a.astype(dtype), requires_grad=True) for a in (x, w, b))
        y = CN[nd](tx, tw, tb, *args)
        y.backward(g)
        return y.data, tx.grad.data, tw.grad.data, tb.grad.data
    fast = run()
    assert set(taken) == {("forward", "depthwise"), ("input_grad", "depthwise"), ("weight_grad", "depthwise")}
    monkeypatch.setattr(jit, "ENABLED", False)
    taken.clear()
    numpy_path = run()
    assert {name for _, name in taken} == {"depthwise-numpy"}
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-5)
    for a, e in zip(fast, numpy_path):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, e, **tol)


@pytest.mark.parametrize("chunk_bytes", [1, 2**22])  # one output row per chunk; whole images
@pytest.mark.parametrize("shape,k,padding,dilation,bias", [
    ((2, 5, 9, 8), (3, 3), 1, 1, True), ((1, 4, 10, 7), (5, 3), (4, 1), (2, 1), False),
    ((2, 3, 8, 9), (2, 2), "same", 1, True), ((1, 3, 5, 6, 7), (3, 2, 3), 1, (2, 1, 1), True),
    ((1, 2, 3, 4), (3, 3), 4, 1, True),                       # output rows and columns that read only padding
    ((2, 3, 6, 9), (3, 3), (0, 2), (1, 3), False), ((1, 2, 7, 5), (3, 1), (2, 0), 1, True)])
def test_row_shifted_forward_matches_torch(shape, k, padding, dilation, bias, chunk_bytes, threads, rng,
                                           monkeypatch):
    # one GEMM per kernel row on shifted views of one column block (VGG-sized layers), forced on small ones
    from cnnkit.nn.functional.conv import row_shifted
    monkeypatch.setattr(row_shifted, "ROW_SHIFT_MIN_ROWS", 1)
    monkeypatch.setattr(row_shifted, "ROW_SHIFT_MIN_POSITIONS", 1)
    monkeypatch.setattr(plan_mod, "CHUNK_BYTES", chunk_bytes)
    taken = record_selection(monkeypatch)
    nd = len(k)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((4, shape[1]) + k)
    args = (1, padding, dilation, 1)
    arrays = (x, w, rng.standard_normal(4)) if bias else (x, w)
    check_op(lambda x, w, *b: CN[nd](x, w, *(b or (None,)), *args),
             lambda x, w, *b: TH[nd](x, w, *(b or (None,)), *args), *arrays)
    assert ("forward", "row-shifted") in taken


@st.composite
def winograd_configs(draw):
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    size = tuple(max(1, 3 - 2 * pp) + draw(st.integers(0, 7)) for pp in p)      # at least one output
    return dict(n=draw(st.integers(1, 3)), c=draw(st.integers(1, 5)), k=draw(st.integers(1, 5)), size=size, p=p,
                bias=draw(st.booleans()), dtype=draw(st.sampled_from([np.float32, np.float64])),
                chunk=draw(st.sampled_from([1, 3000, 2**24])),       # rows of tiles, whole images, one chunk
                images=draw(st.booleans()))                          # the tiles' layout: images innermost


@pytest.mark.skipif(not jit.available(), reason="Numba is not installed (Winograd needs the compiled transforms)")
@given(cfg=winograd_configs())
def test_winograd_path_matches_torch(cfg):
    # forced on small layers, in either layout: odd and even sizes (a last half tile), padding 0-2 per axis, every
    # chunking; the input gradient of a stride-1 3×3 layer is itself such a convolution and takes the same path
    layout = "winograd-images" if cfg["images"] else "winograd-rows"
    rows = (1, 1) if layout == "winograd-rows" else (10**9, 10**9)
    with pytest.MonkeyPatch.context() as mp, conv_mod.switched_off("direct"):
        for module, name, value in ((winograd, "WINOGRAD_MIN_CHANNELS", rows[0]),
                                    (winograd, "WINOGRAD_MIN_WIDTH", rows[1]),
                                    (winograd, "WINOGRAD_CHUNK_BYTES", cfg["chunk"]),
                                    (winograd_images, "WINOGRAD_IMAGES_MIN", 1),
                                    (winograd_images, "WINOGRAD_IMAGES_MAX_WIDTH", 100),
                                    (winograd_images, "WINOGRAD_IMAGES_MIN_CHANNELS", 1),
                                    (winograd_images, "WINOGRAD_IMAGES_CHUNK_BYTES", cfg["chunk"]),
                                    (jit, "MIN_BYTES", 0)):
            mp.setattr(module, name, value)
        taken = record_selection(mp)
        rng = np.random.default_rng(2)
        x = rng.standard_normal((cfg["n"], cfg["c"]) + cfg["size"])
        w = rng.standard_normal((cfg["k"], cfg["c"], 3, 3))
        arrays = (x, w, rng.standard_normal(cfg["k"])) if cfg["bias"] else (x, w)
        check_op(lambda x, w, *b: F.conv2d(x, w, *(b or (None,)), 1, cfg["p"]),
                 lambda x, w, *b: TF.conv2d(x, w, *(b or (None,)), 1, cfg["p"]), *arrays, dtype=cfg["dtype"])
    assert ("forward", layout) in taken


@pytest.mark.skipif(not jit.available(), reason="Numba is not installed (Winograd needs the compiled transforms)")
@pytest.mark.parametrize("chunk_bytes", [1, 2**18, 2**24])
def test_winograd_equals_the_gemm_path_on_a_vgg_sized_layer(chunk_bytes, threads, rng, monkeypatch):
    monkeypatch.setattr(winograd, "WINOGRAD_CHUNK_BYTES", chunk_bytes)
    x = rng.standard_normal((3, 128, 29, 30)).astype(np.float32)
    w = (rng.standard_normal((136, 128, 3, 3)) / 34).astype(np.float32)
    b = rng.standard_normal(136).astype(np.float32)
    taken = record_selection(monkeypatch)
    with cnnkit.no_grad():
        fast = F.conv2d(cnnkit.tensor(x), cnnkit.tensor(w), cnnkit.tensor(b), padding=1).data
        assert taken == [("forward", "winograd-rows")], "a 128-channel layer 30 wide takes Winograd"
        with conv_mod.switched_off("winograd"):
            gemm = F.conv2d(cnnkit.tensor(x), cnnkit.tensor(w), cnnkit.tensor(b), padding=1).data
    assert taken[1] != ("forward", "winograd-rows") and fast.dtype == np.float32
    np.testing.assert_allclose(fast, gemm, rtol=0, atol=2e-5 * np.abs(gemm).max())


@pytest.mark.skipif(not jit.available(), reason="Numba is not installed (Winograd needs the compiled transforms)")
@pytest.mark.parametrize("chunk_bytes", [1, 2**20, 2**24])
def test_winograd_with_the_images_innermost_equals_the_gemm_path_on_resnets_8x8_stage(chunk_bytes, threads, rng,
                                                                                       monkeypatch):
    # ResNet's 64-channel 8×8 layers at a large batch (here 64 images, 7×7 maps: a last half tile), forward and the
    # input gradient (itself such a convolution); chunks of 1 image, of 14 images, and the 4 chunks the threads'
    # balance asks for at least
    monkeypatch.setattr(winograd_images, "WINOGRAD_IMAGES_CHUNK_BYTES", chunk_bytes)
    x = rng.standard_normal((64, 64, 7, 7)).astype(np.float32)
    w = (rng.standard_normal((72, 64, 3, 3)) / 24).astype(np.float32)
    b = rng.standard_normal(72).astype(np.float32)
    g = rng.standard_normal((64, 72, 7, 7)).astype(np.float32)
    taken = record_selection(monkeypatch)

    def run():
        xt = cnnkit.tensor(x, requires_grad=True)
        y = F.conv2d(xt, cnnkit.tensor(w), cnnkit.tensor(b), padding=1)
        y.backward(cnnkit.tensor(g))
        return y.data, xt.grad.data
    fast = run()
    assert taken.count(("forward", "winograd-images")) == 2, "the forward and dX (a convolution of dY) take it"
    with conv_mod.switched_off("winograd"):
        gemm = run()
    for a, e in zip(fast, gemm):
        np.testing.assert_allclose(a, e, rtol=0, atol=2e-5 * np.abs(e).max())


@pytest.mark.parametrize("shape,layout", [
    ((64, 64, 8, 8), "winograd-images"), ((64, 256, 8, 8), "winograd-images"),  # ResNet's 8×8 stage
    ((16, 256, 14, 14), "winograd-rows"), ((32, 128, 16, 16), "winograd-rows"),  # wide enough for rows of tiles
    ((4, 256, 14, 14), "winograd-rows")])
def test_winograd_layout_rows_of_tiles_where_wide_enough_else_images_innermost(shape, layout, monkeypatch):
    monkeypatch.setattr(jit, "available", lambda: True)                   # only the choice matters
    assert conv_mod.conv2d_path(shape, (shape[1], shape[1], 3, 3), 1, 1) == layout


@pytest.mark.parametrize("shape,k_out,stride,dilation,taken", [
    ((2, 128, 28, 28), 128, 1, 1, True), ((2, 128, 28, 28), 64, 1, 1, False),  # too few output channels
    ((4, 64, 28, 28), 128, 1, 1, False),                                         # too few input channels
    ((8, 128, 12, 12), 128, 1, 1, False),                                        # rows of tiles too narrow
    ((64, 64, 8, 8), 64, 1, 1, True), ((64, 64, 7, 7), 64, 1, 1, True),         # many small maps: images innermost
    ((63, 64, 8, 8), 64, 1, 1, False), ((64, 32, 8, 8), 64, 1, 1, False),        # too few images, channels
    ((64, 64, 9, 9), 64, 1, 1, False),                                           # maps too wide for that layout
    ((2, 128, 28, 28), 128, 2, 1, False), ((2, 128, 28, 28), 128, 1, 2, False)])  # strided, dilated
def test_the_default_order_takes_winograd_for_wide_stride_1_layers_only(shape, k_out, stride, dilation, taken,
                                                                         monkeypatch):
    monkeypatch.setattr(jit, "available", lambda: True)                   # only the choice matters here
    path = conv_mod.conv2d_path(shape, (k_out, shape[1], 3, 3), stride, dilation, dilation)
    assert path.startswith("winograd") == taken, path


@st.composite
def direct_configs(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.sampled_from([3, 5]))
    stride = draw(st.sampled_from([1, 2])) if kw == 3 else 1
    if stride == 1 and draw(st.booleans()):
        p = "same"                                        # an even kh puts its extra zero row at the bottom
    else:
        p = (draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1)))
    pw = (kw - 1) // 2 if p == "same" else p[1]
    ph = (kh - 1) // 2 if p == "same" else p[0]
    # wide enough for the stride-1 frame (its kw − 1 extra columns at most half the output's)
    width = max(1, 3 * (kw - 1) - 2 * pw) + draw(st.integers(0, 6))
    height = max(1, kh - 2 * ph) + draw(st.integers(0, 6))
    return dict(n=draw(st.integers(1, 3)), c=draw(st.integers(1, 4)), k=draw(st.integers(1, 5)), kernel=(kh, kw),
                size=(height, width), p=p, stride=stride, bias=draw(st.booleans()), x_grad=draw(st.booleans()),
                dtype=draw(st.sampled_from([np.float32, np.float64])))


@pytest.mark.skipif(not jit.available(), reason="Numba is not installed (the direct path is compiled)")
@given(cfg=direct_configs())
def test_direct_path_matches_torch(cfg):
    # forced on small layers: kernel rows 1-5 of 3 or 5 taps, stride 1 or (3 taps) 2 (the padded planes split into
    # their phases), every padding it takes (also 'same' with an even kernel: asymmetric), an odd number of output
    # channels (a group with all-zero partners), with and without the input's gradient (dX is the same loop on the
    # padded dY at stride 1, its adjoint on the four phases at stride 2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(direct, "DIRECT_MIN_BYTES", 0)
        taken = record_selection(mp)
        rng = np.random.default_rng(3)
        x = rng.standard_normal((cfg["n"], cfg["c"]) + cfg["size"])
        w = rng.standard_normal((cfg["k"], cfg["c"]) + cfg["kernel"])
        arrays = (x, w, rng.standard_normal(cfg["k"])) if cfg["bias"] else (x, w)
        detach = (lambda x: x) if cfg["x_grad"] else (lambda x: x.detach())  # a first layer: no dX to compute
        out = check_op(lambda x, w, *b: F.conv2d(detach(x), w, *(b or (None,)), cfg["stride"], cfg["p"]),
                       lambda x, w, *b: TF.conv2d(detach(x), w, *(b or (None,)), cfg["stride"], cfg["p"]), *arrays,
                       dtype=cfg["dtype"])
    name = "direct" if cfg["stride"] == 1 else "direct-stride2"
    assert ("forward", name) in taken and ("weight_grad", name) in taken and out[0].dtype == cfg["dtype"]
    if cfg["x_grad"]:
        assert ("input_grad", "direct" if cfg["stride"] == 1 else "direct-stride2") in taken


@pytest.mark.skipif(not jit.available(), reason="Numba is not installed (the direct path is compiled)")
@pytest.mark.parametrize("c,kernel,padding", [(16, 3, 1), (6, 5, 0)])    # ResNet-20's first stage, LeNet's C3
def test_direct_path_equals_the_gemm_path_on_small_channel_layers(c, kernel, padding, threads, rng, monkeypatch):
    x = cnnkit.tensor(rng.standard_normal((12, c, 32, 32)).astype(np.float32), requires_grad=True)
    w = cnnkit.tensor((rng.standard_normal((17, c, kernel, kernel)) / 12).astype(np.float32), requires_grad=True)
    b = cnnkit.tensor(rng.standard_normal(17).astype(np.float32), requires_grad=True)
    side = 32 + 2 * padding - kernel + 1
    g = rng.standard_normal((12, 17, side, side)).astype(np.float32)
    taken = record_selection(monkeypatch)
    results = []
    for off in ((), ("direct",)):
        with conv_mod.switched_off(*off):
            x.grad = w.grad = b.grad = None
            y = F.conv2d(x, w, b, padding=padding)
            y.backward(cnnkit.tensor(g))
        results.append([y.data, x.grad.data, w.grad.data, b.grad.data])
    assert [name for _, name in taken].count("direct") == 3, "so few inputs per output: the direct loops, each way"
    for fast, gemm in zip(*results):
        assert fast.dtype == np.float32
        np.testing.assert_allclose(fast, gemm, rtol=0, atol=2e-5 * np.abs(gemm).max())


@pytest.mark.parametrize("shape,k_out,kernel,stride,padding,dilation,groups,taken", [
    ((8, 16, 32, 32), 16, 3, 1, 1, 1, 1, True), ((128, 1, 32, 32), 6, 5, 1, 0, 1, 1, True),  # ResNet-20, LeNet's C1
    ((8, 32, 16, 16), 32, 3, 1, 1, 1, 1, True), ((8, 3, 32, 32), 64, 3, 1, 1, 1, 1, False),  # VGG's first: 64 out
    ((8, 64, 16, 16), 64, 3, 1, 1, 1, 1, False),                # 576 inputs per output: the GEMM's rows are long
    ((8, 16, 32, 32), 32, 3, 2, 1, 1, 1, True), ((8, 3, 64, 64), 32, 3, 2, 1, 1, 1, True),     # stride 2 (ResNet,
    ((8, 8, 33, 33), 16, 5, 2, 2, 1, 1, False), ((8, 16, 32, 32), 16, 3, 3, 1, 1, 1, False),  # MobileNet): 3-wide
    ((8, 16, 32, 32), 16, 3, 1, 2, 2, 1, False),                                                 # dilated
    ((8, 16, 32, 32), 16, 3, 1, 1, 1, 2, False), ((8, 4, 32, 32), 16, 7, 1, 3, 1, 1, False),   # groups, 7 wide
    ((8, 16, 32, 32), 16, 3, 1, 3, 1, 1, False),                # padding > k − 1: dX's padding would be negative
    ((8, 16, 5, 5), 16, 5, 1, 0, 1, 1, False)])                 # a 5×5 map: the frame is 5× the output
def test_the_default_order_takes_the_direct_loops_for_few_channel_stride_1_and_2_layers_only(
        shape, k_out, kernel, stride, padding, dilation, groups, taken):
    path = conv_mod.conv2d_path(shape, (k_out, shape[1] // groups, kernel, kernel), stride, padding, dilation, groups)
    assert path.startswith("direct") == (taken and jit.available()), path


def test_float16_runs_on_the_numpy_paths(rng):
    # the compiled kernels take float32 and float64 only; large float16 inputs (over jit.MIN_BYTES) still work
    x = rng.standard_normal((64, 16, 32, 32)).astype(np.float32)
    w = (rng.standard_normal((16, 16, 3, 3)) / 12).astype(np.float32)

    t = cnnkit.tensor(x.astype(np.float16), requires_grad=True)
    y = F.max_pool2d(F.relu(F.conv2d(t, cnnkit.tensor(w.astype(np.float16)), None, 1, 1)), 2)
    y.backward(cnnkit.tensor(np.ones(y.shape, np.float16)))                # (a float16 sum would overflow)
    tx = torch.tensor(x, requires_grad=True)                                # the reference: PyTorch in float32
    ty = TF.max_pool2d(TF.relu(TF.conv2d(tx, torch.tensor(w), None, 1, 1)), 2)
    ty.backward(torch.ones_like(ty))
    want, want_grad = ty.detach().numpy(), tx.grad.numpy()
    assert y.data.dtype == t.grad.data.dtype == np.float16
    np.testing.assert_allclose(y.data.astype(np.float32), want, rtol=0, atol=0.02 * np.abs(want).max())
    # float16 rounding moves some windows' maximum (and its gradient) to a neighbour: compare in bulk
    assert np.isfinite(t.grad.data).all()
    np.testing.assert_allclose(np.abs(t.grad.data.astype(np.float32)).sum(), np.abs(want_grad).sum(), rtol=0.02)

@pytest.mark.skipif(not jit.available(), reason="Numba is not installed (the direct path is compiled)")
@pytest.mark.parametrize("c,kernel,padding", [(16, 3, 1), (6, 5, 0)])
def test_direct_path_gives_the_same_bits_for_any_thread_count(c, kernel, padding, rng):
    # the threads claim images (and the weight gradient's blocks) as they go, so which thread does which changes
    # from run to run; every image's output and every block's partial sum must not depend on it
    x = rng.standard_normal((37, c, 20, 20)).astype(np.float32)
    w = (rng.standard_normal((10, c, kernel, kernel)) / 8).astype(np.float32)
    side = 20 + 2 * padding - kernel + 1
    g = rng.standard_normal((37, 10, side, side)).astype(np.float32)
    before, results = cnnkit.get_num_threads(), []
    try:
        for n in (1, 2, 3, 2):
            cnnkit.set_num_threads(n)
            t, tw = cnnkit.tensor(x, requires_grad=True), cnnkit.tensor(w, requires_grad=True)
            y = F.conv2d(t, tw, padding=padding)
            y.backward(cnnkit.tensor(g))
            results.append((y.data, t.grad.data, tw.grad.data))
    finally:
        cnnkit.set_num_threads(before)
    assert conv_mod.conv2d_path(x.shape, w.shape, 1, padding, 1, 1) == "direct"
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not jit.available(), reason="Numba is not installed (the direct path is compiled)")
@pytest.mark.parametrize("strip_values", [1, 40, 10**6])                 # one frame row a strip, a few, all of them
@pytest.mark.parametrize("shape", [(25, 3, 8, 8), (2, 3, 13, 12), (3, 2, 30, 12)])
def test_direct_forward_in_strips_of_rows_equals_the_gemm_reference(shape, strip_values, threads, rng, monkeypatch):
    # the frame computed a strip of rows at a time, also across stacked images (25 images of 8×8: 11 + 11 + 3)
    monkeypatch.setattr(direct, "DIRECT_STRIP_VALUES", strip_values)
    from cnnkit.nn.functional.conv import gemm
    geom = Geometry.of(shape, (5, shape[1], 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, np.float64)
    x, w, b = rng.standard_normal(shape), rng.standard_normal((5, shape[1], 3, 3)), rng.standard_normal(5)
    np.testing.assert_allclose(direct.FORWARD_DIRECT.run(geom, x, w, b), gemm.FORWARD_GEMM.run(geom, x, w, b),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not jit.available(), reason="Numba is not installed (the direct path is compiled)")
def test_direct_kernels_refuse_a_width_they_are_not_written_for():
    x, out = np.zeros((1, 1, 4, 6), np.float32), np.zeros((1, 2, 1, 3), np.float32)
    with pytest.raises(ValueError, match="kernel width must be 3 or 5, got 4"):
        direct.direct_forward(x, np.zeros((1, 1, 16, 2), np.float32), np.zeros(2, np.float32), out, ((0, 0), (0, 0)),
                              (4, 6), 1, np.zeros(1, np.int64))


@pytest.mark.parametrize("shape,weight,stride,padding,groups,expected", [
    ((8, 16, 32, 32), (16, 16, 3, 3), 1, 1, 1, "direct"), ((8, 64, 16, 16), (64, 64, 3, 3), 1, 1, 1, "gemm"),
    ((2, 128, 28, 28), (128, 128, 3, 3), 1, 1, 1, "winograd-rows"),
    ((64, 64, 8, 8), (64, 64, 3, 3), 1, 1, 1, "winograd-images"),
    ((8, 32, 16, 16), (32, 1, 3, 3), 1, 1, 32, "depthwise"),
    ((8, 16, 32, 32), (32, 16, 3, 3), 2, 1, 1, "direct-stride2"),
    ((8, 32, 16, 16), (64, 32, 3, 3), 2, 1, 1, "gemm"), ((2, 3, 7, 7), (4, 3, 9, 9), 1, 0, 1, None)])
def test_conv2d_path_names_the_algorithm_the_call_takes_in_every_direction(shape, weight, stride, padding, groups,
                                                                            expected, rng, monkeypatch):
    # what reports and `cnnkit bench --layers` say a layer runs is what the convolution then runs
    monkeypatch.setattr(jit, "MIN_BYTES", 0)
    monkeypatch.setattr(direct, "DIRECT_MIN_BYTES", 0)
    if not jit.available() and expected in ("direct", "direct-stride2", "winograd-rows", "winograd-images"):
        expected = "gemm"
    if not jit.available() and expected == "depthwise":
        expected = "depthwise-numpy"
    assert conv_mod.conv2d_path(shape, weight, stride, padding, 1, groups) == expected
    if expected is None:
        return
    said = {d: conv_mod.conv2d_path(shape, weight, stride, padding, 1, groups, direction=d)
            for d in ("forward", "input_grad", "weight_grad")}
    taken = record_selection(monkeypatch)
    x = cnnkit.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
    w = cnnkit.tensor(rng.standard_normal(weight).astype(np.float32), requires_grad=True)
    F.conv2d(x, w, None, stride, padding, 1, groups).sum().backward()
    assert dict(taken[:3]) == said and said["forward"] == expected


_CACHE_CHILD = """
import numpy as np, cnnkit
import cnnkit.nn.functional as F
x = cnnkit.tensor(np.random.rand(64, 16, 16, 16).astype(np.float32), requires_grad=True)
for w, groups in ((np.random.rand(16, 16, 3, 3), 1), (np.random.rand(16, 1, 3, 3), 16)):   # direct, depthwise
    F.conv2d(x, cnnkit.tensor(w.astype(np.float32)), padding=1, groups=groups).sum().backward()
"""


@pytest.mark.slow
def test_compiled_kernels_come_from_numbas_disk_cache_in_a_second_process():
    # kernels calling helper kernels held in a closure got a new cache key in every process (numba#6264):
    # each process compiled them again (about 8 s), and the compiler's memory counted in every peak
    import os
    import subprocess
    import sys
    pytest.importorskip("numba")
    env = dict(os.environ, NUMBA_DEBUG_CACHE="1")
    runs = [subprocess.run([sys.executable, "-c", _CACHE_CHILD], env=env, capture_output=True, text=True)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr[-2000:]
    log = runs[1].stdout + runs[1].stderr
    assert "[cache] data loaded" in log                              # the cache is in use ...
    saved = [line for line in log.splitlines() if "[cache] data saved" in line]
    assert not saved, saved                                          # ... and nothing compiled again
