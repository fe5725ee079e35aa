"""Intra-op parallelism: one op's independent pieces of work (blocks of images) on a small thread pool.

NumPy releases the GIL in its copies, ufunc loops and BLAS calls, so plain Python threads run them
side by side. A convolution is a loop over chunks of images (build the columns, one GEMM, copy the
result out); :func:`run` splits that loop into one contiguous part per thread. Inside such a region
the BLAS is held to one thread: each thread doing whole small GEMMs (a 16-channel layer multiplies a
16 × 144 matrix) beats OpenBLAS splitting every small GEMM in two, and it parallelises the copies
around the GEMMs as well. Measured on a 2-core machine (``python benchmarks/bench.py``, see the README).

``set_num_threads(n)`` (PyTorch's name) sets cnnkit's threads and the BLAS's; the default is the
BLAS's own thread count (``OPENBLAS_NUM_THREADS`` and friends), so one environment variable rules both.
"""
from __future__ import annotations

import itertools
import os
import threading

import numpy as np

__all__ = ["get_num_threads", "set_num_threads", "blas_info", "run", "map", "run_slices", "run_claimed", "run_blocks",
           "split", "matmul",
           "MIN_PARALLEL_BYTES", "STREAM_PARALLEL_BYTES"]

#: Work on fewer bytes than this stays on the calling thread (handing it over costs more than it saves).
MIN_PARALLEL_BYTES = 2**18

#: The same for passes that read and write each value once (ReLU, batch norm's element-wise passes, the residual
#: add): memory-bound, they gain less from a second thread than the hand-over costs until about 4 MB (one thread
#: against two on 512 KB to 8 MB: benchmarks/RESULTS.md, "Threads").
STREAM_PARALLEL_BYTES = 2**22

_threads: int | None = None
_pool: list | None = None   # the workers (:class:`_Worker`), started as regions need them
_busy = threading.Lock()    # held by the thread whose region is using the workers
_blas = None                 # threadpoolctl controllers of the BLAS libraries NumPy loaded
_lock = threading.Lock()
_held = 0                    # parallel regions currently holding the BLAS at one thread
_saved: list[int] = []
_local = threading.local()   # .inside: this thread is one of the pool's workers


def _blas_controllers() -> list:
    global _blas
    if _blas is None:
        try:  # (NumPy, imported above, has loaded its BLAS)
            from threadpoolctl import ThreadpoolController
            _blas = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:  # threadpoolctl missing or unable to inspect this BLAS: leave the BLAS alone
            _blas = []
    return _blas


def blas_info() -> list:
    """NumPy's BLAS, as threadpoolctl reports it: dicts with ``internal_api`` (``openblas``, ``mkl``, …), ``version``,
    ``architecture`` (OpenBLAS's kernel: ``Haswell``, ``SkylakeX``, …; the environment's ``OPENBLAS_CORETYPE`` sets
    it) and ``threading_layer`` — the libraries inside NumPy's own folder where there are any (another package, such
    as PyTorch, may have loaded a BLAS of its own), else every BLAS loaded. Empty where threadpoolctl cannot inspect
    the BLAS."""
    keys = ("internal_api", "version", "architecture", "threading_layer")
    infos = [c.info() for c in _blas_controllers()]
    own = [i for i in infos if str(i.get("filepath", "")).startswith(os.path.dirname(np.__file__))]
    return [{k: i.get(k) for k in keys} for i in (own or infos)]


