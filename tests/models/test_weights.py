"""Named pre-trained weights: the real download-and-verify path against a local HTTP server on 127.0.0.1
serving weights the tests make with PyTorch (full hashes and torchvision-style 8-digit prefixes,
mismatches, a cut transfer resumed), loading into a model (same logits as PyTorch), the published
parameters and MACs of torchvision's entries against the models and cnnkit.summary, and the
``cnnkit weights`` commands."""
import hashlib
import importlib

import numpy as np
import pytest
import torch

import cnnkit
import cnnkit.nn.init as init
from cnnkit import models
from cnnkit.cli import main
from cnnkit.files import ChecksumError, DownloadError
from cnnkit.models import weights as W
from cnnkit.io.torch_weights import convert

from tests.models import torch_ref as T


@pytest.fixture
def registered():
    """Register weights for the test; unregister them afterwards."""
    names = []

    def register(name, *args, **kwargs):
        w = W.register_weights(name, *args, **kwargs)
        names.append(name)
        return w
    yield register
    for n in names:
        W.unregister_weights(n)


@pytest.fixture(scope="module")
def lenet_file(tmp_path_factory):
    """A LeNet-5 state dict made by PyTorch (torch.save .pth), its bytes and the torch model."""
    torch.manual_seed(3)
    tmodel = T.LeNet5(num_classes=10).eval()
    path = tmp_path_factory.mktemp("pub") / "lenet5-test.pth"
    torch.save(tmodel.state_dict(), path)
    return path.read_bytes(), tmodel


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _logits_agree(model, tmodel):
    x = np.random.default_rng(0).standard_normal((3, 1, 32, 32)).astype(np.float32)
    with torch.no_grad():
        want = tmodel(torch.from_numpy(x)).numpy()
    model.eval()
    with cnnkit.no_grad():
        got = model(cnnkit.tensor(x)).data
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_download_verify_and_load_gives_pytorchs_logits(server, tmp_path, lenet_file, registered):
    data, tmodel = lenet_file
    server.files["/w/lenet5-test.pth"] = data
    w = registered("LeNet5_Weights.TEST", "lenet5", server.url + "/w/lenet5-test.pth", _sha(data),
                   meta={"mean": (0.1,), "std": (0.3,)})
    # the meta is what the registration says: nothing is built or measured; the input size is the model's
    assert w.meta["sha256_kind"] == "full" and w.meta["input_size"] == (1, 32, 32)
    assert w.meta["num_params"] is None and w.meta["macs"] is None and w.meta["num_classes"] is None
    model = W.create_with_weights("LeNet-5", "LeNet5_Weights.TEST", cache_dir=tmp_path, quiet=True)
    assert (tmp_path / "lenet5-test.pth").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet5-test.pth"]     # no .part left
    _logits_agree(model, tmodel)
    # cached: loading again makes no request
    n = len(server.requests)
    W.load_weights(models.create("lenet5"), "lenet5_weights.test", cache_dir=tmp_path, quiet=True)
    assert len(server.requests) == n


def test_sha256_prefix_is_verified_and_reported(server, tmp_path, lenet_file, registered):
    data, tmodel = lenet_file
    server.files["/lenet5-test.pth"] = data
    w = registered("LeNet5_Weights.PREFIX", "lenet5", server.url + "/lenet5-test.pth", _sha(data)[:8])
    assert w.meta["sha256_kind"] == "prefix" and w.sha256 == _sha(data)[:8]
    path = W.download_weights(w, tmp_path, quiet=True)
    assert path.read_bytes() == data
    model = models.create("lenet5")
    assert W.load_weights(model, w, tmp_path).ok
    _logits_agree(model, tmodel)


@pytest.mark.parametrize("prefix", [False, True])
def test_checksum_mismatch_deletes_the_download(server, tmp_path, lenet_file, registered, prefix):
    data, _ = lenet_file
    server.files["/bad.pth"] = data
    wrong = _sha(data + b"x")
    registered("Bad.V1", "lenet5", server.url + "/bad.pth", wrong[:8] if prefix else wrong)
    with pytest.raises(ChecksumError, match=r"checksum mismatch .* expected SHA-256 .*" + wrong[:8]):
        W.download_weights("Bad.V1", tmp_path, quiet=True)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ChecksumError):
        W.create_with_weights("lenet5", "Bad.V1", cache_dir=tmp_path, quiet=True)


@pytest.mark.parametrize("prefix", [False, True])
def test_cut_transfer_resumes_and_mirrors_are_tried(server, tmp_path, lenet_file, registered, prefix):
    data, tmodel = lenet_file
    server.files["/m2/l.pth"] = data
    server.cut_once.add("/m2/l.pth")
    sha = _sha(data)
    registered("Mirror.V1", "lenet5", [server.url + "/gone/l.pth", server.url + "/m2/l.pth"],
               sha[:10] if prefix else sha)
    model = W.create_with_weights("lenet5", "Mirror.V1", cache_dir=tmp_path, quiet=True)
    _logits_agree(model, tmodel)
    assert [r for r in server.requests if r[0] == "/m2/l.pth"][-1][1] == f"bytes={len(data) // 2}-"


