"""Transfer learning on built-in data: pre-train LeNet-5 on the digits 0–4, then learn the digits 5–9
(and, likewise, faces vs non-faces) from a few labelled examples per class — with the pre-trained
network (new head) and from scratch on the very same examples, each method tuned the same way.

    python examples/transfer_digits.py                  # 5 and 10 examples per class, 3 seeds (~4 min)
    python examples/transfer_digits.py --shots 10 --modes all later --keep-f6 --no-faces
    python examples/transfer_digits.py --arch vgg-bn --shots 5 10 20 --no-faces      # a bigger network (~5 min a shot count)
    python examples/transfer_digits.py --arch vgg-bn --shots 10 --no-faces --all-source   # the clearest margin (below)
    python examples/transfer_digits.py --arch resnet20 --shots 5 --pretrain-epochs 4 --epochs 100 --lrs 1e-3 --no-faces

The recipe (each step measured against the alternatives, see below):

* **Pre-training** on the ~630 training images of the digits 0–4 (random shifts of up to 3 pixels), with
  each image also shown under the 8 symmetries of the square (4 rotations × mirror) and the label
  ``digit × symmetry`` (40 classes). The 5-class task alone lets C5/F6 collapse onto what separates 0–4;
  the extra symmetry classes keep more of the strokes' shape in the features (a linear probe on C5 with
  10 examples per class of 5–9: 0.87 → 0.95). Only source images and labels are used.
* **Transfer**: the output layer replaced (5 classes), F6 re-initialised as well (F6 is specific to the
  source classes: keeping it cost 1–4 points), and everything fine-tuned ("all") with Adam at one
  learning rate (a body 10× slower than the head was worse).
* **From scratch**: LeNet-5 with PyTorch's default initialisation, Adam.
* **Same treatment**: both train on the same few images with the same augmentation (random shifts of
  up to 2 pixels), the same number of epochs (150: scratch gains 1–3 points from 60 to 150 epochs,
  neither gains from 150 to 300), and the learning rate chosen for each method from the same grid
  (3e-4, 1e-3, 3e-3, 1e-2) by the same rule: the best mean accuracy, over the seeds, on a validation set
  carved from the target *training* images that are not among the few examples. Test images are used
  only for the reported numbers. As a check the script also prints scratch at its best learning rate
  *on the test set* (an upper bound on any tuning of its learning rate).

Measured (2-core machine, OMP_NUM_THREADS=1, the default run above: 4 min), test accuracy on the 179
test images of the digits 5–9, learning rate chosen on validation, seeds 0 / 1 / 2:

    per class  from scratch                  transfer ("all")              margin (per seed)
    5          0.920 (0.922 0.899 0.939)     0.927 (0.927 0.894 0.961)     +0.7 (+0.5 −0.5 +2.2)
    10         0.929 (0.933 0.899 0.955)     0.931 (0.944 0.888 0.961)     +0.2 (+1.1 −1.1 +0.6)

Both methods chose their learning rates on validation (scratch 3e-3, transfer 1e-3 at both shot
counts); scratch at its best learning rate on the test set scores the same. On the validation images
(~580 per seed, less noisy than the 179 test images) the transfer is ahead by +0.9 (5 per class) and
+0.6 (10). Over 10 seeds (0–9, same learning rates) the margin is +1.1 ± 0.5 (5 per class) and
+0.9 ± 0.6 (10) on test, +1.3 / +1.4 on validation: **the transfer is reliably a little better, by
about one point, not by a clear margin.** Training on 25–50 images is chaotic: a change in the last
bits of a convolution kernel moves single seeds by up to 3 points (the 3-seed means above moved by
about a point between two runs on different commits of the kernels). Faces (2 classes, 40 test
images): 5 per class scratch 0.867, transfer 0.908 (+4.2); 10 per class 0.875 vs 0.908 (+3.3).

What did not help (measured on the validation split, 3 seeds, 5 and 10 per class): training only a new
head on frozen C5 or F6 features (1–20 points worse), freezing C1 or C1+C3 ("later"), a body learning
rate 10× below the head's, training the head first and then everything, a head straight on C5 (F6
removed, also with weights imprinted from the class means), weight decay, L2-SP (a pull towards the
pre-trained weights), cosine annealing, the symmetry labels on the target images too (both methods), in
pre-training random affine/elastic warps, a second scale, more epochs or each source image as its own
class; fewer examples (1–3 per class) do not widen the gap either. The honest caveat: these digits are
8×8 originals upscaled, nearly template-matchable (nearest class mean on raw pixels with 3 examples per
class: 0.86), so a properly trained from-scratch LeNet is a strong baseline and the gain from ~630
source images is small.

Bigger networks, same protocol (3 seeds, test / validation, measured 2026-11-26; ``--arch``): a VGG-style
net with batch norm (``SmallVGG``: 16/32/64 channels, 155 k parameters) from scratch scores 0.924 / 0.950
at 5 per class and 0.944 / 0.961 at 10; transferred 0.914–0.929 and 0.963 / 0.973 — +1.9 points over
the best from-scratch network at 10 per class, none at 5. At 20 per class 0.957 / 0.968 against
0.963 / 0.977 (+0.6; seed 1 −1.7), at 30 (seed 0 only) both 0.98: the gap closes as the examples grow. A wider VGG-BN and a wide LeNet (495 k parameters)
did no better; neither did frozen batch-norm statistics, re-initialising C5 too, SGD, a cosine head,
training on source batches alongside, or prototypical pre-training. The lecture's effect does show on
a network too big for the data: ResNet-20 from scratch collapses to 0.73 on 25 images and transfer
lifts it to 0.86–0.89 — still below a small network trained from scratch. The ceiling is near 0.99
(LeNet-5 on 100 per class), so a clear margin would need transfer at 0.98.

More source data helps a little. ``--all-source`` pre-trains on the test images of 0–4 as well (811
images instead of 631; they are never target images, and the source accuracy is then not reported).
Measured 2026-11-26 with ``OMP_NUM_THREADS=1 python examples/transfer_digits.py --arch vgg-bn --shots 10 30
--no-faces`` with and without ``--all-source`` (scratch is the same network and run either way: 0.933 at
10 per class, 0.970 at 30), test / best validation accuracy:

    per class  from scratch    transfer, 631 source images   transfer, 811 (--all-source)
    10         0.933 / 0.961   0.957 / 0.973  (+2.4)         0.965 / 0.975  (+3.2; per seed +3.4 +2.8 +3.3)
    30         0.970 / 0.984   0.970 / 0.987  (+0.0)         0.983 / 0.990  (+1.3)

So at 10 examples per class the transfer wins in every seed, by about 3 points on the 179 test images
and 1.4 on the ~580 validation images; at 30 by about one point. LeNet-5, the default run (``--no-faces``,
same protocol and threads): scratch 0.907 (5 per class) and 0.922 (10); transfer from 631 images 0.911
(+0.4) and 0.935 (+1.3), from 811 0.926 (+1.9) and 0.946 (+2.4) — but on validation both pre-trainings are
ahead by the same +1.8–1.9 (5 per class) and +0.9–1.0 points (10). The same VGG-BN run with
``--all-source`` at 5 and 20 per class (``--shots 5 20``, measured 2026-11-26): 5 per class scratch
0.924, transfer 0.918 (−0.6; validation 0.950 both); 20 per class scratch 0.959, transfer 0.966 (+0.7;
per seed +1.7, −1.7, +2.2; validation 0.968 against 0.978). So the clear gain is at 10 per class only.
Measured again after the ninth session's kernel changes (which move the last bits of the convolutions' sums;
``OMP_NUM_THREADS=1``, ``--arch vgg-bn --shots 10 --no-faces --all-source``, 2026-11-26 13:42 UTC): scratch
0.933 (0.944 0.905 0.950), transfer 0.963 (0.983 0.927 0.978), +3.0 (per seed +3.9 +2.2 +2.8); scratch at
its best learning rate on the test set 0.942; validation 0.961 against 0.973.
"""
from __future__ import annotations

