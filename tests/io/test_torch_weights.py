"""PyTorch state dicts in and out, by key; never a plain unpickle."""
import builtins

import numpy as np
import pytest
import torch

import cnnkit
from cnnkit import nn
from cnnkit.io import torch_weights as tw


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
                                            torch.nn.ReLU(), torch.nn.MaxPool2d(2))
        self.fc = torch.nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


def _trained_torch_net():
    torch.manual_seed(0)
    t = TorchNet()
    with torch.no_grad():  # non-trivial running statistics
        t.features[1].running_mean.uniform_(-1, 1)
        t.features[1].running_var.uniform_(0.5, 2)
    return t.eval()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_torch_weights_load_by_key_and_give_the_same_logits(tmp_path, suffix):
    t = _trained_torch_net()
    path = tmp_path / f"w{suffix}"
    if suffix == ".pth":
        torch.save(t.state_dict(), path)
    else:
        from safetensors.torch import save_file
        save_file(t.state_dict(), str(path))
    m = Net()
    report = tw.load_torch_state_dict(m, path)
    assert report.ok and len(report.loaded) == len(t.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    with cnnkit.no_grad():
        ours = m.eval()(cnnkit.tensor(x)).data
    np.testing.assert_allclose(ours, t(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_round_trip_back_to_pytorch_is_exact(tmp_path):
    cnnkit.manual_seed(1)
    m = Net()
    tw.save_torch_state_dict(m, tmp_path / "m.pth")
    t = TorchNet()
    t.load_state_dict(torch.load(tmp_path / "m.pth", weights_only=True))
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), m.state_dict()[k])


def test_mismatched_keys_are_listed(tmp_path):
    state = {k: v for k, v in _trained_torch_net().state_dict().items() if k != "fc.bias"}
    state["fc.weight"] = torch.zeros(3, 128)
    state["head.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"missing \(1\): fc.bias[\s\S]*unexpected \(1\): head.weight[\s\S]*"
                                         r"mis-shaped \(1\): fc.weight: file \(3, 128\) vs model \(5, 128\)"):
        tw.load_torch_state_dict(Net(), state)
    report = tw.load_torch_state_dict(Net(), state, strict=False)
    assert report.missing == ["fc.bias"] and report.unexpected == ["head.weight"] and not report.ok
    assert "fc.weight" not in report.loaded


def test_pth_without_pytorch_is_refused_with_the_convert_command(tmp_path, monkeypatch):
    path = tmp_path / "w.pth"
    torch.save({"a": torch.ones(1)}, path)
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("no torch here")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(ValueError, match=r"never unpickles.*cnnkit convert w.pth w.safetensors"):
        tw.read_state_dict(path)


def test_pickled_objects_are_refused_by_weights_only(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.ones(1), "obj": tw.LoadReport()}, path)
    with pytest.raises(ValueError, match="weights_only=True"):
        tw.read_state_dict(path)


def test_damaged_safetensors_and_unknown_formats_are_clear_errors(tmp_path):
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        tw.read_state_dict(bad)
    other = tmp_path / "w.npz"
    other.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"unknown weights format '.npz'"):
        tw.read_state_dict(other)


def test_convert_both_directions(tmp_path):
    t = _trained_torch_net()
    torch.save(t.state_dict(), tmp_path / "a.pth")
    tw.convert(tmp_path / "a.pth", tmp_path / "a.safetensors")
    tw.convert(tmp_path / "a.safetensors", tmp_path / "b.pth")
    back = torch.load(tmp_path / "b.pth", weights_only=True)
    for k, v in t.state_dict().items():
        assert torch.equal(back[k], v)
