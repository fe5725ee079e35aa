"""Writers of small files in the real published formats, written from the format specifications
(independently of cnnkit's readers): IDX (LeCun's MNIST page) and CIFAR-10 binary records."""
from __future__ import annotations

import gzip
import io
import struct
import tarfile
from pathlib import Path

import numpy as np

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")


def idx_images_bytes(images: np.ndarray, magic: int = 2051) -> bytes:
    n, h, w = images.shape
    return struct.pack(">IIII", magic, n, h, w) + images.astype(np.uint8).tobytes()


def idx_labels_bytes(labels: np.ndarray, magic: int = 2049) -> bytes:
    return struct.pack(">II", magic, len(labels)) + np.asarray(labels, np.uint8).tobytes()


def make_mnist_like(rng, n_train=60, n_test=20, hw=(28, 28), classes=10):
    """Random uint8 images and labels with every class present in both parts."""
    def part(n):
        labels = np.arange(n) % classes
        rng.shuffle(labels)
        return rng.integers(0, 256, size=(n, *hw), dtype=np.uint8), labels.astype(np.uint8)
    return part(n_train), part(n_test)


def write_idx_set(folder: Path, train, test, gz: bool = True) -> dict:
    """Write the four IDX files of an MNIST-style set; returns {file name: bytes written}."""
    folder.mkdir(parents=True, exist_ok=True)
    blobs = [idx_images_bytes(train[0]), idx_labels_bytes(train[1]),
             idx_images_bytes(test[0]), idx_labels_bytes(test[1])]
    out = {}
    for base, blob in zip(IDX_FILES, blobs):
        name = base + (".gz" if gz else "")
        data = gzip.compress(blob, mtime=0) if gz else blob
        (folder / name).write_bytes(data)
        out[name] = data
    return out


def cifar_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """CIFAR-10 binary: per record one label byte then 1,024 R, 1,024 G, 1,024 B bytes."""
    out = bytearray()
    for img, lab in zip(images, labels):  # img: (3, 32, 32) uint8
        out.append(int(lab))
        for ch in range(3):
            out += img[ch].astype(np.uint8).tobytes()
    return bytes(out)


def make_cifar_like(rng, per_batch=12, n_test=10):
    batches = []
    for _ in range(5):
        labels = np.arange(per_batch) % 10
        batches.append((rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8), labels))
    test = (rng.integers(0, 256, (n_test, 3, 32, 32), dtype=np.uint8), np.arange(n_test) % 10)
    return batches, test


CIFAR_NAMES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
CIFAR_META = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n"


def write_cifar_set(folder: Path, batches, test) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (x, y) in zip(CIFAR_NAMES, [*batches, test]):
        (folder / name).write_bytes(cifar_bytes(x, y))
    (folder / "batches.meta.txt").write_text(CIFAR_META)


def cifar_tar_gz(batches, test) -> bytes:
    """The layout of cifar-10-binary.tar.gz: members under cifar-10-batches-bin/."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        blobs = [cifar_bytes(x, y) for x, y in [*batches, test]] + [CIFAR_META.encode()]
        for name, blob in zip(CIFAR_NAMES + ["batches.meta.txt"], blobs):
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return buf.getvalue()
