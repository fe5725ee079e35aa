"""``Tensor``: an n-d NumPy array with reverse-mode automatic differentiation.

The whole autograd idea fits here. Every op builds its output with :func:`make_op`, giving the
output its parents and a small ``backward(g)`` closure that returns the gradient for each parent
(``None`` for a parent that needs none). :meth:`Tensor.backward` sorts the graph topologically and
walks it in reverse, adding each parent's gradient; a leaf that requires grad *accumulates* into
``.grad`` like PyTorch. After a backward pass every visited node drops its closure and its parents
(freeing the activations they kept), so a second backward through the same graph is a clear error.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from collections import namedtuple

import numpy as np

from . import parallel

__all__ = ["Tensor", "tensor", "make_op", "topological_order", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "cat", "stack", "zeros", "ones", "zeros_like", "ones_like",
           "randn", "rand", "arange", "manual_seed", "get_rng", "float32", "float64", "int64"]

float32, float64, int64 = np.float32, np.float64, np.int64

# ----------------------------------------------------------------------------- grad mode and RNG
_state = threading.local()


def is_grad_enabled() -> bool:
    """Whether ops record the graph for backward (``False`` inside :func:`no_grad`)."""
    return getattr(_state, "grad_enabled", True)


class set_grad_enabled(contextlib.ContextDecorator):
    """Context manager/decorator setting gradient recording on or off, as ``torch.set_grad_enabled``."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.prev = is_grad_enabled()
        _state.grad_enabled = self.mode  # effective immediately, like PyTorch

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _state.grad_enabled = self.prev
        return False


class no_grad(contextlib.ContextDecorator):
    """Inside ``with cnnkit.no_grad():`` ops keep no graph: inference stores only live activations."""

    def __enter__(self):
        self.prev = is_grad_enabled()
        _state.grad_enabled = False
        return self

    def __exit__(self, *exc):
        _state.grad_enabled = self.prev
        return False


class enable_grad(contextlib.ContextDecorator):
    """Re-enable gradient recording inside a :class:`no_grad` block."""

    def __enter__(self):
        self.prev = is_grad_enabled()
        _state.grad_enabled = True
        return self

    def __exit__(self, *exc):
        _state.grad_enabled = self.prev
        return False


_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed cnnkit's random generator (initialisation, dropout, shuffling); returns it."""
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: seed must be an int, got {seed!r}")
    _rng = np.random.default_rng(int(seed))
    return _rng


def get_rng() -> np.random.Generator:
    """The generator seeded by :func:`manual_seed`."""
    return _rng


