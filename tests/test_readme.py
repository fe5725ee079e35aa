"""The README as a new user meets it: every command and snippet of its code blocks, run as written.

The commands are read from the README's ``bash`` blocks and run in a fresh folder by a shell, in the
README's order, with the terminal 100 columns wide; the Python blocks are executed there too. Where a
command would take minutes, the cheap substitute is named in :data:`CHEAP` (``--epochs 1``); where one
needs a network or runs until Ctrl-C, :data:`SKIP` gives the reason and the test that covers it. The
README's pattern example runs with the defaults on a generated folder of shapes and must learn (≥ 90 %
training accuracy); its transfer-learning snippet must leave exactly the parameters it says trainable.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cnnkit

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PATTERN = "INPUT -> [[CONV -> RELU]*2 -> POOL]*3 -> [FC -> RELU]*2 -> FC"

# command prefix → why it is not run here (and what covers it)
SKIP = {
    "pip install": "installs the package: .ci/run does it on a clean checkout",
    "python -m pytest": "the test suite itself",
    "cnnkit serve": "a server that runs until Ctrl-C: tests/serve start it and drive the page in a browser",
    "curl ": "asks a running `cnnkit serve`: tests/serve/test_api.py sends the same requests",
    "cnnkit train resnet20 --data cifar10 --download": "downloads CIFAR-10 (170 MB); offline, "
                                                       "tests/cli/test_output.py checks its one-line message",
    "OMP_NUM_THREADS=1 python examples/transfer_digits.py": "about 5 minutes; its docstring records the figures",
}
CHEAP = "--epochs 1"     # added to every `cnnkit train` but the pattern example (40 epochs each otherwise)


def code_blocks(lang: str) -> list[tuple[int, str]]:
    """``(line number, text)`` of each fenced block of ``lang`` in the README."""
    out, lines = [], README.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == f"```{lang}":
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            out.append((i + 2, "\n".join(lines[i + 1:j])))
            i = j
        i += 1
    return out


def commands() -> list[tuple[int, str]]:
    """``(line number, command)`` of every line of the bash blocks, comments dropped."""
    out = []
    for start, text in code_blocks("bash"):
        for k, line in enumerate(text.splitlines()):
            words = shlex.split(line, comments=True)
            if words:
                out.append((start + k, shlex.join(words)))
    return out


def _skip_reason(command: str):
    return next((why for prefix, why in SKIP.items() if command.startswith(prefix)), None)


def _as_run(command: str, shapes: Path) -> str:
    if command.startswith("cnnkit train") and "path/to/folder" in command:
        return command.replace("path/to/folder", str(shapes))        # as written, on a generated folder
    if command.startswith("cnnkit train"):
        return f"{command} {CHEAP}"
    return command


def _inputs(folder: Path) -> Path:
    """What the README's commands read: a photo, hand-drawn digits, a folder of shapes."""
    from PIL import Image
    from skimage import data

    from tests.cli.shapes import make_shapes
    from tests.data.drawn import draw_digit
    Image.fromarray(data.astronaut()).save(folder / "photo.png")
    Image.fromarray(draw_digit(7)).save(folder / "my_digit.png")
    Image.fromarray(draw_digit(3)).save(folder / "digit.png")
    (folder / "docs").mkdir()                                       # the viz commands write docs/*.png here
    (folder / "examples").symlink_to(ROOT / "examples")
    return make_shapes(folder / "shapes", per_class=40)


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """Every README command run in README order in one fresh folder: ``{line: (command, result)}``."""
    folder = tmp_path_factory.mktemp("readme")
    shapes = _inputs(folder)
    env = dict(os.environ, COLUMNS="100", CNNKIT_HOME=str(folder / "home"), PYTHONPATH=str(ROOT),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    done = {}
    for line, command in commands():
        if _skip_reason(command):
            continue
        run = _as_run(command, shapes)
        done[line] = (run, subprocess.run(run, shell=True, cwd=folder, env=env, capture_output=True, text=True,
                                          timeout=900))
    return folder, done


@pytest.mark.slow
@pytest.mark.parametrize("line, command", commands(), ids=[c[:60] for _, c in commands()])
def test_each_readme_command_runs_as_written(walk, line, command):
    why = _skip_reason(command)
    if why:
        pytest.skip(why)
    folder, done = walk
    run, result = done[line]
    assert result.returncode == 0, f"README line {line}: {run}\n{result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr
    wide = [ln for ln in result.stdout.splitlines() if len(ln) > 100]
    assert not wide, f"README line {line}: stdout wider than 100 columns:\n" + "\n".join(wide[:5])


@pytest.mark.slow
def test_the_pattern_example_learns_with_the_defaults(walk):
    folder, done = walk
    line, (run, result) = next((k, v) for k, v in done.items() if PATTERN in v[0])
    assert "--epochs" not in run and "--lr" not in run and "--optimizer" not in run       # the defaults
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = folder / "runs" / "pattern-shapes"
    log = [json.loads(ln) for ln in (run_dir / "log.jsonl").read_text().splitlines()]
    assert len(log) == 40 and log[-1]["train_accuracy"] >= 0.9, [r["train_accuracy"] for r in log]
    assert json.loads((run_dir / "config.json").read_text())["training"]["lr"] == 0.02


@pytest.mark.slow
def test_the_readme_lists_the_files_a_run_writes(walk):
    folder, _ = walk
    said = re.search(r"writes `runs/lenet5-digits/` \((.*?)\)\.", README.replace("\n", " "), re.S).group(1)
    named = set(re.findall(r"`([\w.]+\.(?:safetensors|json|jsonl|png))`", said))
    assert named == {p.name for p in (folder / "runs" / "lenet5-digits").iterdir()}


# ----------------------------------------------------------------------------- the Python blocks
def _block(containing: str) -> str:
    return next(text for _, text in code_blocks("python") if containing in text)


@pytest.mark.slow
def test_the_tour_runs(walk, monkeypatch, capsys):
    monkeypatch.chdir(walk[0])
    exec(compile(_block("cnnkit.randn(8, 1, 32, 32)"), "README tour", "exec"), {})
    assert "61,706" in capsys.readouterr().out


@pytest.mark.slow
def test_the_recipe_runs(walk, monkeypatch):
    """The recipe block, with a one-epoch LeNet-5 on the digits for its 60-epoch ResNet-20 on CIFAR-10 (a download)."""
    monkeypatch.chdir(walk[0])
    text = _block("train.TrainConfig(model=\"resnet20\"")
    cheap = text.replace('train.TrainConfig(model="resnet20", data="cifar10", download=True, epochs=60)',
                         'train.TrainConfig(epochs=1, out="runs/recipe", plots=False)')
    cheap = cheap.replace("train.TrainConfig(epochs=5)", "train.TrainConfig(epochs=1, plots=False)")
    assert cheap.count("epochs=1") == 2
    scope = {}
    exec(compile(cheap, "README recipe", "exec"), scope)
    assert scope["result"].metrics["test_accuracy"] > 0.5


@pytest.mark.slow
def test_the_pictures_snippet_runs(walk, monkeypatch):
    """The viz block with the names it leaves to the reader: a trained LeNet-5, one test image, its classes."""
    monkeypatch.chdir(walk[0])
    run = cnnkit.train.load_run("runs/lenet5-mnist-5k")
    test = cnnkit.train.splits.load_data("mnist-5k").test
    mean, std = np.float32(run.mean[0]), np.float32(run.std[0])
    images = (test.images[:64] - mean) / std                          # model inputs, normalised as in training
    scope = {"model": run.model, "x": images[0], "classes": run.classes, "images": images}
    exec(compile(_block("from cnnkit import viz"), "README pictures", "exec"), scope)
    assert scope["fig"].get_axes()


@pytest.mark.slow
def test_the_transfer_snippet_trains_exactly_what_it_says(walk, monkeypatch):
    """freeze(until="layer3") then finetune: layer4 and the new head train, conv1 … layer3 stay bit for bit."""
    from safetensors.numpy import save_file
    monkeypatch.chdir(walk[0])
    cnnkit.manual_seed(0)
    pretrained = cnnkit.models.create("resnet18")                   # stands in for the ImageNet file
    save_file({k: np.array(v.data, order="C") for k, v in pretrained.state_dict().items()}, "resnet18.safetensors")
    rng = np.random.default_rng(0)
    batches = [(cnnkit.tensor(rng.standard_normal((8, 3, 32, 32)).astype(np.float32)),
                cnnkit.tensor(rng.integers(0, 5, 8))) for _ in range(2)]
    scope = {"cnnkit": cnnkit, "train_loader": batches, "val_loader": batches[:1]}
    text = _block("cnnkit.transfer.freeze(model, until=\"layer3\")")
    lines = text.splitlines()
    cut = next(i for i, ln in enumerate(lines) if "finetune" in ln)
    exec(compile("\n".join(lines[:cut]), "README transfer", "exec"), scope)          # everything up to finetune
    model = scope["model"]
    before = {k: p.data.copy() for k, p in model.named_parameters()}
    exec(compile("\n".join(lines[cut:]), "README transfer", "exec"), scope)          # finetune, as written
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    assert trainable == {k for k in before if k.startswith(("layer4.", "fc."))}
    for k, p in model.named_parameters():
        moved = not np.array_equal(p.data, before[k])
        assert moved == (k in trainable), k                                        # frozen: bit for bit
    # what the README says: layer4 of ResNet-18 (He et al. 2016, Table 1: two 3×3 512 blocks, a 1×1/2 shortcut)
    # and a 512 → 5 head, counted from the architecture
    layer4 = (3 * 3 * 256 * 512 + 3 * 3 * 512 * 512 + 1 * 1 * 256 * 512 + 3 * 1024) + \
             (2 * 3 * 3 * 512 * 512 + 2 * 1024)
    head = 512 * 5 + 5
    assert sum(before[k].size for k in trainable) == layer4 + head == 8_396_293
    said = re.search(r"layer4 and the new head:\s+([\d,]+) of ([\d,]+)", README)
    assert said and int(said.group(1).replace(",", "")) == layer4 + head
    assert int(said.group(2).replace(",", "")) == sum(v.size for v in before.values())
