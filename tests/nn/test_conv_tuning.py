"""Selection by measurement and its cache (``conv/tuning.py``), ``cnnkit tune`` and the algorithm column of
``cnnkit summary``. Each test that turns measurement on gets a cache folder of its own (``measured`` fixture): the
rest of the suite runs with measurement off (``tests/conftest.py``)."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import cnnkit
from cnnkit.cli import main
from cnnkit.nn import functional as F
from cnnkit.nn.functional import conv
from cnnkit.nn.functional.conv import registry, tuning
from cnnkit.nn.functional.conv.algorithm import FORWARD, Algorithm
from cnnkit.nn.functional.conv.geometry import Geometry
from tests.helpers import record_selection

needs_numba = pytest.mark.skipif(not cnnkit.jit.available(), reason="Numba is not installed (compiled algorithms)")

LAYER = ((16, 16, 16, 16), (16, 16, 3, 3))                 # a direct layer of the default order, worth measuring


@pytest.fixture
def measured(tmp_path, monkeypatch):
    """Measurement on, with a cache folder of this test's own; returns that folder."""
    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tuning, "_files", {})
    monkeypatch.setattr(tuning, "_PATHS", {})
    monkeypatch.setattr(tuning, "_warned", set())
    with conv.measuring(True):
        yield tmp_path


def _geom(shape=LAYER[0], weight=LAYER[1], padding=1):
    return Geometry.of(shape, weight, (1, 1), ((padding, padding),) * 2, (1, 1), 1, np.float32)


def _store(folder, entries: dict) -> None:
    """A cache file for this machine holding ``entries`` ({(direction, geometry): ranking})."""
    data = {"format": tuning.FORMAT, "machine": tuning._key(),
            "choices": {tuning.entry_key(d, g): {"ranking": r, "ms": {}} for (d, g), r in entries.items()}}
    tuning.cache_path().write_text(json.dumps(data))
    assert tuning.cache_path().parent == folder


def test_the_cache_is_keyed_by_cpu_isa_blas_threads_and_version(measured):
    m = tuning.machine()
    assert m["isa"] in ("AVX-512", "AVX2", "AVX") or m["isa"] == os.uname().machine
    assert m["blas"] and m["cnnkit"].startswith("0.") and len(m["flags"]) == 12
    assert m["openblas_coretype"] == os.environ.get("OPENBLAS_CORETYPE")
    paths = set()
    before = cnnkit.get_num_threads()
    try:
        for n in (1, 2, 3):
            cnnkit.set_num_threads(n)
            paths.add(tuning.cache_path())
    finally:
        cnnkit.set_num_threads(before)
    assert len(paths) == 3 and all(p.parent == measured and p.name.startswith("conv-algorithms-") for p in paths)


