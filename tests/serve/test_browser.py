"""The explorer in a real Chromium (Debian's, driven by Playwright), against `cnnkit serve` in a subprocess.

A LeNet-5 is trained once by `cnnkit train` on the built-in MNIST digits (`mnist-5k`; the 8×8
scikit-learn `digits` where that set is missing); the tests draw digits with mouse strokes, click
maps, values and layers, upload a text file named `.png`, and compare what the page shows with
PyTorch and with `cnnkit summary --json`. Screenshots go to tests/artifacts/ (not committed).
"""
from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def _chromium():
    for p in ("/usr/bin/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or ""):
        if p and os.access(p, os.X_OK):
            return p
    return None


CHROMIUM = _chromium()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no chromium found (apt-get install -y chromium; "
                                                           ".ci/run installs it)")]


# ------------------------------------------------------------------ fixtures: a run, a server, a browser
def _mnist_5k_available() -> bool:
    import cnnkit
    try:
        cnnkit.data.load("mnist-5k")
        return True
    except Exception:  # noqa: BLE001  (not built in yet, or its package is missing)
        return False


@pytest.fixture(scope="session")
def mnist_run(tmp_path_factory):
    """LeNet-5 trained by `cnnkit train` with its defaults on mnist-5k (or digits where mnist-5k is missing)."""
    data = "mnist-5k" if _mnist_5k_available() else "digits"
    out = tmp_path_factory.mktemp("browser") / f"lenet5-{data}"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cnnkit", "train", "lenet5", "--data", data, "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
    print(f"trained lenet5 on {data} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return out


class Served:
    def __init__(self, target, *extra):
        self.proc = subprocess.Popen([sys.executable, "-m", "cnnkit", "serve", str(target), "--port", "0", *extra],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        line = self.proc.stderr.readline()
        m = re.search(r"http://\S+/", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"cnnkit serve did not start: {line}{self.proc.stderr.read()}")
        self.url = m.group(0)

    def get(self, path):
        with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=60) as r:
            return json.loads(r.read())

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def served(mnist_run):
    s = Served(mnist_run)
    yield s
    s.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(tempfile.mkdtemp(prefix="cnnkit-chromium-"), executable_path=CHROMIUM,
                                                    headless=True, args=FLAGS, viewport={"width": 1440, "height": 1000})
        yield ctx
        ctx.close()


@pytest.fixture
def page(browser, served):
    pg = browser.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(served.url)
    pg.wait_for_selector("body[data-loaded=yes]", timeout=60_000)
    yield pg
    pg.close()
    assert not errors, errors


def shot(pg, name, full=False):
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / name), full_page=full)


# ------------------------------------------------------------------ drawing digits with the mouse
def _ellipse(cx, cy, rx, ry, start=-90, sweep=360, n=28):
    return [(cx + rx * math.cos(math.radians(start + sweep * i / n)), cy + ry * math.sin(math.radians(start + sweep * i / n)))
            for i in range(n + 1)]


#: Strokes of the ten digits, as a person draws them, in [0, 1]² of the canvas (x right, y down).
DIGITS = {
    0: [_ellipse(0.5, 0.5, 0.2, 0.32)],
    1: [[(0.42, 0.26), (0.55, 0.15), (0.53, 0.5), (0.52, 0.86)]],
    2: [[(0.3, 0.3), (0.38, 0.18), (0.52, 0.14), (0.66, 0.2), (0.69, 0.34), (0.6, 0.5), (0.45, 0.65), (0.3, 0.82),
         (0.5, 0.81), (0.74, 0.8)]],
    3: [[(0.3, 0.2), (0.45, 0.14), (0.62, 0.17), (0.68, 0.3), (0.58, 0.44), (0.44, 0.48)],
        [(0.44, 0.48), (0.62, 0.53), (0.7, 0.67), (0.62, 0.82), (0.45, 0.86), (0.3, 0.8)]],
    4: [[(0.55, 0.14), (0.38, 0.4), (0.26, 0.6), (0.5, 0.6), (0.76, 0.6)], [(0.62, 0.3), (0.62, 0.6), (0.62, 0.88)]],
    5: [[(0.7, 0.15), (0.5, 0.15), (0.36, 0.15), (0.33, 0.3), (0.32, 0.46), (0.48, 0.42), (0.64, 0.48), (0.7, 0.62),
         (0.66, 0.78), (0.52, 0.86), (0.32, 0.8)]],
    6: [[(0.64, 0.14), (0.5, 0.26), (0.38, 0.42), (0.32, 0.6), (0.36, 0.78), (0.5, 0.86), (0.64, 0.79), (0.68, 0.64),
         (0.58, 0.53), (0.44, 0.54), (0.34, 0.63)]],
    7: [[(0.26, 0.18), (0.5, 0.17), (0.74, 0.17), (0.62, 0.4), (0.52, 0.62), (0.45, 0.86)]],
    8: [_ellipse(0.5, 0.3, 0.15, 0.15, start=0), _ellipse(0.5, 0.66, 0.19, 0.19, start=180)],
    9: [_ellipse(0.5, 0.34, 0.16, 0.16, start=0), [(0.66, 0.34), (0.64, 0.6), (0.6, 0.86)]],
}


