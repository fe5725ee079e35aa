"""Batch norm folded into the convolution before it in inference, against PyTorch (and when it must not be)."""
import numpy as np
import pytest
import torch
import torch.nn.utils.fusion as tfusion

import cnnkit
import cnnkit.models as M
from cnnkit import nn
from cnnkit.nn import fusion
from cnnkit.nn import functional as F


def pair(nd=2, c=3, k=4, groups=1, bias=False, affine=True, seed=0, **conv_kwargs):
    """A cnnkit and a PyTorch (conv, batch norm) with the same random weights and running statistics."""
    rng = np.random.default_rng(seed)
    tconv = (torch.nn.Conv1d, torch.nn.Conv2d)[nd - 1](c, k, 3, groups=groups, bias=bias, **conv_kwargs)
    tbn = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)[nd - 1](k, affine=affine, eps=1e-3)
    conv = (nn.Conv1d, nn.Conv2d)[nd - 1](c, k, 3, groups=groups, bias=bias, **conv_kwargs)
    bn = (nn.BatchNorm1d, nn.BatchNorm2d)[nd - 1](k, affine=affine, eps=1e-3)
    with torch.no_grad():
        tconv.weight.copy_(torch.tensor(rng.standard_normal(tconv.weight.shape)))
        if bias:
            tconv.bias.copy_(torch.tensor(rng.standard_normal(k)))
        tbn.running_mean.copy_(torch.tensor(rng.standard_normal(k)))
        tbn.running_var.copy_(torch.tensor(rng.random(k) + 0.1))
        if affine:
            tbn.weight.copy_(torch.tensor(rng.standard_normal(k)))
            tbn.bias.copy_(torch.tensor(rng.standard_normal(k)))
    for m, t in ((conv, tconv), (bn, tbn)):
        m.load_state_dict({name: v.numpy() for name, v in t.state_dict().items()})
    x = rng.standard_normal((5, c) + (9,) * nd).astype(np.float32)
    return conv, bn.eval(), tconv, tbn.eval(), x


