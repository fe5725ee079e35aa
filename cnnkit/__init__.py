"""cnnkit: convolutional neural networks from scratch on NumPy.

Layers of the code, each depending only on those before it: array kernels (``cnnkit.kernels``)
→ ``Tensor`` + autograd (``cnnkit.tensor``) → ``cnnkit.nn.functional`` → ``cnnkit.nn`` modules and
``cnnkit.optim`` → ``cnnkit.models`` → ``analysis``, ``filters``, ``data``, ``train``, ``io`` → ``cli``.
Shape arithmetic lives in one module, ``cnnkit.shape``.
"""
from . import allocator, shape
from .parallel import get_num_threads, set_num_threads
from .tensor import (Tensor, arange, cat, enable_grad, float32, float64, get_rng, int64, is_grad_enabled,
                     manual_seed, no_grad, ones, ones_like, rand, randn, set_grad_enabled, stack, tensor,
                     zeros, zeros_like)
from . import nn, optim  # noqa: E402

__version__ = "0.1.0"

allocator.tune()  # keep freed array memory for the next step (glibc; CNNKIT_MALLOC=0 leaves it alone)

_LAZY = {"models", "analysis", "filters", "data", "train", "io", "transfer", "kernels", "viz"}


def __getattr__(name):
    import importlib
    if name in _LAZY:
        return importlib.import_module(f"cnnkit.{name}")
    raise AttributeError(f"module 'cnnkit' has no attribute {name!r}")


def summary(model, input_size=None, **kwargs):
    """Layer-by-layer report of ``model`` (a Module or a zoo name; see :func:`cnnkit.analysis.summary`)."""
    from .analysis import summary as _summary
    return _summary(model, input_size, **kwargs)
