"""cnnkit.parallel: parts, order, errors, the BLAS held at one thread inside a region and restored."""
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import cnnkit
from cnnkit import parallel


@pytest.fixture(autouse=True)
def restore_threads():
    before = cnnkit.get_num_threads()
    yield
    cnnkit.set_num_threads(before)


def blas_threads():
    """Thread counts of the BLAS libraries NumPy loaded (the ones cnnkit calls)."""
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas" and "numpy" in i["filepath"]]


def test_parts_are_contiguous_in_order_and_cover_every_item(threads):
    seen = []
    out = parallel.run(lambda part: (seen.append(threading.get_ident()), list(part))[1], range(10))
    assert len(out) == min(threads, 10)
    assert sum(out, []) == list(range(10))
    assert len(set(seen)) >= min(2, len(out))              # the caller and at least one worker


def test_blas_is_held_at_one_thread_inside_and_restored_after():
    cnnkit.set_num_threads(2)
    inside = parallel.run(lambda part: blas_threads(), range(4))
    assert inside == [[1] * len(blas_threads())] * 2
    assert blas_threads() == [2] * len(blas_threads())


def test_an_error_in_a_part_reaches_the_caller_and_the_blas_is_restored():
    cnnkit.set_num_threads(2)

    def fn(part):
        if 3 in part:
            raise KeyError("part with 3")
        return part
    with pytest.raises(KeyError, match="part with 3"):
        parallel.run(fn, range(4))
    assert blas_threads() == [2] * len(blas_threads())


def test_nested_regions_run_inline():
    cnnkit.set_num_threads(2)
    out = parallel.run(lambda part: parallel.run(lambda inner: len(inner), part), range(6))
    assert out == [[3], [3]]


def test_set_num_threads_sets_the_blas_and_refuses_nonsense():
    cnnkit.set_num_threads(1)
    assert cnnkit.get_num_threads() == 1 and blas_threads() == [1] * len(blas_threads())
    for bad in (0, -2, 1.5, True, "2"):
        with pytest.raises(ValueError, match=r"set_num_threads: expected a positive int, got"):
            cnnkit.set_num_threads(bad)


def test_partial_sums_are_deterministic_for_a_thread_count(rng):
    x = rng.standard_normal((64, 1000)).astype(np.float32)
    cnnkit.set_num_threads(2)
    a = sum(parallel.run(lambda part: x[part[0]:part[-1] + 1].sum(axis=0), range(64)))
    b = sum(parallel.run(lambda part: x[part[0]:part[-1] + 1].sum(axis=0), range(64)))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, x.sum(axis=0), rtol=1e-5, atol=1e-4)


def test_large_relu_and_padding_in_parallel_match_torch(threads, rng):
    import torch

    from cnnkit import kernels
    from cnnkit.nn import functional as F
    x = rng.standard_normal((9, 16, 40, 40)).astype(np.float32)          # 900 KB: split across threads
    g = rng.standard_normal(x.shape).astype(np.float32)
    cx = cnnkit.tensor(x, requires_grad=True)
    y = F.relu(cx)
    y.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    torch.relu(tx).backward(torch.tensor(g))
    np.testing.assert_array_equal(y.data, torch.relu(tx).detach().numpy())
    np.testing.assert_array_equal(cx.grad.data, tx.grad.numpy())
    padded = kernels.pad(x, ((2, 1), (0, 3)), value=-1.0)
    np.testing.assert_array_equal(padded, np.pad(x, ((0, 0), (0, 0), (2, 1), (0, 3)), constant_values=-1.0))


def test_map_returns_results_in_item_order_whatever_the_timing(threads):
    def slow_first(i):
        if i == 0:
            time.sleep(0.05)                                              # the others finish first
        return i * i
    assert parallel.map(slow_first, range(9)) == [i * i for i in range(9)]
    assert parallel.map(slow_first, []) == []


def test_run_claimed_gives_every_thread_one_shared_counter(threads):
    calls = []
    parallel.run_claimed(lambda counter: calls.append((threading.get_ident(), counter)), 5)
    assert len(calls) == min(threads, 5)
    assert len({t for t, _ in calls}) == len(calls)                       # one call per thread, each on its own
    assert all(c is calls[0][1] for _, c in calls)                        # ... all with the same counter
    assert calls[0][1].dtype == np.int64 and calls[0][1].shape == (1,) and calls[0][1][0] == 0
    for n, nbytes in ((1, None), (5, parallel.MIN_PARALLEL_BYTES - 1)):     # one piece, or too little work: here
        calls.clear()
        parallel.run_claimed(lambda counter: calls.append(threading.get_ident()), n, nbytes)
        assert calls == [threading.get_ident()]


def test_matmul_equals_numpys_and_leaves_the_blas_as_it_found_it(rng, monkeypatch):
    cnnkit.set_num_threads(2)
    a, b = rng.standard_normal((30, 40)), rng.standard_normal((40, 20))
    for small in (0, 2**40):                                            # threaded and held at one thread
        monkeypatch.setattr(parallel, "SMALL_GEMM_MACS", small)
        np.testing.assert_array_equal(parallel.matmul(a, b), np.matmul(a, b))
        out = np.empty((30, 20))
        assert parallel.matmul(a, b, out=out) is out
        assert blas_threads() == [2] * len(blas_threads())


