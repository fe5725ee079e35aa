"""Parameter counts against published numbers (torchvision's model cards, the papers, the lecture)."""
import pytest

import cnnkit.models as M


def count(model):
    return sum(p.data.size for p in model.parameters())


# torchvision's published num_params (trainable tensors: BatchNorm γ/β included, running stats not).
TORCHVISION = {
    ("resnet18", ()): 11_689_512,
    ("resnet34", ()): 21_797_672,
    ("resnet50", ()): 25_557_032,
    ("resnet101", ()): 44_549_160,
    ("resnet152", ()): 60_192_808,
    ("vgg11", ()): 132_863_336,
    ("vgg13", ()): 133_047_848,
    ("vgg16", ()): 138_357_544,
    ("vgg19", ()): 143_667_240,
    ("vgg11", (("batch_norm", True),)): 132_868_840,
    ("vgg13", (("batch_norm", True),)): 133_053_736,
    ("vgg16", (("batch_norm", True),)): 138_365_992,
    ("vgg19", (("batch_norm", True),)): 143_678_248,
    ("vgg16_bn", ()): 138_365_992,
    ("alexnet", (("variant", "torchvision"),)): 61_100_840,
    # torchvision builds GoogLeNet with aux heads and drops them (aux1 = aux2 = None) for its card.
    ("googlenet", (("variant", "torchvision"),)): 6_624_904,
}


@pytest.mark.parametrize("name,kwargs,expected", [(n, dict(k), v) for (n, k), v in TORCHVISION.items()],
                         ids=[f"{n}{dict(k) or ''}" for (n, k) in TORCHVISION])
def test_torchvision_parameter_counts(no_init, name, kwargs, expected):
    assert count(M.create(name, **kwargs)) == expected


def test_resnet_v1_has_the_same_parameters_as_v1_5(no_init):
    assert count(M.resnet50(variant="v1")) == 25_557_032


@pytest.mark.parametrize("name,millions", [("resnet20", 0.27), ("resnet32", 0.46), ("resnet44", 0.66),
                                           ("resnet56", 0.85), ("resnet110", 1.7)])
def test_cifar_resnets_match_the_paper_table6(name, millions):
    # He et al. 2015, Table 6 (rounded to 2 significant figures).
    n = count(M.create(name))
    assert round(n / 1e6, 2 if millions < 1 else 1) == millions


def test_cifar_resnet_option_a_is_parameter_free():
    # Option A adds nothing; option B adds 1×1 conv + BN projections at the two stage changes.
    a, b = count(M.resnet20()), count(M.resnet20(shortcut="B"))
    assert b - a == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)


def test_lenet5_matches_the_lecture_table():
    m = M.lenet5()
    per_layer = {name: count(getattr(m, name)) for name in ("c1", "s2", "c3", "s4", "c5", "f6", "output")}
    assert per_layer == {"c1": 156, "s2": 0, "c3": 2416, "s4": 0, "c5": 48120, "f6": 10164, "output": 850}
    assert count(m) == 61_706


def test_lenet5_c3_table_has_lecuns_1516_parameters():
    m = M.lenet5(c3_table=True)
    assert count(m.c3) == 1516                      # LeCun et al. 1998, section II.B
    assert count(m) == 61_706 - 2416 + 1516


def test_alexnet_original_is_about_60m(no_init):
    m = M.alexnet()
    # conv1 (11·11·3 + 1)·96, conv2 (5·5·48 + 1)·256 (groups = 2), conv3 (3·3·256 + 1)·384,
    # conv4 (3·3·192 + 1)·384, conv5 (3·3·192 + 1)·256, FC (9216 + 1)·4096, (4096 + 1)·4096, (4096 + 1)·1000.
    convs = [count(m.features[i]) for i in (0, 4, 8, 10, 12)]
    assert convs == [34_944, 307_456, 885_120, 663_936, 442_624]
    assert count(m) == 60_965_224
    assert round(count(m) / 1e6) == 61          # the lecture's "60M", the paper's "60 million"


@pytest.mark.parametrize("name,millions", [("vgg11", 133), ("vgg11_lrn", 133), ("vgg13", 133),
                                           ("vgg16_c", 134), ("vgg16", 138), ("vgg19", 144)])
