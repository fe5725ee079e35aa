import numpy as np
import pytest
import torch

import cnnkit
from tests.helpers import check_finite_differences, check_op


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("op", [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / (b * b + 1),
    lambda a, b: (a * 2 - 1) ** 2 + 3 / (b * b + 1), lambda a, b: -a + 1.5 * b,
])
def test_broadcasting_arithmetic_matches_torch(op, dtype, rng):
    check_op(op, op, rng.standard_normal((3, 1, 4)), rng.standard_normal((5, 1)), dtype=dtype)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (4, 3)), ((3, 4), (4,)),
                                   ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul_matches_torch(sa, sb, rng):
    check_op(lambda a, b: a @ b, lambda a, b: a @ b, rng.standard_normal(sa), rng.standard_normal(sb))


def test_shape_ops_and_reductions_match_torch(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    for cn, th in [
        (lambda t: t.reshape(6, 20).sum(1), lambda t: t.reshape(6, 20).sum(1)),
        (lambda t: t.flatten(1), lambda t: t.flatten(1)),
        (lambda t: t.permute(0, 2, 3, 1) * 2, lambda t: t.permute(0, 2, 3, 1) * 2),
        (lambda t: t.transpose(1, 3), lambda t: t.transpose(1, 3)),
        (lambda t: t.mean((0, 2), keepdim=True), lambda t: t.mean((0, 2), keepdim=True)),
        (lambda t: t.max(), lambda t: t.max()),
        (lambda t: t.max(2).values, lambda t: t.max(2).values),
        (lambda t: t[:, 1:, ::2, [0, 0, 3]], lambda t: t[:, 1:, ::2, [0, 0, 3]]),
        (lambda t: t.exp().log() + t.abs(), lambda t: t.exp().log() + t.abs()),
        (lambda t: cnnkit.cat([t, t * 2], 1), lambda t: torch.cat([t, t * 2], 1)),
        (lambda t: cnnkit.stack([t, t], 0).unsqueeze(0).squeeze(0), lambda t: torch.stack([t, t], 0)),
    ]:
        check_op(cn, th, x)


def test_finite_differences_of_composite_expression(rng):
    check_finite_differences(lambda a, b: (a @ b).exp().sum(0) / (1 + a.abs().sum()),
                             rng.standard_normal((3, 4)), rng.standard_normal((4, 2)))


def test_gradients_accumulate_like_torch():
    x = cnnkit.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3 + 2, 3 + 4])


def test_backward_twice_through_freed_graph_is_a_clear_error():
    x = cnnkit.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = cnnkit.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, [4.0, 8.0])


def test_no_grad_records_no_graph():
    x = cnnkit.tensor([1.0], requires_grad=True)
    with cnnkit.no_grad():
        y = x * 2
    assert not y.requires_grad and y._parents == ()


def test_default_dtypes_follow_torch():
    assert cnnkit.tensor([1.0, 2.0]).dtype == np.float32
    assert cnnkit.tensor(np.zeros(2)).dtype == np.float64
    assert cnnkit.tensor([1, 2]).dtype == np.int64
    assert cnnkit.tensor([1.0], dtype=np.float64).dtype == np.float64


def test_non_scalar_backward_needs_gradient():
    x = cnnkit.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        (x * 2).backward()


def test_manual_seed_reproduces():
    cnnkit.manual_seed(3)
    a = cnnkit.randn(4).data
    cnnkit.manual_seed(3)
    np.testing.assert_array_equal(a, cnnkit.randn(4).data)


@pytest.mark.parametrize("shape", [(128, 16, 32, 32), (3, 2**21), (128, 64, 8, 8), (5, 7)])  # 8 MB, 24 MB: threads; 2 MB: one
def test_adding_two_large_arrays_on_threads_equals_torch_bit_for_bit(shape, threads, monkeypatch):
    calls = []
    run_slices = cnnkit.parallel.run_slices
    monkeypatch.setattr(cnnkit.parallel, "run_slices", lambda *a: calls.append(1) or run_slices(*a))
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(shape, dtype=np.float32), rng.standard_normal(shape, dtype=np.float32)
    x, y = cnnkit.tensor(a, requires_grad=True), cnnkit.tensor(b, requires_grad=True)
    z = x + y
    np.testing.assert_array_equal(z.data, (torch.tensor(a) + torch.tensor(b)).numpy())
    assert z.data.dtype == np.float32 and not np.shares_memory(z.data, a) and not np.shares_memory(z.data, b)
    assert bool(calls) == (z.data.nbytes >= cnnkit.parallel.STREAM_PARALLEL_BYTES > 2**21)
    g = rng.standard_normal(shape, dtype=np.float32)
    z.backward(cnnkit.tensor(g))
    np.testing.assert_array_equal(x.grad.data, g)
    np.testing.assert_array_equal(y.grad.data, g)
