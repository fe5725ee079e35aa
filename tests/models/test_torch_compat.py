"""State-dict keys and logits against equivalent PyTorch models (torchvision's definitions)."""
import numpy as np
import pytest
import torch

import cnnkit
import cnnkit.models as M

from . import torch_ref as T


def shapes(state):
    return {k: tuple(v.shape) for k, v in state.items()}


def torch_shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith(".mask")}


KEY_CASES = {
    "lenet5": (lambda: M.lenet5(), lambda: T.LeNet5()),
    "alexnet-tv": (lambda: M.alexnet(variant="torchvision"), lambda: T.AlexNet()),
    "vgg11": (lambda: M.vgg11(), lambda: T.VGG("A")),
    "vgg13_bn": (lambda: M.vgg13(batch_norm=True), lambda: T.VGG("B", batch_norm=True)),
    "vgg16": (lambda: M.vgg16(), lambda: T.VGG("D")),
    "vgg16_bn": (lambda: M.vgg16_bn(), lambda: T.VGG("D", batch_norm=True)),
    "vgg19": (lambda: M.vgg19(), lambda: T.VGG("E")),
    "resnet18": (lambda: M.resnet18(), lambda: T.ResNet(T.BasicBlock, [2, 2, 2, 2])),
    "resnet34": (lambda: M.resnet34(), lambda: T.ResNet(T.BasicBlock, [3, 4, 6, 3])),
    "resnet50": (lambda: M.resnet50(), lambda: T.ResNet(T.Bottleneck, [3, 4, 6, 3])),
    "resnet50-v1": (lambda: M.resnet50(variant="v1"), lambda: T.ResNet(T.Bottleneck, [3, 4, 6, 3])),
    "resnet101": (lambda: M.resnet101(), lambda: T.ResNet(T.Bottleneck, [3, 4, 23, 3])),
    "resnet152": (lambda: M.resnet152(), lambda: T.ResNet(T.Bottleneck, [3, 8, 36, 3])),
    "googlenet-tv": (lambda: M.googlenet(variant="torchvision"), lambda: T.GoogLeNet()),
    "googlenet-tv-aux": (lambda: M.googlenet(variant="torchvision", aux_logits=True),
                         lambda: T.GoogLeNet(aux_logits=True)),
    "resnet20": (lambda: M.resnet20(), lambda: T.CifarResNet(20)),
}


@pytest.mark.parametrize("case", list(KEY_CASES))
def test_state_dict_keys_and_shapes_match_torchvision(no_init, case):
    build, build_torch = KEY_CASES[case]
    with torch.device("meta"):           # shapes only: no memory, no initialisation
        expected = torch_shapes(build_torch())
    got = shapes(build().state_dict())
    assert set(got) == set(expected), (sorted(set(got) - set(expected))[:5], sorted(set(expected) - set(got))[:5])
    assert got == expected


def compare_logits(model, tmodel, size, batch=2, seed=0, train=False):
    """Load tmodel's weights into model by key; compare the outputs on the same random batch."""
    tmodel = T.randomize_batchnorm(tmodel, seed)
    model.load_state_dict(T.numpy_state_dict(tmodel))
    model.train(train)
    tmodel.train(train)
    x = np.random.default_rng(seed).standard_normal((batch, *size)).astype(np.float32)
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    with cnnkit.no_grad():
        got = model(cnnkit.tensor(x)).data
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    return got


@pytest.mark.parametrize("kwargs,tkwargs", [
    ({}, {}),
    (dict(activation="tanh", pooling="avg"), dict(act=torch.nn.Tanh, pool=torch.nn.AvgPool2d)),
])
def test_lenet5_logits_and_gradients_match_torch(kwargs, tkwargs):
    torch.manual_seed(0)
    tmodel, model = T.LeNet5(**tkwargs), M.lenet5(**kwargs)
    compare_logits(model, tmodel, (1, 32, 32), batch=4)
    # One backward step: every parameter's gradient as PyTorch's.
    x = np.random.default_rng(1).standard_normal((4, 1, 32, 32)).astype(np.float32)
    y = np.array([0, 3, 9, 1])
    loss = cnnkit.nn.CrossEntropyLoss()(model(cnnkit.tensor(x)), cnnkit.tensor(y))
    loss.backward()
    tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(x)), torch.from_numpy(y))
    tloss.backward()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    tgrads = {k: p.grad.numpy() for k, p in tmodel.named_parameters()}
    for k, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.data, tgrads[k], rtol=1e-4, atol=1e-6, err_msg=k)


def test_lenet5_connection_table_is_the_masked_convolution():
    torch.manual_seed(0)
    tmodel, model = T.LeNet5(c3_table=True), M.lenet5(c3_table=True)
    state = T.numpy_state_dict(tmodel)
    w3 = state.pop("c3.weight")
    b3 = state.pop("c3.bias")
    for j, row in enumerate(M.lenet.LECUN_C3_TABLE):
        state[f"c3.convs.{j}.weight"] = w3[j:j + 1, list(row)]
        state[f"c3.convs.{j}.bias"] = b3[j:j + 1]
    model.load_state_dict(state)
    model.eval()
    tmodel.eval()
    x = np.random.default_rng(2).standard_normal((3, 1, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(cnnkit.tensor(x)).data, expected, rtol=1e-4, atol=1e-5)


def test_resnet18_logits_match_torchvision():
    torch.manual_seed(0)
    compare_logits(M.resnet18(num_classes=10), T.ResNet(T.BasicBlock, [2, 2, 2, 2], num_classes=10), (3, 64, 64))


def test_cifar_resnet20_option_a_matches_torch_in_training_mode():
    # Training mode: BatchNorm uses the batch statistics; the option-A shortcut pads zeros both sides.
    torch.manual_seed(0)
    tmodel, model = T.CifarResNet(20), M.resnet20()
    compare_logits(model, tmodel, (3, 32, 32), batch=2, train=True)


@pytest.mark.slow
def test_resnet50_logits_match_torchvision():
    torch.manual_seed(0)
    compare_logits(M.resnet50(num_classes=10), T.ResNet(T.Bottleneck, [3, 4, 6, 3], num_classes=10),
                   (3, 64, 64), batch=1)


@pytest.mark.slow
def test_googlenet_torchvision_variant_logits_match():
    torch.manual_seed(0)
    compare_logits(M.googlenet(variant="torchvision", num_classes=10), T.GoogLeNet(num_classes=10),
                   (3, 64, 64), batch=1)


@pytest.mark.slow
def test_alexnet_torchvision_logits_match(fast_init):
    torch.manual_seed(0)
    compare_logits(M.alexnet(variant="torchvision", num_classes=10), T.AlexNet(num_classes=10), (3, 80, 80),
                   batch=1)


@pytest.mark.slow
def test_vgg16_logits_match_torchvision(fast_init):
    torch.manual_seed(0)
    compare_logits(M.vgg16(num_classes=10), T.VGG("D", num_classes=10), (3, 32, 32), batch=1)
