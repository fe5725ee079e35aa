"""Module behaviour against torch.nn semantics: state_dict keys and loading, train/eval, freezing,
zero_grad, shared parameters, repr; and a whole small CNN that reproduces torch's numbers from torch's weights."""
from collections import OrderedDict

import numpy as np
import pytest
import torch

import cnnkit
from cnnkit import nn


def _pair(bn=True):
    """The same LeNet-like network in cnnkit and in torch (built from the same layer list)."""
    def build(lib):
        layers = [lib.Conv2d(1, 6, 5, padding=2)]
        if bn:
            layers.append(lib.BatchNorm2d(6))
        layers += [lib.ReLU(), lib.AvgPool2d(2), lib.Conv2d(6, 16, 5), lib.Tanh(), lib.AvgPool2d(2), lib.Flatten(),
                   lib.Linear(400, 120), lib.LeakyReLU(0.1), lib.Dropout(0.3), lib.Linear(120, 10)]
        return lib.Sequential(*layers)
    torch.manual_seed(0)
    return build(nn), build(torch.nn)


def _load_from_torch(cn, th):
    cn.load_state_dict({k: v.detach().numpy() for k, v in th.state_dict().items()})


def test_state_dict_keys_shapes_and_dtypes_match_torch():
    cn, th = _pair()
    sd, tsd = cn.state_dict(), th.state_dict()
    assert list(sd) == list(tsd)
    for k in tsd:
        assert sd[k].shape == tuple(tsd[k].shape), k
        assert sd[k].dtype == tsd[k].numpy().dtype, k  # float32 weights, int64 num_batches_tracked
    assert [n for n, _ in cn.named_parameters()] == [n for n, _ in th.named_parameters()]
    assert [n for n, _ in cn.named_buffers()] == [n for n, _ in th.named_buffers()]
    assert sum(p.numel() for p in cn.parameters()) == sum(p.numel() for p in th.parameters())
    assert len(list(cn.modules())) == len(list(th.modules()))
    assert len(list(cn.children())) == len(list(th.children()))


def test_repr_matches_torch():
    cn, th = _pair()
    assert repr(cn) == repr(th)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_small_cnn_with_torch_weights_reproduces_torch(mode, rng):
    cn, th = _pair()
    _load_from_torch(cn, th)
    # no dropout randomness to compare in training: p = 0 there (the same in both)
    if mode == "train":
        for m in list(cn.modules()) + list(th.modules()):
            if type(m).__name__ == "Dropout":
                m.p = 0.0
    getattr(cn, mode)(), getattr(th, mode)()
    for step in range(2):
        x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
        t = rng.integers(0, 10, 4)
        xc, xt = cnnkit.tensor(x), torch.tensor(x)
        lc = nn.CrossEntropyLoss(label_smoothing=0.1)(cn(xc), cnnkit.tensor(t))
        lt = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(th(xt), torch.tensor(t))
        np.testing.assert_allclose(lc.item(), lt.item(), rtol=1e-4)
        cn.zero_grad(), th.zero_grad()
        lc.backward(), lt.backward()
        tparams = dict(th.named_parameters())
        for name, p in cn.named_parameters():
            np.testing.assert_allclose(p.grad.data, tparams[name].grad.numpy(), rtol=1e-3, atol=1e-5, err_msg=name)
        tsd = th.state_dict()
        for k, v in cn.state_dict().items():  # running statistics followed torch's
            np.testing.assert_allclose(v, tsd[k].numpy(), rtol=1e-4, atol=1e-6, err_msg=k)


