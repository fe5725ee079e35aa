"""Every command's output as a program reads it (``--json``: strict JSON holding the numbers of the text
view, each compared with the text it stands for) and as a person meets it (help for every option, a
description for every command, one line when a download cannot happen and nothing left behind)."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import socket

import numpy as np
import pytest

import cnnkit
from cnnkit import models
from cnnkit.cli import build_parser, main


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def strict(text: str):
    """``json.loads`` that refuses NaN and ±Infinity (Python's own reader accepts them)."""
    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def _value(text):
    """``'1.81 G'`` → 1.81e9 (the text view's unit suffixes)."""
    scale = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    parts = text.replace(",", "").split()
    return float(parts[0]) * (scale[parts[1]] if len(parts) > 1 else 1)


def test_strict_json_refuses_what_is_not_finite():
    from cnnkit.cli.output import to_json
    assert strict(to_json({"a": [1.5, None, "28×28×6"]})) == {"a": [1.5, None, "28×28×6"]}
    with pytest.raises(ValueError):
        to_json({"loss": float("nan")})


# ----------------------------------------------------------------------------- --json = the text's numbers
def test_models_json_and_text_in_natural_order(monkeypatch):
    few = ["lenet5", "resnet18", "resnet20", "resnet110", "vgg11"]
    monkeypatch.setattr(models, "names", lambda: [n for n in models.registry.names() if n in few])
    code, text, _ = cli("models")
    assert code == 0
    code, out, _ = cli("models", "--json")
    rows = strict(out)
    assert code == 0 and [r["name"] for r in rows] == ["lenet5", "resnet18", "resnet20", "resnet110", "vgg11"]
    lines = text.splitlines()[1:]
    for r, line in zip(rows, lines):
        name, size, params, *macs = line.split()
        assert name == r["name"] and size == ",".join(map(str, r["input"])) and int(params.replace(",", "")) == r["params"]
        assert _value(" ".join(macs)) == pytest.approx(r["macs"], rel=5e-3)
    assert rows[0]["params"] == 61_706 and rows[1]["params"] == 11_689_512     # the lecture; torchvision


def test_explain_json_holds_the_derivations_and_their_numbers():
    code, text, _ = cli("explain", "lenet5")
    code2, out, _ = cli("explain", "lenet5", "--json")
    assert code == code2 == 0
    d = strict(out)
    assert d["model"] == "lenet5" and d["input"] == [1, 32, 32] and d["total"]["params"] == 61_706
    lines = [ln.strip() for ln in text.splitlines()]
    for layer in d["layers"]:
        at = lines.index(layer["derivation"][0])
        assert lines[at:at + len(layer["derivation"])] == layer["derivation"]     # the text, line for line
        body = "\n".join(layer["derivation"])
        for pattern, want in [(r"^params = .* = ([\d,]+)", layer["params"]), (r"^MULs = .* = ([\d,]+)", layer["muls"]),
                              (r"^MACs \(bias omitted\) = .* = ([\d,]+)$", layer["macs"]),
                              (r"^W2 = .* = (\d+)", layer["output"][-1]),
                              (r"^RF = .* = (\d+);", (layer["receptive_field"] or [None])[-1])]:
            m = re.search(pattern, body, re.M)
            if m:
                assert int(m.group(1).replace(",", "")) == want, (layer["name"], pattern)
    c1 = d["layers"][0]
    assert (c1["params"], c1["muls"], c1["macs"]) == (156, 122_304, 117_600)    # the lecture's C1
    code, out, _ = cli("explain", "lenet5", "--layer", "c3", "--json")
    one = strict(out)
    assert [r["name"] for r in one["layers"]] == ["c3"] and one["total"] is None


@pytest.mark.parametrize("what", [["stacked"], ["bottleneck"], ["separable"], ["lenet5", "resnet20"]])
def test_compare_json_and_its_human_headers(what):
    code, text, _ = cli("compare", *what)
    code2, out, _ = cli("compare", *what, "--json")
    assert code == code2 == 0
    d = strict(out)
    header = text.splitlines()[1]
    assert "_" not in header and "receptive_field" not in text and "params_per_D2" not in text
    for row in d["rows"]:
        line = next(ln for ln in text.splitlines() if ln.startswith(row["label"] + "  "))
        cells = re.split(r"\s{2,}", line[len(row["label"]):].strip())
        for key, cell in zip(d["columns"], cells):
            v = row[key]
            if key.endswith("_bytes"):
                unit = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[cell.split()[1]]
                assert float(cell.split()[0]) * unit == pytest.approx(v, rel=5e-3)
            elif isinstance(v, int):
                assert int(cell.replace(",", "")) == v
            else:
                assert cell == str(v)


def test_filters_json_is_the_printed_matrices():
    code, text, _ = cli("filters")
    code2, out, _ = cli("filters", "--json")
    assert code == code2 == 0
    rows = strict(out)
    assert [r["name"] for r in rows] == cnnkit.filters.names()
    blocks = {b.splitlines()[0]: b.splitlines()[1:] for b in text.strip().split("\n\n")}
    assert max(len(ln) for ln in text.splitlines()) <= 100
    for r in rows:
        lines = blocks[r["name"]]
        matrix = [ln for ln in lines if "[" in ln]
        described = " ".join(ln.strip() for ln in lines if "[" not in ln)           # wrapped at 100 columns
        assert described == r["description"]
        first = matrix[0].strip()
        divisor = int(re.match(r"-?1/(\d+) ×", first).group(1)) * (-1 if first.startswith("-") else 1) \
            if "×" in first.split("[")[0] else 1
        printed = [[float(v) for v in ln.split("[")[1].rstrip("]").split(",")] for ln in matrix]
        assert divisor == r["divisor"] and printed == r["matrix"]
        np.testing.assert_array_equal(np.array(r["kernel"]), np.array(r["matrix"], float) / r["divisor"])
    assert next(r for r in rows if r["name"] == "sobel_x")["matrix"] == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]


