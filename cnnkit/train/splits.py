"""The data side of every run: how ``cnnkit train`` cuts a data set, augments it and batches it.

``cnnkit evaluate`` cuts the same splits again (:data:`SPLIT_SEED`, :data:`VAL_FRACTION`), so a run's
test images are never ones it trained on. A new named data set adds its row to :data:`AUGMENTATION`.
"""
from __future__ import annotations

from pathlib import Path

from .. import data

__all__ = ["SPLIT_SEED", "VAL_FRACTION", "EVAL_BATCH", "AUGMENTATION", "load_data", "augmentation", "make_loaders"]

SPLIT_SEED, VAL_FRACTION = 0, 0.1       # every run cuts its data set the same way
EVAL_BATCH = 256                        # batch size of the validation and test passes
# Random transforms of a named set's training images: (shift of up to N pixels, horizontal flips). Folders of
# images get none.
AUGMENTATION = {"digits": (2, False), "mnist-5k": (2, False), "mnist": (2, False), "fashion-mnist": (2, False), "faces": (2, True),
                "cifar10": (4, True)}


def load_data(source: str, *, root=None, download: bool = False, input_size=None, channels=None) -> data.Splits:
    """The train / val / test splits every run cuts from ``source`` (:func:`cnnkit.data.load` with the
    recipe's split seed and validation share), resized to ``input_size``'s ``(H, W)`` when given; a
    folder of images is read in ``channels`` (1: grey, 3: RGB) when given."""
    kw = {"size": tuple(input_size[1:])} if input_size is not None else {}
    if channels is not None and data.builtin_name(source) is None and Path(source).is_dir():
        kw["mode"] = "L" if channels == 1 else "RGB"
    return data.load(source, root=root, download=download, seed=SPLIT_SEED, val_fraction=VAL_FRACTION, **kw)


def augmentation(name: str, input_size) -> list:
    """Random transforms of the training images of the named set ``name`` (:data:`AUGMENTATION`; none for folders)."""
    shift, flip = AUGMENTATION.get(name, (0, False))
    size = tuple(input_size[1:])
    return ([data.RandomCrop(size, padding=shift)] if shift else []) + ([data.RandomHorizontalFlip()] if flip else [])


def make_loaders(splits: data.Splits, batch_size: int, seed: int, augment: bool = True) -> tuple:
    """``(train, val, test)`` loaders, normalised by the training mean and std; the training loader
    shuffles with ``seed`` and, with ``augment``, applies :func:`augmentation`; ``val`` is ``None``
    without a val split."""
    norm = splits.normalize()
    extra = augmentation(splits.name, splits.input_size) if augment else []
    train = data.DataLoader(splits.train, batch_size=batch_size, shuffle=True, seed=seed,
                            transform=data.Compose(extra + [norm]) if extra else norm)
    val = data.DataLoader(splits.val, batch_size=EVAL_BATCH, transform=norm) if splits.val is not None else None
    test = data.DataLoader(splits.test, batch_size=EVAL_BATCH, transform=norm)
    return train, val, test
