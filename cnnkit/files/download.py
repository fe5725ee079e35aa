"""Verified downloads: SHA-256 checked, resumable and atomic.

A file is fetched into a hidden ``.<name>.part`` beside its destination. An interrupted transfer
leaves the ``.part`` behind and the next attempt asks the server for the rest (HTTP ``Range``); the
file gets its real name only after its SHA-256 matches (``os.replace``, after an fsync), so a
half-written or wrong file is never used. A ``.part`` whose checksum does not match is deleted.
(This is :mod:`cnnkit.files.atomic`'s write-then-rename pattern with a stable temporary name, which
resuming needs.) The data sets (:func:`cnnkit.data.fetch`) and the named weights
(:func:`cnnkit.models.weights.download_weights`) download through :func:`download_url`.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["DownloadError", "ChecksumError", "download_url", "sha256_file"]


class DownloadError(ConnectionError, ValueError):
    """A transfer failed (network error, HTTP error, connection cut); any partial file is kept for resuming."""


class _Busy(DownloadError):
    """Another process holds the lock on the ``.part`` file."""


class ChecksumError(ValueError):
    """A downloaded file's SHA-256 is not the expected one (both hashes are in the message)."""


def sha256_file(path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - not every platform opens directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _lock(fh, part: Path) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory lock
        return
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise _Busy(f"{part} is being written by another process; wait for it to finish") from None


def _say(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _transfer(url: str, part: Path, size: int | None, timeout: float, chunk_size: int, quiet: bool) -> None:
    """One attempt: append the missing bytes of ``url`` to ``part`` (raises on any failure)."""
    with open(part, "ab") as fh:
        _lock(fh, part)
        have = fh.seek(0, os.SEEK_END)
        if size is not None and have > size:  # cannot be ours: start over
            fh.truncate(0)
            have = fh.seek(0)
        if size is not None and have == size:
            return
        headers = {"User-Agent": "cnnkit"}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:  # nothing left to send: the .part is complete (checked next)
                return
            raise
        with resp:
            if have and resp.status == 206:
                m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != have:
                    raise DownloadError(f"{url}: server answered the range request from byte {have} with "
                                        f"Content-Range {resp.headers.get('Content-Range')!r}")
                _say(quiet, f"resuming {url} at byte {have}")
            elif have:  # the server ignored Range and sends the whole file
                fh.truncate(0)
                have = fh.seek(0)
            length = resp.headers.get("Content-Length")
            expected = int(length) if length is not None else None
            got = 0
            total = (have + expected) if expected is not None else size
            show = not quiet and sys.stderr.isatty()
            while True:
                block = resp.read(chunk_size)
                if not block:
                    break
                fh.write(block)
                got += len(block)
                if show:
                    done = f"{(have + got) / 1e6:.1f}" + (f" / {total / 1e6:.1f}" if total else "")
                    print(f"\r  {done} MB", end="", file=sys.stderr, flush=True)
            if show:
                print(file=sys.stderr, flush=True)
            fh.flush()
            os.fsync(fh.fileno())
            if expected is not None and got < expected:
                raise http.client.IncompleteRead(b"", expected - got)


def download_url(urls, dest, sha256: str, size: int | None = None, retries: int = 2, timeout: float = 60.0,
                 chunk_size: int = 1 << 16, quiet: bool = False) -> Path:
    """Download ``dest`` from the first of ``urls`` that works, verify its SHA-256, rename it into place.

    Args:
        urls: one URL or several mirrors of the same bytes, tried in order.
        dest: the final path; it appears only once the checksum matches.
        sha256: the expected hex SHA-256, or a prefix of it (at least 8 digits; e.g. the one
            torchvision puts in its weight file names).
        size: the expected size in bytes, if known (a complete ``.part`` is then not re-requested).
        retries: further attempts per URL after a transfer breaks off; each resumes where the last stopped.

    Returns:
        ``dest``. If ``dest`` already exists it is returned without being downloaded or checked again.

    Raises:
        ChecksumError: the downloaded bytes do not match ``sha256`` (the ``.part`` is deleted).
        DownloadError: every URL failed; the partial ``.part`` file is kept so the next call resumes.
    """
    dest = Path(dest)
    if dest.is_file():
        return dest
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise ValueError("download_url: no URL given")
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{8,64}", sha256):
        raise ValueError(f"download_url: sha256 must be 64 hex digits (or a prefix of at least 8), got {sha256!r}")
    sha256 = sha256.lower()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.parent / f".{dest.name}.part"
    errors = []
    for url in urls:
        for attempt in range(retries + 1):
            if attempt == 0 and not part.exists():
                _say(quiet, f"downloading {url} -> {dest}" + (f" ({size / 1e6:.1f} MB)" if size else ""))
            try:
                _transfer(url, part, size, timeout, chunk_size, quiet)
            except urllib.error.HTTPError as e:
                errors.append(f"{url}: HTTP {e.code} {e.reason}")
                break  # a refusal will not change on retry: next mirror
            except _Busy:
                raise
            except DownloadError as e:
                errors.append(str(e))
                continue
            except (OSError, http.client.HTTPException) as e:
                have = part.stat().st_size if part.exists() else 0
                errors.append(f"{url}: transfer interrupted after {have} bytes ({type(e).__name__}: {e})")
                continue
            digest = sha256_file(part)
            if not digest.startswith(sha256):
                part.unlink(missing_ok=True)
                expected = sha256 if len(sha256) == 64 else f"starting {sha256}"
                raise ChecksumError(f"checksum mismatch for {url}: expected SHA-256 {expected}, got {digest}; "
                                    "the download was deleted (a corrupted transfer or a changed file)")
            os.replace(part, dest)
            _fsync_dir(dest.parent)
            _say(quiet, f"verified {dest.name} (sha256 {digest[:12]}…)")
            return dest
    have = part.stat().st_size if part.exists() else 0
    if part.exists() and have == 0:
        part.unlink(missing_ok=True)  # nothing worth resuming
    kept = f"; {have} bytes kept in {part}, run again to resume" if have else ""
    raise DownloadError(f"could not download {dest.name}: " + "; ".join(errors[-3:]) + kept)
