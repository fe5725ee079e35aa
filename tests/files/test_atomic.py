"""Atomic writes: the file appears whole or not at all, with ordinary permissions."""
import os
import stat

import pytest

from cnnkit.files import atomic_path, atomic_write


def test_written_file_has_the_permissions_a_plain_open_gives(tmp_path):
    atomic_write(tmp_path / "a.txt", "hello")
    with open(tmp_path / "b.txt", "w") as fh:
        fh.write("hello")
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == stat.S_IMODE(os.stat(tmp_path / "b.txt").st_mode)
    os.chmod(tmp_path / "a.txt", 0o640)
    atomic_write(tmp_path / "a.txt", b"again")                      # replacing keeps the file's mode
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o640
    assert (tmp_path / "a.txt").read_bytes() == b"again"


def test_failure_leaves_neither_the_file_nor_a_temporary(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out.png") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_and_directory_target_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="output directory .* does not exist"):
        atomic_write(tmp_path / "nope" / "x.txt", "x")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        atomic_write(tmp_path, "x")