import argparse
import copy
import time

import numpy as np

import cnnkit
from cnnkit import models, nn, optim, transfer
from cnnkit.data import ArrayDataset, Compose, DataLoader, RandomCrop
from cnnkit.train import evaluate, finetune, fit

LRS = (3e-4, 1e-3, 3e-3, 1e-2)


class SmallVGG(nn.Module):
    """A VGG-style network for 32×32 grey images: three blocks of conv 3×3 (16, 32, 64 channels) →
    batch norm → ReLU → max pool 2×2, then F6 (1024 → 128) and the output layer; 155 k parameters."""

    def __init__(self, num_classes: int = 10, widths=(16, 32, 64), hidden: int = 128):
        super().__init__()
        layers, c = [], 1
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2)]
            c = w
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        self.f6 = nn.Linear(c * 16, hidden)
        self.act6 = nn.ReLU()
        self.output = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.output(self.act6(self.f6(self.flatten(self.features(x)))))


#: The networks the script compares (``--arch``), each built with ``num_classes`` outputs.
ARCHS = {"lenet5": lambda k: models.lenet5(num_classes=k),
         "vgg-bn": lambda k: SmallVGG(num_classes=k),
         "resnet20": lambda k: models.create("resnet20", num_classes=k, in_channels=1)}


def relabel(ds: ArrayDataset, keep, classes) -> ArrayDataset:
    """The images whose label is in ``keep``, relabelled 0..len(keep)-1."""
    keep = list(keep)
    idx = np.flatnonzero(np.isin(ds.labels, keep))
    mapping = {c: i for i, c in enumerate(keep)}
    labels = np.array([mapping[int(v)] for v in ds.labels[idx]], dtype=np.int64)
    return ArrayDataset(ds.images[idx], labels, classes)