def count_batch_norms(monkeypatch):
    """Batch norm passes run from now on: ``F.batch_norm`` and the fused batch norm + ReLU."""
    calls = []
    batch_norm, batch_norm_relu = F.batch_norm, fusion.batch_norm_relu
    monkeypatch.setattr(F, "batch_norm", lambda *a, **k: calls.append(1) or batch_norm(*a, **k))
    monkeypatch.setattr(fusion, "batch_norm_relu", lambda *a, **k: calls.append(1) or batch_norm_relu(*a, **k))
    return calls


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("affine", [True, False])
def test_fused_weights_equal_pytorchs(bias, affine):
    conv, bn, tconv, tbn, _ = pair(bias=bias, affine=affine)
    w, b = fusion.fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                                       bn.weight, bn.bias)
    tw, tb = tfusion.fuse_conv_bn_weights(tconv.weight.double(), None if tconv.bias is None else tconv.bias.double(),
                                          tbn.running_mean.double(), tbn.running_var.double(), tbn.eps,
                                          None if tbn.weight is None else tbn.weight.double(),
                                          None if tbn.bias is None else tbn.bias.double())
    assert w.dtype == b.dtype == np.float32
    np.testing.assert_allclose(w, tw.detach().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b, tb.detach().numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("nd,groups,stride,padding", [(2, 1, 1, 1), (2, 3, 2, 0), (1, 1, 1, 1), (2, 1, 1, "same")])
def test_sequential_folds_in_inference_and_agrees_with_pytorch(nd, groups, stride, padding, monkeypatch):
    conv, bn, tconv, tbn, x = pair(nd, c=3, k=6, groups=groups, stride=stride, padding=padding)
    model, tmodel = nn.Sequential(conv, bn, nn.ReLU()).eval(), torch.nn.Sequential(tconv, tbn, torch.nn.ReLU()).eval()
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    calls = count_batch_norms(monkeypatch)
    with cnnkit.no_grad():
        got = model(cnnkit.tensor(x)).data
    assert calls == []                                                # no batch norm pass: folded
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    fused = fusion.fuse_conv_bn_eval(conv, bn)
    assert fused.bias is not None and fused.weight.shape == conv.weight.shape
    with cnnkit.no_grad():
        np.testing.assert_allclose(fused(cnnkit.tensor(x)).data, tbn(tconv(torch.from_numpy(x))).detach().numpy(),
                                   rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_folding_follows_changed_weights_and_statistics():
    conv, bn, tconv, tbn, x = pair()
    model = nn.Sequential(conv, bn)
    with cnnkit.no_grad():
        model(cnnkit.tensor(x))
    bn.running_var.data *= 4                                          # (a later update) is used at the next call
    conv.weight.data *= -1
    tbn.running_var.mul_(4)
    with torch.no_grad():
        tconv.weight.mul_(-1)
        expected = tbn(tconv(torch.from_numpy(x))).numpy()
    with cnnkit.no_grad():
        np.testing.assert_allclose(model(cnnkit.tensor(x)).data, expected, rtol=1e-5, atol=1e-5)


def test_no_folding_where_the_difference_shows(monkeypatch):
    # training; a graph to record (the parameters need gradients); hooks on either module; no running statistics
    conv, bn, _, _, x = pair()
    model = nn.Sequential(conv, bn)
    calls = count_batch_norms(monkeypatch)

    def passes(**kwargs):
        calls.clear()
        if kwargs.get("grad"):
            model(cnnkit.tensor(x))
        else:
            with cnnkit.no_grad():
                model(cnnkit.tensor(x))
        return len(calls)

    assert passes() == 0
    assert passes(grad=True) == 1                                     # eval, but the weights' gradients are wanted
    bn.train()
    assert passes() == 1
    bn.eval()
    for m in (conv, bn):
        seen = []
        handle = m.register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
        assert passes() == 1 and len(seen) == 1                       # the hook sees its module's own output
        handle.remove()
        handle = m.register_forward_pre_hook(lambda mod, inp: seen.append(1))
        assert passes() == 1
        handle.remove()
    assert passes() == 0
    free = nn.Sequential(conv, nn.BatchNorm2d(4, track_running_stats=False).eval())
    calls.clear()
    with cnnkit.no_grad():
        free(cnnkit.tensor(x))                                        # batch statistics even in eval: not folded
    assert calls == [1]


def test_bad_input_still_gets_the_layers_error():
    conv, bn, *_ = pair()
    with cnnkit.no_grad(), pytest.raises(ValueError, match=r"Conv2d\(3, 4, kernel_size=3\): input has 2 channels"):
        nn.Sequential(conv, bn)(cnnkit.randn(1, 2, 9, 9))
    with pytest.raises(ValueError, match=r"fuse_conv_bn_eval: BatchNorm2d\(4\) must be in eval\(\) mode"):
        fusion.fuse_conv_bn_eval(conv, bn.train())
    with pytest.raises(ValueError, match=r"fuse_conv_bn_weights: bn_rm has shape \(3,\), expected \(4,\)"):
        fusion.fuse_conv_bn_weights(conv.weight, None, np.zeros(3), np.ones(4), 1e-5, None, None)


@pytest.mark.parametrize("build", [lambda: M.resnet20(), lambda: M.resnet20(shortcut="B"),
                                   lambda: M.mobilenet_v1(num_classes=10, alpha=0.25),
                                   lambda: M.resnet50(num_classes=10)], ids=["resnet20", "resnet20-B", "mobilenet", "resnet50"])
def test_zoo_models_fold_every_batch_norm_after_a_conv(build, monkeypatch):
    # under no_grad in eval the zoo's models run no batch norm pass after a convolution (the logits against PyTorch's
    # are in tests/models/test_torch_compat.py and tests/io/test_zoo_torch_equivalence.py)
    model = build().eval()
    calls = count_batch_norms(monkeypatch)
    x = cnnkit.randn(2, 3, 32, 32)
    with cnnkit.no_grad():
        folded = model(x).data
    assert calls == []
    unfolded = model(x).data                                          # a graph: the batch norms run
    assert len(calls) == sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    np.testing.assert_allclose(folded, unfolded, rtol=1e-5, atol=1e-5 * np.abs(unfolded).max())


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "numpy"])
@pytest.mark.parametrize("shape", [(3, 5, 7), (128, 16, 32, 32)])     # one thread; 8 MB: the pool's threads
def test_residual_relu_in_place_equals_pytorchs_relu_of_the_sum(compiled, shape, threads, monkeypatch):
    from cnnkit import jit
    monkeypatch.setattr(jit, "ENABLED", compiled and jit.ENABLED)
    monkeypatch.setattr(jit, "MIN_BYTES", 0)
    if compiled:
        jit.available()
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(shape, dtype=np.float32), rng.standard_normal(shape, dtype=np.float32)
    a.flat[:6], b.flat[:6] = [np.nan, -0.0, 0.0, -np.inf, np.inf, 1.0], [1.0, -0.0, -0.0, 1.0, 1.0, np.nan]
    a.flat[-3:], b.flat[-3:] = [-0.0, np.nan, -2.0], [-0.0, 0.0, 1.0]
    expected = torch.relu(torch.tensor(a) + torch.tensor(b)).numpy()
    out = cnnkit.tensor(a.copy())
    with cnnkit.no_grad():
        got = fusion.residual_relu(out, cnnkit.tensor(b), nn.ReLU(inplace=True), own=True)
    assert got is out                                                  # in place: no new array
    np.testing.assert_array_equal(got.data, expected)
    np.testing.assert_array_equal(np.signbit(got.data), np.signbit(expected))


