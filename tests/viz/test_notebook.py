"""Notebooks: the summary's HTML table parsed back and checked against its JSON; figures show inline."""
import json
from html.parser import HTMLParser

import pytest

import cnnkit


class _Table(HTMLParser):
    """Collects the caption, header cells, body rows and list items of the summary's HTML."""

    def __init__(self):
        super().__init__()
        self.caption, self.headers, self.rows, self.items = "", [], [], []
        self._where, self._cell = None, None

    def handle_starttag(self, tag, attrs):
        if tag in ("caption", "li"):
            self._where, self._cell = tag, ""
        elif tag == "tr":
            self._row = []
        elif tag in ("th", "td"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "caption":
            self.caption, self._where = self._cell, None
        elif tag == "li":
            self.items.append(self._cell)
            self._where = None
        elif tag == "th":
            self.headers.append(self._cell)
        elif tag == "td":
            self._row.append(self._cell)
        elif tag == "tr" and self._row:
            self.rows.append(self._row)
        if tag in ("th", "td"):
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _parse(summary):
    p = _Table()
    p.feed(summary._repr_html_())
    return p


@pytest.mark.parametrize("name", ["lenet5", "resnet18"])
def test_summary_html_holds_the_numbers_of_its_json(name):
    s = cnnkit.summary(name)
    table = _parse(s)
    data = json.loads(s.to_json())
    assert table.caption == name
    assert table.headers[:4] == ["Layer", "Type", "Input W×H×D", "Output W×H×D"] and "Params" in table.headers
    col = {h: i for i, h in enumerate(table.headers)}
    by_name = {r[0]: r for r in table.rows}
    leaves = [r for r in data["layers"] if r["leaf"] and r["called"]]
    assert leaves and all(r["name"] in by_name for r in leaves)
    for r in leaves:
        row = by_name[r["name"]]
        assert row[col["Type"]] == r["type"]
        assert row[col["Output W×H×D"]] == r["output_volume"]
        assert int(row[col["Params"]].split(" ")[0].replace(",", "")) == r["params"]
        if r["receptive_field"]:
            assert row[col["RF"]].split("×")[0] == str(r["receptive_field"][-1])
    total = data["total"]["params"]
    assert any(item.startswith(f"Params: {total:,} (") for item in table.items)
    assert any(f"MACs: {data['total']['macs']:,} (" in item for item in table.items)


def test_summary_html_escapes_and_keeps_depth():
    from cnnkit import nn
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    s = cnnkit.summary(model, (3, 8, 8), name="a<b>&c")
    html = s._repr_html_()
    assert "<b>a&lt;b&gt;&amp;c</b>" in html and "a<b>&c" not in html
    assert _parse(s).caption == "a<b>&c"
    deep = cnnkit.summary("resnet18", depth=1)                 # the blocks folded into one row each
    shown = [r for r in json.loads(deep.to_json())["layers"] if r["depth"] <= 1]
    assert [r[0] for r in _parse(deep).rows] == [r["name"] for r in shown]
    assert len(shown) < len(_parse(cnnkit.summary("resnet18")).rows)