def get_num_threads() -> int:
    """Threads cnnkit uses inside one op (default: the BLAS's thread count, else the usable CPUs)."""
    global _threads
    if _threads is None:
        counts = [c.num_threads for c in _blas_controllers()]
        _threads = max(1, max(counts) if counts else len(os.sched_getaffinity(0)))
    return _threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads inside ops — cnnkit's pool and the BLAS's (as ``torch.set_num_threads``)."""
    global _threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    with _lock:
        if _held:  # a parallel region is running: it restores the BLAS to n when it ends
            _saved[:] = [n] * len(_saved)
        else:
            for c in _blas_controllers():
                c.set_num_threads(n)
        _threads = n


def _hold_blas() -> None:
    global _held
    with _lock:
        if _held == 0:
            _saved[:] = [c.num_threads for c in _blas_controllers()]
            for c in _blas_controllers():
                c.set_num_threads(1)
        _held += 1


def _release_blas() -> None:
    global _held
    with _lock:
        _held -= 1
        if _held == 0:
            for c, n in zip(_blas_controllers(), _saved):
                c.set_num_threads(n)


class _Worker:
    """One pool thread, woken by its own lock: a region's hand-over costs a third of what ``concurrent.futures``
    took (benchmarks/RESULTS.md, "Threads") — and a ResNet-20 training step opens about 160 regions."""

    def __init__(self, index: int):
        self._go, self._done = threading.Lock(), threading.Lock()
        self._go.acquire()
        self._done.acquire()
        self._task = self.result = self.error = None
        threading.Thread(target=self._loop, name=f"cnnkit-{index}", daemon=True).start()

    def _loop(self):
        _local.inside = True                                # a region opened by a part runs inline
        while True:
            self._go.acquire()
            task, self._task = self._task, None
            try:
                self.result, self.error = task[0](task[1]), None
            except BaseException as e:                      # handed to the caller by join()
                self.result, self.error = None, e
            del task                                        # keep no arrays alive while idle
            self._done.release()

    def start(self, fn, part) -> None:
        self._task = (fn, part)
        self._go.release()

    def join(self):
        """Wait for the part started last, even through a KeyboardInterrupt (re-raised once the part is done: a
        worker left running would release its lock into the next region); its result and its exception."""
        interrupt = None
        while True:
            try:
                self._done.acquire()
                break
            except BaseException as e:                      # Ctrl-C in a notebook: the part still runs
                interrupt = e
        out, self.result, self.error = (self.result, self.error), None, None
        if interrupt is not None:
            raise interrupt
        return out


def _join_all(workers) -> list:
    """Every worker's ``(result, error)``, all of them waited for; an interrupt is re-raised after the last."""
    done, interrupt = [], None
    for w in workers:
        try:
            done.append(w.join())
        except BaseException as e:                          # that worker's part is done; wait for the others
            done.append((None, None))
            interrupt = e
    if interrupt is not None:
        raise interrupt
    return done


def _inline(fn, part):
    inside = getattr(_local, "inside", False)
    _local.inside = True
    try:
        return fn(part)
    finally:
        _local.inside = inside


