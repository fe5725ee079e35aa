"""Every convolution algorithm of the registry, in every direction, against PyTorch and against the im2col + GEMM
reference, on 1–3 threads: one test over :data:`registry.ORDER`, so an algorithm added to a list is tested here.
Then the inputs that must fall back (infinities, NaN) and tiny maps, through the selection as a call runs it."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from cnnkit.nn.functional.conv import registry
from cnnkit.nn.functional.conv.algorithm import FORWARD, INPUT_GRAD, WEIGHT_GRAD
from cnnkit.nn.functional.conv.geometry import Geometry

TH = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}


def _geometry(n, c, size, k_out, ksize, stride=None, pads=None, dilation=None, groups=1, dtype="float64"):
    nd = len(size)
    stride, dilation = stride or (1,) * nd, dilation or (1,) * nd
    pads = pads if pads is not None else tuple(((k - 1) // 2, (k - 1) // 2) for k in ksize)
    return Geometry.of((n, c) + size, (k_out, c // groups) + ksize, stride, pads, dilation, groups, dtype)


#: Small layers that between them reach every algorithm of every direction: odd and even sizes, both kernel widths
#: the direct loops are written for, strides 1 and 2, asymmetric padding, dilation, groups, 1-D and 3-D, depthwise,
#: and tiny maps (one output; a kernel as large as the padded input).
GEOMETRIES = {
    "3x3": _geometry(3, 4, (9, 8), 5, (3, 3)),
    "3x3 f32": _geometry(2, 5, (8, 9), 6, (3, 3), dtype="float32"),
    "3x3 many images": _geometry(9, 4, (7, 7), 4, (3, 3)),
    "3x3 small maps, stacked images": _geometry(25, 3, (8, 8), 5, (3, 3)),     # the direct loops: 11 + 11 + 3
    "5x5 pad 2": _geometry(2, 3, (8, 12), 5, (5, 5)),
    "3x5 pad 0": _geometry(2, 3, (9, 13), 4, (3, 5), pads=((0, 0), (0, 0))),
    "3x3 stride 2": _geometry(3, 3, (9, 10), 6, (3, 3), stride=(2, 2)),
    "3x3 stride 2 even, pad 0/1": _geometry(2, 4, (12, 11), 5, (3, 3), stride=(2, 2), pads=((0, 1), (1, 0))),
    "2x3 asymmetric pad": _geometry(2, 3, (7, 10), 4, (2, 3), pads=((0, 1), (1, 1))),
    "3x3 dilated": _geometry(2, 3, (9, 9), 4, (3, 3), pads=((2, 2), (2, 2)), dilation=(2, 2)),
    "3x3 groups 2": _geometry(2, 4, (8, 8), 6, (3, 3), groups=2),
    "3x3 stride (2, 1)": _geometry(2, 3, (8, 9), 4, (3, 3), stride=(2, 1)),
    "1x1": _geometry(2, 6, (5, 7), 8, (1, 1)),
    "1x1 1-D, more images than chunks": _geometry(7, 5, (9,), 3, (1,)),
    "depthwise 3x3": _geometry(3, 4, (9, 8), 4, (3, 3), groups=4),
    "depthwise 3x3 stride 2": _geometry(2, 4, (11, 10), 4, (3, 3), stride=(2, 2), groups=4),
    "depthwise 5x3 dilated": _geometry(2, 3, (13, 14), 3, (5, 3), stride=(2, 3), pads=((2, 2), (2, 2)),
                                       dilation=(1, 2), groups=3),
    "depthwise 1-D": _geometry(2, 4, (11,), 4, (3,), stride=(2,), groups=4),
    "1-D": _geometry(2, 3, (11,), 4, (3,)),
    "3-D": _geometry(1, 2, (5, 6, 7), 3, (3, 2, 3), pads=((1, 1), (0, 1), (1, 1))),
    "tiny: one output": _geometry(2, 3, (1, 1), 4, (3, 3)),
    "tiny: kernel as large as the input": _geometry(2, 3, (3, 5), 4, (3, 5), pads=((0, 0), (0, 0))),
    "tiny: one row": _geometry(2, 3, (1, 9), 4, (3, 3)),
    "tiny: depthwise 2x2 map": _geometry(2, 3, (2, 2), 3, (3, 3), groups=3),
}


def _arrays(geom: Geometry, seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(geom.dtype)
    x = rng.standard_normal((geom.n, geom.c) + geom.in_size).astype(dt)
    w = (rng.standard_normal((geom.k_out, geom.c // geom.groups) + geom.ksize) / 3).astype(dt)
    b = rng.standard_normal(geom.k_out).astype(dt)
    g = rng.standard_normal((geom.n, geom.k_out) + geom.out_size).astype(dt)
    return x, w, b, g


def _torch(geom: Geometry, x, w, b, g):
    """PyTorch's forward, dX and dW (in float64) for ``geom``: the padding as an explicit pad, any asymmetry."""
    tx, tw = torch.tensor(x, dtype=torch.float64, requires_grad=True), torch.tensor(w, dtype=torch.float64,
                                                                                    requires_grad=True)
    flat = [p for lo_hi in reversed(geom.pads) for p in lo_hi]              # F.pad's last-axis-first order
    y = TH[geom.nd](TF.pad(tx, flat), tw, torch.tensor(b, dtype=torch.float64), geom.stride, 0, geom.dilation,
                    geom.groups)
    y.backward(torch.tensor(g, dtype=torch.float64))
    return y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy()