@pytest.mark.parametrize("n,item,limit", [(128, 90_000, 4 * 2**20), (128, 30_000, 4 * 2**20), (7, 10, 100),
                                          (128, 650_000, 4 * 2**20), (3, 2**20, 2**20), (0, 8, 8)])
def test_split_covers_range_in_balanced_pieces(n, item, limit):
    pieces = parallel.split(n, item, limit)
    assert [i for s in pieces for i in range(s.start, s.stop)] == list(range(n))
    sizes = [s.stop - s.start for s in pieces]
    assert max(sizes) - min(sizes) <= 1
    if n:
        # each piece under the limit where a single item fits
        assert all(sz * item <= limit or sz == 1 for sz in sizes)
    if n * item >= parallel.MIN_PARALLEL_BYTES and len(pieces) < n:
        # enough work: a whole number of rounds for 2 or 4 threads (LeNet's 11.5 MB of C1 columns: 4, not 3)
        assert len(pieces) % parallel.BALANCE == 0 or len(pieces) >= 4 * parallel.BALANCE


def test_regions_from_two_threads_at_once_each_get_their_own_parts():
    cnnkit.set_num_threads(2)
    results, errors = {}, []

    def caller(k):
        try:
            for _ in range(200):                   # many regions, so the two callers overlap
                out = parallel.run(lambda part: [k * 1000 + i for i in part], range(k, k + 10))
                assert sum(out, []) == [k * 1000 + i for i in range(k, k + 10)]
            results[k] = True
        except Exception as e:                     # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=caller, args=(k,)) for k in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and results == {1: True, 2: True}


def test_workers_keep_no_reference_to_a_regions_arrays_or_results():
    import gc
    import weakref

    class Big:
        pass
    cnnkit.set_num_threads(2)
    big = Big()
    ref = weakref.ref(big)
    out = parallel.run(lambda part, held=big: Big() if part[0] else len(part) + (held is not None), range(4))
    result_ref = weakref.ref(out[1])
    del big, out
    gc.collect()
    assert ref() is None and result_ref() is None


def test_more_threads_start_more_workers():
    cnnkit.set_num_threads(2)
    parallel.run(lambda part: None, range(4))
    cnnkit.set_num_threads(3)
    seen = parallel.run(lambda part: (time.sleep(0.01), threading.get_ident())[1], range(6))
    assert len(seen) == 3 and len(set(seen)) == 3


def test_an_interrupt_while_waiting_still_waits_for_the_workers_and_the_next_region_is_sound():
    import os
    import signal

    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted
    cnnkit.set_num_threads(2)
    finished = []

    def fn(part):
        if part[0] != 0:                                    # the worker's part outlasts the interrupt
            time.sleep(1.0)
            finished.append(True)
        return list(part)
    old = signal.signal(signal.SIGINT, handler)
    try:
        timer = threading.Timer(0.1, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        with pytest.raises(Interrupted):
            parallel.run(fn, range(4))                      # the caller waits in the worker's lock when it lands
        assert finished == [True]                           # ... and went on waiting for the part to end
    finally:
        timer.join()
        signal.signal(signal.SIGINT, old)
    assert parallel.run(lambda part: list(part), range(6)) == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("mb", [2, 8])
def test_memory_bound_passes_take_the_threads_only_from_stream_parallel_bytes(mb, monkeypatch):
    # ReLU (in place and with its mask, and its gradient), batch norm's element-wise passes (inference's apply, the
    # input gradient) and the residual add: one thread on 2 MB, the pool on 8 MB (the compute-bound sums of batch
    # norm take the pool either way)
    from cnnkit.nn import functional as F
    if not cnnkit.jit.available():
        pytest.skip("Numba is not installed")
    cnnkit.set_num_threads(2)
    regions = []
    run = parallel.run
    monkeypatch.setattr(parallel, "run", lambda fn, items: regions.append(1) or run(fn, items))
    x = cnnkit.randn(128, 64 * 4 ** (mb == 8), 8, 8)                     # 2 or 8 MB of float32
    assert x.data.nbytes == mb * 2**20 and parallel.STREAM_PARALLEL_BYTES == 4 * 2**20
    w, b = cnnkit.ones(x.shape[1]), cnnkit.zeros(x.shape[1])
    rm, rv = cnnkit.zeros(x.shape[1]), cnnkit.ones(x.shape[1])
    with cnnkit.no_grad():
        for op in (lambda: F.relu(x.clone(), inplace=True), lambda: F.batch_norm(x, rm, rv, w, b), lambda: x + x):
            regions.clear()
            op()
            assert len(regions) == (mb == 8)
    y = x.clone().requires_grad_()
    out = F.relu(y)
    regions.clear()
    out.backward(x)                                                      # the gradient: one region at 8 MB
    assert len(regions) == (mb == 8)
    regions.clear()
    out = F.relu(y)
    assert len(regions) == (mb == 8)
