"""The real download code against a local HTTP server on 127.0.0.1 serving generated files: checksum
verification, mismatch, a transfer cut mid-file then resumed with HTTP Range, mirrors, and the full
``load(..., download=True)`` path for MNIST and CIFAR-10. No other network is used."""
import hashlib
import http.server
import re
import threading

import numpy as np
import pytest

import cnnkit
from cnnkit.data import ChecksumError, DownloadError, download_url
from cnnkit.data.download import REGISTRY, RemoteDataset, RemoteFile

from .fixtures import IDX_FILES, cifar_tar_gz, make_cifar_like, make_mnist_like, write_idx_set


class _Server:
    """Serves ``files`` (path → bytes); honours ``Range: bytes=N-`` unless ``ignore_range``; cuts the
    connection halfway through the first response for each path in ``cut_once``."""

    def __init__(self):
        self.files, self.cut_once, self.requests = {}, set(), []
        self.ignore_range = False
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                outer.requests.append((self.path, rng))
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and not outer.ignore_range:
                    start = int(m.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if self.path in outer.cut_once:
                    outer.cut_once.discard(self.path)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True  # the client sees fewer bytes than Content-Length
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def blob(rng):
    return rng.integers(0, 256, 300_000, dtype=np.uint8).tobytes()


def test_download_verifies_and_renames(server, tmp_path, blob):
    server.files["/f.bin"] = blob
    dest = download_url(server.url + "/f.bin", tmp_path / "f.bin", _sha(blob), size=len(blob), quiet=True)
    assert dest.read_bytes() == blob
    assert _leftovers(tmp_path) == []
    assert server.requests == [("/f.bin", None)]
    # present already: returned as is, no request
    download_url(server.url + "/f.bin", dest, _sha(blob), quiet=True)
    assert len(server.requests) == 1


def test_checksum_mismatch_leaves_nothing(server, tmp_path, blob):
    server.files["/f.bin"] = blob
    wrong = "0" * 64
    with pytest.raises(ChecksumError, match=f"expected SHA-256 {wrong}, got {_sha(blob)}"):
        download_url(server.url + "/f.bin", tmp_path / "f.bin", wrong, quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_sha256_prefix(server, tmp_path, blob):
    server.files["/f.bin"] = blob
    download_url(server.url + "/f.bin", tmp_path / "f.bin", _sha(blob)[:8], quiet=True)
    assert (tmp_path / "f.bin").read_bytes() == blob
    with pytest.raises(ChecksumError, match=f"expected SHA-256 starting 00000000, got {_sha(blob)}"):
        download_url(server.url + "/f.bin", tmp_path / "g.bin", "00000000", quiet=True)
    with pytest.raises(ValueError, match="sha256 must be 64 hex digits"):
        download_url(server.url + "/f.bin", tmp_path / "h.bin", "abc", quiet=True)
    assert _leftovers(tmp_path) == []


def test_interrupted_transfer_resumes_with_range(server, tmp_path, blob):
    server.files["/f.bin"] = blob
    server.cut_once.add("/f.bin")
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match=r"transfer interrupted after 150000 bytes.*run again to resume"):
        download_url(server.url + "/f.bin", dest, _sha(blob), retries=0, quiet=True)
    assert not dest.exists()  # the half-written file is never visible under its name
    part = tmp_path / ".f.bin.part"
    assert part.stat().st_size == len(blob) // 2
    download_url(server.url + "/f.bin", dest, _sha(blob), retries=0, quiet=True)
    assert dest.read_bytes() == blob
    assert server.requests[-1] == ("/f.bin", f"bytes={len(blob) // 2}-")
    assert _leftovers(tmp_path) == []


def test_interruption_is_retried_within_one_call(server, tmp_path, blob):
    server.files["/f.bin"] = blob
    server.cut_once.add("/f.bin")
    download_url(server.url + "/f.bin", tmp_path / "f.bin", _sha(blob), size=len(blob), quiet=True)
    assert (tmp_path / "f.bin").read_bytes() == blob
    assert [r for _, r in server.requests] == [None, f"bytes={len(blob) // 2}-"]


def test_server_without_range_support_restarts(server, tmp_path, blob):
    server.files["/f.bin"] = blob
    server.cut_once.add("/f.bin")
    server.ignore_range = True
    download_url(server.url + "/f.bin", tmp_path / "f.bin", _sha(blob), quiet=True)
    assert (tmp_path / "f.bin").read_bytes() == blob


def test_complete_part_is_verified_without_refetching(server, tmp_path, blob):
    server.files["/f.bin"] = blob
    (tmp_path / ".f.bin.part").write_bytes(blob)
    download_url(server.url + "/f.bin", tmp_path / "f.bin", _sha(blob), quiet=True)  # size unknown: 416
    assert (tmp_path / "f.bin").read_bytes() == blob
    assert server.requests == [("/f.bin", f"bytes={len(blob)}-")]


def test_corrupt_part_is_deleted_on_mismatch(server, tmp_path, blob):
    server.files["/f.bin"] = blob
    (tmp_path / ".f.bin.part").write_bytes(b"garbage" + blob[7:100])  # wrong prefix, resumed onto
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        download_url(server.url + "/f.bin", tmp_path / "f.bin", _sha(blob), quiet=True)
    assert list(tmp_path.iterdir()) == []
    download_url(server.url + "/f.bin", tmp_path / "f.bin", _sha(blob), quiet=True)  # a fresh start works
    assert (tmp_path / "f.bin").read_bytes() == blob


def test_http_error_falls_back_to_next_mirror(server, tmp_path, blob):
    server.files["/b/f.bin"] = blob
    download_url([server.url + "/a/f.bin", server.url + "/b/f.bin"], tmp_path / "f.bin", _sha(blob), quiet=True)
    assert (tmp_path / "f.bin").read_bytes() == blob
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_url(server.url + "/a/g.bin", tmp_path / "g.bin", _sha(blob), quiet=True)
    assert not (tmp_path / "g.bin").exists() and _leftovers(tmp_path) == []


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
    assert not any((tmp_path / "cache" / "mnist").iterdir())


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
