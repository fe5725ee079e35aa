"""The transfer-learning demonstration (examples/transfer_digits.py), reduced to run in well under a
minute: LeNet-5 pre-trained on the digits 0–4 (× the 8 symmetries of the square), its head replaced
and F6 re-initialised, fine-tuned on 10 labelled examples per class of the digits 5–9, against the
same network trained from scratch on the same examples with the same augmentation, epochs and
learning-rate grid, each method's learning rate chosen on the target training images left over;
and freezing is exact."""
import copy
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import cnnkit
from cnnkit import transfer

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "transfer_digits.py"


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("transfer_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data(demo):
    digits = cnnkit.data.load("digits")
    src, tgt = [str(i) for i in range(5)], [str(i) for i in range(5, 10)]
    return (digits.normalize(), demo.relabel(digits.train, range(5), src),
            demo.relabel(digits.train, range(5, 10), tgt), demo.relabel(digits.test, range(5, 10), tgt),
            demo.relabel(digits.test, range(5), src))


def test_split_by_label_and_symmetries(demo, data):
    _, source_train, target_train, target_test, source_test = data
    assert set(np.unique(target_train.labels)) == set(range(5)) and target_train.classes == list("56789")
    few, rest = demo.few_shot(target_train, 10, seed=0, rest=True)
    assert np.array_equal(few.class_counts(), [10] * 5)
    assert len(few) + len(rest) == len(target_train)
    assert not set(map(bytes, few.images)) & set(map(bytes, rest.images))   # validation never holds a shot
    assert len(target_test) + len(source_test) == len(cnnkit.data.load("digits").test)
    sym = demo.with_symmetries(source_train.subset(np.arange(3)))
    assert len(sym) == 24 and len(sym.classes) == 40
    x = source_train.images[1, 0]
    assert np.array_equal(sym.images[1 + 3 * 1, 0], np.rot90(x))               # symmetry 1: a quarter turn
    assert np.array_equal(sym.images[1 + 3 * 4, 0], x[:, ::-1])                 # symmetry 4: the mirror
    assert sym.labels[1 + 3 * 5] == source_train.labels[1] * 8 + 5


def test_all_source_pre_trains_on_every_image_of_0_to_4_and_none_of_5_to_9(demo, data):
    _, source_train, target_train, target_test, source_test = data
    digits = cnnkit.data.load("digits")
    train, test = demo.source_sets(digits)
    assert np.array_equal(train.images, source_train.images) and np.array_equal(test.images, source_test.images)
    every, none = demo.source_sets(digits, all_source=True)
    assert none is None and len(every) == len(source_train) + len(source_test) and every.classes == list("01234")
    assert np.array_equal(np.bincount(every.labels), np.bincount(source_train.labels) + np.bincount(source_test.labels))
    seen = set(map(bytes, every.images))
    assert not seen & set(map(bytes, np.concatenate([target_train.images, target_test.images])))


@pytest.mark.slow
def test_transfer_beats_a_fairly_tuned_scratch_baseline_on_the_digits_5_to_9(demo, data):
    norm, source_train, target_train, target_test, _ = data
    pre = demo.pretrain(source_train, norm, epochs=10)                          # 40 classes: digit × symmetry
    res = demo.compare(pre, target_train, target_test, norm, shots=10, seeds=(0, 1, 2), epochs=30,
                       lrs=(1e-3, 3e-3))
    scratch, tuned = res["scratch"], res["all"]
    val_margin = max(tuned["val"].values()) - max(scratch["val"].values())
    print(f"scratch (lr {scratch['lr']:g}) {scratch['mean']:.3f}  transfer (lr {tuned['lr']:g}) "
          f"{tuned['mean']:.3f}  validation margin {100 * val_margin:+.1f} points")
    # Measured: validation margin +2.4 points (test +2.4) with these seeds; over other seed triples and
    # a second pre-training seed +0.5 … +5.6. The margin at convergence is about one point (see the
    # example's docstring), so the assertion is only that transfer is ahead, on the ~580 validation
    # images per seed (the 179 test images are too few to resolve one point).
    assert val_margin > 0, res


def test_freezing_is_exact_when_fine_tuning(demo, data):
    norm, source_train, target_train, _, _ = data
    pre = demo.pretrain(source_train.subset(np.arange(64)), norm, epochs=1)     # any weights will do
    net = demo.transferred(pre, 5)
    head = net.output
    head_before = head.weight.data.copy()
    before = {k: v.copy() for k, v in net.state_dict().items()}
    for p in net.parameters():
        p.grad = None                                                     # left over from pre-training
    demo.train_few(net, demo.few_shot(target_train, 4, seed=0), norm, mode="later", epochs=2, seed=0, lr=1e-2)
    for k, v in net.state_dict().items():
        if k.startswith(("c1.", "c3.")):
            assert np.array_equal(v, before[k]), k                        # bit for bit
        else:
            assert not np.array_equal(v, before[k]), k
    assert all(p.grad is None for m in (net.c1, net.c3) for p in m.parameters())
    assert not np.array_equal(head.weight.data, head_before)
    assert transfer.trainable_summary(net)["frozen"] == sum(p.data.size for m in (net.c1, net.c3)
                                                            for p in m.parameters())


@pytest.mark.parametrize("arch", ["lenet5", "vgg-bn", "resnet20"])
def test_each_architecture_transfers_with_a_new_head(demo, arch):
    cnnkit.manual_seed(0)
    pre = demo.ARCHS[arch](40)                                            # as pre-trained: digit × symmetry
    net = demo.transferred(pre, 5)
    name, head = transfer.find_head(net)
    assert head.weight.shape[0] == 5 and transfer.find_head(pre)[1].weight.shape[0] == 40
    for key, value in net.state_dict().items():                          # all else copied, F6 re-initialised
        if key.startswith(name + "."):
            continue
        same = np.array_equal(value, pre.state_dict()[key])
        assert same != key.startswith("f6."), key
    x = cnnkit.tensor(np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32))
    with cnnkit.no_grad():
        assert net.eval()(x).shape == (2, 5)
