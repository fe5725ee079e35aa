"""The transfer-learning demonstration (examples/transfer_digits.py), reduced to run in well under a
minute: LeNet-5 pre-trained on the digits 0–4, its head replaced, fine-tuned on 10 labelled examples
per class of the digits 5–9 with C1 and C3 frozen ("later"), against the same network trained from
scratch on the same examples with the same optimiser settings; and freezing is exact."""
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
def setup(demo):
    digits = cnnkit.data.load("digits")
    norm = digits.normalize()
    src, tgt = [str(i) for i in range(5)], [str(i) for i in range(5, 10)]
    pre = demo.pretrain(demo.relabel(digits.train, range(5), src), norm, epochs=8)
    target_train = demo.relabel(digits.train, range(5, 10), tgt)
    target_test = demo.relabel(digits.test, range(5, 10), tgt)
    return pre, norm, target_train, target_test, demo.relabel(digits.test, range(5), src)


def test_split_by_label(demo, setup):
    _, _, target_train, target_test, source_test = setup
    assert set(np.unique(target_train.labels)) == set(range(5)) and target_train.classes == list("56789")
    few = demo.few_shot(target_train, 10, seed=0)
    assert np.array_equal(few.class_counts(), [10] * 5)
    assert len(target_test) + len(source_test) == len(cnnkit.data.load("digits").test)


@pytest.mark.slow
def test_transfer_beats_scratch_on_the_digits_5_to_9(demo, setup):
    pre, norm, target_train, target_test, source_test = setup
    assert demo.accuracy(pre, source_test, norm) > 0.95                   # a useful pre-trained network
    res = demo.compare(pre, target_train, target_test, norm, shots=10, seeds=(0, 1, 2), epochs=15,
                       modes=("later",))
    scratch, later = res["scratch"][0], res["later"][0]
    print(f"scratch {scratch:.3f}  transfer (later) {later:.3f}")
    assert later > scratch + 0.02, res


def test_freezing_is_exact_when_fine_tuning(demo, setup):
    pre, norm, target_train, _, _ = setup
    net = copy.deepcopy(pre)
    head = transfer.replace_head(net, 5)
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
