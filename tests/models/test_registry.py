"""create / names / default_input_size / model.config / rebuild."""
import json

import numpy as np
import pytest

import cnnkit
import cnnkit.models as M


def test_names_lists_the_zoo():
    names = M.names()
    import re                                                         # natural order: numbers by value
    assert names == sorted(names, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])
    resnets = [n for n in names if n.startswith("resnet")]
    assert resnets == ["resnet18", "resnet20", "resnet32", "resnet34", "resnet44", "resnet50", "resnet56",
                       "resnet101", "resnet110", "resnet152"]
    for n in ["lenet5", "alexnet", "vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19", "googlenet",
              "mobilenet_v1", "xception", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
              "resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]:
        assert n in names
        assert callable(getattr(M, n))


def test_unknown_name_lists_known_ones_and_suggests():
    with pytest.raises(ValueError, match=r"unknown model 'resnet19'\. Did you mean 'resnet18'.*Known models: .*lenet5"):
        M.create("resnet19")
    with pytest.raises(ValueError, match=r"Did you mean 'lenet5'"):
        M.create("lenet")
    with pytest.raises(ValueError, match="Known models"):
        M.default_input_size("nope")
    with pytest.raises(TypeError, match="model name must be a string"):
        M.create(18)


def test_create_is_case_and_dash_insensitive():
    assert M.create("LeNet5").config["name"] == "lenet5"
    assert M.create("resnet-20").config["name"] == "resnet20"


def test_bad_builder_arguments_name_the_builder():
    with pytest.raises(TypeError, match="cnnkit.models.lenet5: .*unexpected keyword argument 'colour'"):
        M.create("lenet5", colour=1)
    with pytest.raises(ValueError, match=r"lenet5: activation must be one of .*got activation='swish'"):
        M.lenet5(activation="swish")
    with pytest.raises(ValueError, match=r"lenet5: pooling must be 'max' or 'avg', got pooling='min'"):
        M.lenet5(pooling="min")
    with pytest.raises(ValueError, match=r"alexnet: variant must be 'original' or 'torchvision'"):
        M.alexnet(variant="caffe")
    with pytest.raises(ValueError, match=r"resnet: variant must be 'v1' or 'v1.5', got variant='v2'"):
        M.resnet18(variant="v2")
    with pytest.raises(ValueError, match=r"depth must be 6n \+ 2"):
        M.CifarResNet(21)
    with pytest.raises(ValueError, match=r"mobilenet_v1: alpha must be a positive number, got alpha=0"):
        M.mobilenet_v1(alpha=0)
    with pytest.raises(ValueError, match=r"googlenet: variant must be 'paper' or 'torchvision'"):
        M.googlenet(variant="v3")


def test_config_records_the_call():
    m = M.resnet20(5)
    assert m.config == {"name": "resnet20", "kwargs": {"num_classes": 5}}
    m = M.create("lenet5", activation="tanh", c3_table=True)
    assert m.config == {"name": "lenet5", "kwargs": {"activation": "tanh", "c3_table": True}}
    assert "config" not in m.state_dict()


def test_rebuild_from_a_json_config_loads_the_weights():
    m = M.lenet5(num_classes=4, activation="tanh")
    config = json.loads(json.dumps(m.config))          # as a checkpoint would store it
    again = M.rebuild(config)
    again.load_state_dict(m.state_dict())
    x = cnnkit.randn(2, 1, 32, 32)
    np.testing.assert_array_equal(again(x).data, m(x).data)
    with pytest.raises(ValueError, match="model config must be a dict with a 'name' key"):
        M.rebuild({"kwargs": {}})


def test_default_input_sizes():
    assert M.default_input_size("lenet5") == (1, 32, 32)
    assert M.default_input_size("alexnet") == (3, 227, 227)
    assert M.default_input_size("vgg16") == (3, 224, 224)
    assert M.default_input_size("xception") == (3, 299, 299)
    assert M.default_input_size("resnet56") == (3, 32, 32)
    assert M.default_input_size(M.alexnet(variant="torchvision", num_classes=2, dropout=0.0)) == (3, 224, 224)
    assert M.default_input_size(M.lenet5(in_channels=3)) == (3, 32, 32)
    assert M.default_input_size(M.from_pattern("CONV -> FC", input_size=(3, 8, 8))) == (3, 8, 8)
    with pytest.raises(ValueError, match="was not built by cnnkit.models"):
        M.default_input_size(cnnkit.nn.Linear(2, 3))
