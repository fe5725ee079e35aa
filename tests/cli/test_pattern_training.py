"""`cnnkit train PATTERN --data FOLDER` learns with the defaults, for patterns a user writes (not only the
README's, which tests/test_readme.py runs as written): a deeper plain ReLU stack and a tanh network, each
on 3 × 40 generated shapes, to ≥ 90 % training accuracy in the default 40 epochs."""
import contextlib
import io
import json

import pytest

from cnnkit.cli import main

from .shapes import make_shapes


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("shapes") / "shapes", per_class=40, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("pattern", ["INPUT -> [[CONV -> RELU]*3 -> POOL]*3 -> FC",
                                     "INPUT -> [CONV -> TANH -> POOL]*3 -> FC -> TANH -> FC"])
def test_a_pattern_learns_with_the_defaults(shapes, tmp_path, pattern):
    out = tmp_path / "run"
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["train", pattern, "--data", str(shapes), "--out", str(out), "--no-plots"])
    assert code == 0, err.getvalue()[-2000:]
    log = [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == 40 and log[-1]["train_accuracy"] >= 0.9, [round(r["train_accuracy"], 2) for r in log]
