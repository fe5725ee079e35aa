"""cnnkit.allocator: glibc keeps freed array memory in the heap after ``import cnnkit``."""
import ctypes
import os
import subprocess
import sys

import pytest

try:
    _glibc = ctypes.CDLL(None).gnu_get_libc_version
except (OSError, AttributeError):
    _glibc = None

# A 20 MB array: from mmap (glibc's start-up threshold is 128 KB) or from the heap (cnnkit's 32 MB).
PROBE = """
import ctypes, numpy as np
{setup}
class M(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = M
a = np.ones(5 * 2**20, dtype=np.float32)
mapped = libc.mallinfo2().hblkhd
del a
print(mapped >= 20 * 2**20, libc.mallinfo2().fordblks >= 20 * 2**20)
"""


def _probe(setup: str, **env) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "CNNKIT_MALLOC"))}
    environ.update(env)
    return subprocess.run([sys.executable, "-c", PROBE.format(setup=setup)], env=environ, capture_output=True,
                          text=True, check=True).stdout.split()


@pytest.mark.skipif(_glibc is None or not hasattr(ctypes.CDLL(None), "mallinfo2"), reason="glibc ≥ 2.33 only")
def test_import_keeps_large_blocks_in_the_heap_and_freed_memory_for_reuse():
    assert _probe("") == ["True", "False"]                      # plain NumPy: mmapped, returned when freed
    assert _probe("import cnnkit") == ["False", "True"]         # heap block, kept after the free
    assert _probe("import cnnkit", CNNKIT_MALLOC="0") == ["True", "False"]
    assert _probe("import cnnkit", MALLOC_TRIM_THRESHOLD_="131072") == ["True", "False"]  # the user's choice stands


def test_tune_respects_the_opt_out(monkeypatch):
    from cnnkit import allocator
    monkeypatch.setenv("CNNKIT_MALLOC", "0")
    assert allocator.tune() is False
    monkeypatch.setenv("CNNKIT_MALLOC", "1")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1")
    assert allocator.tune() is False