@needs_numba
def test_a_measured_choice_is_stored_and_a_second_process_uses_it_without_measuring(measured):
    x = cnnkit.tensor(np.random.default_rng(0).standard_normal(LAYER[0], dtype=np.float32), requires_grad=True)
    w = cnnkit.tensor(np.random.default_rng(1).standard_normal(LAYER[1], dtype=np.float32), requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    data = json.loads(tuning.cache_path().read_text())
    assert data["machine"] == tuning._key()
    stored = {k.split()[0]: v for k, v in data["choices"].items()}
    assert set(stored) == {"forward", "input_grad", "weight_grad"}
    for direction, entry in stored.items():
        candidates = [a.name for a in registry.algorithms(direction) if registry.usable(a, _geom())]
        assert sorted(entry["ranking"]) == sorted(candidates) and set(entry["ms"]) == set(candidates)
    child = ("import numpy as np, cnnkit; from cnnkit.nn.functional.conv import tuning, conv2d_path\n"
             "tuning._time = None  # measuring now would fail\n"
             f"print(*(conv2d_path({LAYER[0]}, {LAYER[1]}, 1, 1, direction=d) for d in "
             "('forward', 'input_grad', 'weight_grad')))")
    env = {**os.environ, "CNNKIT_CONV_MEASURE": "1"}
    out = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [stored[d]["ranking"][0] for d in ("forward", "input_grad", "weight_grad")]


@needs_numba
def test_a_given_cache_gives_its_choices_and_the_call_runs_them(measured, monkeypatch):
    # the default order takes the direct loops here; the cache says gemm first, then direct
    assert registry.default(FORWARD, _geom()).name == "direct"
    _store(measured, {(FORWARD, _geom()): ["gemm", "direct"]})
    monkeypatch.setattr(tuning, "_time", None)             # nothing may be measured
    assert conv.conv2d_path(*LAYER, 1, 1) == "gemm"
    taken = record_selection(monkeypatch)
    for _ in range(3):                                      # the same choice every call
        with cnnkit.no_grad():
            F.conv2d(cnnkit.randn(*LAYER[0]), cnnkit.randn(*LAYER[1]), padding=1)
    assert taken == [(FORWARD, "gemm")] * 3
    with conv.measuring(False):                             # measurement off: the default order, cache or not
        assert conv.conv2d_path(*LAYER, 1, 1) == "direct"


@needs_numba
def test_a_choice_switched_off_gives_way_to_the_next_of_the_ranking(measured, monkeypatch):
    _store(measured, {(FORWARD, _geom()): ["winograd-rows", "row-shifted", "gemm", "direct"]})
    monkeypatch.setattr(tuning, "_time", None)
    assert conv.conv2d_path(*LAYER, 1, 1) == "winograd-rows"
    with conv.switched_off("winograd"):
        assert conv.conv2d_path(*LAYER, 1, 1) == "row-shifted"


def test_rank_keeps_the_default_unless_another_is_clearly_and_mostly_faster():
    assert tuning.rank({"gemm": [10.0] * 5, "direct": [9.8] * 5}, "gemm") == ["gemm", "direct"]   # 2 %: noise
    assert tuning.rank({"gemm": [10.0] * 5, "direct": [9.0] * 5}, "gemm") == ["direct", "gemm"]   # 10 %
    lucky = [5.0, 11.0, 11.0, 11.0, 11.0]                  # one fast run in five: the default stays
    assert tuning.rank({"gemm": [10.0] * 5, "direct": lucky}, "gemm") == ["gemm", "direct"]
    assert tuning.rank({"a": [3.0], "b": [1.0] * 5, "c": [2.0] * 5}, "c") == ["b", "c", "a"]


def _sleeper(name, seconds):
    return Algorithm(name, FORWARD, lambda geom, *arrays: time.sleep(seconds))


def test_measurement_picks_the_fastest_and_stores_its_timings(measured):
    geom = _geom()
    slow, fast, slower = _sleeper("gemm", 0.004), _sleeper("direct", 0.0005), _sleeper("winograd-rows", 0.02)
    ranking = tuning.choose(FORWARD, geom, [slow, fast, slower], slow, arrays=(None, None, None))
    assert ranking == ["direct", "gemm", "winograd-rows"]
    entry = json.loads(tuning.cache_path().read_text())["choices"][tuning.entry_key(FORWARD, geom)]
    assert entry["ranking"] == ranking and entry["ms"]["direct"] < entry["ms"]["gemm"] < entry["ms"]["winograd-rows"]
    assert tuning.choose(FORWARD, geom, [slow], slow) == ranking            # cached: not measured again
    with tuning.fresh():                                                    # `cnnkit tune --force`
        assert tuning.choose(FORWARD, geom, [slow, slower], slow, arrays=(None,) * 3) == ["gemm", "winograd-rows"]


def test_data_an_algorithm_refuses_is_replaced_by_random_arrays_for_timing(measured):
    seen = []
    picky = Algorithm("winograd-rows", FORWARD, lambda geom, *a: seen.append(np.isfinite(a[0]).all()),
                      accepts=lambda x, w, b: bool(np.isfinite(x).all()))
    x = np.full(LAYER[0], np.inf, np.float32)
    tuning.choose(FORWARD, _geom(), [picky], picky, arrays=(x, np.ones(LAYER[1], np.float32), None))
    assert seen and all(seen)


def test_small_layers_and_empty_batches_are_not_measured(measured, monkeypatch):
    monkeypatch.setattr(tuning, "_time", None)
    small = _geom((1, 3, 8, 8), (4, 3, 3, 3))
    assert small.macs < tuning.MEASURE_MIN_MACS
    assert registry.select(FORWARD, small) is registry.default(FORWARD, small)
    assert registry.select(FORWARD, _geom((0,) + LAYER[0][1:])) is registry.reference(FORWARD)


def test_a_corrupt_cache_is_ignored_with_a_warning_and_replaced_whole(measured):
    tuning.cache_path().write_text("{not json")
    with pytest.warns(UserWarning, match="ignoring the convolution algorithm cache .*conv-algorithms-"):
        assert tuning.cached(FORWARD, _geom()) is None
    gemm = registry.reference(FORWARD)
    tuning.choose(FORWARD, _geom(), [gemm], gemm, arrays=tuning._arrays(FORWARD, _geom()))
    data = json.loads(tuning.cache_path().read_text())                       # valid JSON again, nothing else
    assert list(data["choices"]) == [tuning.entry_key(FORWARD, _geom())]
    assert [p.name for p in measured.iterdir()] == [tuning.cache_path().name]  # no temporary file left


def test_a_cache_of_another_machine_is_not_used(measured):
    data = {"format": tuning.FORMAT, "machine": {**tuning._key(), "isa": "other"},
            "choices": {tuning.entry_key(FORWARD, _geom()): {"ranking": ["gemm"], "ms": {}}}}
    tuning.cache_path().write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="not a cache of this machine"):
        assert tuning.cached(FORWARD, _geom()) is None


