"""Fixtures of the explorer's tests: a trained LeNet-5 run, the app, and a live server on 127.0.0.1."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """A LeNet-5 trained two epochs on the built-in digits by `cnnkit train` (a few seconds): a real run directory."""
    from tests.helpers import cli
    out = tmp_path_factory.mktemp("serve") / "lenet5-digits"
    code, _, err = cli("train", "lenet5", "--data", "digits", "--epochs", 2, "--out", out, "--seed", 0, "--no-plots")
    assert code == 0, err
    return out


@pytest.fixture(scope="session")
def explorer(digits_run):
    from cnnkit.serve import open_explorer
    return open_explorer(str(digits_run))


@pytest.fixture(scope="session")
def client(explorer):
    from starlette.testclient import TestClient

    from cnnkit.serve import create_app
    with TestClient(create_app(explorer), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="session")
def live(explorer):
    """The app under uvicorn in a thread, on a free port of 127.0.0.1 (the socket `cnnkit serve` binds)."""
    import uvicorn

    from cnnkit.cli.serve import bind
    from cnnkit.serve import create_app
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(explorer), log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.02)
    yield sock.getsockname()[:2]
    server.should_exit = True
    thread.join(10)


def png_bytes(array: np.ndarray) -> bytes:
    """A uint8 (H, W) or (H, W, 3) array as PNG bytes (Pillow: the test's own encoder)."""
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()
