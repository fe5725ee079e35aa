"""In-memory data sets: :class:`ArrayDataset`, the :class:`Splits` bundle and the stratified split.

Every loader in :mod:`cnnkit.data` ends here: images as one float32 array ``(N, C, H, W)`` in
[0, 1], labels as one int64 array ``(N,)`` and the class names. Keeping the whole set in one array
is what lets :class:`~cnnkit.data.DataLoader` build a batch with a single fancy-index.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ArrayDataset", "Splits", "stratified_split", "channel_stats"]


class ArrayDataset:
    """A labelled image set held in memory.

    Args:
        images: float array ``(N, C, H, W)``, stored as float32 (uint8 is refused: scale it to [0, 1]
            first, e.g. with :class:`~cnnkit.data.ToTensor`).
        labels: integer array ``(N,)`` with values in ``[0, len(classes))``, stored as int64.
        classes: the class names; ``classes[label]`` names a label.
        transform: optional callable applied to one image ``(C, H, W)`` by ``__getitem__``.

    Example::

        >>> ds = ArrayDataset(np.zeros((4, 1, 8, 8), np.float32), np.array([0, 1, 0, 1]), ["a", "b"])
        >>> x, y = ds[1]      # x: (1, 8, 8) float32, y: 1
    """

    def __init__(self, images, labels, classes, transform=None):
        if not isinstance(images, np.ndarray):
            raise TypeError(f"ArrayDataset: images must be a numpy.ndarray, got {type(images).__name__}")
        if images.ndim != 4:
            raise ValueError(f"ArrayDataset: images must have shape (N, C, H, W), got shape {images.shape}")
        if images.dtype.kind != "f":
            raise TypeError(f"ArrayDataset: images must be floating point in [0, 1], got dtype {images.dtype}"
                            " (convert uint8 images with cnnkit.data.ToTensor or divide by 255)")
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu":
            raise TypeError(f"ArrayDataset: labels must be integers, got dtype {labels.dtype}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"ArrayDataset: {images.shape[0]} images but labels have shape {labels.shape}")
        classes = [str(c) for c in classes]
        if not classes:
            raise ValueError("ArrayDataset: classes must name at least one class")
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            bad = labels[(labels < 0) | (labels >= len(classes))][0]
            raise ValueError(f"ArrayDataset: label {int(bad)} out of range for {len(classes)} classes")
        if transform is not None and not callable(transform):
            raise TypeError(f"ArrayDataset: transform must be callable, got {type(transform).__name__}")
        self.images = images.astype(np.float32, copy=False)  # (N, C, H, W)
        self.labels = labels.astype(np.int64, copy=False)    # (N,)
        self.classes = classes
        self.transform = transform

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index):
        n = len(self)
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"ArrayDataset: index must be an int, got {type(index).__name__}")
        if not -n <= index < n:
            raise IndexError(f"ArrayDataset: index {index} out of range for {n} images")
        image = self.images[index]  # (C, H, W)
        if self.transform is not None:
            image = np.asarray(self.transform(image), dtype=np.float32)
        return image, int(self.labels[index])

    @property
    def input_size(self) -> tuple:
        """``(C, H, W)`` of one image."""
        return tuple(int(s) for s in self.images.shape[1:])

    def subset(self, indices) -> "ArrayDataset":
        """The images at ``indices`` (same classes and transform); indices are copied, not viewed."""
        indices = np.asarray(indices)
        if indices.dtype.kind == "b":
            indices = np.flatnonzero(indices)
        if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
            raise TypeError(f"ArrayDataset.subset: indices must be a 1-d integer array, got {indices!r}")
        indices = indices.astype(np.int64)
        if indices.size and (indices.min() < -len(self) or indices.max() >= len(self)):
            raise IndexError(f"ArrayDataset.subset: index out of range for {len(self)} images")
        return ArrayDataset(self.images[indices], self.labels[indices], self.classes, self.transform)

    def class_counts(self) -> np.ndarray:
        """Number of images of each class, ``(len(classes),)`` int64."""
        return np.bincount(self.labels, minlength=len(self.classes)).astype(np.int64)

    def __repr__(self) -> str:
        c, h, w = self.input_size
        return f"ArrayDataset({len(self)} images, {c}x{h}x{w}, {len(self.classes)} classes)"


@dataclass
class Splits:
    """A data set cut into train / validation / test, with what a model needs to know about it.

    Attributes:
        train, val, test: :class:`ArrayDataset` s (``val`` is ``None`` when ``val_fraction=0``).
        classes: class names, ``classes[label]``.
        input_size: ``(C, H, W)`` of one image.
        mean, std: per-channel statistics of the *training* images (for :class:`Normalize`).
        name: the data set's name (``"digits"``, ``"mnist"``, or the folder for an image folder).
        prepare: how a picture from outside the set is made to look like its images, or ``None``
            (resize only). ``{"kind": "digit", "size": S}``: MNIST's preparation,
            :func:`cnnkit.data.prepare_digit` with ``size=S``, then a resize to ``input_size`` if it
            differs (``mnist``, ``mnist-5k``).
    """

    train: ArrayDataset
    val: ArrayDataset | None
    test: ArrayDataset
    classes: list
    input_size: tuple
    mean: tuple
    std: tuple
    name: str
    prepare: dict | None = None

    def normalize(self):
        """A :class:`~cnnkit.data.Normalize` with this set's training mean and std."""
        from .transforms import Normalize
        return Normalize(self.mean, self.std)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(d) if d is not None else 0}"
                          for k, d in (("train", self.train), ("val", self.val), ("test", self.test)))
        return (f"Splits({self.name!r}, {sizes}, input_size={self.input_size}, "
                f"classes={len(self.classes)})")


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple:
    """Per-channel mean and (population) std of ``images`` ``(N, C, H, W)``, as two tuples of floats.

    Two passes over chunks of ``chunk`` images, summing in float64, so 50,000 CIFAR images need no
    float64 copy.
    """
    n, c = images.shape[:2]
    count = n * images.shape[2] * images.shape[3]
    if count == 0:
        return (0.0,) * c, (1.0,) * c
    total = np.zeros(c)                                                    # (C,)
    for i in range(0, n, chunk):
        total += images[i:i + chunk].sum(axis=(0, 2, 3), dtype=np.float64)
    mean = total / count                                                   # (C,)
    sq = np.zeros(c)                                                       # (C,)
    for i in range(0, n, chunk):
        d = images[i:i + chunk] - mean.astype(np.float32)[:, None, None]   # (chunk, C, H, W)
        np.square(d, out=d)
        sq += d.sum(axis=(0, 2, 3), dtype=np.float64)
    std = np.sqrt(sq / count)
    std = np.where(std > 0, std, 1.0)              # a constant channel normalises to 0, not NaN
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _allocate(counts: np.ndarray, fraction: float, room: np.ndarray) -> np.ndarray:
    """Per-class shares of ``round(N * fraction)`` images: each class gets ``floor(n_c * fraction)`` or one
    more (largest remainders first, then the larger class), never more than ``room``."""
    exact = counts * fraction                                   # (K,)
    take = np.minimum(np.floor(exact).astype(np.int64), room)   # (K,)
    short = int(np.floor(counts.sum() * fraction + 0.5)) - int(take.sum())
    order = np.lexsort((-counts, -(exact - np.floor(exact))))  # largest remainder first
    for c in order:
        if short <= 0:
            break
        if take[c] < room[c]:
            take[c] += 1
            short -= 1
    return take


