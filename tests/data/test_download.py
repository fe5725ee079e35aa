"""The published data sets: their registry (official checksums) and the full ``load(..., download=True)``
path for MNIST and CIFAR-10 against a local HTTP server on 127.0.0.1 (the download itself is tested in
``tests/files/test_download.py``). No other network is used."""
import hashlib
import re

import numpy as np
import pytest

import cnnkit
from cnnkit.data.download import REGISTRY, RemoteDataset, RemoteFile
from cnnkit.files import ChecksumError

from .fixtures import IDX_FILES, cifar_tar_gz, make_cifar_like, make_mnist_like, write_idx_set


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_load_mnist_download_end_to_end(server, tmp_path, rng, monkeypatch):
    train, test = make_mnist_like(rng, 40, 20)
    blobs = write_idx_set(tmp_path / "src", train, test, gz=True)
    for name, data in blobs.items():
        server.files[f"/mnist/{name}"] = data
    server.cut_once.add(f"/mnist/{IDX_FILES[0]}.gz")
    files = tuple(RemoteFile(n, _sha(d), len(d)) for n, d in blobs.items())
    monkeypatch.setitem(REGISTRY, "mnist", RemoteDataset("mnist", (server.url + "/nowhere/", server.url + "/mnist/"),
                                                         files, "mnist"))
    root = tmp_path / "cache"
    s = cnnkit.data.load("mnist", root=root, download=True, quiet=True)
    assert (len(s.train) + len(s.val), len(s.test)) == (40, 20)
    np.testing.assert_array_equal(s.test.labels, test[1])
    assert sorted(p.name for p in (root / "mnist").iterdir()) == sorted(blobs)
    n = len(server.requests)
    cnnkit.data.load("mnist", root=root, download=True, quiet=True)  # cached: no more requests
    assert len(server.requests) == n


def test_load_mnist_download_checksum_mismatch(server, tmp_path, rng, monkeypatch):
    train, test = make_mnist_like(rng, 10, 10)
    blobs = write_idx_set(tmp_path / "src", train, test, gz=True)
    for name, data in blobs.items():
        server.files[f"/m/{name}"] = data
    files = tuple(RemoteFile(n, _sha(d) if i else "f" * 64, len(d)) for i, (n, d) in enumerate(blobs.items()))
    monkeypatch.setitem(REGISTRY, "mnist", RemoteDataset("mnist", (server.url + "/m/",), files, "mnist"))
    with pytest.raises(ChecksumError, match=f"expected SHA-256 {'f' * 64}, got {_sha(blobs[IDX_FILES[0] + '.gz'])}"):
        cnnkit.data.load("mnist", root=tmp_path / "cache", download=True, quiet=True)
    assert not (tmp_path / "cache").exists()                 # nothing left: not even the folders it would have made


def test_load_cifar10_download_and_extract(server, tmp_path, rng, monkeypatch):
    batches, test = make_cifar_like(rng, per_batch=4, n_test=10)
    archive = cifar_tar_gz(batches, test)
    server.files["/kriz/cifar-10-binary.tar.gz"] = archive
    spec = REGISTRY["cifar10"]
    monkeypatch.setitem(REGISTRY, "cifar10", RemoteDataset(
        "cifar10", (server.url + "/kriz/",), (RemoteFile("cifar-10-binary.tar.gz", _sha(archive), len(archive)),),
        "cifar10", spec.extract))
    s = cnnkit.data.load("cifar10", root=tmp_path, download=True, val_fraction=0.0, quiet=True)
    assert s.val is None and len(s.train) == 20 and len(s.test) == 10
    np.testing.assert_allclose(s.test.images, test[0] / 255.0, atol=1e-7)
    assert _leftovers(tmp_path / "cifar10" / "cifar-10-batches-bin") == []


def test_registry_has_official_checksums():
    for spec in REGISTRY.values():
        for f in spec.files:
            assert re.fullmatch(r"[0-9a-f]{64}", f.sha256) and f.size > 0
        assert all(u.startswith(("http://", "https://")) and u.endswith("/") for u in spec.base_urls)
    assert REGISTRY["mnist"].files[0].sha256.startswith("440fcabf")
    assert REGISTRY["cifar10"].files[0].size == 170_052_171


def test_cifar_archive_without_expected_member(server, tmp_path, monkeypatch):
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../evil.bin")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    archive = buf.getvalue()
    server.files["/k/cifar-10-binary.tar.gz"] = archive
    monkeypatch.setitem(REGISTRY, "cifar10", RemoteDataset(
        "cifar10", (server.url + "/k/",), (RemoteFile("cifar-10-binary.tar.gz", _sha(archive), len(archive)),),
        "cifar10", REGISTRY["cifar10"].extract))
    with pytest.raises(ValueError, match="archive has no member 'cifar-10-batches-bin/data_batch_1.bin'"):
        cnnkit.data.load("cifar10", root=tmp_path / "c", download=True, quiet=True)
    assert not (tmp_path / "evil.bin").exists() and not (tmp_path / "c" / "evil.bin").exists()