# ----------------------------------------------------------------------------- helpers
def _freed(g):  # placeholder backward of a node whose graph was already used
    raise RuntimeError(
        "Trying to backward through the graph a second time (or directly access saved tensors "
        "after they have already been freed). Saved intermediate values of the graph are freed "
        "when you call .backward(). Specify retain_graph=True if you need to backward through "
        "the graph a second time.")


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` over the axes that broadcasting expanded to reach ``shape``."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


def _sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b``; two large C-contiguous arrays of one shape and dtype (ResNet-20's residual connections in its first
    two stages) are added on cnnkit's threads, image by image (:data:`cnnkit.parallel.STREAM_PARALLEL_BYTES`)."""
    if (a.shape != b.shape or a.dtype != b.dtype or not (a.flags.c_contiguous and b.flags.c_contiguous)
            or a.ndim == 0 or a.nbytes < parallel.STREAM_PARALLEL_BYTES):
        return a + b
    out = np.empty_like(a)
    parallel.run_slices(lambda rows: np.add(a[rows], b[rows], out=out[rows]), a.shape[0])
    return out


def _as_array(data, dtype=None) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        return data
    arr = np.asarray(data)
    if arr.dtype == np.float64 and not isinstance(data, np.generic):
        arr = arr.astype(np.float32)  # Python floats become float32, as in torch.tensor
    elif arr.dtype.kind in "iu" and not isinstance(data, np.generic):
        arr = arr.astype(np.int64)
    return arr


def records_graph(*parents) -> bool:
    """Whether an op on ``parents`` will be recorded for backward (what :func:`make_op` decides): an op
    can skip what only its backward needs (a mask, a saved buffer) when this is False."""
    return is_grad_enabled() and any(p.requires_grad for p in parents)


def make_op(data: np.ndarray, parents: tuple, backward) -> "Tensor":
    """Wrap ``data`` as the output of an op.

    ``backward(g)`` receives the gradient of the output (an array shaped like ``data``) and returns
    one gradient array per parent (or ``None``). The graph is recorded only when gradients are
    enabled and some parent requires grad; otherwise nothing is kept alive.
    """
    out = Tensor.__new__(Tensor)
    out.data = data
    out.grad = None
    out._hooks = None
    if records_graph(*parents):
        out.requires_grad = True
        out._parents = parents
        out._backward = backward
    else:
        out.requires_grad = False
        out._parents = ()
        out._backward = None
    return out


MaxResult = namedtuple("max", ["values", "indices"])


def topological_order(roots, parents) -> list:
    """Every node reachable from ``roots`` through ``parents(node)``, each after all of its parents.

    Iterative (deep networks would overflow Python's recursion limit); nodes are compared by identity.
    """
    order, seen = [], set()
    stack = [(r, False) for r in reversed(list(roots))]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in parents(node) if id(p) not in seen)
    return order


# ----------------------------------------------------------------------------- Tensor
class Tensor:
    """An n-d array with autograd. Create with :func:`cnnkit.tensor`.

    Attributes:
        data: the underlying ``numpy.ndarray``.
        grad: accumulated gradient (a ``Tensor``) after ``backward``; ``None`` before.
        requires_grad: whether ops on this tensor are recorded for backward.
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_hooks", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _as_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._parents = ()
        self._backward = None
        self._hooks = None

    # --- basic properties
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    @property
    def T(self) -> "Tensor":
        return self.permute(*reversed(range(self.ndim)))

    def dim(self) -> int:
        return self.data.ndim

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        return len(self.data)

    def __hash__(self):
        return id(self)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = "" if self.data.dtype == np.float32 else f", dtype={self.data.dtype}"
        if self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # --- conversion
    def numpy(self) -> np.ndarray:
        """The underlying array (shared memory). Refused while the tensor requires grad, as in PyTorch."""
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"only one element tensors can be converted to Python scalars, got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def detach(self) -> "Tensor":
        """A tensor sharing the data, cut from the graph."""
        return Tensor(self.data)

    def clone(self) -> "Tensor":
        return make_op(self.data.copy(), (self,), lambda g: (g,))

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def to(self, dtype) -> "Tensor":
        dtype = np.dtype(dtype)
        if dtype == self.data.dtype:
            return self
        src = self.data.dtype
        return make_op(self.data.astype(dtype), (self,), lambda g: (g.astype(src),))

    def float(self) -> "Tensor":
        return self.to(np.float32)

    def double(self) -> "Tensor":
        return self.to(np.float64)

    def long(self) -> "Tensor":
        return Tensor(self.data.astype(np.int64))

    # --- autograd
    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` that requires grad.

        ``gradient`` defaults to 1 for a scalar. Without ``retain_graph`` the graph is freed as it
        is walked, so the activations it saved are released as soon as they have been used.
        """
        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs, got shape {self.shape}")
            g = np.ones_like(self.data)
        else:
            g = _as_array(gradient, self.data.dtype)
            if g.shape != self.shape:
                raise ValueError(f"backward: gradient has shape {g.shape}, expected {self.shape}")
        order = self._topological_order()
        grads = {id(self): g}
        while order:  # reverse topological order; popping drops our reference to each finished node
            node = order.pop()
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._hooks:
                for hook in node._hooks:
                    out = hook(Tensor(g))
                    if out is not None:
                        g = _as_array(out, node.data.dtype)
            if node._backward is None:  # a leaf: accumulate
                if g.dtype != node.data.dtype:
                    g = g.astype(node.data.dtype)
                if node.grad is None:
                    node.grad = Tensor(np.array(g, copy=True))
                else:
                    node.grad.data = node.grad.data + g
                continue
            parent_grads = node._backward(g)
            for p, pg in zip(node._parents, parent_grads):
                if pg is None or not p.requires_grad:
                    continue
                key = id(p)
                grads[key] = pg if key not in grads else grads[key] + pg
            if not retain_graph:  # the closure and the parents it kept (saved activations) go now
                node._backward = _freed
                node._parents = ()
            del node, parent_grads, g

    def _topological_order(self) -> list:
        return topological_order([self], lambda t: [p for p in t._parents if p.requires_grad])

    def register_hook(self, hook) -> None:
        """Call ``hook(grad)`` when this tensor's gradient is computed; it may return a new gradient."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        self._hooks = (self._hooks or []) + [hook]

    def zero_(self) -> "Tensor":
        self.data[...] = 0
        return self

    # --- arithmetic (broadcasting)
    def _operand(self, other) -> "Tensor":
        if isinstance(other, Tensor):
            return other
        arr = np.asarray(other)
        if self.data.dtype.kind == "f" and arr.dtype.kind in "biuf" and arr.ndim == 0:
            arr = arr.astype(self.data.dtype)
        elif arr.dtype == np.float64 and self.data.dtype == np.float32 and not isinstance(other, np.ndarray):
            arr = arr.astype(np.float32)
        return Tensor(arr)

    def __add__(self, other):
        b = self._operand(other)
        sa, sb = self.shape, b.shape
        return make_op(_sum(self.data, b.data), (self, b), lambda g: (unbroadcast(g, sa), unbroadcast(g, sb)))

    __radd__ = __add__

    def __sub__(self, other):
        b = self._operand(other)
        sa, sb = self.shape, b.shape
        return make_op(self.data - b.data, (self, b), lambda g: (unbroadcast(g, sa), unbroadcast(-g, sb)))

    def __rsub__(self, other):
        return self._operand(other).__sub__(self)

    def __mul__(self, other):
        b = self._operand(other)
        a = self

        def backward(g):
            return (unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
                    unbroadcast(g * a.data, b.shape) if b.requires_grad else None)
        return make_op(self.data * b.data, (self, b), backward)

    __rmul__ = __mul__

    def __truediv__(self, other):
        b = self._operand(other)
        a = self

        def backward(g):
            return (unbroadcast(g / b.data, a.shape) if a.requires_grad else None,
                    unbroadcast(-g * a.data / (b.data * b.data), b.shape) if b.requires_grad else None)
        return make_op(self.data / b.data, (self, b), backward)

    def __rtruediv__(self, other):
        return self._operand(other).__truediv__(self)

    def __neg__(self):
        return make_op(-self.data, (self,), lambda g: (-g,))

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return exp(log(self) * exponent)
        p = float(exponent)
        a = self
        return make_op(self.data ** exponent, (self,),
                       lambda g: (g * p * a.data ** (p - 1),))

    def __matmul__(self, other):
        b = self._operand(other)
        a = self

        def backward(g):
            ad, bd = a.data, b.data
            a2 = ad[None, :] if ad.ndim == 1 else ad
            b2 = bd[:, None] if bd.ndim == 1 else bd
            g2 = g
            if ad.ndim == 1:
                g2 = np.expand_dims(g2, -2)
            if bd.ndim == 1:
                g2 = np.expand_dims(g2, -1)
            ga = gb = None
            if a.requires_grad:
                ga = g2 @ np.swapaxes(b2, -1, -2)
                ga = unbroadcast(ga, a2.shape).reshape(ad.shape)
            if b.requires_grad:
                gb = np.swapaxes(a2, -1, -2) @ g2
                gb = unbroadcast(gb, b2.shape).reshape(bd.shape)
            return ga, gb
        return make_op(self.data @ b.data, (self, b), backward)

    def __rmatmul__(self, other):
        return self._operand(other).__matmul__(self)

    # comparisons give boolean tensors without grad
    def __eq__(self, other):
        return Tensor(self.data == (other.data if isinstance(other, Tensor) else other))

    def __ne__(self, other):
        return Tensor(self.data != (other.data if isinstance(other, Tensor) else other))

    def __lt__(self, other):
        return Tensor(self.data < (other.data if isinstance(other, Tensor) else other))

    def __le__(self, other):
        return Tensor(self.data <= (other.data if isinstance(other, Tensor) else other))

    def __gt__(self, other):
        return Tensor(self.data > (other.data if isinstance(other, Tensor) else other))

    def __ge__(self, other):
        return Tensor(self.data >= (other.data if isinstance(other, Tensor) else other))

    # --- elementwise functions
    def exp(self):
        return exp(self)

    def log(self):
        return log(self)

    def sqrt(self):
        return self ** 0.5

    def abs(self):
        a = self
        return make_op(np.abs(self.data), (self,), lambda g: (g * np.sign(a.data),))

    # --- shape ops
    def reshape(self, *shape) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        src = self.shape
        try:
            data = self.data.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: shape {tuple(shape)} is invalid for input of shape {src} "
                             f"({self.data.size} elements)") from None
        return make_op(data, (self,), lambda g: (g.reshape(src),))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        nd = self.ndim
        if nd == 0:
            return self.reshape(1)
        s, e = start_dim % nd, end_dim % nd
        if s > e:
            raise ValueError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")
        shape = self.shape[:s] + (int(np.prod(self.shape[s:e + 1])),) + self.shape[e + 1:]
        return self.reshape(shape)

    def permute(self, *dims) -> "Tensor":
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        if sorted(d % self.ndim for d in dims) != list(range(self.ndim)):
            raise ValueError(f"permute: dims {dims} are not a permutation of {self.ndim} dimensions")
        inv = np.argsort([d % self.ndim for d in dims])
        return make_op(self.data.transpose(dims), (self,), lambda g: (g.transpose(inv),))

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return self.permute(*dims)

    def unsqueeze(self, dim: int) -> "Tensor":
        dim = dim % (self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim: int | None = None) -> "Tensor":
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        dim = dim % self.ndim
        if self.shape[dim] != 1:
            return self
        return self.reshape(self.shape[:dim] + self.shape[dim + 1:])

    def __getitem__(self, index) -> "Tensor":
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        src, dtype = self.shape, self.dtype
        advanced = isinstance(index, (np.ndarray, list)) or (
            isinstance(index, tuple) and any(isinstance(i, (np.ndarray, list)) for i in index))

        def backward(g):
            out = np.zeros(src, dtype=dtype)
            if advanced:
                np.add.at(out, index, g)
            else:
                out[index] = g
            return (out,)
        return make_op(self.data[index], (self,), backward)

    # --- reductions
    def sum(self, dim=None, keepdim: bool = False) -> "Tensor":
        src = self.shape
        axis = dim if dim is None or isinstance(dim, int) else tuple(dim)

        def backward(g):
            if axis is not None and not keepdim:
                g = np.expand_dims(g, axis)
            return (np.broadcast_to(g, src),)
        return make_op(np.asarray(self.data.sum(axis=axis, keepdims=keepdim)), (self,), backward)

    def mean(self, dim=None, keepdim: bool = False) -> "Tensor":
        axis = dim if dim is None or isinstance(dim, int) else tuple(dim)
        n = self.data.size if axis is None else int(np.prod([self.shape[a] for a in np.atleast_1d(axis)]))
        return self.sum(dim, keepdim) / n

    def max(self, dim: int | None = None, keepdim: bool = False):
        """Maximum of all elements, or ``(values, indices)`` along ``dim`` as ``torch.max``."""
        a = self
        if dim is None:
            m = self.data.max()

            def backward(g):
                mask = a.data == m
                return (mask * (g / mask.sum()),)
            return make_op(np.asarray(m), (self,), backward)
        idx = self.data.argmax(axis=dim)
        vals = np.take_along_axis(self.data, np.expand_dims(idx, dim), axis=dim)

        def backward(g):
            out = np.zeros_like(a.data)
            gg = g if keepdim else np.expand_dims(g, dim)
            np.put_along_axis(out, np.expand_dims(idx, dim), gg, axis=dim)
            return (out,)
        values = make_op(vals if keepdim else vals.squeeze(dim), (self,), backward)
        return MaxResult(values, Tensor(idx if not keepdim else np.expand_dims(idx, dim)))

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> "Tensor":
        if dim is None:
            return Tensor(np.asarray(self.data.argmax()))
        idx = self.data.argmax(axis=dim)
        return Tensor(np.expand_dims(idx, dim) if keepdim else idx)