def run(fn, items) -> list:
    """``[fn(part) for part in parts]``: ``items`` split into one contiguous part per thread, run in parallel.

    ``fn`` gets a list of items and must only write where no other part writes; whatever it returns
    (a partial sum, say) comes back in part order, so adding the results up is deterministic for a given
    thread count. With one thread, one item, or when called from inside a part, it runs here as
    ``[fn(items)]``; while another thread of the program is using the pool, the parts run here one
    after the other.
    """
    global _pool
    items = list(items)
    n = min(get_num_threads(), len(items))
    if n <= 1 or getattr(_local, "inside", False):
        return [fn(items)]
    bounds = [len(items) * i // n for i in range(n + 1)]
    parts = [items[bounds[i]:bounds[i + 1]] for i in range(n)]
    if not _busy.acquire(blocking=False):                   # another thread's region has the workers
        return [_inline(fn, part) for part in parts]
    try:
        with _lock:
            _pool = _pool or []
            _pool += [_Worker(i) for i in range(len(_pool) + 1, n)]   # idle workers just wait on their lock
            workers = _pool[:n - 1]
        _hold_blas()
        try:
            started = []
            try:
                for w, part in zip(workers, parts[1:]):
                    w.start(fn, part)
                    started.append(w)
                first = _inline(fn, parts[0])               # the calling thread takes the first part
            finally:
                done = _join_all(started)                   # never leave a worker writing after we return
            for _, error in done:
                if error is not None:
                    raise error
            return [first] + [r for r, _ in done]
        finally:
            _release_blas()
    finally:
        _busy.release()


def map(fn, items) -> list:
    """``[fn(item) for item in items]`` on all threads, each thread taking the next item as it finishes one.

    Handing items out one at a time keeps the threads busy to the end when items take unequal times
    (a thread delayed by the GIL or by another process); the results come back in item order, so a sum
    of them is the same for any thread count. Items must write to disjoint places.
    """
    items = list(items)
    results = [None] * len(items)
    tickets = itertools.count()                                # next() on a count is atomic in CPython

    def drain(_):
        while (i := next(tickets)) < len(items):
            results[i] = fn(items[i])
    run(drain, range(min(get_num_threads(), len(items))))
    return results


def run_slices(fn, n: int, nbytes: int | None = None, min_bytes: int | None = None) -> list:
    """``fn(slice)`` for one contiguous slice of ``range(n)`` per thread (the images of a batch, say), in
    parallel when the work touches at least ``min_bytes`` (``nbytes``, if given; default
    :data:`MIN_PARALLEL_BYTES`, :data:`STREAM_PARALLEL_BYTES` for memory-bound passes)."""
    if nbytes is not None and nbytes < (MIN_PARALLEL_BYTES if min_bytes is None else min_bytes):
        return [fn(slice(0, n))]
    return run(lambda part: fn(slice(part[0], part[-1] + 1) if part else slice(0, 0)), range(n))


def run_claimed(fn, n: int, nbytes: int | None = None) -> None:
    """``fn(counter)`` on every thread (at most ``n`` of them), all with one ``counter`` (int64 ``(1,)``, from 0) from
    which a compiled kernel claims its ``n`` pieces of work (images, blocks of images) one at a time, atomically. A
    thread that runs slower (a late start, its core shared for a while) takes fewer pieces, where fixed halves
    (:func:`run_slices`) leave the other thread waiting (in ResNet-20's training step the two halves of a region
    ended several per cent apart: benchmarks/RESULTS.md, "Threads"). Under :data:`MIN_PARALLEL_BYTES` of work
    (``nbytes``) it runs here."""
    counter = np.zeros(1, dtype=np.int64)
    if n <= 1 or nbytes is not None and nbytes < MIN_PARALLEL_BYTES:
        fn(counter)
    else:
        run(lambda part: fn(counter), range(min(n, get_num_threads())))


#: :func:`split` cuts work of at least :data:`MIN_PARALLEL_BYTES` into a multiple of this many pieces (while
#: there are fewer than 4× as many): three equal chunks on two threads take as long as four (LeNet's C1).
BALANCE = 4


def split(n: int, item_bytes: int, max_bytes: int) -> list[slice]:
    """``range(n)`` as contiguous slices of about equal size, each under ``max_bytes`` where one item allows.

    Their number does not depend on the thread count (so sums over pieces are the same for any count);
    for enough work it is a multiple of :data:`BALANCE`, so that two or four threads finish together.
    """
    total = n * max(1, item_bytes)
    count = max(1, -(-n // max(1, max_bytes // max(1, item_bytes))))     # pieces of at most max_bytes
    if total >= MIN_PARALLEL_BYTES and count < 4 * BALANCE:
        count = -(-count // BALANCE) * BALANCE
    count = min(count, max(1, n))
    return [slice(n * i // count, n * (i + 1) // count) for i in range(count)]


def run_blocks(fn, n: int, item_bytes: int, block_bytes: int = 2**20) -> list:
    """``[fn(block) for block in blocks]``: ``range(n)`` cut into slices of about ``block_bytes`` (at least one
    item each; ``item_bytes`` per item), handed out to the threads one at a time (:func:`map`). Blocks
    small enough for the cache keep an op's temporaries there; the results come back in block order
    (the same for any thread count). Under :data:`MIN_PARALLEL_BYTES` of work they run here."""
    blocks = split(n, item_bytes, block_bytes)
    if n * item_bytes < MIN_PARALLEL_BYTES:
        return [fn(b) for b in blocks]
    return map(fn, blocks)


#: Matrix products with fewer multiply-adds than this run on one BLAS thread: OpenBLAS splitting a
#: LeNet-sized product over two threads costs more than it saves (the LeNet-5 training step on 2 cores:
#: benchmarks/RESULTS.md, "Threads").
SMALL_GEMM_MACS = 2**24


def matmul(a, b, out=None):
    """NumPy's ``a @ b`` (2-D), on one BLAS thread when it is small (:data:`SMALL_GEMM_MACS`)."""
    if _held or a.shape[0] * a.shape[1] * b.shape[1] >= SMALL_GEMM_MACS or get_num_threads() == 1:
        return np.matmul(a, b, out=out)
    _hold_blas()
    try:
        return np.matmul(a, b, out=out)
    finally:
        _release_blas()


def _after_fork() -> None:  # a forked child (a DataLoader worker) has no pool threads: start afresh
    global _pool, _held, _lock, _busy
    _pool, _held, _lock, _busy = None, 0, threading.Lock(), threading.Lock()


os.register_at_fork(after_in_child=_after_fork)
