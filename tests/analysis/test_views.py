"""The summary's text views as a person reads them: 100 columns for every zoo model, the columns the README
promises (default and ``--wide``), aligned columns and marks, and every cell the number of the JSON view."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import cnnkit
from cnnkit import models, transfer
from cnnkit.analysis import summary
from cnnkit.nn import init

README = Path(__file__).resolve().parents[2] / "README.md"

# the README's words for each column → the headers of the text view
README_COLUMNS = {"output volume": ["Output W×H×D"], "filter F×F×D/S": ["Filter"], "padding": ["P"],
                  "params": ["Params"], "MACs": ["MACs"], "receptive field": ["RF"],
                  "input volume": ["Input W×H×D"], "K": ["K"], "trainable/frozen": ["Trainable", "Frozen"],
                  "FLOPs": ["FLOPs"], "activations": ["Activations"], "jump": ["Jump"], "start": ["Start"],
                  "algorithm": ["Algorithm"]}


def _zoo_summary(name):
    with init.skip_init():                       # shapes only: VGG's 138M random draws are not needed
        m = models.create(name)
    return summary(m, models.default_input_size(name), name=name)


def _table(text):
    """(header line, data lines) of a text view: the lines between the second and third rule."""
    lines = text.splitlines()
    rules = [i for i, ln in enumerate(lines) if ln and set(ln) == {"─"}]
    return lines[rules[0] + 1], lines[rules[1] + 1:rules[2]]


def _readme_promise():
    """The README's summary row: (default columns, --wide columns) in its own words."""
    row = next(ln for ln in README.read_text().splitlines() if ln.startswith("| `cnnkit summary"))
    what = re.split(r"(?<!\\)\|", row)[2]
    default = re.search(r"per layer: (.*?) \(`--wide` adds (.*?)\)", what)
    assert default, row
    return ([w.strip() for w in default.group(1).split(",")],
            [w.split(":")[0].strip() for w in default.group(2).split(",")])


@pytest.mark.parametrize("name", models.names())
def test_the_default_table_fits_100_columns(name):
    text = _zoo_summary(name).to_text()
    widest = max(text.splitlines(), key=len)
    assert len(widest) <= 100, widest


def test_the_readme_names_the_columns_each_view_holds():
    narrow, wide = _readme_promise()
    s = _zoo_summary("resnet18")
    shown, shown_wide = _table(s.to_text())[0].split(), _table(s.to_text(wide=True))[0]
    for word in narrow:
        assert all(h.split()[0] in shown for h in README_COLUMNS[word]), word
    for word in narrow + wide:
        assert all(h in shown_wide for h in README_COLUMNS[word]), word
    for word in wide:                                 # what the README leaves to --wide is not in the default
        assert not any(h in shown for h in README_COLUMNS[word] if h not in ("K",)), word
    assert "K" not in shown


def test_wide_cells_are_the_numbers_of_the_json():
    m = models.create("resnet20")
    transfer.freeze(m, until="layer1")
    s = summary(m)
    data = {r["name"]: r for r in json.loads(s.to_json())["layers"]}
    header, lines = _table(s.to_text(wide=True))
    right = ["K", "Params", "Trainable", "Frozen", "MACs", "FLOPs", "Activations", "RF", "Jump", "Start"]
    ends = [re.search(rf"\b{h}\b", header).end() for h in right]   # right-aligned: a cell ends under its header
    starts = {h: header.index(h) for h in ["Layer", "Type", "Input W×H×D", "Output W×H×D"]}
    checked = 0
    for line in lines:
        name = line[:starts["Type"]].strip()
        r = data[name]
        if not r["leaf"]:
            continue

        def cell(h):
            i = right.index(h)
            return line[ends[i - 1]:ends[i]].strip(" *")
        assert line[starts["Type"]:starts["Input W×H×D"]].strip() == r["type"]
        assert line[starts["Output W×H×D"]:].split()[0] == r["output_volume"]
        assert int(cell("Params").replace(",", "")) == r["params"]
        if r["params"]:
            assert int(cell("Trainable").replace(",", "")) == r["trainable_params"]
            assert int(cell("Frozen").replace(",", "")) == r["frozen_params"]
        assert _value(cell("MACs")) == pytest.approx(r["macs"], rel=5e-3, abs=0.5)
        assert _value(cell("FLOPs")) == pytest.approx(2 * r["macs"], rel=5e-3, abs=0.5)
        assert int(cell("Activations").replace(",", "") or 0) == r["activations"]
        for h, key in (("RF", "receptive_field"), ("Jump", "jump"), ("Start", "start")):
            assert cell(h) == str(r[key][-1]), (name, h)           # square windows: one number
        checked += 1
    assert checked >= 60


def _value(text):
    """``'2.36 M'`` → 2360000.0; ``'432'`` → 432."""
    scale = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    parts = text.replace(",", "").split()
    return float(parts[0]) * (scale[parts[1]] if len(parts) > 1 else 1)


def test_tree_names_join_into_the_full_names():
    s = _zoo_summary("resnet18")
    header, lines = _table(s.to_text())
    names = [r.name for r in s.layers]
    path = []
    for line, full in zip(lines, names):
        cell = line[:header.index("Type")].rstrip()
        depth = (len(cell) - len(cell.lstrip(" "))) // 2
        path = path[:depth] + [cell.strip()]
        assert ".".join(path) == full


def test_marks_sit_in_their_own_aligned_columns():
    s = _zoo_summary("resnet18")
    header, lines = _table(s.to_text())
    marked = [ln for ln in lines if "!" in ln]
    assert len(marked) == 3 and len({ln.index("!") for ln in marked}) == 1      # the three 1×1/2 downsamples
    end = header.index("Params") + len("Params")
    for ln in lines:                                 # every parameter count ends under its header
        assert ln[end - 1].isdigit() or ln[end - 1] == ")", ln
    m = models.create("resnet20")
    transfer.freeze(m, until="layer1")
    header, lines = _table(summary(m).to_text())
    end = header.index("Params") + len("Params")
    stars = {ln.index("*") for ln in lines if "*" in ln}
    assert len(stars) == 1 and stars.pop() > end                 # the frozen mark after the numbers, not in them
    assert all(ln[end - 1].isdigit() or ln[end - 1] == ")" for ln in lines)
    assert "* = frozen" in summary(m).to_text()


def test_footer_lines_wrap_at_100_and_keep_numbers_with_units():
    text = cnnkit.summary("lenet5").to_text()
    assert max(len(ln) for ln in text.splitlines()) <= 100
    assert not any(ln.rstrip().endswith(("0", "kB")) and ln.lstrip().startswith("B") for ln in text.splitlines())
    assert "optimizer state 0 B" in " ".join(ln.strip() for ln in text.splitlines())
