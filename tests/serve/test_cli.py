"""`cnnkit serve`: its arguments checked before anything starts; the URL on stderr; 127.0.0.1 by default."""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from cnnkit.cli import main


@pytest.mark.parametrize("argv,words", [
    (["serve", "nosuchmodel"], "'nosuchmodel' is neither a run directory nor a zoo model"),
    (["serve", "runs/does-not-exist"], "'runs/does-not-exist': no such run directory"),
    (["serve", "lenet5", "--port", "70000"], "--port must be in 1..65535"),
    (["serve", "lenet5", "--port", "-1"], "--port must be in 1..65535"),
    (["serve", "lenet5", "--host", "not a host"], "--host must be an IP address or a host name"),
    (["serve", "lenet5", "--host", "256.1.1.1.1/"], "--host must be"),
    (["serve", "lenet5", "--input", "1,0,32"], "--input must be positive"),
])
def test_bad_arguments_fail_before_starting(capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnkit: error:") and words in err and err.count("\n") == 1


def test_not_a_run_directory(tmp_path, capsys):
    assert main(["serve", str(tmp_path)]) == 2
    assert "holds no config.json" in capsys.readouterr().err


def test_run_served_at_its_own_size(digits_run, capsys):
    assert main(["serve", str(digits_run), "--input", "1,28,28"]) == 2
    assert "differs from the run's input size 1,32,32" in capsys.readouterr().err


def test_port_in_use(capsys):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        assert main(["serve", "lenet5", "--port", str(s.getsockname()[1])]) == 2
        assert "is already in use" in capsys.readouterr().err
    finally:
        s.close()


def test_serves_on_loopback_and_prints_the_url():
    p = subprocess.Popen([sys.executable, "-m", "cnnkit", "serve", "lenet5", "--port", "0"],
                         stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()
        m = re.match(r"cnnkit serve: lenet5 \(untrained\) at (http://127\.0\.0\.1:(\d+)/)", line)
        assert m, line
        url, port = m.group(1), int(m.group(2))
        with urllib.request.urlopen(url + "api/model", timeout=30) as r:
            assert r.status == 200
        listening = [c.laddr for c in psutil.Process(p.pid).net_connections() if c.status == psutil.CONN_LISTEN]
        assert [(a.ip, a.port) for a in listening] == [("127.0.0.1", port)]
    finally:
        p.terminate()
        out, _ = p.communicate(timeout=10)
    assert out == ""                                                   # nothing on stdout