def test_train_json_is_stdout_alone_and_the_numbers_of_the_text(tmp_path):
    args = ["train", "--epochs", "1", "--batch-size", "128", "--no-plots"]
    code, text, err = cli(*args, "--out", tmp_path / "a")
    assert code == 0, err
    code, out, err2 = cli(*args, "--out", tmp_path / "b", "--json")
    assert code == 0, err2
    d = strict(out)                                      # stdout is the JSON document and nothing else
    assert "lenet5" in err2 and "Params: 61,706" in err2 and "epoch   1" in err2     # the rest went to stderr
    m = re.search(r"test accuracy: ([\d.]+)% \((\d+)/(\d+)\), loss ([\d.]+)", text)
    assert m, text
    assert f"{100 * d['test_accuracy']:.2f}" == m.group(1) and d["test_correct"] == int(m.group(2))
    assert d["test_size"] == int(m.group(3)) == 359 and f"{d['test_loss']:.4f}" == m.group(4)
    assert d["run_dir"] == str(tmp_path / "b") and d["epochs"] == 1 and d["model"] == "lenet5"
    saved = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert {k: d[k] for k in saved} == saved

    code, text, _ = cli("evaluate", tmp_path / "a")
    code2, out, _ = cli("evaluate", tmp_path / "a", "--json")
    report = strict(out)
    assert code == code2 == 0
    for row in report["per_class"]:
        line = next(ln for ln in text.splitlines() if ln.split()[:1] == [str(row["class"])] and "%" in ln)
        precision, recall = re.findall(r"(\d+\.\d+)%", line)
        assert len(precision.split(".")[1]) == len(recall.split(".")[1]) == 2      # the same decimals
        assert precision == f"{100 * row['precision']:.2f}" and recall == f"{100 * row['recall']:.2f}"
        assert int(line.split()[-1]) == row["support"]


def test_weights_list_json_and_rows():
    code, text, _ = cli("weights", "list")
    code2, out, _ = cli("weights", "list", "--json")
    assert code == code2 == 0
    rows = strict(out)
    assert "(prefix)" not in text and max(len(ln) for ln in text.splitlines()) <= 100
    for r in rows:
        line = next(ln for ln in text.splitlines() if ln.startswith(r["name"] + " "))
        name, model, top1, top5, params, gmacs, size, *default = line.split()
        acc = r["metrics"]["ImageNet-1K"]
        assert (model, float(top1), float(top5)) == (r["model"], acc["acc@1"], acc["acc@5"])
        assert int(params.replace(",", "")) == r["num_params"] and float(gmacs) == round(r["macs"] / 1e9, 3)
        assert (default == ["yes"]) == r["default"]


