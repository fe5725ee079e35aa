"""Readers for the two binary formats the classic sets ship in: IDX (MNIST, Fashion-MNIST) and the
CIFAR-10 binary records. Both are parsed byte by byte here; nothing is ever unpickled.

IDX (LeCun's format, big-endian): a 4-byte magic number ``0x00 0x00 <type> <ndim>`` — 2049 (``0x801``:
unsigned bytes, 1 dimension) for labels, 2051 (``0x803``: unsigned bytes, 3 dimensions) for images —
then ``ndim`` 4-byte sizes, then the data in C order. Files may be gzip-compressed.

CIFAR-10 binary: each file is a run of 3,073-byte records, ``<1 label byte><3,072 pixel bytes>``, the
pixels being the 1,024 red, then green, then blue values of a 32×32 image, row by row.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["IDX_LABELS_MAGIC", "IDX_IMAGES_MAGIC", "CIFAR_RECORD_BYTES", "read_idx", "read_idx_pair",
           "read_cifar_bin"]

IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
CIFAR_RECORD_BYTES = 1 + 3 * 32 * 32  # 3073

_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip signature (whatever its name)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: corrupted gzip file ({e}); delete it and download it again") from None


def read_idx(path, expected_magic: int | None = None) -> np.ndarray:
    """Parse an IDX file (raw or gzip) into an array of the shape its header gives.

    Args:
        path: the file.
        expected_magic: refuse any other magic number (2051 for images, 2049 for labels).

    Raises:
        ValueError: bad magic number (the number found is named), truncated data or extra bytes
            (byte counts given), corrupted gzip.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: truncated IDX file: {len(data)} bytes, too short for the 4-byte magic number")
    (magic,) = struct.unpack(">I", data[:4])
    kind = {IDX_IMAGES_MAGIC: "image", IDX_LABELS_MAGIC: "label"}.get(expected_magic, "IDX")
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(f"{path}: bad magic number {magic} (0x{magic:08X}); expected {expected_magic} "
                         f"(0x{expected_magic:08X}) for an IDX {kind} file")
    type_code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    if magic >> 16 or type_code not in _IDX_TYPES or ndim == 0:
        raise ValueError(f"{path}: bad magic number {magic} (0x{magic:08X}); not an IDX file")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header: {len(data)} bytes, expected {header} for {ndim} dimensions")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_TYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    dims = " x ".join(str(s) for s in shape)
    if found < expected:
        raise ValueError(f"{path}: truncated IDX data: header says {dims} = {expected} bytes, "
                         f"file holds {found} bytes after the header")
    if found > expected:
        raise ValueError(f"{path}: IDX file has {found - expected} bytes more than its header ({dims} = "
                         f"{expected} bytes) says; the file is corrupted or not what its name says")
    return np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header).reshape(shape)


def read_idx_pair(images_path, labels_path, num_classes: int = 10):
    """Images ``(N, 1, H, W)`` uint8 and labels ``(N,)`` int64 from an IDX image file and its label file.

    Raises:
        ValueError: anything :func:`read_idx` refuses, a count mismatch between the two files, or a
            label outside ``[0, num_classes)``.
    """
    images = read_idx(images_path, IDX_IMAGES_MAGIC)  # (N, H, W)
    labels = read_idx(labels_path, IDX_LABELS_MAGIC)  # (N,)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"count mismatch: {images_path} has {images.shape[0]} images but {labels_path} "
                         f"has {labels.shape[0]} labels")
    labels = labels.astype(np.int64)
    if labels.size and labels.max() >= num_classes:
        i = int(np.argmax(labels >= num_classes))
        raise ValueError(f"{labels_path}: label {labels[i]} at index {i} is out of range for {num_classes} classes")
    return images[:, None], labels  # (N, 1, H, W), (N,)


def read_cifar_bin(path, num_classes: int = 10):
    """Images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64 from one CIFAR-10 binary batch file.

    Raises:
        ValueError: a file that is not a whole number of 3,073-byte records (the byte counts are
            named), an empty file, or a label byte outside ``[0, num_classes)``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    raw = path.read_bytes()
    n, rest = divmod(len(raw), CIFAR_RECORD_BYTES)
    if rest:
        raise ValueError(f"{path}: truncated record: file has {len(raw)} bytes, not a whole number of "
                         f"{CIFAR_RECORD_BYTES}-byte records ({n} whole records and {rest} bytes of a "
                         f"{n + 1}th)")
    if n == 0:
        raise ValueError(f"{path}: empty CIFAR-10 batch file (0 bytes)")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(n, CIFAR_RECORD_BYTES)  # (N, 3073)
    labels = records[:, 0].astype(np.int64)  # (N,)
    if labels.max() >= num_classes:
        i = int(np.argmax(labels >= num_classes))
        raise ValueError(f"{path}: corrupted record {i}: label byte {labels[i]} is out of range for "
                         f"{num_classes} classes")
    images = records[:, 1:].reshape(n, 3, 32, 32)  # (N, 3, 32, 32)
    return images, labels