def source_sets(digits, all_source: bool = False):
    """The digits 0–4 for pre-training and for the source accuracy: ``(train, test)``. With ``all_source`` the
    test images of 0–4 (never target images) are pre-trained on as well, and ``test`` is None."""
    src = [str(i) for i in range(5)]
    train, test = relabel(digits.train, range(5), src), relabel(digits.test, range(5), src)
    if not all_source:
        return train, test
    return ArrayDataset(np.concatenate([train.images, test.images]), np.concatenate([train.labels, test.labels]),
                        src), None


def few_shot(ds: ArrayDataset, shots: int, seed: int, rest: bool = False):
    """``shots`` random images of each class (all of a class if it has fewer); with ``rest=True`` also
    the other images, ``(few, rest)`` — the validation set used to choose learning rates."""
    rng = np.random.default_rng(seed)
    idx = np.sort(np.concatenate([rng.permutation(np.flatnonzero(ds.labels == c))[:shots]
                                  for c in range(len(ds.classes))]))
    if not rest:
        return ds.subset(idx)
    return ds.subset(idx), ds.subset(np.setdiff1d(np.arange(len(ds)), idx))


def with_symmetries(ds: ArrayDataset) -> ArrayDataset:
    """Each image under the 8 symmetries of the square, labelled ``8 * label + symmetry``."""
    x = ds.images                                                        # (N, C, H, W)
    images = np.concatenate([np.rot90(v, r, axes=(2, 3)) for v in (x, x[..., ::-1]) for r in range(4)])
    labels = np.concatenate([ds.labels * 8 + s for s in range(8)])
    classes = [f"{c}/{s}" for c in ds.classes for s in range(8)]
    return ArrayDataset(np.ascontiguousarray(images), labels, classes)


def pretrain(source_train, norm, epochs: int, seed: int = 0, symmetries: bool = True, arch: str = "lenet5"):
    """``arch`` (default LeNet-5) trained on the source classes with random shifts of up to 3 pixels; with ``symmetries``
    on ``digit × symmetry`` (:func:`with_symmetries`, 8× the images per epoch)."""
    data = with_symmetries(source_train) if symmetries else source_train
    cnnkit.manual_seed(seed)
    model = ARCHS[arch](len(data.classes))
    loader = DataLoader(data, batch_size=32, shuffle=True, seed=seed,
                        transform=Compose([RandomCrop(source_train.input_size[1:], padding=3), norm]))
    fit(model, loader, epochs=epochs, optimizer=optim.Adam(model.parameters(), lr=2e-3), seed=seed,
        log=False, progress=False)
    return model