# ----------------------------------------------------------------------------- weights by model name
def test_weights_download_a_model_name_takes_its_default_entry(server, tmp_path):
    import hashlib

    from cnnkit.models import weights as W
    blob = b"weights" * 1000
    server.files["/lenet5-v2.bin"] = blob
    W.register_weights("LeNet5_Weights.TEST_V1", "lenet5", server.url + "/nothing.bin", "0" * 64)
    W.register_weights("LeNet5_Weights.TEST_V2", "lenet5", server.url + "/lenet5-v2.bin",
                       hashlib.sha256(blob).hexdigest(), default=True)
    try:
        code, out, err = cli("weights", "download", "lenet5", "--cache", tmp_path / "cache", "--quiet")
        assert code == 0, err
        assert out.strip() == str(tmp_path / "cache" / "lenet5-v2.bin")
        assert (tmp_path / "cache" / "lenet5-v2.bin").read_bytes() == blob
        code, out, err = cli("weights", "download", "resnet20", "--cache", tmp_path / "cache")
        assert code == 2 and out == ""
        assert err.startswith("cnnkit: error: model resnet20 has no registered weights; models with weights: ")
        assert err.count("\n") == 1
    finally:
        W.unregister_weights("LeNet5_Weights.TEST_V1")
        W.unregister_weights("LeNet5_Weights.TEST_V2")


# ----------------------------------------------------------------------------- downloads that cannot happen
@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No host resolves (getaddrinfo fails as without a network); the caches live under tmp_path."""
    def fail(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", fail)
    monkeypatch.setenv("CNNKIT_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


def test_train_download_offline_says_so_once_and_leaves_nothing(offline, tmp_path):
    code, out, err = cli("train", "resnet20", "--data", "cifar10", "--download")
    assert code == 2 and out == ""
    assert err == ("cnnkit: error: could not download cifar-10-binary.tar.gz: cannot reach www.cs.toronto.edu "
                   "(no network?)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == []          # no home/datasets/cifar10, no runs/
    code, out, err = cli("train", "lenet5", "--data", "mnist", "--download")
    assert code == 2 and err.count("\n") == 1 and "(no network?)" in err and err.count("http") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_weights_download_failures_are_one_line(offline, tmp_path):
    (tmp_path / "afile.txt").write_text("keep me")
    code, out, err = cli("weights", "download", "resnet18", "--cache", "afile.txt")
    assert code == 2 and out == "" and "Traceback" not in err
    assert err == "cnnkit: error: cannot download into afile.txt: afile.txt is a file, not a folder\n"
    assert (tmp_path / "afile.txt").read_text() == "keep me"
    code, out, err = cli("weights", "download", "ResNet18_Weights.IMAGENET1K_V1", "--cache", "w")
    assert code == 2 and err == ("cnnkit: error: could not download resnet18-f37072fd.pth: cannot reach "
                                 "download.pytorch.org (no network?)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile.txt"]


# ----------------------------------------------------------------------------- help as a person reads it
def _commands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,), sub
                yield from _commands(sub, prefix + (name,))


@pytest.mark.parametrize("command", [c for c, _ in _commands(build_parser())],
                         ids=lambda c: " ".join(c))
def test_every_command_has_a_description_and_every_option_help(command):
    sub = dict(_commands(build_parser()))[command]
    assert sub.description, f"cnnkit {' '.join(command)} has no description line"
    missing = [a.option_strings or a.dest for a in sub._actions
               if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)) and not a.help]
    assert not missing, f"cnnkit {' '.join(command)}: options without help: {missing}"


def test_summary_help_explains_its_formats(capsys):
    with pytest.raises(SystemExit):
        main(["summary", "--help"])
    text = capsys.readouterr().out
    for option in ("--json", "--csv", "--markdown", "--wide"):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(option))
        assert len(line.strip()) > len(option) + 10, line                # a help text beside it


def test_filter_usage_shows_one_name_and_one_image(capsys):
    with pytest.raises(SystemExit):
        main(["filter", "--help"])
    usage = capsys.readouterr().out.split("\n\n")[0]
    assert usage.rstrip().endswith("[NAME] IMAGE") and "..." not in usage
