import atexit
import os
import shutil
import tempfile

import numpy as np
import pytest

# The tests never depend on a machine's measured choices: convolutions take the default order, and anything that
# turns measurement on writes to a cache folder of this run's own (inherited by the tests' subprocesses).
os.environ["CNNKIT_CONV_MEASURE"] = "0"
os.environ["CNNKIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="cnnkit-test-cache-")
atexit.register(shutil.rmtree, os.environ["CNNKIT_CACHE_DIR"], True)

import cnnkit  # noqa: E402
from hypothesis import settings

# Randomised configurations: enough cases to find bugs, few enough to keep CI short.
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def server(monkeypatch):
    """A local HTTP server on 127.0.0.1 (Range requests, scripted cuts) for the download tests."""
    from tests.files.http_server import Server
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    s = Server()
    yield s
    s.close()


@pytest.fixture(params=[1, 2, 3], ids=lambda n: f"{n}threads")
def threads(request):
    """Run the test with cnnkit (and the BLAS) at 1, 2 and 3 threads, then restore the count."""
    before = cnnkit.get_num_threads()
    cnnkit.set_num_threads(request.param)
    yield request.param
    cnnkit.set_num_threads(before)