def test_residual_relu_runs_as_written_where_the_difference_shows():
    # not its own tensor, a graph to record, hooks on the ReLU, another activation: a new tensor, out untouched
    a, b = np.array([-1.0, 2.0, -3.0], np.float32), np.array([0.5, 0.5, 4.0], np.float32)
    relu = nn.ReLU()
    cases = [dict(own=False), dict(grad=True), dict(hook=True), dict(act=nn.LeakyReLU(0.1))]
    for case in cases:
        out = cnnkit.tensor(a.copy(), requires_grad=case.get("grad", False))
        act = case.get("act", relu)
        seen = []
        handle = act.register_forward_hook(lambda m, i, o: seen.append(o.data.copy())) if case.get("hook") else None
        if case.get("grad"):
            got = fusion.residual_relu(out, cnnkit.tensor(b), act, own=True)
        else:
            with cnnkit.no_grad():
                got = fusion.residual_relu(out, cnnkit.tensor(b), act, own=case.get("own", True))
        assert got is not out, case
        np.testing.assert_array_equal(out.data, a)
        want = torch.nn.functional.leaky_relu(torch.tensor(a + b), 0.1) if "act" in case else torch.relu(torch.tensor(a + b))
        np.testing.assert_allclose(got.data, want.numpy())
        if handle is not None:
            assert len(seen) == 1
            handle.remove()


def test_resnet_blocks_end_in_one_pass_in_inference(monkeypatch):
    # ResNet-20's nine basic blocks and ResNet-50's bottlenecks: the residual add and ReLU in place, the logits as
    # the graph-recording pass (which adds and applies ReLU as written)
    calls = []
    residual_relu = fusion.residual_relu
    import cnnkit.models.blocks as blocks
    monkeypatch.setattr(blocks, "residual_relu", lambda out, *a: calls.append(id(out)) or residual_relu(out, *a))
    for model, blocks_count in ((M.resnet20().eval(), 9), (M.resnet50(num_classes=10).eval(), 16)):
        x = cnnkit.randn(2, 3, 32, 32)
        calls.clear()
        with cnnkit.no_grad():
            got = model(x)
        assert len(calls) == blocks_count
        np.testing.assert_allclose(got.data, model(x).data, rtol=1e-5, atol=1e-5 * np.abs(got.data).max())


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "numpy"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape,dtype", [((64, 8, 16, 16), np.float32), ((3, 4, 5, 5), np.float64),
                                         ((6, 5), np.float32), ((3, 4, 7), np.float64)])
