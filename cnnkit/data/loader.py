"""``DataLoader``: batches of ``(x, y)`` Tensors from a data set, reproducibly shuffled.

The order of epoch ``e`` is ``numpy.random.default_rng([seed, e]).permutation(N)`` — a function of
the seed and the epoch number only, so a trainer that resumes at epoch ``k`` (``set_epoch(k)``) sees
exactly the batches an uninterrupted run saw. Random augmentations get their own generator from
``[seed, e, 1]`` for the same reason.
"""
from __future__ import annotations

import numbers

import numpy as np

from .dataset import ArrayDataset
from .transforms import Transform

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over ``dataset`` in batches.

    Args:
        dataset: an :class:`ArrayDataset` (batched by one fancy-index, no per-image Python loop unless
            a per-image transform is set) or any object with ``__len__`` and ``__getitem__(i) -> (image,
            label)``.
        batch_size: images per batch.
        shuffle: visit the images in a new random order each epoch.
        seed: seed of the shuffling and augmentation; ``None`` draws one from cnnkit's generator
            (:func:`cnnkit.manual_seed`) when the loader is made.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        transform: applied after the data set's own transform. cnnkit's transforms (and a
            ``Compose`` of them) are applied to the whole batch at once (``apply_batch``); any other
            callable is applied image by image.

    Yields:
        ``(x, y)``: ``cnnkit.Tensor`` float32 ``(B, C, H, W)`` and ``cnnkit.Tensor`` int64 ``(B,)``.

    Each ``iter()`` uses the current :attr:`epoch` and then advances it by one; :meth:`set_epoch`
    sets the epoch of the next iteration (call it when resuming, or every epoch).

    Example::

        >>> loader = DataLoader(splits.train, batch_size=64, shuffle=True, seed=0)
        >>> for x, y in loader:
        ...     loss = criterion(model(x), y)
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, seed: int | None = None,
                 drop_last: bool = False, transform=None):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: dataset must have __len__ and __getitem__, got {type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise ValueError(f"DataLoader: seed must be a non-negative int or None, got {seed!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable, got {type(transform).__name__}")
        if seed is None:
            from ..tensor import get_rng
            seed = int(get_rng().integers(0, 2**63 - 1))
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch ``epoch`` (its order depends only on ``seed`` and ``epoch``)."""
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"DataLoader.set_epoch: epoch must be a non-negative int, got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int | None = None) -> np.ndarray:
        """The indices visited in ``epoch`` (default: the next one), ``(N,)`` int64."""
        epoch = self.epoch if epoch is None else int(epoch)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        return np.random.default_rng([self.seed, epoch]).permutation(n).astype(np.int64)

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        return self._batches(epoch)

    def _batches(self, epoch: int):
        from ..tensor import Tensor

        order = self.order(epoch)
        aug_rng = np.random.default_rng([self.seed, epoch, 1])
        ds = self.dataset
        array_ds = isinstance(ds, ArrayDataset)
        per_image = [t for t in ((ds.transform if array_ds else None), self.transform) if t is not None]
        whole_batch = array_ds and all(isinstance(t, Transform) and t.batched for t in per_image)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.drop_last and len(idx) < self.batch_size:
                break
            if whole_batch:
                x = ds.images[idx]  # (B, C, H, W) — one gather, no per-image loop
                for t in per_image:
                    x = t.apply_batch(x, rng=aug_rng)
                y = ds.labels[idx]  # (B,)
            elif array_ds:
                images = []
                for i in idx:
                    image = ds.images[i]  # (C, H, W)
                    for t in per_image:
                        image = t(image, rng=aug_rng) if isinstance(t, Transform) else t(image)
                    images.append(np.asarray(image, dtype=np.float32))
                x, y = _stack(images, "DataLoader"), ds.labels[idx]
            else:
                images, labels = [], []
                for i in idx:
                    image, label = ds[int(i)]
                    if self.transform is not None:
                        t = self.transform
                        image = t(image, rng=aug_rng) if isinstance(t, Transform) else t(image)
                    images.append(np.asarray(image, dtype=np.float32))
                    labels.append(int(label))
                x, y = _stack(images, "DataLoader"), np.asarray(labels, dtype=np.int64)
            yield (Tensor(np.ascontiguousarray(x, dtype=np.float32)),
                   Tensor(np.asarray(y, dtype=np.int64)))

    def __repr__(self) -> str:
        return (f"DataLoader({len(self.dataset)} images, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"seed={self.seed}, drop_last={self.drop_last})")


def _stack(images: list, owner: str) -> np.ndarray:
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"{owner}: images in one batch have different shapes {sorted(shapes)}; "
                         "add a Resize transform")
    return np.stack(images)  # (B, C, H, W)
