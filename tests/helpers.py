"""Shared test oracles: compare a cnnkit op with PyTorch (values and every input's gradient),
and check gradients by central finite differences in float64."""
from __future__ import annotations

import numpy as np
import torch

import cnnkit

TOL = {np.float64: dict(rtol=1e-6, atol=1e-9), np.float32: dict(rtol=1e-4, atol=1e-5)}


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def check_op(cn_fn, torch_fn, *inputs, dtype=np.float64, grad=True, rtol=None, atol=None, seed=0):
    """Run ``cn_fn`` on cnnkit tensors and ``torch_fn`` on torch tensors made from the same arrays.

    ``inputs`` are NumPy arrays (floating ones are cast to ``dtype`` and require grad; integer ones
    are passed as they are). Compares every output, then back-propagates the same random upstream
    gradient through both and compares the gradient of every floating input.
    Returns the cnnkit outputs.
    """
    tol = dict(TOL[dtype])
    if rtol is not None:
        tol["rtol"] = rtol
    if atol is not None:
        tol["atol"] = atol
    arrays = [np.asarray(a, dtype=dtype) if np.asarray(a).dtype.kind == "f" else np.asarray(a) for a in inputs]
    floats = [a.dtype.kind == "f" for a in arrays]
    cn_in = [cnnkit.tensor(a.copy(), requires_grad=grad and f) for a, f in zip(arrays, floats)]
    th_in = [torch.tensor(a.copy(), requires_grad=grad and f) for a, f in zip(arrays, floats)]
    cn_out = _outputs(cn_fn(*cn_in))
    th_out = _outputs(torch_fn(*th_in))
    assert len(cn_out) == len(th_out), f"{len(cn_out)} outputs vs torch's {len(th_out)}"
    for i, (c, t) in enumerate(zip(cn_out, th_out)):
        t_np = t.detach().numpy()
        assert c.shape == t_np.shape, f"output {i}: shape {c.shape} vs torch {t_np.shape}"
        if t_np.dtype.kind == "f":
            assert c.dtype == t_np.dtype, f"output {i}: dtype {c.dtype} vs torch {t_np.dtype}"
        np.testing.assert_allclose(c.data, t_np, **tol, err_msg=f"forward output {i}")
    if not grad or not any(floats):
        return cn_out
    rng = np.random.default_rng(seed)
    cn_total, th_total = None, None
    for c, t in zip(cn_out, th_out):
        if not t.requires_grad:
            continue
        g = rng.standard_normal(t.shape).astype(dtype)
        cs = (c * cnnkit.tensor(g)).sum()
        ts = (t * torch.tensor(g)).sum()
        cn_total = cs if cn_total is None else cn_total + cs
        th_total = ts if th_total is None else th_total + ts
    if th_total is None:
        return cn_out
    cn_total.backward()
    th_total.backward()
    for i, (c, t, f) in enumerate(zip(cn_in, th_in, floats)):
        if not f:
            continue
        tg = None if t.grad is None else t.grad.numpy()
        if tg is None:
            assert c.grad is None or not np.any(c.grad.data), f"input {i}: cnnkit has a gradient, torch none"
            continue
        assert c.grad is not None, f"input {i}: no gradient, torch has one"
        np.testing.assert_allclose(c.grad.data, tg, **tol, err_msg=f"gradient of input {i}")
    return cn_out


def numerical_grad(fn, arrays, index, eps=1e-6):
    """Central finite-difference gradient of ``sum(fn(*arrays) * w)`` w.r.t. ``arrays[index]``."""
    base = [np.array(a, dtype=np.float64) for a in arrays]
    out0 = fn(*[cnnkit.tensor(a) for a in base]).data
    w = np.random.default_rng(1).standard_normal(out0.shape)
    x = base[index]
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        idx = it.multi_index
        old = x[idx]
        x[idx] = old + eps
        fp = (fn(*[cnnkit.tensor(a) for a in base]).data * w).sum()
        x[idx] = old - eps
        fm = (fn(*[cnnkit.tensor(a) for a in base]).data * w).sum()
        x[idx] = old
        g[idx] = (fp - fm) / (2 * eps)
    return g, w


def check_finite_differences(fn, *arrays, inputs=None, rtol=1e-5, atol=1e-7):
    """Float64 finite-difference check of ``fn``'s analytic gradient for the chosen inputs."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    indices = range(len(arrays)) if inputs is None else inputs
    for i in indices:
        num, w = numerical_grad(fn, arrays, i)
        ts = [cnnkit.tensor(a.copy(), requires_grad=(j == i)) for j, a in enumerate(arrays)]
        (fn(*ts) * cnnkit.tensor(w)).sum().backward()
        np.testing.assert_allclose(ts[i].grad.data, num, rtol=rtol, atol=atol,
                                   err_msg=f"finite differences, input {i}")


def cli(*argv):
    """Run the ``cnnkit`` command in-process: ``(exit code, stdout, stderr)``."""
    import contextlib
    import io

    from cnnkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def mnist5k_run(directory, epochs: int):
    """A LeNet-5 run on mnist-5k trained by ``cnnkit train`` for ``epochs`` epochs into ``directory``."""
    code, _, err = cli("train", "lenet5", "--data", "mnist-5k", "--epochs", epochs, "--out", directory,
                       "--no-plots")
    assert code == 0, err
    return directory


def record_selection(monkeypatch) -> list:
    """A list that collects ``(direction, algorithm name)`` for every convolution direction run from now on (the
    selection of :mod:`cnnkit.nn.functional.conv.registry`, which decides what runs)."""
    from cnnkit.nn.functional.conv import registry
    taken, select = [], registry.select

    def recording(direction, geom, arrays=None, **kwargs):
        alg = select(direction, geom, arrays, **kwargs)
        taken.append((direction, alg.name))
        return alg
    monkeypatch.setattr(registry, "select", recording)
    return taken