def test_batch_norm_relu_equals_pytorchs_relu_of_batch_norm(shape, dtype, training, compiled, monkeypatch):
    # values, every gradient and the running statistics, with zeros and (in eval) a NaN among the inputs
    from cnnkit import jit
    from cnnkit.nn.functional.norm import batch_norm_relu
    monkeypatch.setattr(jit, "ENABLED", compiled and jit.ENABLED)
    monkeypatch.setattr(jit, "MIN_BYTES", 0)
    rng = np.random.default_rng(1)
    c = shape[1]
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[::7] = 0.0
    if not training:
        x.flat[3] = np.nan                            # (in training it makes its whole channel NaN, in both)
    w, b = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    rm, rv, g = rng.standard_normal(c).astype(dtype), rng.random(c).astype(dtype) + 0.5, rng.standard_normal(shape)
    tx, tw, tb = (cnnkit.tensor(a, requires_grad=True) for a in (x, w, b))
    trm, trv = cnnkit.tensor(rm.copy()), cnnkit.tensor(rv.copy())
    y = batch_norm_relu(tx, trm, trv, tw, tb, training, 0.1, 1e-5)
    y.backward(cnnkit.tensor(g.astype(dtype)))
    X, W, B = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    RM, RV = torch.tensor(rm.copy()), torch.tensor(rv.copy())
    Y = torch.relu(torch.nn.functional.batch_norm(X, RM, RV, W, B, training, 0.1, 1e-5))
    Y.backward(torch.tensor(g.astype(dtype)))
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
    for got, want in ((y.data, Y), (tx.grad.data, X.grad), (tw.grad.data, W.grad), (tb.grad.data, B.grad),
                      (trm.data, RM), (trv.data, RV)):
        np.testing.assert_allclose(got, want.detach().numpy(), **tol)


def test_batch_norm_then_relu_is_one_op_where_nothing_can_tell(monkeypatch):
    # in training Sequential's batch norm + ReLU run as one op, counting the batch and updating the running statistics
    # as the module does; a hook on either module, a LeakyReLU or a ReLU that is not right after the batch norm keep
    # the modules apart
    plain, fused = [], []
    batch_norm, batch_norm_relu = F.batch_norm, fusion.batch_norm_relu
    monkeypatch.setattr(F, "batch_norm", lambda *a, **k: plain.append(1) or batch_norm(*a, **k))
    monkeypatch.setattr(fusion, "batch_norm_relu", lambda *a, **k: fused.append(1) or batch_norm_relu(*a, **k))
    cnnkit.manual_seed(0)
    x = cnnkit.randn(4, 3, 6, 6, requires_grad=True)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=None), nn.ReLU())
    reference = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=None), nn.ReLU())
    reference.load_state_dict(model.state_dict())
    for hooked in (reference[1], reference[2]):
        out = model(x)
        assert (len(plain), len(fused)) == (0, 1)
        handle = hooked.register_forward_hook(lambda *a: None)
        want = reference(x)
        handle.remove()
        assert (len(plain), len(fused)) == (1, 1)
        plain.clear(), fused.clear()
        np.testing.assert_array_equal(out.data, want.data)
    for key in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        np.testing.assert_array_equal(model.state_dict()[key].data, reference.state_dict()[key].data)
    assert int(model[1].num_batches_tracked.data) == 2
    nn.Sequential(nn.BatchNorm2d(3), nn.LeakyReLU())(x)
    nn.Sequential(nn.BatchNorm2d(3), nn.Identity(), nn.ReLU())(x)
    assert (len(plain), len(fused)) == (2, 0)