def test_load_state_dict_strict_errors_list_every_key():
    cn, th = _pair(bn=False)
    good = {k: v.numpy() for k, v in th.state_dict().items()}
    missing = {k: v for k, v in good.items() if k not in ("0.bias", "7.weight")}
    with pytest.raises(ValueError, match=r"Error\(s\) in loading state_dict for Sequential: missing keys: 0\.bias, 7\.weight$"):
        cn.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected keys: fc\.weight, head\.bias$"):
        cn.load_state_dict({**good, "fc.weight": np.zeros(3), "head.bias": np.zeros(1)})
    with pytest.raises(ValueError, match=r"size mismatch for 7\.weight: checkpoint \(120, 256\) vs model \(120, 400\)"):
        cn.load_state_dict({**good, "7.weight": np.zeros((120, 256), np.float32)})
    both = dict(missing, extra=np.zeros(2))
    both["3.weight"] = np.zeros((16, 6, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"size mismatch for 3\.weight: checkpoint \(16, 6, 3, 3\) vs model "
                                         r"\(16, 6, 5, 5\)\. missing keys: 0\.bias, 7\.weight\. unexpected keys: extra"):
        cn.load_state_dict(both)
    # torch refuses the same dicts
    with pytest.raises(RuntimeError, match="Missing key"):
        th.load_state_dict({k: torch.tensor(v) for k, v in missing.items()})


def test_failed_strict_load_changes_nothing_and_non_strict_reports_like_torch():
    cn, th = _pair(bn=False)
    before = cn.state_dict()
    bad = {k: v.numpy() * 0 for k, v in th.state_dict().items()}
    bad["7.weight"] = np.zeros((1, 1), np.float32)
    with pytest.raises(ValueError):
        cn.load_state_dict(bad)
    for k, v in cn.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    partial = {k: v for k, v in th.state_dict().items() if k != "0.bias"}
    partial["extra"] = torch.zeros(1)
    missing, unexpected = cn.load_state_dict({k: v.numpy() for k, v in partial.items()}, strict=False)
    result = th.load_state_dict(partial, strict=False)
    assert missing == result.missing_keys == ["0.bias"]
    assert unexpected == result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(cn[0].weight.data, th[0].weight.detach().numpy())


def test_load_keeps_the_model_dtype_and_copies():
    cn = nn.Linear(3, 2)
    w = np.ones((2, 3), dtype=np.float64)
    cn.load_state_dict({"weight": w, "bias": np.zeros(2)})
    assert cn.weight.dtype == np.float32
    w[...] = 5  # the module holds a copy
    np.testing.assert_array_equal(cn.weight.data, 1)
    sd = cn.state_dict()
    sd["weight"][...] = 7  # state_dict returns copies, too
    np.testing.assert_array_equal(cn.weight.data, 1)


def test_train_eval_propagate_and_change_behaviour():
    cn, th = _pair()
    for m in (cn, th):
        m.eval()
    assert [m.training for m in cn.modules()] == [m.training for m in th.modules()] == [False] * 13
    x = cnnkit.randn(2, 1, 28, 28)
    np.testing.assert_array_equal(cn(x).data, cn(x).data)  # deterministic in eval (dropout off, running stats)
    assert cn.train() is cn and all(m.training for m in cn.modules())
    cnnkit.manual_seed(0)
    a = cn(x).data
    assert not np.allclose(a, cn(x).data)  # dropout draws differ in training
    cn[1].eval()  # a single submodule can be switched
    assert not cn[1].training and cn.training


def test_requires_grad_freezes_like_torch(rng):
    cn, th = _pair(bn=False)
    _load_from_torch(cn, th)
    cn.eval(), th.eval()
    for m in (cn, th):
        for i in range(6):  # freeze the convolutional feature extractor
            m[i].requires_grad_(False)
    assert [p.requires_grad for p in cn.parameters()] == [p.requires_grad for p in th.parameters()]
    x = rng.standard_normal((2, 1, 28, 28)).astype(np.float32)
    cn(cnnkit.tensor(x)).sum().backward()
    th(torch.tensor(x)).sum().backward()
    for (name, p), tp in zip(cn.named_parameters(), th.parameters()):
        if tp.grad is None:
            assert p.grad is None, name
        else:
            np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)
    assert cn[0].weight.grad is None and cn[7].weight.grad is not None
    cn.requires_grad_()
    assert all(p.requires_grad for p in cn.parameters())


def test_zero_grad_like_torch():
    lin = nn.Linear(3, 2)
    (lin(cnnkit.ones(1, 3)).sum()).backward()
    lin.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(lin.weight.grad.data, 0)
    lin.zero_grad()  # torch 2.x default: set_to_none=True
    assert lin.weight.grad is None and lin.bias.grad is None
    tlin = torch.nn.Linear(3, 2)
    tlin(torch.ones(1, 3)).sum().backward()
    tlin.zero_grad()
    assert tlin.weight.grad is None