# ----------------------------------------------------------------------------- functions
def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """Make a tensor from a list, scalar or array (float data defaults to float32; arrays keep their dtype)."""
    if isinstance(data, Tensor):
        data = data.data.copy()
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def exp(x: Tensor) -> Tensor:
    y = np.exp(x.data)
    return make_op(y, (x,), lambda g: (g * y,))


def log(x: Tensor) -> Tensor:
    return make_op(np.log(x.data), (x,), lambda g: (g / x.data,))


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate tensors along ``dim`` (all other sizes must match)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    arrays = [t.data for t in tensors]
    try:
        data = np.concatenate(arrays, axis=dim)
    except ValueError:
        raise ValueError(f"cat: sizes must match except in dimension {dim}, got shapes "
                         f"{[a.shape for a in arrays]}") from None
    bounds = np.cumsum([a.shape[dim] for a in arrays])[:-1]
    return make_op(data, tuple(tensors), lambda g: tuple(np.split(g, bounds, axis=dim)))


def stack(tensors, dim: int = 0) -> Tensor:
    return cat([t.unsqueeze(dim) for t in tensors], dim)


def _factory(fn):
    @functools.wraps(fn)
    def wrapper(*shape, dtype=np.float32, requires_grad=False):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Tensor(fn(shape, dtype).astype(dtype, copy=False), requires_grad=requires_grad)
    return wrapper


zeros = _factory(lambda s, dtype: np.zeros(s, dtype=dtype))         # made in their dtype (no float64 first)
ones = _factory(lambda s, dtype: np.ones(s, dtype=dtype))
randn = _factory(lambda s, dtype: _rng.standard_normal(s))          # float64 draws: the stream of any dtype
rand = _factory(lambda s, dtype: _rng.random(s))


def zeros_like(t: Tensor) -> Tensor:
    return Tensor(np.zeros_like(t.data))


def ones_like(t: Tensor) -> Tensor:
    return Tensor(np.ones_like(t.data))


def arange(*args, dtype=None) -> Tensor:
    return Tensor(np.arange(*args, dtype=dtype))