def stratified_split(labels, fractions, seed: int = 0) -> list:
    """Cut indices ``0..N-1`` into parts whose class proportions follow the whole set's.

    Part ``k`` gets ``round(N * fractions[k])`` images, class ``c`` contributing ``floor(n_c * f)`` or
    one more (largest remainders first, as scikit-learn's stratified splits); the last part gets the
    rest, and keeps at least one image of every class. Each class's images are drawn in the order of
    ``numpy.random.default_rng(seed).permutation``; returned index arrays are sorted.

    Args:
        labels: integer array ``(N,)``.
        fractions: fractions of the whole for the first parts, e.g. ``(0.2, 0.1)`` gives
            ``[test 20 %, val 10 %, rest 70 %]``.
        seed: the shuffle's seed; the same seed gives the same split.
    """
    labels = np.asarray(labels)
    fractions = [float(f) for f in fractions]
    if any(f < 0 for f in fractions) or sum(fractions) >= 1:
        raise ValueError(f"stratified_split: fractions must be >= 0 and sum to less than 1, got {fractions}")
    rng = np.random.default_rng(seed)
    classes, inverse = np.unique(labels, return_inverse=True)
    counts = np.bincount(inverse.reshape(-1), minlength=len(classes)).astype(np.int64)  # (K,)
    room = counts - 1                       # one image of each class stays in the last part
    takes = []
    for f in fractions:
        take = _allocate(counts, f, room)   # (K,)
        room = room - take
        takes.append(take)
    parts = [[] for _ in range(len(fractions) + 1)]
    for c in range(len(classes)):
        idx = rng.permutation(np.flatnonzero(inverse.reshape(-1) == c))
        start = 0
        for k, take in enumerate(takes):
            parts[k].append(idx[start:start + take[c]])
            start += take[c]
        parts[-1].append(idx[start:])
    return [np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64) for p in parts]
