"""`cnnkit models | summary | explain | compare` end to end (in-process), exit codes and messages."""
from __future__ import annotations

import csv
import io
import json

import pytest

from cnnkit.cli import main

models = pytest.importorskip("cnnkit.models")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _zoo():
    if "lenet5" not in models.names():
        pytest.skip("zoo model lenet5 not registered")


def test_models_lists_names_and_parameter_counts(capsys, monkeypatch):
    code, out, _ = run(capsys, "models", "--names-only")
    assert code == 0 and "lenet5" in out.split()
    monkeypatch.setattr(models, "names", lambda: ["lenet5"])  # building every zoo model takes a minute
    code, out, _ = run(capsys, "models")
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("lenet5"))
    assert "1,32,32" in line and "61,706" in line  # the lecture's LeNet-5


def test_summary_text(capsys):
    code, out, _ = run(capsys, "summary", "lenet5")
    assert code == 0
    assert "28×28×6" in out and "61,706" in out and "FLOPs = 2 × MACs" in out


def test_summary_json_memory_options(capsys):
    code, out, _ = run(capsys, "summary", "lenet5", "--json", "--dtype", "float64", "--batch", "8",
                       "--optimizer", "adam")
    assert code == 0
    d = json.loads(out)
    assert d["model"] == "lenet5" and d["input"] == [1, 32, 32]
    for layer in d["layers"]:
        assert {"name", "type", "input", "output", "params", "macs", "receptive_field"} <= layer.keys()
    t = d["total"]
    assert t["params"] == 61706 and t["param_bytes"] == 61706 * 8
    assert t["optimizer_bytes"] == 2 * 61706 * 8
    assert t["activation_bytes"] == t["activations"] * 8 * 8
    assert {"trainable_params", "macs", "activations", "training_bytes", "inference_bytes"} <= t.keys()
    first = d["layers"][0]
    assert first["output"] == [6, 28, 28] and first["params"] == 156 and first["receptive_field"] == [5, 5]


def test_summary_csv_markdown_count_and_file(capsys, tmp_path):
    code, out, _ = run(capsys, "summary", "lenet5", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and rows[0]["params"] == "156"
    code, out, _ = run(capsys, "summary", "lenet5", "--markdown")
    assert code == 0 and out.startswith("### lenet5") and "| --- |" not in out and "|---|" in out
    code, out, _ = run(capsys, "summary", "lenet5", "--count", "lecture", "--json")
    assert json.loads(out)["layers"][0]["macs"] == (5 * 5 * 1 + 1) * 6 * 28 * 28   # the lecture's No. MULs
    target = tmp_path / "lenet.json"
    code, out, err = run(capsys, "summary", "lenet5", "--json", "-o", str(target))
    assert code == 0 and out == "" and json.loads(target.read_text())["total"]["params"] == 61706


@pytest.mark.parametrize("argv, message", [
    (["summary", "lenet6"], "unknown model 'lenet6'"),
    (["summary", "lenet5", "--input", "1,12,12"], r"layer c3 \(Conv2d"),
    (["summary", "lenet5", "--input", "3,32,32"], "layer c1"),
    (["summary", "lenet5", "--input", "a,b"], "--input must be C,H,W"),
    (["summary", "lenet5", "--dtype", "float7"], "unknown dtype 'float7'"),
    (["summary", "lenet5", "--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'"),
    (["explain", "lenet5", "--layer", "C9"], "no layer named 'C9'"),
    (["explain", "nonet"], "unknown model 'nonet'"),
    (["compare", "stack"], "neither a comparison"),
])
def test_user_errors_exit_2(capsys, argv, message):
    import re
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("cnnkit: error: ") and re.search(message, err), err


def test_explain(capsys):
    code, out, _ = run(capsys, "explain", "lenet5", "--layer", "c1")
    assert code == 0
    assert "W2 = (W1 − F + 2P)/S + 1 = (32 − 5 + 0)/1 + 1 = 28" in out
    assert "params = (F·F·D1 + 1)·K = (5·5·1 + 1)·6 = 156" in out
    code, out, _ = run(capsys, "explain", "lenet5")
    assert code == 0 and "(5·5·6 + 1)·16 = 2,416" in out and "(120 + 1)·84 = 10,164" in out


def test_compare(capsys):
    code, out, _ = run(capsys, "compare", "bottleneck")
    assert code == 0 and "153,600" in out and "15,872" in out
    code, out, _ = run(capsys, "compare", "separable", "--json")
    d = json.loads(out)
    assert [(r["params"], r["macs"]) for r in d["rows"]] == [(72, 1152), (26, 416)]
    code, out, _ = run(capsys, "compare", "stacked", "--layers", "2", "--json")
    assert [r["receptive_field"] for r in json.loads(out)["rows"]] == [5, 5]
    code, out, _ = run(capsys, "compare", "lenet5", "lenet5", "--json")
    assert code == 0 and [r["params"] for r in json.loads(out)["rows"]] == [61706, 61706]