def train_few(model, train, norm, *, mode: str | None, epochs: int, seed: int, lr: float,
              body_lr: float | None = None, shift: int = 2) -> None:
    """Fine-tune ``model`` or train it from scratch (``mode=None``: everything at ``lr``), on ``train``
    shifted at random by up to ``shift`` pixels.

    ``mode`` is one of the lecture's modes — ``"head"``, ``"later"``, ``"all"``: the head at ``lr``, the
    unfrozen body at ``body_lr`` (default ``lr``) — or two in turn, e.g. ``"head+later"``: first the head
    alone (half the epochs), then the later layers too.
    """
    tf = Compose([RandomCrop(train.input_size[1:], padding=shift), norm]) if shift else norm
    loader = DataLoader(train, batch_size=16, shuffle=True, seed=seed, transform=tf)
    if mode is None:
        fit(model, loader, epochs=epochs, optimizer=optim.Adam(model.parameters(), lr=lr), seed=seed,
            log=False, progress=False)
        return
    body_lr = lr if body_lr is None else body_lr
    phases = mode.split("+")
    for i, phase in enumerate(phases):
        n = epochs // len(phases) if i < len(phases) - 1 else epochs - (epochs // len(phases)) * i
        finetune(model, loader, mode=phase, lr=body_lr, head_lr=lr, epochs=n, seed=seed + i,
                 log=False, progress=False)


def transferred(pretrained, num_classes: int, reset_f6: bool = True):
    """A copy of ``pretrained`` with a new ``num_classes`` head and (``reset_f6``) F6 re-initialised
    (only for modes that train F6: not for ``"head"``, which would leave a random F6 frozen; networks
    without an F6, ResNet-20, keep everything but the head)."""
    net = copy.deepcopy(pretrained)
    transfer.replace_head(net, num_classes)
    if reset_f6 and hasattr(net, "f6"):
        net.f6.reset_parameters()
    return net


def accuracy(model, test, norm) -> float:
    return evaluate(model, DataLoader(test, batch_size=256, transform=norm)).accuracy


def compare(pretrained, target_train, target_test, norm, *, shots: int, seeds, epochs: int, lrs=LRS,
            modes=("all",), reset_f6: bool = True, shift: int = 2, arch: str = "lenet5") -> dict:
    """Scratch and each transfer ``mode`` on the same ``shots`` examples per class, for each seed and
    learning rate in ``lrs``; each method's learning rate is the one with the best mean accuracy on the
    rest of ``target_train``.

    Returns ``{method: {"lr": chosen, "mean": test mean at it, "per_seed": [...], "val": {lr: mean},
    "test": {lr: mean}}}`` for ``"scratch"`` and each mode.
    """
    k = len(target_train.classes)
    runs = {m: {lr: ([], []) for lr in lrs} for m in ("scratch", *modes)}     # lr -> (val, test) per seed
    for seed in seeds:
        train, val = few_shot(target_train, shots, seed, rest=True)
        for lr in lrs:
            for method in runs:
                cnnkit.manual_seed(100 + seed)
                if method == "scratch":
                    net = ARCHS[arch](k)
                    train_few(net, train, norm, mode=None, epochs=epochs, seed=seed, lr=lr, shift=shift)
                else:
                    net = transferred(pretrained, k, reset_f6 and not method.startswith("head"))
                    train_few(net, train, norm, mode=method, epochs=epochs, seed=seed, lr=lr, shift=shift)
                runs[method][lr][0].append(accuracy(net, val, norm))
                runs[method][lr][1].append(accuracy(net, target_test, norm))
    out = {}
    for method, by_lr in runs.items():
        val = {lr: float(np.mean(v)) for lr, (v, _) in by_lr.items()}
        best = max(lrs, key=lambda lr: val[lr])
        out[method] = {"lr": best, "mean": float(np.mean(by_lr[best][1])), "per_seed": by_lr[best][1],
                       "val": val, "test": {lr: float(np.mean(t)) for lr, (_, t) in by_lr.items()}}
    return out