def _cases():
    for direction, algs in registry.ORDER.items():
        for alg in algs:
            for label, geom in GEOMETRIES.items():
                if alg.applies(geom):
                    yield pytest.param(direction, alg.name, label, id=f"{direction}-{alg.name}-{label}")


def _run(direction, alg, geom, x, w, b, g):
    if direction == FORWARD:
        return alg.run(geom, x, w, b)
    return alg.run(geom, g, w) if direction == INPUT_GRAD else alg.run(geom, g, x)


def _algorithm(direction, name):
    (alg,) = [a for a in registry.ORDER[direction] if a.name == name]
    if alg.compiled and not registry.jit.available():
        pytest.skip("Numba is not installed (a compiled algorithm)")
    return alg


@pytest.mark.parametrize("direction,name,label", list(_cases()))
def test_every_algorithm_matches_torch_and_the_gemm_reference(direction, name, label, threads):
    geom, alg = GEOMETRIES[label], _algorithm(direction, name)
    x, w, b, g = _arrays(geom)
    got = _run(direction, alg, geom, x, w, b, g)
    want = _torch(geom, x, w, b, g)[(FORWARD, INPUT_GRAD, WEIGHT_GRAD).index(direction)]
    reference = _run(direction, registry.reference(direction), geom, x, w, b, g)
    assert got.dtype == np.dtype(geom.dtype) and got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max()))
    tol = 1e-10 if geom.dtype == "float64" else 2e-5
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale, err_msg="against PyTorch")
    np.testing.assert_allclose(got, reference, rtol=0, atol=tol * scale, err_msg="against the GEMM reference")


def test_every_algorithm_is_reached_by_some_geometry_of_the_test():
    for direction, algs in registry.ORDER.items():
        for alg in algs:
            assert any(alg.applies(geom) for geom in GEOMETRIES.values()), f"{direction} {alg.name} is never tested"


_BAD = {"inf": np.inf, "-inf": -np.inf, "nan": np.nan}


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NumPy's, where a product makes NaN
@pytest.mark.parametrize("bad", list(_BAD))
@pytest.mark.parametrize("direction,name,label", list(_cases()))
def test_infinities_and_nan_come_out_as_in_torch_through_the_selection(direction, name, label, bad, monkeypatch):
    # each algorithm forced by the selection; one that refuses such data (Winograd: its transforms would spread an
    # infinity as NaN over its tile) hands the call to the next of the default order
    geom, alg = GEOMETRIES[label], _algorithm(direction, name)
    x, w, b, g = _arrays(geom)
    if direction == FORWARD:
        x.flat[x.size // 2] = _BAD[bad]
    elif direction == INPUT_GRAD:
        g.flat[g.size // 3] = _BAD[bad]
    else:
        x.flat[x.size // 3] = _BAD[bad]
    monkeypatch.setattr(registry, "select", lambda d, gm, arrays=None: alg if d == direction and gm == geom
                        else registry.default(d, gm))
    args = {FORWARD: (x, w, b), INPUT_GRAD: (g, w), WEIGHT_GRAD: (g, x)}[direction]
    got = registry.run(direction, geom, *args)
    with np.errstate(invalid="ignore"):
        want = _torch(geom, x, w, b, g)[(FORWARD, INPUT_GRAD, WEIGHT_GRAD).index(direction)]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-5, atol=1e-5 * max(1.0, np.abs(want[finite]).max()))


def test_an_empty_batch_takes_the_reference_in_every_direction():
    geom = _geometry(0, 16, (32, 32), 16, (3, 3))
    for direction in registry.ORDER:
        assert registry.select(direction, geom) is registry.reference(direction)
    x, w, b, g = _arrays(geom)
    assert registry.run(FORWARD, geom, x, w, b).shape == (0, 16, 32, 32)
    assert registry.run(INPUT_GRAD, geom, g, w).shape == (0, 16, 32, 32)
    np.testing.assert_array_equal(registry.run(WEIGHT_GRAD, geom, g, x), np.zeros_like(w))