def test_vgg_configurations_match_the_paper_table2(no_init, name, millions):
    assert round(count(M.create(name)) / 1e6) == millions


def test_mobilenet_v1_is_4_2m(no_init):
    n = count(M.mobilenet_v1())
    assert round(n / 1e6, 1) == 4.2          # Howard et al. 2017, Table 8
    # Keras' MobileNet: 4,253,864 parameters of which 21,888 are BatchNorm moving statistics.
    assert n == 4_253_864 - 21_888


def test_mobilenet_width_multiplier_shrinks_quadratically(no_init):
    # Howard et al. Table 6: 1.0 → 4.2M, 0.75 → 2.6M, 0.5 → 1.3M, 0.25 → 0.5M parameters.
    got = [round(count(M.mobilenet_v1(alpha=a)) / 1e6, 1) for a in (1.0, 0.75, 0.5, 0.25)]
    assert got == [4.2, 2.6, 1.3, 0.5]


def test_xception_is_22_9m(no_init):
    n = count(M.xception())
    assert round(n / 1e6, 1) == 22.9         # Chollet 2017, Table 3
    # Keras' Xception: 22,910,480 parameters of which 54,528 are BatchNorm moving statistics.
    assert n == 22_910_480 - 54_528


def test_googlenet_inception_3a_reproduces_the_paper():
    # Table 1 "params" counts weights only (no biases), in K = 1024: inception (3a) 159K.
    block = M.googlenet().inception3a
    weights = sum(p.data.size for name, p in block.named_parameters() if name.endswith("weight"))
    assert weights == 163_328
    assert round(weights / 1024) == 159 or round(weights / 1024, 1) == 159.5


# Paper Table 1: input depth, #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj, params (K = 1024).
PAPER_ROWS = {
    "3a": (192, 64, 96, 128, 16, 32, 32, 159), "3b": (256, 128, 128, 192, 32, 96, 64, 380),
    "4a": (480, 192, 96, 208, 16, 48, 64, 364), "4b": (512, 160, 112, 224, 24, 64, 64, 437),
    "4c": (512, 128, 128, 256, 24, 64, 64, 463), "4d": (512, 112, 144, 288, 32, 64, 64, 580),
    "4e": (528, 256, 160, 320, 32, 128, 128, 840), "5a": (832, 256, 160, 320, 32, 128, 128, 1072),
    "5b": (832, 384, 192, 384, 48, 128, 128, 1388),
}


@pytest.mark.parametrize("key", list(PAPER_ROWS))
def test_googlenet_paper_inception_rows(key):
    d, c1, r3, c3, r5, c5, pp, kilo = PAPER_ROWS[key]
    block = getattr(M.googlenet(), f"inception{key}")
    weights = sum(p.data.size for n, p in block.named_parameters() if n.endswith("weight"))
    # The row's own definition: 1×1 + (1×1 reduce + 3×3) + (1×1 reduce + 5×5) + pool projection.
    assert weights == d * c1 + d * r3 + 9 * r3 * c3 + d * r5 + 25 * r5 * c5 + d * pp
    # The printed params column (weights only, K = 1024) follows from the definition for 3a, 3b and
    # 4b only (159.5K, 379K, 438K). The other rows cannot be reproduced from their own columns
    # (4a 366.75K vs 364K, 4c 497.5K vs 463K, 4d 590.5K vs 580K, 4e 847K vs 840K, 5a 1018K vs 1072K,
    # 5b 1409K vs 1388K): the model follows the definitions, not the printed totals.
    if key in ("3a", "3b", "4b"):
        assert abs(weights / 1024 - kilo) <= 1


def test_googlenet_aux_heads_add_two_classifiers(no_init):
    base = count(M.googlenet(variant="torchvision"))
    aux = count(M.googlenet(variant="torchvision", aux_logits=True))
    per_head = lambda c: (c * 128 + 2 * 128) + (2048 * 1024 + 1024) + (1024 * 1000 + 1000)  # noqa: E731
    assert aux - base == per_head(512) + per_head(528)
