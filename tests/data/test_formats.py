"""IDX and CIFAR-10 binary fixtures, generated here in the published formats, round-trip through the
readers and ``load``; each kind of damage raises its own error."""
import gzip
import struct

import numpy as np
import pytest

import cnnkit
from cnnkit.data import read_cifar_bin, read_idx, read_idx_pair

from .fixtures import (CIFAR_NAMES, cifar_bytes, idx_images_bytes, idx_labels_bytes, make_cifar_like,
                       make_mnist_like, write_cifar_set, write_idx_set)


# ----------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, rng, gz):
    train, test = make_mnist_like(rng, 30, 10)
    write_idx_set(tmp_path, train, test, gz=gz)
    suffix = ".gz" if gz else ""
    x, y = read_idx_pair(tmp_path / f"train-images-idx3-ubyte{suffix}", tmp_path / f"train-labels-idx1-ubyte{suffix}")
    assert x.shape == (30, 1, 28, 28) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:, 0], train[0])
    np.testing.assert_array_equal(y, train[1])
    assert y.dtype == np.int64


def test_idx_header_is_parsed_not_assumed(tmp_path, rng):
    # a non-28x28 image size and a first pixel row that would look like a header if offsets were wrong
    img = rng.integers(0, 256, (3, 5, 7), dtype=np.uint8)
    (tmp_path / "a").write_bytes(struct.pack(">IIII", 2051, 3, 5, 7) + img.tobytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "a", 2051), img)


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_and_fashion_from_generated_files(tmp_path, rng, gz):
    train, test = make_mnist_like(rng, 60, 20)
    write_idx_set(tmp_path / "mnist", train, test, gz=gz)
    s = cnnkit.data.load("mnist", root=tmp_path, val_fraction=0.1, seed=3)
    assert (len(s.train), len(s.val), len(s.test)) == (54, 6, 20)
    assert s.input_size == (1, 28, 28) and s.classes == [str(i) for i in range(10)]
    # the official test split is untouched and in file order, scaled to [0, 1]
    np.testing.assert_allclose(s.test.images[:, 0], test[0] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(s.test.labels, test[1])
    # train + val together are exactly the official training images
    pool = np.concatenate([s.train.images, s.val.images])[:, 0]
    got = sorted(map(bytes, np.rint(pool * 255).astype(np.uint8)))
    assert got == sorted(map(bytes, train[0]))
    assert s.mean[0] == pytest.approx(s.train.images.mean(), rel=1e-5)
    # the same files as Fashion-MNIST get its class names
    write_idx_set(tmp_path / "fashion-mnist", train, test, gz=gz)
    f = cnnkit.data.load("fashion-mnist", root=tmp_path, size=32)
    assert f.classes[0] == "T-shirt/top" and f.classes[9] == "Ankle boot" and f.input_size == (1, 32, 32)


def test_bad_magic_number(tmp_path, rng):
    train, test = make_mnist_like(rng, 5, 5)
    (tmp_path / "img").write_bytes(idx_images_bytes(train[0], magic=2049))
    with pytest.raises(ValueError, match=r"bad magic number 2049 \(0x00000801\); expected 2051"):
        read_idx(tmp_path / "img", 2051)
    (tmp_path / "lab").write_bytes(idx_labels_bytes(train[1], magic=0x12345678))
    with pytest.raises(ValueError, match="bad magic number 305419896"):
        read_idx(tmp_path / "lab", 2049)


def test_truncated_idx(tmp_path, rng):
    train, _ = make_mnist_like(rng, 5, 5)
    blob = idx_images_bytes(train[0])
    (tmp_path / "img.gz").write_bytes(gzip.compress(blob[:-20]))
    with pytest.raises(ValueError, match=r"truncated IDX data: header says 5 x 28 x 28 = 3920 bytes, "
                                         r"file holds 3900 bytes"):
        read_idx(tmp_path / "img.gz", 2051)
    (tmp_path / "short").write_bytes(blob[:10])
    with pytest.raises(ValueError, match="truncated IDX header"):
        read_idx(tmp_path / "short", 2051)
    (tmp_path / "long").write_bytes(blob + b"\0\0\0")
    with pytest.raises(ValueError, match="3 bytes more than its header"):
        read_idx(tmp_path / "long", 2051)


def test_corrupted_gzip(tmp_path, rng):
    train, _ = make_mnist_like(rng, 5, 5)
    gz = bytearray(gzip.compress(idx_images_bytes(train[0])))
    (tmp_path / "cut.gz").write_bytes(bytes(gz[: len(gz) // 2]))
    with pytest.raises(ValueError, match="corrupted gzip file"):
        read_idx(tmp_path / "cut.gz", 2051)
    gz[20:40] = b"\xff" * 20
    (tmp_path / "bad.gz").write_bytes(bytes(gz))
    with pytest.raises(ValueError, match="corrupted gzip file"):
        read_idx(tmp_path / "bad.gz", 2051)


def test_count_mismatch_and_bad_label(tmp_path, rng):
    train, _ = make_mnist_like(rng, 5, 5)
    (tmp_path / "img").write_bytes(idx_images_bytes(train[0]))
    (tmp_path / "lab").write_bytes(idx_labels_bytes(train[1][:4]))
    with pytest.raises(ValueError, match=r"count mismatch: .*img has 5 images but .*lab has 4 labels"):
        read_idx_pair(tmp_path / "img", tmp_path / "lab")
    (tmp_path / "lab").write_bytes(idx_labels_bytes(np.array([0, 1, 2, 11, 3])))
    with pytest.raises(ValueError, match="label 11 at index 3 is out of range for 10 classes"):
        read_idx_pair(tmp_path / "img", tmp_path / "lab")


def test_missing_mnist_names_path_and_download(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"mnist not found: .*mnist lacks train-images-idx3-ubyte.gz.*"
                                                r"download=True.*cnnkit train --data mnist --download"):
        cnnkit.data.load("mnist", root=tmp_path)


def test_default_root_follows_cnnkit_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNKIT_HOME", str(tmp_path))
    assert cnnkit.data.default_root() == tmp_path / "datasets"
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "datasets" / "cifar10")):
        cnnkit.data.load("cifar10")


# ----------------------------------------------------------------------------- CIFAR-10 binary
def test_cifar_record_layout(tmp_path, rng):
    img = rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    (tmp_path / "b.bin").write_bytes(cifar_bytes(img, [7, 2]))
    raw = (tmp_path / "b.bin").read_bytes()
    assert len(raw) == 2 * 3073 and raw[0] == 7 and raw[3073] == 2
    assert raw[1 + 1024] == img[0, 1, 0, 0]  # green plane starts after 1,024 red bytes
    x, y = read_cifar_bin(tmp_path / "b.bin")
    np.testing.assert_array_equal(x, img)
    np.testing.assert_array_equal(y, [7, 2])


def test_load_cifar10_from_generated_batches(tmp_path, rng):
    batches, test = make_cifar_like(rng, per_batch=10, n_test=10)
    write_cifar_set(tmp_path / "cifar10" / "cifar-10-batches-bin", batches, test)
    s = cnnkit.data.load("cifar10", root=tmp_path, val_fraction=0.2)
    assert (len(s.train), len(s.val), len(s.test)) == (40, 10, 10)
    assert s.input_size == (3, 32, 32) and s.classes[0] == "airplane" and s.classes[9] == "truck"
    np.testing.assert_allclose(s.test.images, test[0] / 255.0, atol=1e-7)
    assert len(s.mean) == 3 and len(s.std) == 3
    all_train = np.concatenate([b[0] for b in batches]).astype(np.float64) / 255
    assert s.val.images.shape[0] + s.train.images.shape[0] == len(all_train)


def test_cifar_truncated_record(tmp_path, rng):
    img = rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    (tmp_path / "b.bin").write_bytes(cifar_bytes(img, [1, 2])[:-1])
    with pytest.raises(ValueError, match=r"truncated record: file has 6145 bytes, not a whole number of "
                                         r"3073-byte records \(1 whole records and 3072 bytes of a 2th\)"):
        read_cifar_bin(tmp_path / "b.bin")
    (tmp_path / "e.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="empty CIFAR-10 batch file"):
        read_cifar_bin(tmp_path / "e.bin")


def test_cifar_bad_label_byte(tmp_path, rng):
    img = rng.integers(0, 256, (3, 3, 32, 32), dtype=np.uint8)
    (tmp_path / "b.bin").write_bytes(cifar_bytes(img, [1, 200, 2]))
    with pytest.raises(ValueError, match="corrupted record 1: label byte 200 is out of range for 10 classes"):
        read_cifar_bin(tmp_path / "b.bin")


def test_cifar_missing_file_named(tmp_path, rng):
    batches, test = make_cifar_like(rng, per_batch=2, n_test=2)
    folder = tmp_path / "cifar10" / "cifar-10-batches-bin"
    write_cifar_set(folder, batches, test)
    (folder / CIFAR_NAMES[2]).unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks data_batch_3.bin; download it with .*download=True"):
        cnnkit.data.load("cifar10", root=tmp_path)