def test_gradients_accumulate_over_two_backwards_like_torch(rng):
    cn, th = nn.Linear(4, 3), torch.nn.Linear(4, 3)
    _load_from_torch(cn, th)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    for _ in range(2):
        cn(cnnkit.tensor(x)).sum().backward()
        th(torch.tensor(x)).sum().backward()
    np.testing.assert_allclose(cn.weight.grad.data, th.weight.grad.numpy(), rtol=1e-5)


def test_shared_parameters_listed_once_like_torch():
    lin, tlin = nn.Linear(3, 3), torch.nn.Linear(3, 3)
    cn = nn.Sequential(lin, nn.ReLU(), lin)
    th = torch.nn.Sequential(tlin, torch.nn.ReLU(), tlin)
    assert [n for n, _ in cn.named_parameters()] == [n for n, _ in th.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(cn.parameters())) == 2
    # a Parameter tied between two different layers is also counted once
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight
    tied = nn.Sequential(a, b)
    assert [n for n, _ in tied.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    _load_from_torch(lin, tlin)
    x = np.ones((1, 3), np.float32)
    cn(cnnkit.tensor(x)).sum().backward()
    th(torch.tensor(x)).sum().backward()  # both uses add into the one gradient
    np.testing.assert_allclose(lin.weight.grad.data, tlin.weight.grad.numpy(), rtol=1e-5)


def test_state_dict_of_shared_module_lists_every_name_like_torch():
    lin, tlin = nn.Linear(3, 3), torch.nn.Linear(3, 3)
    assert list(nn.Sequential(lin, nn.ReLU(), lin).state_dict()) == \
        list(torch.nn.Sequential(tlin, torch.nn.ReLU(), tlin).state_dict())


def test_sequential_with_names_indexing_and_custom_module():
    cn = nn.Sequential(OrderedDict(fc1=nn.Linear(4, 8), act=nn.ReLU(), fc2=nn.Linear(8, 2)))
    th = torch.nn.Sequential(OrderedDict(fc1=torch.nn.Linear(4, 8), act=torch.nn.ReLU(), fc2=torch.nn.Linear(8, 2)))
    assert list(cn.state_dict()) == list(th.state_dict()) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert repr(cn) == repr(th)
    assert isinstance(cn[0], nn.Linear) and isinstance(cn["act"], nn.ReLU) and len(cn) == 3 and len(cn[1:]) == 2

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
            self.classifier = nn.Linear(4, 5)

        def forward(self, x):
            return self.classifier(self.features(x).mean((2, 3)))

    class TNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
            self.classifier = torch.nn.Linear(4, 5)

    assert list(Net().state_dict()) == list(TNet().state_dict())
    assert repr(Net()).replace("Net(", "X(") == repr(TNet()).replace("TNet(", "X(")
    assert Net()(cnnkit.randn(2, 3, 6, 6)).shape == (2, 5)


def test_replacing_a_submodule_parameter_or_buffer_keeps_its_place_like_torch():
    def build(lib):
        m = lib.nn.Sequential(lib.nn.Conv2d(1, 2, 3), lib.nn.ReLU(), lib.nn.BatchNorm2d(2))
        setattr(m, "0", lib.nn.Conv2d(1, 2, 3, bias=False))          # replace the first layer
        m[2].running_mean = (lib.ones if lib is cnnkit else torch.ones)(2)  # a buffer stays a buffer
        m[2].weight = lib.nn.Parameter((lib.zeros if lib is cnnkit else torch.zeros)(2))
        return m
    ours, theirs = build(cnnkit), build(torch)
    assert list(ours._modules) == list(theirs._modules) == ["0", "1", "2"]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(ours[2]._parameters) == list(theirs[2]._parameters) == ["weight", "bias"]
    np.testing.assert_array_equal(ours[2].running_mean.numpy(), theirs[2].running_mean.numpy())
