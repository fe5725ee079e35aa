"""Files in and out, at the bottom of cnnkit: atomic writes, image files, verified downloads.

Everything above writes its files through :func:`atomic_write` / :func:`atomic_path` (a file a user
asked for appears whole or not at all), reads and writes images through :func:`read_image` /
:func:`write_image`, and downloads through :func:`download_url` (SHA-256 verified, resumable). Of
cnnkit this package imports only the ``Tensor`` (:func:`to_tensor`, :func:`to_image`).
"""
from .atomic import atomic_path, atomic_write
from .download import ChecksumError, DownloadError, download_url, sha256_file
from .images import read_image, to_image, to_tensor, write_image

__all__ = ["atomic_path", "atomic_write", "read_image", "write_image", "to_tensor", "to_image", "download_url",
           "sha256_file", "DownloadError", "ChecksumError"]