def test_an_unwritable_cache_folder_keeps_the_choice_for_the_process(measured, monkeypatch):
    blocker = measured / "file"
    blocker.write_text("")
    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(blocker / "sub"))             # a folder under a file: cannot exist
    gemm = registry.reference(FORWARD)
    with pytest.warns(UserWarning, match="cannot write the convolution algorithm cache"):
        tuning.choose(FORWARD, _geom(), [gemm], gemm, arrays=tuning._arrays(FORWARD, _geom()))
    assert tuning.cached(FORWARD, _geom()) == ["gemm"]


def test_measure_switch_and_its_errors():
    before = conv.measure()
    with conv.measuring(not before):
        assert conv.measure() is (not before)
    assert conv.measure() is before
    with pytest.raises(TypeError, match="measure: expected True, False or None, got 'yes'"):
        conv.measure("yes")
    with pytest.raises(ValueError, match="disable: unknown convolution algorithm 'wino'; known: .*winograd"):
        conv.disable("wino")
    with pytest.raises(ValueError, match="'gemm' is the reference algorithm and cannot be switched off"):
        conv.disable("gemm")


@needs_numba
def test_cnnkit_tune_measures_every_layer_once_and_a_second_run_reads_the_cache(measured, capsys, monkeypatch):
    argv = ["tune", "lenet5", "--batch", "64", "--train", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["layer"] for r in out["layers"]] == ["c1", "c3", "c5"] and out["cache"] == str(tuning.cache_path())
    assert out["layers"][0]["input_grad"] is None                 # the first layer: no input gradient
    assert all(r["forward"] and r["weight_grad"] for r in out["layers"])
    stored = json.loads(tuning.cache_path().read_text())["choices"]
    assert len(stored) >= 3
    monkeypatch.setattr(tuning, "_time", None)                     # a second run measures nothing
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["layers"] == out["layers"]
    assert main(["tune", "lenet5", "--batch", "0"]) == 2
    assert "--batch must be at least 1, got 0" in capsys.readouterr().err
    assert main(["tune", "nosuch"]) == 2
    assert "tune: " in capsys.readouterr().err


def test_cnnkit_tune_prints_a_table_of_each_layers_algorithms(measured, capsys):
    assert main(["tune", "lenet5", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "layer" in out and "forward" in out and "c1" in out and "stored in" in out


@needs_numba
def test_summary_shows_each_convolutions_algorithm_without_measuring(measured, monkeypatch):
    monkeypatch.setattr(tuning, "_time", None)
    s = cnnkit.summary("resnet20", batch_size=128)
    algs = {r.name: r.algorithm for r in s.layers if r.type == "Conv2d"}
    assert algs["layer1.0.conv1"] == "direct" and algs["layer3.0.conv1"] == "gemm"    # the default order here
    assert all(r.algorithm is None for r in s.layers if r.type != "Conv2d")
    geom = Geometry.of((128, 16, 32, 32), (16, 16, 3, 3), (1, 1), ((1, 1),) * 2, (1, 1), 1, np.float32)
    _store(measured, {(FORWARD, geom): ["row-shifted", "direct"]})
    monkeypatch.setattr(tuning, "_files", {})
    s = cnnkit.summary("resnet20", batch_size=128)
    assert s["layer1.0.conv1"].algorithm == "row-shifted"                           # the measured choice
    wide = s.to_text(wide=True)                                                    # the column of the wide view
    assert "Algorithm" in wide and "row-shifted" in wide and "algorithm" in s.to_csv().splitlines()[0]


@needs_numba
def test_bench_times_the_default_order_beside_the_measured_choices(measured):
    from cnnkit import benchmark
    report = benchmark.run(select=["conv ResNet-20 3×3 16→16, 128×32² fwd"], quick=True, repeats=1, memory=False,
                           with_torch=False)
    (row,) = [r for r in report["results"] if r["name"].endswith("fwd")]
    assert row["order_ms"] > 0 and row["vs_order"] == pytest.approx(row["cnnkit_ms"] / row["order_ms"])
    assert report["selection"]["measure"] and report["selection"]["cache"] == str(tuning.cache_path())
    table = benchmark.format_table(report)
    assert "| vs order |" in table and "chosen by measurement" in table and report["machine"]["isa"] in table