def draw(pg, strokes):
    pg.click("#clear")
    box = pg.locator("#draw").bounding_box()
    for stroke in strokes:
        pts = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
        pg.mouse.move(*pts[0])
        pg.mouse.down()
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            for t in (0.25, 0.5, 0.75, 1.0):
                pg.mouse.move(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
        pg.mouse.up()


def draw_and_read(pg, digit) -> tuple:
    pg.evaluate("document.body.dataset.state = 'drawing'; delete document.body.dataset.firstMapsMs")
    draw(pg, DIGITS[digit])
    pg.wait_for_selector("body[data-state=ready]", timeout=60_000)
    pg.wait_for_selector("body[data-first-maps-ms]", timeout=60_000)
    return int(pg.get_attribute("#prediction", "data-index")), float(pg.get_attribute("body", "data-first-maps-ms"))


def arr(m: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(m["data"]), dtype="<f4").reshape(m["shape"])


# ------------------------------------------------------------------ the tests
def test_drawn_digits_are_read(page, served):
    """Ten digits drawn with mouse strokes; the figure goes into the report (how many are read right)."""
    right, times, got = 0, [], {}
    for d in range(10):
        pred, ms = draw_and_read(page, d)
        got[d] = pred
        right += pred == d
        times.append(ms)
        if d in (2, 7):
            shot(page, f"explorer-drawn-{d}.png")
    print(f"\ndrawn digits read right: {right}/10 {got}; first maps after {np.median(times):.0f} ms (median; "
          f"{min(times):.0f}-{max(times):.0f})", file=sys.stderr)
    (ARTIFACTS / "drawn-digits.json").write_text(json.dumps({"right": int(right), "predicted": got,
                                                             "first_maps_ms": times}))
    assert got[1] == 1 and got[7] == 7
    assert right >= 7, got


def test_activation_maps_render(page):
    draw_and_read(page, 7)
    page.locator(".layer-row[data-layer=c3]").scroll_into_view_if_needed()
    page.wait_for_selector(".layer-row[data-layer=c3] canvas", timeout=30_000)
    stats = page.evaluate("""() => [...document.querySelectorAll('.layer-row canvas')].slice(0, 40).map(c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let nonwhite = 0; const colours = new Set();
        for (let i = 0; i < d.length; i += 4) { if (d[i] < 250 || d[i+1] < 250 || d[i+2] < 250) nonwhite++;
                                              colours.add(d[i] << 16 | d[i+1] << 8 | d[i+2]); }
        return {layer: c.dataset.layer, w: c.width, h: c.height, nonwhite, colours: colours.size,
                shown: c.getBoundingClientRect().width}; })""")
    by = {}
    for s in stats:
        by.setdefault(s["layer"], []).append(s)
    assert {"c1", "act1", "s2", "c3"} <= set(by)
    assert len(by["c1"]) == 6 and all(s["w"] == 28 and s["h"] == 28 and s["shown"] >= 28 for s in by["c1"])
    for layer in ("c1", "c3"):
        assert sum(s["nonwhite"] > 20 and s["colours"] > 5 for s in by[layer]) >= len(by[layer]) // 2, by[layer]
    seen = page.evaluate("""() => { const c = document.getElementById('seen'); const d = c.getContext('2d')
        .getImageData(0, 0, c.width, c.height).data; let ink = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) ink++;
        return [c.width, ink]; }""")
    assert seen[0] == 32 and 20 < seen[1] < 600                        # white ink on black, as MNIST
    shot(page, "explorer-maps.png", full=True)


def test_clicked_value_is_its_dot_product(page, served, mnist_run):
    _, _ = draw_and_read(page, 2)
    thumb = page.locator(".layer-row[data-layer=c1] canvas").nth(3)
    thumb.click()
    sel = page.evaluate("() => { const s = window.cnnkit.selected; let b = 0; for (let i = 1; i < s.values.length; i++)"
                        " if (Math.abs(s.values[i]) > Math.abs(s.values[b])) b = i; return [s.layer, s.channel, s.h, s.w, b]; }")
    layer, k, h, w, best = sel
    y, x = divmod(best, w)
    zb = page.locator("#zoom").bounding_box()
    page.mouse.move(zb["x"] + (x + 0.5) * zb["width"] / w, zb["y"] + (y + 0.5) * zb["height"] / h)
    hover = page.inner_text("#hover")
    page.mouse.click(zb["x"] + (x + 0.5) * zb["width"] / w, zb["y"] + (y + 0.5) * zb["height"] / h)
    page.wait_for_selector("#derivation[data-kind=conv] #deriv-sum", timeout=20_000)
    clicked = page.evaluate(f"window.cnnkit.selected.values[{y * w + x}]")
    s = float(page.get_attribute("#deriv-sum", "data-value"))
    b = float(page.get_attribute("#deriv-bias", "data-value"))
    r = float(page.get_attribute("#deriv-result", "data-value"))
    assert hover.startswith(f"[{k}, {y}, {x}]")
    assert s + b == pytest.approx(r, abs=1e-9)
    assert r == pytest.approx(clicked, abs=1e-4)                          # the value clicked
    assert "✓" in page.inner_text("#derivation")
    # ... and the model's activation, computed here by PyTorch from the run's weights
    import torch
    import torch.nn.functional as tF
    from safetensors.numpy import load_file
    cfg = json.loads((mnist_run / "config.json").read_text())
    pic = arr(served.get(f"/api/inputs/{page.evaluate('window.cnnkit.input.input_id')}/maps/input"))
    xin = (pic - cfg["normalize"]["mean"][0]) / cfg["normalize"]["std"][0]
    wts = load_file(str(mnist_run / "model.safetensors"))
    ref = tF.conv2d(torch.from_numpy(xin[None].astype(np.float64)), torch.from_numpy(wts["c1.weight"].astype(np.float64)),
                    torch.from_numpy(wts["c1.bias"].astype(np.float64)))[0, k, y, x].item()
    assert r == pytest.approx(ref, abs=1e-4)
    grids = page.locator("#derivation .grid").count()
    assert grids == 3                                                     # patch ⊙ filter = products
    shot(page, "explorer-derivation.png")
    # a convolution deeper in: c3 sums over its 6 input channels
    page.locator(".layer-row[data-layer=c3]").scroll_into_view_if_needed()
    page.locator(".layer-row[data-layer=c3] canvas").nth(5).click()
    zb = page.locator("#zoom").bounding_box()
    page.mouse.click(zb["x"] + 4.5 * zb["width"] / 10, zb["y"] + 5.5 * zb["height"] / 10)
    page.wait_for_function("() => (document.querySelector('#derivation h3') || {}).textContent?.startsWith('c3[5, 5, 4]')",
                           timeout=20_000)
    assert page.locator("#derivation .chip").count() == 6
    r3 = float(page.get_attribute("#deriv-result", "data-value"))
    assert r3 == pytest.approx(float(page.get_attribute("#derivation", "data-value")), abs=1e-4)
    shot(page, "explorer-derivation-c3.png")
    # a pooling window: s2's value is the largest of its 2×2 window of act1
    page.locator(".layer-row[data-layer=s2]").scroll_into_view_if_needed()
    page.locator(".layer-row[data-layer=s2] canvas").nth(3).click()
    zb = page.locator("#zoom").bounding_box()
    page.mouse.click(zb["x"] + (x // 2 + 0.5) * zb["width"] / 14, zb["y"] + (y // 2 + 0.5) * zb["height"] / 14)
    page.wait_for_selector("#derivation[data-kind=maxpool] #deriv-result", timeout=20_000)
    assert float(page.get_attribute("#deriv-result", "data-value")) == pytest.approx(
        float(page.get_attribute("#derivation", "data-value")), abs=1e-6)
    assert page.locator("#derivation .grid div.win").count() == 1


def test_softmax_bars_and_their_derivation(page):
    draw_and_read(page, 7)
    bars = page.evaluate("() => [...document.querySelectorAll('#bars .track')].map(t => [t.dataset.class, +t.dataset.p,"
                         " t.querySelector('.fill').getBoundingClientRect().width, t.getBoundingClientRect().width])")
    assert [b[0] for b in bars] == [str(i) for i in range(10)]
    assert sum(b[1] for b in bars) == pytest.approx(1, abs=1e-6)
    best = max(range(10), key=lambda i: bars[i][1])
    assert best == int(page.get_attribute("#prediction", "data-index"))
    for _, p, fill, width in bars:                                      # each bar as long as its probability
        assert fill == pytest.approx(p * width, abs=1.5)
    page.locator("#bars .track").nth(best).click()
    page.wait_for_selector("#softmax-p")
    assert float(page.get_attribute("#softmax-p", "data-value")) == pytest.approx(bars[best][1], abs=1e-6)
    shot(page, "explorer-softmax.png")


def test_text_file_named_png_is_refused_and_the_next_request_works(page, tmp_path):
    fake = tmp_path / "digit.png"
    fake.write_text("this is a text file, not a picture\n")
    page.set_input_files("#upload", str(fake))
    page.wait_for_selector("#message:not([hidden])", timeout=20_000)
    text = page.inner_text("#message")
    assert text.startswith("digit.png: not an image")
    shot(page, "explorer-upload-error.png")
    pred, _ = draw_and_read(page, 1)
    assert page.is_hidden("#message") and pred == 1
    page.locator("#samples img").first.click()                            # and a picked test image
    page.wait_for_selector("body[data-state=ready]")
    assert page.inner_text("#prediction").strip()


def test_layer_strip_matches_cnnkit_summary(page):
    out = subprocess.run([sys.executable, "-m", "cnnkit", "summary", "lenet5", "--json"], check=True,
                         capture_output=True, text=True).stdout
    rows = {r["name"]: r for r in json.loads(out)["layers"] if r["leaf"]}
    boxes = page.locator(".layer-box[data-layer]")
    assert boxes.count() == len(rows)
    for name, r in rows.items():
        page.click(f".layer-box[data-layer='{name}']")
        page.wait_for_function(f"() => document.getElementById('layer-info').dataset.layer === '{name}'")
        info = page.locator("#layer-info")
        assert info.get_attribute("data-volume") == r["output_volume"], name
        assert int(info.get_attribute("data-params")) == r["params"], name
        box_text = page.inner_text(f".layer-box[data-layer='{name}']")
        assert r["output_volume"] in box_text and f"{r['params']:,} params" in box_text
    page.click(".layer-box[data-layer='c3']")
    page.wait_for_function("() => document.getElementById('explain').textContent.includes('W2 =')")
    assert "(14 − 5 + 0)/1 + 1 = 10" in page.inner_text("#explain")
    shot(page, "explorer-layer.png")


def test_screenshot_for_the_readme(page):
    """The README's picture: a drawn 2, its maps, one derivation. docs/explorer.png is this screenshot in
    256 colours: ``Image.open(p).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE,
    dither=Image.Dither.NONE).save("docs/explorer.png", optimize=True)``."""
    page.set_viewport_size({"width": 1440, "height": 1180})
    draw_and_read(page, 2)
    page.locator(".layer-row[data-layer=c1] canvas").nth(1).click()
    zb = page.locator("#zoom").bounding_box()
    page.mouse.click(zb["x"] + zb["width"] * 0.45, zb["y"] + zb["height"] * 0.3)
    page.wait_for_selector("#derivation #deriv-sum", timeout=20_000)
    page.evaluate("window.scrollTo(0, 0)")
    time.sleep(0.3)
    shot(page, "explorer-readme.png")


def test_vgg16_first_maps(browser):
    """VGG-16 at 224×224 (untrained): the page says so, and the first maps come without sending them all."""
    s = Served("vgg16")
    try:
        pg = browser.new_page()
        pg.goto(s.url)
        pg.wait_for_selector("body[data-loaded=yes]", timeout=120_000)
        assert "untrained" in pg.inner_text("#banner") and "untrained" in pg.inner_text("#badge")
        from skimage import data as skdata
        from PIL import Image
        import io
        buf = io.BytesIO()
        Image.fromarray(skdata.astronaut()).save(buf, format="PNG")
        path = Path(tempfile.mkdtemp()) / "astronaut.png"
        path.write_bytes(buf.getvalue())
        times, server = [], []
        for _ in range(2):
            pg.evaluate("document.body.dataset.state = 'x'; delete document.body.dataset.firstMapsMs")
            pg.set_input_files("#upload", str(path))
            pg.wait_for_selector("body[data-first-maps-ms]", timeout=120_000)
            times.append(float(pg.get_attribute("body", "data-first-maps-ms")))
            server.append(pg.evaluate("() => window.cnnkit.input.seconds"))
        loaded = pg.evaluate("document.querySelectorAll('.layer-row canvas').length")
        assert 0 < loaded < 40 * 16                                   # only the rows on screen were fetched
        print(f"\nVGG-16 224x224: first maps after {times[0]:.0f} ms (new input; its forward pass {1000 * server[0]:.0f} ms "
              f"on the server), {times[1]:.0f} ms (the same picture again)", file=sys.stderr)
        (ARTIFACTS / "vgg16-first-maps.json").write_text(json.dumps({"first_maps_ms": times, "server_s": server}))
        shot(pg, "explorer-vgg16.png")
        pg.close()
    finally:
        s.close()