def test_unreachable_weights_raise_download_error(server, tmp_path, registered):
    registered("Nowhere.V1", "lenet5", server.url + "/missing.pth", "0" * 64)
    with pytest.raises(DownloadError, match=r"could not download missing.pth: .*HTTP 404"):
        W.download_weights("Nowhere.V1", tmp_path, quiet=True)


def test_without_pytorch_the_pth_is_refused_with_the_convert_command(server, tmp_path, lenet_file, registered,
                                                                     monkeypatch):
    data, tmodel = lenet_file
    server.files["/lenet5-test.pth"] = data
    registered("NoTorch.V1", "lenet5", server.url + "/lenet5-test.pth", _sha(data))
    path = W.download_weights("NoTorch.V1", tmp_path, quiet=True)
    tw = importlib.import_module("cnnkit.io.torch_weights")
    monkeypatch.setattr(tw, "_import_torch", lambda: None)
    with pytest.raises(ValueError, match=r"never unpickles .* `cnnkit convert lenet5-test.pth "
                                         r"lenet5-test.safetensors`"):
        W.load_weights(models.create("lenet5"), "NoTorch.V1", tmp_path)
    monkeypatch.undo()
    convert(path, path.with_suffix(".safetensors"))          # where PyTorch is available
    monkeypatch.setattr(tw, "_import_torch", lambda: None)
    model = models.create("lenet5")
    assert W.load_weights(model, "NoTorch.V1", tmp_path).ok   # the converted file, no PyTorch needed
    _logits_agree(model, tmodel)


def test_safetensors_weights_and_ignored_prefixes(server, tmp_path, lenet_file, registered):
    from safetensors.torch import save as st_save
    _, tmodel = lenet_file
    state = dict(tmodel.state_dict())
    state["aux9.weight"] = torch.ones(3)
    data = st_save({k: v.contiguous() for k, v in state.items()})
    server.files["/l.safetensors"] = data
    registered("St.V1", "lenet5", server.url + "/l.safetensors", _sha(data), ignore_prefixes=("aux9.",))
    model = models.create("lenet5")
    report = W.load_weights(model, "St.V1", tmp_path)
    assert report.ok and "aux9.weight" not in report.loaded
    _logits_agree(model, tmodel)


def test_registry_lookups_and_errors(registered):
    assert W.get_weights("resnet50_weights.imagenet1k_v2").name == "ResNet50_Weights.IMAGENET1K_V2"
    assert W.get_weights("ResNet50_Weights.DEFAULT").name == "ResNet50_Weights.IMAGENET1K_V2"
    assert W.get_weights("DEFAULT", model="ResNet-18").name == "ResNet18_Weights.IMAGENET1K_V1"
    assert [w.name for w in W.list_weights("resnet50")] == ["ResNet50_Weights.IMAGENET1K_V1",
                                                           "ResNet50_Weights.IMAGENET1K_V2"]
    with pytest.raises(ValueError, match=r"unknown weights 'ResNet18_Weights.V9' for resnet18; known: "
                                         r"ResNet18_Weights.IMAGENET1K_V1 \(see `cnnkit weights list`\)"):
        W.get_weights("ResNet18_Weights.V9", model="resnet18")
    with pytest.raises(ValueError, match=r"weights 'ResNet18_Weights.IMAGENET1K_V1' are for resnet18, not resnet34"):
        W.create_with_weights("resnet34", "ResNet18_Weights.IMAGENET1K_V1")
    with pytest.raises(ValueError, match=r"the weights have 1000 classes, got num_classes=5; load them, then call "
                                         r"cnnkit.transfer.replace_head\(model, 5\)"):
        W.create_with_weights("resnet18", "ResNet18_Weights.IMAGENET1K_V1", num_classes=5)
    with pytest.raises(ValueError, match=r"sha256 must be the hex SHA-256 \(64 digits\) or a prefix of at least 8"):
        W.register_weights("X.V1", "lenet5", "http://127.0.0.1/x.pth", "abc")
    registered("Dup.V1", "lenet5", "http://127.0.0.1/x.pth", "a" * 64, meta={"num_params": 1, "macs": 1,
                                                                          "input_size": (1, 32, 32),
                                                                          "num_classes": 10})
    with pytest.raises(ValueError, match=r"'Dup.V1' is already registered"):
        W.register_weights("Dup.V1", "lenet5", "http://127.0.0.1/x.pth", "a" * 64)


