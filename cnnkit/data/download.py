"""The classic data sets' published files: where they are, their SHA-256 and size, and :func:`fetch`.

Each file is downloaded by :func:`cnnkit.files.download_url` (SHA-256 verified, resumable, atomic);
files extracted from an archive are written with :func:`cnnkit.files.atomic_write`.
"""
from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ..files import atomic_write, download_url

__all__ = ["RemoteFile", "RemoteDataset", "REGISTRY", "default_root", "fetch"]


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set as published: its name, SHA-256 and size in bytes."""

    name: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class RemoteDataset:
    """Where a data set is published: base URLs (tried in order) and its files.

    ``folder`` is the sub-directory of the cache root it is stored in; ``extract`` maps archive
    member names to the names they are written under (for sets shipped as a tar archive).
    """

    name: str
    base_urls: tuple
    files: tuple
    folder: str
    extract: tuple = ()


# Checksums: the SHA-256 sums below are the ones published for these exact files and reproduced by
# many independent projects (e.g. PyTorch's/TFDS's loaders, dataset READMEs); the CIFAR-10 page itself
# publishes only MD5 c32a1d4ab5d03f1284b67883e8d87530 for the binary archive, whose SHA-256 (and size,
# 170,052,171 bytes) we take from independent verifications of that archive. MNIST's home page
# (yann.lecun.com) often refuses downloads, so PyTorch's mirror of the same bytes is tried first.
REGISTRY = {
    "mnist": RemoteDataset(
        "mnist",
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        (RemoteFile("train-images-idx3-ubyte.gz",
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9_912_422),
         RemoteFile("train-labels-idx1-ubyte.gz",
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28_881),
         RemoteFile("t10k-images-idx3-ubyte.gz",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1_648_877),
         RemoteFile("t10k-labels-idx1-ubyte.gz",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4_542)),
        "mnist"),
    "fashion-mnist": RemoteDataset(
        "fashion-mnist",
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        (RemoteFile("train-images-idx3-ubyte.gz",
                    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26_421_880),
         RemoteFile("train-labels-idx1-ubyte.gz",
                    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29_515),
         RemoteFile("t10k-images-idx3-ubyte.gz",
                    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4_422_102),
         RemoteFile("t10k-labels-idx1-ubyte.gz",
                    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5_148)),
        "fashion-mnist"),
    "cifar10": RemoteDataset(
        "cifar10",
        ("https://www.cs.toronto.edu/~kriz/",),
        (RemoteFile("cifar-10-binary.tar.gz",
                    "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", 170_052_171),),
        "cifar10",
        extract=tuple((f"cifar-10-batches-bin/{n}", f"cifar-10-batches-bin/{n}")
                      for n in [f"data_batch_{i}.bin" for i in range(1, 6)]
                      + ["test_batch.bin", "batches.meta.txt"])),
}


def default_root() -> Path:
    """The data set cache: ``$CNNKIT_HOME/datasets`` if ``CNNKIT_HOME`` is set, else ``~/.cache/cnnkit/datasets``."""
    home = os.environ.get("CNNKIT_HOME")
    return Path(home) / "datasets" if home else Path.home() / ".cache" / "cnnkit" / "datasets"


def _extract(archive: Path, members: tuple, target: Path) -> None:
    """Write the named regular-file members of a tar archive under ``target`` (never other paths)."""
    with tarfile.open(archive, "r:*") as tar:
        for member_name, out_name in members:
            out = target / out_name
            if out.is_file():
                continue
            try:
                member = tar.getmember(member_name)
            except KeyError:
                raise ValueError(f"{archive}: archive has no member {member_name!r}; is it the right file?") from None
            if not member.isfile():
                raise ValueError(f"{archive}: member {member_name!r} is not a regular file")
            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(out, tar.extractfile(member).read())


def fetch(name: str, root=None, quiet: bool = False, retries: int = 2) -> Path:
    """Download (if missing) and verify the files of data set ``name`` (``"mnist"``, ``"fashion-mnist"``,
    ``"cifar10"``) into ``root/<folder>``; returns that folder."""
    if name not in REGISTRY:
        raise ValueError(f"fetch: no download registered for {name!r}; known: {', '.join(REGISTRY)}")
    spec = REGISTRY[name]
    folder = Path(root) / spec.folder if root is not None else default_root() / spec.folder
    for f in spec.files:
        download_url([base + f.name for base in spec.base_urls], folder / f.name, f.sha256, f.size,
                     retries=retries, quiet=quiet)
    if spec.extract:
        for f in spec.files:
            _extract(folder / f.name, spec.extract, folder)
    return folder
