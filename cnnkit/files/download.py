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
import socket
import ssl
import sys
import urllib.error
import urllib.parse
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


class _Local(OSError):
    """Writing the download here failed (disk full, permission): no retry, no other mirror will help."""


class _Broken(Exception):
    """One attempt failed; ``reason`` is the one-line cause, ``retry`` whether another attempt may help."""

    def __init__(self, reason: str, retry: bool):
        super().__init__(reason)
        self.reason, self.retry = reason, retry


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or url


def _why(url: str, exc: BaseException, timeout: float, have: int, connected: bool) -> _Broken:
    """The one-line cause of a failed attempt, named as a person would: the host, not a stack of wrappers."""
    host = _host(url)
    if isinstance(exc, urllib.error.HTTPError):
        return _Broken(f"{host} answered HTTP {exc.code} {exc.reason} for {url}", retry=False)
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, socket.gaierror):
        return _Broken(f"cannot reach {host} (no network?)", retry=False)
    if isinstance(reason, ConnectionRefusedError):
        return _Broken(f"cannot reach {host}: connection refused", retry=False)
    if isinstance(reason, ssl.SSLError):
        return _Broken(f"no secure connection to {host}: {getattr(reason, 'reason', None) or reason}", retry=False)
    if isinstance(reason, (TimeoutError, socket.timeout)):
        what = f"stopped sending after {have:,} bytes" if connected else "did not answer"
        return _Broken(f"{host} {what} (no data for {timeout:g} s)", retry=connected)
    if connected:
        return _Broken(f"the transfer from {host} broke off after {have:,} bytes "
                       f"({type(reason).__name__}{': ' + str(reason) if str(reason) else ''})", retry=True)
    return _Broken(f"cannot reach {host}: {reason}", retry=False)


def _transfer(url: str, part: Path, size: int | None, timeout: float, chunk_size: int, quiet: bool,
              announce) -> None:
    """One attempt: append the missing bytes of ``url`` to ``part`` (raises on any failure). Nothing is created
    before the server has answered; ``announce()`` is called once it has."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:  # cannot be ours: start over
        have = 0
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
        announce()
        try:
            fh = open(part, "ab")
        except OSError as e:
            raise _Local(f"cannot write {part}: {e.strerror or e}") from None
        with fh:
            _lock(fh, part)
            if have == 0 or (size is not None and fh.seek(0, os.SEEK_END) > size):
                fh.truncate(0)
            have = fh.seek(0, os.SEEK_END)
            if have and resp.status == 206:
                m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != have:
                    raise DownloadError(f"{_host(url)} answered the request for the bytes from {have:,} on with "
                                        f"Content-Range {resp.headers.get('Content-Range')!r}")
                _say(quiet, f"resuming {url} at byte {have:,}")
            elif have:  # the server ignored Range and sends the whole file
                fh.truncate(0)
                have = fh.seek(0)
            length = resp.headers.get("Content-Length")
            expected = int(length) if length is not None else None
            got = 0
            total = (have + expected) if expected is not None else size
            show = not quiet and sys.stderr.isatty()
            try:
                while True:
                    block = resp.read(chunk_size)
                    if not block:
                        break
                    try:
                        fh.write(block)
                    except OSError as e:
                        raise _Local(f"cannot write {part}: {e.strerror or e}") from None
                    got += len(block)
                    if show:
                        done = f"{(have + got) / 1e6:.1f}" + (f" / {total / 1e6:.1f}" if total else "")
                        print(f"\r  {done} MB", end="", file=sys.stderr, flush=True)
            finally:
                if show:
                    print(file=sys.stderr, flush=True)
                fh.flush()
                os.fsync(fh.fileno())
            if expected is not None and got < expected:
                raise http.client.IncompleteRead(b"", expected - got)


def _missing_folders(folder: Path) -> list:
    """The folders ``folder.mkdir(parents=True)`` would create, outermost first; a file in the way is a
    ``ValueError`` naming it (checked before anything is created or fetched)."""
    missing, d = [], folder
    while not d.exists():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    if d.exists() and not d.is_dir():
        raise ValueError(f"cannot download into {folder}: {d} is a file, not a folder")
    return list(reversed(missing))


def _tidy(part: Path, created: list) -> None:
    """After a failure: an empty ``.part`` and the folders this call created (if empty) go; a ``.part`` with
    bytes in it stays, for the next call to resume."""
    try:
        if part.exists() and part.stat().st_size == 0:
            part.unlink()
    except OSError:
        pass
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            break


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
            A host that cannot be reached or refuses the file is not tried again.

    Returns:
        ``dest``. If ``dest`` already exists it is returned without being downloaded or checked again.

    Raises:
        ChecksumError: the downloaded bytes do not match ``sha256`` (the ``.part`` is deleted).
        DownloadError: every URL failed, with one line saying why (``cannot reach HOST (no network?)``,
            ``HOST answered HTTP 404 …``); the partial ``.part`` file is kept so the next call resumes.
            Nothing else is left behind: no empty ``.part``, no folder this call created.
        ValueError: a file stands where ``dest``'s folder should be.
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
    missing = _missing_folders(dest.parent)
    part = dest.parent / f".{dest.name}.part"
    created = []
    said = []

    def announce(url):
        def start():
            for d in missing:
                if not d.exists():
                    try:
                        d.mkdir()
                    except OSError as e:
                        raise _Local(f"cannot create the folder {d}: {e.strerror or e}") from None
                    created.append(d)
            if not said:
                said.append(url)
                _say(quiet, f"downloading {url} -> {dest}" + (f" ({size / 1e6:.1f} MB)" if size else ""))
        return start

    errors = []
    try:
        for url in urls:
            for attempt in range(retries + 1):
                have = part.stat().st_size if part.exists() else 0
                try:
                    _transfer(url, part, size, timeout, chunk_size, quiet, announce(url))
                except (_Busy, _Local):
                    raise
                except DownloadError as e:
                    errors.append(str(e))
                    continue
                except (OSError, http.client.HTTPException) as e:
                    connected = bool(said) or have > 0
                    now = part.stat().st_size if part.exists() else 0
                    broken = _why(url, e, timeout, now, connected)
                    errors.append(broken.reason)
                    if broken.retry:
                        continue
                    break                       # unreachable, refused, not found: the next mirror
                if not part.exists():           # an empty file answered
                    part.touch()
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
    except _Local as e:
        _tidy(part, created)
        raise DownloadError(f"could not download {dest.name}: {e}") from None
    except BaseException:
        _tidy(part, created)
        raise
    _tidy(part, created)
    have = part.stat().st_size if part.exists() else 0
    kept = f"; {have:,} bytes kept in {part}, run again to resume" if have else ""
    raise DownloadError(f"could not download {dest.name}: {_summary(errors)}{kept}")


def _summary(errors: list) -> str:
    """The causes once each, in order; hosts that all failed to resolve in one phrase."""
    unique = list(dict.fromkeys(errors))
    offline = [e for e in unique if e.endswith(" (no network?)")]
    if len(offline) > 1:
        hosts = [e[len("cannot reach "):-len(" (no network?)")] for e in offline]
        unique = [e for e in unique if e not in offline]
        unique.insert(0, f"cannot reach {' or '.join(hosts)} (no network?)")
    return "; ".join(unique)
