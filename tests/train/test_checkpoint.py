import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import cnnkit
from cnnkit.train import CheckpointError, load_checkpoint, load_weights, save_checkpoint, save_weights
from cnnkit.train.checkpoint import decode_tree, encode_tree

from cnnkit.optim import SGD, Adam

from .standins import TinyNet


def test_tree_round_trip_keeps_types():
    tree = {"state": {0: {"buf": np.arange(6, dtype=np.float32).reshape(2, 3), "step": np.int64(3),
                          "zero_d": np.array(5, dtype=np.int64), "strided": np.arange(10.0)[::2],
                          "t": cnnkit.tensor([1.0, 2.0])}},
            "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1], "nesterov": False,
                              "eps": np.float32(1e-8), "name": None}],
            "__odd": float("inf")}
    arrays = {}
    doc = json.loads(json.dumps(encode_tree(tree, arrays, "opt")))
    back = decode_tree(doc, arrays)
    assert list(back["state"]) == [0]
    s = back["state"][0]
    assert s["buf"].dtype == np.float32 and np.array_equal(s["buf"], tree["state"][0]["buf"])
    assert type(s["step"]) is np.int64 and s["step"] == 3
    assert s["zero_d"].shape == () and s["zero_d"].dtype == np.int64
    assert np.array_equal(s["strided"], [0.0, 2.0, 4.0, 6.0, 8.0])
    assert isinstance(s["t"], cnnkit.Tensor) and np.array_equal(s["t"].data, [1.0, 2.0])
    g = back["param_groups"][0]
    assert g["betas"] == (0.9, 0.999) and isinstance(g["betas"], tuple)
    assert type(g["eps"]) is np.float32 and g["eps"] == np.float32(1e-8)
    assert g["name"] is None and back["__odd"] == float("inf")


def test_tree_refuses_objects():
    with pytest.raises(TypeError, match="cannot store a value of type object in a checkpoint"):
        encode_tree({"x": object()}, {}, "p")


def model_and_opt(seed=0, classes=3):
    cnnkit.manual_seed(seed)
    m = TinyNet(num_classes=classes)
    return m, SGD(m.parameters(), lr=0.1, momentum=0.9)


def test_checkpoint_round_trip(tmp_path):
    m, opt = model_and_opt()
    for p in m.parameters():
        p.grad = cnnkit.ones(*p.shape)
    opt.step()  # momentum buffers of ones
    m.bn.num_batches_tracked.data = np.array(7, dtype=np.int64)
    cnnkit.manual_seed(3)
    expected_draw = cnnkit.get_rng().standard_normal(4)
    cnnkit.manual_seed(3)
    save_checkpoint(tmp_path / "c.safetensors", m, opt, state={"epoch": 2})
    m2, opt2 = model_and_opt(seed=1)
    cnnkit.manual_seed(77)
    c = load_checkpoint(tmp_path / "c.safetensors")
    assert c.state == {"epoch": 2} and c.optimizer_type == "SGD"
    c.restore(m2, opt2)
    assert all(np.array_equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))
    assert np.array_equal(opt2.state[0]["momentum_buffer"], np.ones((4, 1, 3, 3)))
    assert m2.bn.num_batches_tracked.data.shape == () and m2.bn.num_batches_tracked.item() == 7
    assert np.array_equal(cnnkit.get_rng().standard_normal(4), expected_draw)


def test_weights_round_trip_and_architecture_check(tmp_path):
    m, _ = model_and_opt()
    save_weights(m, tmp_path / "w.safetensors")
    m2, _ = model_and_opt(seed=5)
    load_weights(tmp_path / "w.safetensors", m2)
    assert all(np.array_equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))
    other, _ = model_and_opt(classes=4)
    with pytest.raises(CheckpointError, match=r"saved from tiny_net\(num_classes=3, width=4\), "
                                              r"but the model is tiny_net\(num_classes=4, width=4\)"):
        load_weights(tmp_path / "w.safetensors", other)
    other.config = {"name": "lenet5", "kwargs": {}}
    with pytest.raises(CheckpointError, match="saved from model 'tiny_net', not 'lenet5'"):
        load_weights(tmp_path / "w.safetensors", other)
    del other.config  # a hand-built model of the same class: the shapes decide
    other.__dict__.pop("config", None)
    with pytest.raises(CheckpointError, match=r"does not fit TinyNet: .*size mismatch for fc.weight"):
        cnnkit.train.checkpoint.load_state_into(other, load_weights(tmp_path / "w.safetensors"), "w")


@pytest.fixture
def saved(tmp_path):
    m, opt = model_and_opt()
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, m, opt, state={"epoch": 1})
    return path


def test_truncated_checkpoint_refused(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match="is damaged or truncated and cannot be read"):
        load_checkpoint(saved)
    saved.write_bytes(data[:5])
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        load_checkpoint(saved)


def test_flipped_byte_refused(saved):
    data = bytearray(saved.read_bytes())
    data[-3] ^= 0xFF  # inside the last array
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="do not match the SHA-256 digest"):
        load_checkpoint(saved)


def test_foreign_files_refused(tmp_path, saved):
    plain = tmp_path / "plain.safetensors"
    save_file({"weight": np.zeros(3, np.float32)}, str(plain))
    with pytest.raises(CheckpointError, match="a safetensors file but not one cnnkit wrote"):
        load_weights(plain)
    with pytest.raises(CheckpointError, match="is not a cnnkit-weights file .its format is 'cnnkit-checkpoint'"):
        load_weights(saved)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_optimizer_type_mismatch(saved):
    m, _ = model_and_opt()
    with pytest.raises(CheckpointError, match="holds SGD state, the optimiser is Adam"):
        load_checkpoint(saved).restore(m, Adam(m.parameters()))