def test_torchvision_entries_meta_matches_the_models():
    """The parameters and MACs torchvision publishes for each file (written as data beside the models) against
    the cnnkit model each entry builds: its parameters counted one by one, its MACs by cnnkit.summary (torchvision
    rounds its "GFLOPS" to 3 decimals, so they agree within 0.0005 G). The file-name prefix is the hash."""
    tv = [w for w in W.list_weights() if w.urls[0].startswith("https://download.pytorch.org/models/")]
    assert len(tv) == 18
    for w in tv:
        m = w.meta
        assert m["sha256_kind"] == "prefix" and len(w.sha256) == 8 and w.file_name.endswith(f"-{w.sha256}.pth")
        assert m["num_classes"] == 1000 and m["input_size"] == (3, 224, 224) and m["source"] == w.urls[0]
        with init.skip_init():                         # shapes only: VGG's 138M random draws skipped
            model = models.create(w.model, **w.model_kwargs)
        assert sum(p.numel() for p in model.parameters()) == m["num_params"], w.name
        assert abs(cnnkit.summary(model, m["input_size"]).total["macs"] - m["macs"]) <= 0.0005e9, w.name
        del model
    assert W.get_weights("GoogLeNet_Weights.IMAGENET1K_V1").meta["mean"] == (0.5, 0.5, 0.5)
    assert W.default_weights("resnet50").name == "ResNet50_Weights.IMAGENET1K_V2"
    assert W.default_weights("lenet5") is None


def test_cli_weights_list_and_download(server, tmp_path, lenet_file, registered, capsys):
    data, _ = lenet_file
    server.files["/lenet5-test.pth"] = data
    registered("CliNet.V1", "lenet5", server.url + "/lenet5-test.pth", _sha(data),
               meta={"num_params": 61_706, "macs": 416_520})
    registered("CliNet.V2", "lenet5", server.url + "/lenet5-test.pth", _sha(data))
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    (r18,) = [line for line in out.splitlines() if line.startswith("ResNet18_Weights.IMAGENET1K_V1 ")]
    assert r18.split()[1:] == ["resnet18", "69.758", "89.078", "11,689,512", "1.814", "3×224×224", "yes"]
    assert "(prefix)" not in out and "checked against the first 8 hex digits of their SHA-256" in out
    (v1,) = [line for line in out.splitlines() if line.startswith("CliNet.V1 ")]
    (v2,) = [line for line in out.splitlines() if line.startswith("CliNet.V2 ")]
    assert v1.split()[1:] == ["lenet5", "—", "—", "61,706", "0.000", "1×32×32", "yes"]
    assert v2.split()[1:] == ["lenet5", "—", "—", "—", "—", "1×32×32"]             # not the default
    assert main(["weights", "download", "CliNet.V1", "--cache", str(tmp_path), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "lenet5-test.pth")
    assert (tmp_path / "lenet5-test.pth").read_bytes() == data
    assert main(["weights", "download", "Nope.V1", "--cache", str(tmp_path)]) == 2
    assert "unknown weights 'Nope.V1'" in capsys.readouterr().err
    assert main(["weights", "list", "--model", "googlenet", "--json"]) == 0
    import json
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["name"] == "GoogLeNet_Weights.IMAGENET1K_V1" and entry["model_kwargs"] == {"variant": "torchvision"}


def test_load_backbone_keeps_a_fresh_head_of_another_size(server, tmp_path, lenet_file, registered):
    from cnnkit.train import load_backbone, save_weights
    data, tmodel = lenet_file
    server.files["/lenet5-test.pth"] = data
    registered("Backbone.V1", "lenet5", server.url + "/lenet5-test.pth", _sha(data))
    want = {k: v.numpy() for k, v in tmodel.state_dict().items()}
    cnnkit.manual_seed(5)
    model = models.create("lenet5", num_classes=3)
    fresh = model.output.weight.data.copy()
    report = load_backbone(model, "Backbone.V1", cache_dir=tmp_path)
    assert report.missing == ["output.weight", "output.bias"] and not report.unexpected
    assert np.array_equal(model.output.weight.data, fresh)
    for k, v in model.state_dict().items():
        if not k.startswith("output."):
            assert np.array_equal(v, want[k]), k
    # a run directory (cnnkit's weights file) and a plain .pth work the same way
    run = tmp_path / "run"
    run.mkdir()
    save_weights(model, run / "model.safetensors")
    other = models.create("lenet5", num_classes=7)
    load_backbone(other, run)
    assert np.array_equal(other.c5.weight.data, want["c5.weight"])
    load_backbone(other, tmp_path / "lenet5-test.pth")
    with pytest.raises(ValueError, match=r"do not fit LeNet5 beyond its head 'output':[\s\S]*mis-shaped \(1\): "
                                         r"c1.weight: file \(6, 1, 5, 5\) vs model \(6, 3, 5, 5\)"):
        load_backbone(models.create("lenet5", in_channels=3), run)
    with pytest.raises(FileNotFoundError, match=r"'nope' is neither a weights file, a run directory nor"):
        load_backbone(other, "nope")


def test_models_create_accepts_weights(server, tmp_path, lenet_file, registered, monkeypatch):
    data, tmodel = lenet_file
    server.files["/lenet5-test.pth"] = data
    registered("Create.V1", "lenet5", server.url + "/lenet5-test.pth", _sha(data))
    monkeypatch.setenv("CNNKIT_HOME", str(tmp_path))
    model = models.create("lenet5", weights="Create.V1")
    assert (tmp_path / "weights" / "lenet5-test.pth").is_file()
    _logits_agree(model, tmodel)
    assert models.create("lenet5").config == {"name": "lenet5", "kwargs": {}}
