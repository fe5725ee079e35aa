"""Smoke tests of the benchmark harness at tiny sizes: the numbers are not checked, only that every
column is filled, the twins compute what cnnkit computes and the CLI speaks plainly."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import cnnkit
from cnnkit import benchmark
from cnnkit.cli import main


def test_time_pair_returns_medians_for_both_engines():
    calls = []
    a, b = benchmark.time_pair(lambda: calls.append("a"), lambda: calls.append("b"), repeats=5, warmup=1,
                               warmup_s=0, rounds=3, pause_s=0)
    assert a >= 0 and b >= 0
    # warm-up, then 5 timed runs each in 3 blocks (1, 2, 2 runs), the engines' blocks alternating a b, b a, a b,
    # each block after the first led by one untimed run
    assert "".join(calls) == "a" + "b" + "a" + "b" + "bbb" + "aaa" + "aaa" + "bbb"
    calls.clear()
    benchmark.time_pair(lambda: calls.append("a"), lambda: calls.append("b"), repeats=2, warmup=1, warmup_s=0,
                        rounds=2, pause_s=0, rewarm=False)
    assert "".join(calls) == "a" + "b" + "a" + "b" + "b" + "a"
    assert benchmark.time_pair(lambda: None, None, repeats=1)[1] is None


def test_time_pair_medians_are_each_engines_own():
    slow, fast = (lambda: time.sleep(0.02)), (lambda: None)
    a, b = benchmark.time_pair(slow, fast, repeats=4, warmup=1, warmup_s=0, rounds=2, pause_s=0)
    assert a >= 19 and b < 5


def test_time_pair_warms_up_for_at_least_warmup_s():
    calls = []
    benchmark.time_pair(lambda: (calls.append(1), time.sleep(0.01)), repeats=2, warmup=1, warmup_s=0.1)
    assert len(calls) >= 2 + 0.1 / 0.02   # timed runs + a tenth of a second of 10 ms warm-up runs


def test_run_quick_fills_every_column():
    report = benchmark.run(select=["depthwise"], quick=True, repeats=1, memory=False)
    assert report["peak_gflops"] > 0 and report["threads"] >= 1
    rows = report["results"]
    assert [r["name"] for r in rows] == ["conv depthwise 3×3 256, 8×28² fwd", "conv depthwise 3×3 256, 8×28² fwd+bwd"]
    for r in rows:
        assert r["cnnkit_ms"] > 0 and r["torch_ms"] > 0 and r["gflops"] > 0 and r["peak_pct"] > 0
        assert r["ratio"] == pytest.approx(r["cnnkit_ms"] / r["torch_ms"])
    table = benchmark.format_table(report)
    assert "| case | cnnkit ms | torch ms | ratio | GFLOP/s | % peak | note |" in table
    assert "QUICK" in table


def test_network_cases_time_both_engines_in_training_and_inference():
    report = benchmark.run(select=["LeNet-5 train step", "ResNet-20 train step", "ResNet-20 inference"], quick=True,
                           repeats=1, memory=False)
    assert len(report["results"]) == 3
    for r in report["results"]:
        assert r["cnnkit_ms"] > 0 and r["torch_ms"] > 0 and r["note"].startswith("outputs agree; conv: "), r


@pytest.mark.skipif(not cnnkit.jit.available(), reason="Winograd needs Numba")
def test_cases_name_the_algorithms_they_run(monkeypatch):
    from cnnkit.nn.functional.conv import direct
    monkeypatch.setattr(direct, "DIRECT_MIN_BYTES", 0)                       # --quick's small layer too
    report = benchmark.run(select=["VGG-16 3×3 128→128", "ResNet-20 3×3 16→16"], quick=True, repeats=1,
                           memory=False, with_torch=False)
    notes = {r["name"]: r["note"] for r in report["results"]}
    assert notes == {"conv VGG-16 3×3 128→128, 4×112² fwd": "winograd-rows",
                     "conv VGG-16 3×3 128→128, 4×112² fwd+bwd": "winograd-rows; dX transposed; dW gemm",
                     "conv ResNet-20 3×3 16→16, 128×32² fwd": "direct",
                     "conv ResNet-20 3×3 16→16, 128×32² fwd+bwd": "direct; dX direct; dW direct"}
    table = benchmark.format_table(report)
    assert "2.25× fewer multiplies" in table and "the default order (measurement off)" in table
    assert "| vs order |" not in table                                        # measurement off: nothing to compare


@pytest.mark.skipif(not cnnkit.jit.available(), reason="Winograd needs Numba")
def test_cli_no_winograd_runs_the_gemm_path_and_restores_it(capsys, monkeypatch):
    from cnnkit.nn.functional import conv
    monkeypatch.delenv("CNNKIT_CONV_OFF", raising=False)
    argv = ["bench", "--quick", "--cases", "VGG-16 3×3 128→128, 4×112² fwd", "--repeats", "1", "--no-memory",
            "--no-torch", "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["note"] == "winograd-rows"
    assert main(argv + ["--no-winograd"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["note"] == "row-shifted"
    assert "winograd" not in conv.disabled() and "CNNKIT_CONV_OFF" not in os.environ  # this process is as it was


@pytest.mark.skipif(not cnnkit.jit.available(), reason="the direct path needs Numba")
def test_cli_no_direct_runs_the_gemm_path_and_restores_it(capsys, monkeypatch):
    from cnnkit.nn.functional import conv
    from cnnkit.nn.functional.conv import direct
    from tests.helpers import record_selection
    monkeypatch.delenv("CNNKIT_CONV_OFF", raising=False)
    monkeypatch.setattr(direct, "DIRECT_MIN_BYTES", 0)                       # --quick's small layer too
    taken = record_selection(monkeypatch)
    argv = ["bench", "--quick", "--cases", "conv ResNet-20 3×3 16→16, 128×32² fwd", "--repeats", "1", "--no-memory",
            "--no-torch", "--json"]
    assert main(argv) == 0 and ("forward", "direct") in taken
    taken.clear()
    assert main(argv + ["--no-direct"]) == 0 and taken and all(not name.startswith("direct") for _, name in taken)
    capsys.readouterr()
    assert not conv.disabled() and "CNNKIT_CONV_OFF" not in os.environ      # this process is as it was


@pytest.mark.parametrize("variable,value,off", [
    ("CNNKIT_CONV_OFF", "winograd, direct-stride2", "direct-stride2 winograd"), ("CNNKIT_WINOGRAD", "0", "winograd"),
    ("CNNKIT_DIRECT", "0", "direct")])
def test_switches_in_the_environment_switch_the_algorithms_off(variable, value, off):
    code = "from cnnkit.nn.functional import conv; print(*sorted(conv.disabled()))"
    env = {**os.environ, variable: value}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == off


def test_run_without_torch_leaves_the_torch_columns_empty():
    report = benchmark.run(select=["max pool 2×2/2, 32×64×56² fwd"], quick=True, repeats=1, memory=False,
                           with_torch=False)
    (row,) = [r for r in report["results"] if r["name"].endswith("fwd")]
    assert row["cnnkit_ms"] > 0 and row["torch_ms"] is None and row["ratio"] is None
    assert "| — |" in benchmark.format_table(report)


@pytest.mark.parametrize("name,size", [("lenet5", (1, 32, 32)), ("resnet20", (3, 16, 16))])
def test_torch_twin_computes_the_same_outputs(name, size):
    cnnkit.manual_seed(0)
    model = cnnkit.models.create(name)
    x = np.random.default_rng(0).standard_normal((2,) + size).astype(np.float32)
    twin, note = benchmark.torch_twin(model, torch, x)
    assert note == "outputs agree"
    assert set(twin.state_dict()) >= {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}


def test_cli_lists_cases_and_prints_json(capsys):
    assert main(["bench", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "ResNet-20 train step" in listed and "peak RSS VGG-16" in listed
    assert main(["bench", "--quick", "--cases", "max pool 2×2/2, 32×64×56² fwd+bwd", "--repeats", "1",
                 "--no-memory", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in report["results"]] == ["max pool 2×2/2, 32×64×56² fwd+bwd"]


@pytest.mark.parametrize("argv,match", [
    (["--cases", "no-such-layer"], "no case matches 'no-such-layer'"),
    (["--repeats", "0"], "--repeats must be at least 1, got 0"),
])
def test_cli_errors(argv, match, capsys):
    assert main(["bench", *argv]) == 2
    assert match in capsys.readouterr().err


@pytest.mark.slow
def test_memory_row_runs_in_a_subprocess():
    row = benchmark.memory_row("ResNet-20 train step, batch 128", quick=True, with_torch=False)
    assert row["cnnkit_mb"] > 0 and row["predicted_mb"] > 0 and row["ratio_to_predicted"] > 0


def test_layer_times_cover_every_leaf_in_both_engines(monkeypatch):
    from cnnkit.benchmark.layers import format_layers, layer_times
    monkeypatch.setattr(cnnkit.jit, "MIN_BYTES", 0)                          # this small batch's layers too
    cnnkit.manual_seed(0)
    model = cnnkit.models.resnet20()
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32), dtype=np.float32)
    result = layer_times(model, x, torch, repeats=2)
    twin = benchmark.torch_twin(model, torch)[0].eval()
    shapes = {}                                     # output shapes seen by PyTorch's own hooks
    for n, m in twin.named_modules():
        if n and not list(m.children()):
            m.register_forward_hook(lambda mod, i, out, n=n: shapes.__setitem__(n, tuple(out.shape)))
    with torch.no_grad():
        twin(torch.tensor(x))
    assert [r["name"] for r in result["rows"]] == list(shapes)
    for r in result["rows"]:
        assert r["shape"] == shapes[r["name"]]
        assert r["cnnkit_ms"] > 0 and r["torch_ms"] > 0
    assert result["note"] == "outputs agree"
    table = format_layers(result)
    assert "layer1.0.conv1" in table and "BatchNorm2d" in table and "whole pass" in table
    types = {r["name"]: r["type"] for r in result["rows"]}
    direct = "Conv2d direct" if cnnkit.jit.available() else "Conv2d gemm"  # 16 channels: the compiled direct loops
    assert types["layer1.0.conv1"] == direct and types["layer3.1.conv1"] == "Conv2d gemm"  # 64: im2col + GEMM


def test_cli_layers_json_and_errors(capsys):
    assert main(["bench", "--layers", "lenet5", "--batch", "2", "--repeats", "1", "--no-torch", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in out["rows"]][:3] == ["c1", "act1", "s2"]
    assert out["rows"][0]["shape"] == [2, 6, 28, 28] and out["rows"][0]["torch_ms"] is None
    assert main(["bench", "--layers", "nosuch"]) == 2
    assert "unknown model 'nosuch'" in capsys.readouterr().err
    assert main(["bench", "--layers", "lenet5", "--batch", "0"]) == 2
    assert "--batch must be at least 1, got 0" in capsys.readouterr().err


def test_layer_times_without_a_twin_time_cnnkit_alone():
    from cnnkit.benchmark.layers import format_layers, layer_times
    model = cnnkit.nn.Sequential(cnnkit.nn.Conv2d(1, 2, 3), cnnkit.nn.LeakyReLU())   # no twin for LeakyReLU
    result = layer_times(model, np.zeros((1, 1, 5, 5), dtype=np.float32), torch, repeats=1)
    assert [r["torch_ms"] for r in result["rows"]] == [None, None]
    assert all(r["cnnkit_ms"] > 0 for r in result["rows"])
    assert result["note"].startswith("no PyTorch twin for Sequential") and "cnnkit only" in result["note"]
    assert "cnnkit only" in format_layers(result)