def run(shots=(5, 10), seeds=(0, 1, 2), pretrain_epochs: int = 10, epochs: int = 150, faces: bool = True,
        modes=("all",), lrs=LRS, symmetries: bool = True, reset_f6: bool = True, verbose: bool = True,
        arch: str = "lenet5", all_source: bool = False) -> dict:
    """Both experiments for each number of ``shots``; returns ``{"source_accuracy": ..., ("digits", k):
    compare(...), ("faces", k): compare(...)}``."""
    say = print if verbose else (lambda *a, **k: None)
    shots = (shots,) if isinstance(shots, int) else tuple(shots)
    digits = cnnkit.data.load("digits")
    norm = digits.normalize()
    tgt = [str(i) for i in range(5, 10)]
    source_train, source_test = source_sets(digits, all_source)
    t0 = time.perf_counter()
    pre = pretrain(source_train, norm, pretrain_epochs, symmetries=symmetries, arch=arch)
    # source accuracy: the logits of the unrotated class of each digit
    net = copy.deepcopy(pre)
    if symmetries:
        old = transfer.find_head(net)[1]
        new = transfer.replace_head(net, 5)
        new.weight.data[...], new.bias.data[...] = old.weight.data[::8], old.bias.data[::8]
    src_acc = float("nan") if source_test is None else accuracy(net, source_test, norm)
    say(f"pre-trained {arch} on digits 0-4 ({len(source_train)} images{' x 8 symmetries' if symmetries else ''}, "
        f"{pretrain_epochs} epochs, {time.perf_counter() - t0:.0f} s): "
        + ("all of them used for training" if source_test is None else f"test accuracy {src_acc:.3f}"))
    out = {"source_accuracy": src_acc}
    tasks = [("digits", "digits 5-9", relabel(digits.train, range(5, 10), tgt),
              relabel(digits.test, range(5, 10), tgt), norm)]
    if faces:
        f = cnnkit.data.load("faces")              # 200 grey 25×25 crops, resized to LeNet's 32×32
        tasks.append(("faces", "faces vs non-faces", f.train, f.test, f.normalize()))
    for key, label, train, test, tnorm in tasks:
        for k in shots:
            t0 = time.perf_counter()
            res = compare(pre, train, test, tnorm, shots=k, seeds=seeds, epochs=epochs, lrs=lrs, modes=modes,
                          reset_f6=reset_f6, arch=arch)
            out[key, k] = res
            say(f"\n{label}: {k} labelled examples per class, {len(test)} test images, seeds "
                f"{' '.join(map(str, seeds))}, {epochs} epochs, lr chosen on the other training images "
                f"({time.perf_counter() - t0:.0f} s)")
            base = res["scratch"]["mean"]
            for name, r in res.items():
                tag = "from scratch" if name == "scratch" else f"transfer ({name})"
                gain = "" if name == "scratch" else f"   {100 * (r['mean'] - base):+.1f} points"
                say(f"  {tag:18} lr {r['lr']:g}  test accuracy {r['mean']:.3f}   per seed "
                    f"{', '.join(f'{v:.3f}' for v in r['per_seed'])}{gain}")
            best = max(res["scratch"]["test"].values())
            say(f"  (scratch at its best lr on the test set: {best:.3f}; validation accuracy by lr: "
                + "; ".join(f"{n} " + " ".join(f"{v:.3f}" for v in r["val"].values()) for n, r in res.items())
                + ")")
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=sorted(ARCHS), default="lenet5",
                   help="the network, pre-trained and from scratch (default: lenet5)")
    p.add_argument("--shots", type=int, nargs="+", default=[5, 10],
                   help="labelled examples per target class (default: 5 and 10)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds to average over (default 0 1 2)")
    p.add_argument("--pretrain-epochs", type=int, default=10)
    p.add_argument("--epochs", type=int, default=150, help="epochs on the few examples, both methods (default 150)")
    p.add_argument("--lrs", type=float, nargs="+", default=list(LRS),
                   help="learning-rate grid, the same for every method (default: 3e-4 1e-3 3e-3 1e-2)")
    p.add_argument("--modes", nargs="+", default=["all"],
                   help="fine-tuning modes to compare: head, later, all, or head+later (default: all)")
    p.add_argument("--keep-f6", action="store_true", help="keep the pre-trained F6 (default: re-initialise it)")
    p.add_argument("--no-symmetries", action="store_true",
                   help="pre-train on the 5 digit classes only (default: digit x 8 symmetries)")
    p.add_argument("--no-faces", action="store_true", help="skip the faces experiment")
    p.add_argument("--all-source", action="store_true",
                   help="pre-train on the test images of 0-4 too (they are not target images; no source accuracy)")
    args = p.parse_args(argv)
    run(tuple(args.shots), tuple(args.seeds), args.pretrain_epochs, args.epochs, faces=not args.no_faces,
        modes=tuple(args.modes), lrs=tuple(args.lrs), symmetries=not args.no_symmetries,
        reset_f6=not args.keep_f6, arch=args.arch, all_source=args.all_source)


if __name__ == "__main__":
    main()
