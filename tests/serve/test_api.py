"""The explorer's JSON API: every route, its errors, and the server still answering after each bad request.

Expected numbers come from outside the explorer: the lecture's LeNet-5 table, the run's weights read
with safetensors and pushed through PyTorch's functional ops, the digits data set loaded separately,
and a brute-force loop over the input window.
"""
from __future__ import annotations

import base64
import http.client
import io
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as tF
from safetensors.numpy import load_file

from tests.serve.conftest import png_bytes


def arr(m: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(m["data"]), dtype="<f4").reshape(m["shape"])


def torch_lenet(run_dir, x: np.ndarray) -> dict:
    """Every layer of the lecture's LeNet-5 in PyTorch, from the run's weights file (not from cnnkit)."""
    w = {k: torch.from_numpy(v.astype(np.float64)) for k, v in load_file(str(run_dir / "model.safetensors")).items()}
    t = torch.from_numpy(x.astype(np.float64))[None]
    out = {}
    out["c1"] = t = tF.conv2d(t, w["c1.weight"], w["c1.bias"])
    out["act1"] = t = tF.relu(t)
    out["s2"] = t = tF.max_pool2d(t, 2)
    out["c3"] = t = tF.conv2d(t, w["c3.weight"], w["c3.bias"])
    out["act3"] = t = tF.relu(t)
    out["s4"] = t = tF.max_pool2d(t, 2)
    out["c5"] = t = tF.conv2d(t, w["c5.weight"], w["c5.bias"])
    out["act5"] = t = tF.relu(t)
    out["flatten"] = t = t.flatten(1)
    out["f6"] = t = tF.linear(t, w["f6.weight"], w["f6.bias"])
    out["act6"] = t = tF.relu(t)
    out["output"] = t = tF.linear(t, w["output.weight"], w["output.bias"])
    out["softmax"] = torch.softmax(t, 1)
    return {k: v[0].numpy() for k, v in out.items()}


def model_input(client, input_id: str, run_cfg: dict) -> np.ndarray:
    """The normalised input the model saw, from the picture the server reports (its 'input' map)."""
    pic = arr(client.get(f"/api/inputs/{input_id}/maps/input?count=3").json())
    mean = np.array(run_cfg["normalize"]["mean"], np.float32).reshape(-1, 1, 1)
    std = np.array(run_cfg["normalize"]["std"], np.float32).reshape(-1, 1, 1)
    return ((pic - mean) / std).astype(np.float32)


@pytest.fixture(scope="module")
def cfg(digits_run):
    return json.loads((digits_run / "config.json").read_text())


@pytest.fixture(scope="module")
def digit_png():
    """A bold '7' drawn dark on white, off-centre, 120×90 — as a user's photo or drawing would be."""
    a = np.full((90, 120), 255, np.uint8)
    a[15:25, 30:80] = 0
    for i in range(55):
        r, c = 25 + i, 78 - i // 2
        a[r:r + 2, c - 5:c + 5] = 0
    return png_bytes(a)


@pytest.fixture(scope="module")
def predicted(client, digit_png):
    r = client.post("/api/predict", content=digit_png, headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    return r.json()


def healthy(client):
    """The server still answers a normal request."""
    r = client.get("/api/model")
    assert r.status_code == 200 and r.json()["name"] == "lenet5"


# ------------------------------------------------------------------ the page and its files
def test_page_and_assets(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "cnnkit explorer" in r.text and '<canvas id="draw"' in r.text
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    js, css = client.get("/static/app.js"), client.get("/static/app.css")
    assert js.status_code == css.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript") and "fetch(" in js.text
    assert css.headers["content-type"].startswith("text/css")


TRAVERSALS = ["/static/../app.py", "/static/%2e%2e/app.py", "/static/%2E%2E%2Fapp.py", "/static/..%2fbackend.py",
              "/static/../../../../etc/passwd", "/static//etc/passwd", "/static/%2fetc%2fpasswd",
              "/static/..\\app.py", "/static/%5c..%5capp.py", "/static/\\etc\\passwd", "/static/C:\\Windows\\win.ini",
              "/static/./index.html/../../app.py", "/static/%252e%252e/app.py", "/../../etc/passwd",
              "/%2e%2e/%2e%2e/etc/passwd", "/static/index.html%00.py", "/static/", "/static/.", "/static/.."]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_outside_the_assets(live, path):
    """Sent byte for byte to a real uvicorn server (http.client does not normalise the path)."""
    host, port = live
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    assert r.status in (400, 404), (path, r.status)
    assert b"root:" not in body and b"import numpy" not in body and b"def create_app" not in body
    conn.close()
    conn = http.client.HTTPConnection(host, port, timeout=10)       # and it keeps serving
    conn.request("GET", "/static/app.css")
    assert conn.getresponse().status == 200
    conn.close()


def test_unknown_routes_and_methods_answer_json(client):
    r = client.get("/api/nothing")
    assert r.status_code == 404 and "/api/nothing" in r.json()["error"]
    r = client.get("/api/predict")
    assert r.status_code == 405 and "GET" in r.json()["error"]
    healthy(client)


def test_host_header_checked_when_bound_to_loopback(explorer):
    from starlette.testclient import TestClient

    from cnnkit.serve import create_app
    with TestClient(create_app(explorer, allowed_hosts=["127.0.0.1", "localhost"]), base_url="http://localhost") as c:
        assert c.get("/api/model").status_code == 200
        assert c.get("/api/model", headers={"Host": "attacker.example"}).status_code == 400


# ------------------------------------------------------------------ the model
def test_model_matches_the_lecture_table(client):
    m = client.get("/api/model").json()
    assert m["trained"] is True and m["data"] == "digits" and m["classes"] == [str(i) for i in range(10)]
    assert m["input_size"] == [1, 32, 32] and m["input_volume"] == "32×32×1"
    assert m["total"]["params"] == 61_706                             # the lecture's LeNet-5 table
    by = {r["name"]: r for r in m["layers"]}
    assert [by[n]["output_volume"] for n in ("c1", "s2", "c3", "s4", "c5")] == \
        ["28×28×6", "14×14×6", "10×10×16", "5×5×16", "1×1×120"]
    assert [by[n]["params"] for n in ("c1", "c3", "c5", "f6", "output")] == [156, 2416, 48120, 10164, 850]
    assert by["c1"]["macs"] == 5 * 5 * 6 * 28 * 28 and by["c1"]["kernel"] == "5×5×1/1"


def test_explain_derivation(client):
    r = client.get("/api/layers/c1/explain")
    assert r.status_code == 200
    text = r.json()["text"]
    assert "W2 = (W1 − F + 2P)/S + 1 = (32 − 5 + 0)/1 + 1 = 28" in text
    assert "params = (F·F·D1 + 1)·K = (5·5·1 + 1)·6 = 156" in text


@pytest.mark.parametrize("path", ["/api/layers/c9/explain", "/api/layers/c9/filters", "/api/layers/c9/top-patches",
                                  "/api/layers/%2e%2e/explain"])
def test_unknown_layer(client, path):
    r = client.get(path)
    assert r.status_code == 404 and "no layer named" in r.json()["error"]
    healthy(client)


def test_filters_are_the_run_weights(client, digits_run):
    w = load_file(str(digits_run / "model.safetensors"))
    r = client.get("/api/layers/c3/filters?start=4&count=3").json()
    assert r["filters"] == 16 and r["start"] == 4 and r["count"] == 3
    np.testing.assert_array_equal(arr(r["weight"]), w["c3.weight"][4:7])
    np.testing.assert_allclose(r["bias"], w["c3.bias"][4:7], rtol=1e-7)
    bad = client.get("/api/layers/s2/filters")
    assert bad.status_code == 400 and "MaxPool2d" in bad.json()["error"]
    for q, word in (("count=0", "count"), ("count=65", "count"), ("start=16", "start"), ("start=x", "integer")):
        bad = client.get(f"/api/layers/c3/filters?{q}")
        assert bad.status_code == 400 and word in bad.json()["error"], q
    healthy(client)


# ------------------------------------------------------------------ data set samples
def test_samples_are_the_test_split(client, explorer):
    import cnnkit
    test = cnnkit.data.load("digits").test                           # loaded here, independently of the server
    s = client.get("/api/samples").json()
    assert s["available"] and s["count"] == len(test) == 359
    labels = [it["label"] for it in s["items"]]
    assert sorted(set(labels)) == list(range(10)) and all(labels.count(k) == 2 for k in range(10))
    it = s["items"][3]
    assert test.labels[it["index"]] == it["label"]
    from PIL import Image
    png = client.get(f"/api/samples/{it['index']}.png")
    assert png.headers["content-type"] == "image/png"
    got = np.asarray(Image.open(io.BytesIO(png.content)), dtype=np.float64) / 255
    np.testing.assert_allclose(got, test.images[it["index"], 0], atol=0.5 / 255 + 1e-6)
    assert client.get("/api/samples/359.png").status_code == 404
    p = client.post("/api/predict", json={"sample": it["index"]}).json()
    assert p["label"] == {"index": it["label"], "class": str(it["label"])} and p["source"] == f"sample {it['index']}"
    pic = arr(client.get(f"/api/inputs/{p['input_id']}/maps/input").json())
    np.testing.assert_array_equal(pic[0], test.images[it["index"], 0])


# ------------------------------------------------------------------ predict
def test_predict_raw_body_against_pytorch(client, predicted, digits_run, cfg):
    p = predicted
    probs = np.array(p["probabilities"])
    assert len(probs) == 10 and abs(probs.sum() - 1) < 1e-6
    out = torch_lenet(digits_run, model_input(client, p["input_id"], cfg))
    ref = out["softmax"]
    np.testing.assert_allclose(probs, ref, atol=1e-5)
    np.testing.assert_allclose(p["logits"], out["output"], atol=1e-4)
    assert p["prediction"]["index"] == int(np.argmax(ref)) and p["top"][0]["index"] == int(np.argmax(ref))
    assert [t["probability"] for t in p["top"]] == sorted(probs, reverse=True)


def test_predict_multipart_is_the_same_input(client, predicted, digit_png):
    r = client.post("/api/predict", files={"image": ("digit.png", digit_png, "image/png")})
    assert r.status_code == 200 and r.json()["input_id"] == predicted["input_id"]
    r = client.post("/api/predict", files={"photo": ("digit.png", digit_png, "image/png")})
    assert r.status_code == 400 and "'image'" in r.json()["error"]
    healthy(client)


def test_digit_preprocessing_puts_ink_on_black(client, predicted):
    """A dark-on-white drawing arrives white-on-black, inside LeCun's 28×28 frame padded to 32."""
    pic = arr(client.get(f"/api/inputs/{predicted['input_id']}/maps/input").json())[0]
    assert pic.shape == (32, 32) and pic.max() > 0.9
    assert pic[:2].max() == pic[-2:].max() == pic[:, :2].max() == pic[:, -2:].max() == 0
    assert (pic > 0.5).mean() < 0.3                                    # mostly background, not inverted


def test_non_digit_model_reads_the_image_as_is(tmp_path):
    """A zoo model's upload is converted to its channels and size only: a 32×32 grey PNG arrives exactly."""
    from starlette.testclient import TestClient

    from cnnkit.serve import create_app, open_explorer
    ex = open_explorer("lenet5")
    a = (np.arange(32 * 32).reshape(32, 32) % 251).astype(np.uint8)
    with TestClient(create_app(ex)) as c:
        m = c.get("/api/model").json()
        assert m["trained"] is False and m["title"] == "lenet5 (untrained)"
        assert c.get("/api/samples").json()["available"] is False
        p = c.post("/api/predict", content=png_bytes(a), headers={"Content-Type": "image/png"}).json()
        pic = arr(c.get(f"/api/inputs/{p['input_id']}/maps/input").json())
        np.testing.assert_array_equal(pic[0], a.astype(np.float32) / np.float32(255))
        rgb = np.stack([a, a // 2, 255 - a], axis=-1)
        p = c.post("/api/predict", content=png_bytes(rgb), headers={"Content-Type": "image/png"}).json()
        pic = arr(c.get(f"/api/inputs/{p['input_id']}/maps/input").json())[0]
        luma = np.asarray(__import__("PIL.Image", fromlist=["Image"]).fromarray(rgb).convert("L"), np.float32) / 255
        np.testing.assert_array_equal(pic, luma)
        assert c.post("/api/predict", json={"sample": 0}).status_code == 404


@pytest.mark.parametrize("body,ctype,status,words", [
    (b"hello, I am text, not a picture\n" * 20, "image/png", 400, "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png", 400, "image"),
    (b"", "image/png", 400, "not an image"),
    (b'{"sample": 1', "application/json", 400, "malformed JSON"),
    (b"\xff\xfe", "application/json", 400, "malformed JSON"),
    (b'{"sample": "one"}', "application/json", 400, '{"sample": <int>}'),
    (b'{"sample": true}', "application/json", 400, '{"sample": <int>}'),
    (b'[1, 2]', "application/json", 400, '{"sample": <int>}'),
    (b'{"sample": 1, "x": 2}', "application/json", 400, '{"sample": <int>}'),
    (b'{"sample": -1}', "application/json", 404, "sample -1"),
    (b'{"sample": 100000}', "application/json", 404, "359 images"),
    (b"abc", "text/plain", 415, "text/plain"),
    (b"abc", "", 415, "(none)"),
])
def test_predict_bad_requests(client, body, ctype, status, words):
    r = client.post("/api/predict", content=body, headers={"Content-Type": ctype} if ctype else {})
    assert r.status_code == status, r.text
    assert words in r.json()["error"] and r.json()["status"] == status
    healthy(client)


def test_text_file_renamed_png_in_a_form(client):
    r = client.post("/api/predict", files={"image": ("digit.png", b"just some text\n" * 10, "image/png")})
    assert r.status_code == 400 and r.json()["error"].startswith("digit.png: not an image")
    healthy(client)


def test_oversize_upload_413_before_reading(client):
    from cnnkit.serve import MAX_UPLOAD
    big = b"\0" * (MAX_UPLOAD + 1)
    r = client.post("/api/predict", content=big, headers={"Content-Type": "image/png"})
    assert r.status_code == 413 and "10 MB" in r.json()["error"]
    r = client.post("/api/predict", files={"image": ("big.png", big, "image/png")})
    assert r.status_code == 413
    healthy(client)


def test_oversize_chunked_upload_stops_at_the_limit(client, live):
    """Without a Content-Length the body is counted as it arrives, and reading stops past 10 MB: on a real
    socket the 413 comes back while the client still has most of its 40 MB to send."""
    import select
    import socket
    r = client.post("/api/predict", content=(b"\0" * (1 << 20) for _ in range(12)), headers={"Content-Type": "image/png"})
    assert r.status_code == 413
    s = socket.create_connection(live, timeout=10)
    s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % (1 << 20) + b"\0" * (1 << 20) + b"\r\n"
    sent, answer = 0, b""
    try:
        while sent < 40 and not answer:
            s.sendall(chunk)
            sent += 1
            if select.select([s], [], [], 0.05)[0]:
                answer = s.recv(4096)
        if not answer:
            answer = s.recv(4096)
    except (BrokenPipeError, ConnectionResetError):
        answer = answer or s.recv(4096)
    finally:
        s.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
    assert sent < 20, f"the client had sent {sent} MB before the 413"
    healthy(client)


def test_oversize_on_a_real_server(live):
    """A real socket: the Content-Length alone gets 413 and nothing of the body is needed."""
    host, port = live
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.putrequest("POST", "/api/predict")
    conn.putheader("Content-Type", "image/png")
    conn.putheader("Content-Length", str(50 * 1024 * 1024))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413 and b"10 MB" in r.read()
    conn.close()
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/api/model")
    assert conn.getresponse().status == 200


def test_decompression_bomb_refused(client):
    from PIL import Image
    buf = io.BytesIO()
    Image.new("1", (7000, 7000)).save(buf, format="PNG")            # 49 megapixels in a few kB
    assert len(buf.getvalue()) < 1 << 20
    r = client.post("/api/predict", content=buf.getvalue(), headers={"Content-Type": "image/png"})
    assert r.status_code == 400 and "7000×7000" in r.json()["error"]
    healthy(client)


# ------------------------------------------------------------------ activation maps
def test_maps_against_pytorch(client, predicted, digits_run, cfg):
    ref = torch_lenet(digits_run, model_input(client, predicted["input_id"], cfg))
    for layer, start, count in (("c1", 0, 6), ("act1", 2, 3), ("s2", 5, 1), ("c3", 8, 8), ("s4", 0, 16)):
        m = client.get(f"/api/inputs/{predicted['input_id']}/maps/{layer}?start={start}&count={count}").json()
        assert m["full_shape"] == list(ref[layer].shape) and m["start"] == start and m["count"] == count
        np.testing.assert_allclose(arr(m), ref[layer][start:start + count], atol=1e-4, err_msg=layer)
        assert m["layer_max"] == pytest.approx(ref[layer].max(), abs=1e-4)
    for layer in ("f6", "output", "c5"):                                  # vectors, and C5's 1×1×120: whole
        m = client.get(f"/api/inputs/{predicted['input_id']}/maps/{layer}").json()
        np.testing.assert_allclose(arr(m), ref[layer].reshape(-1), atol=1e-4, err_msg=layer)
        assert m["full_shape"] == list(ref[layer].shape)


def test_maps_errors(client, predicted):
    i = predicted["input_id"]
    cases = [(f"/api/inputs/{i}/maps/c7", 404, "no layer named 'c7'"),
             (f"/api/inputs/{i}/maps/c1.weight", 404, "no layer named"),
             ("/api/inputs/0123456789abcdef/maps/c1", 404, "send the image again"),
             (f"/api/inputs/{i}/maps/c1?start=6", 400, "start=6"),
             (f"/api/inputs/{i}/maps/c1?count=100", 400, "count=100"),
             (f"/api/inputs/{i}/maps/c1?count=two", 400, "not an integer")]
    for url, status, words in cases:
        r = client.get(url)
        assert r.status_code == status and words in r.json()["error"], url
        healthy(client)


# ------------------------------------------------------------------ one value, derived
@pytest.mark.parametrize("layer,k,y,x", [("c1", 3, 12, 7), ("c1", 0, 0, 27), ("c3", 11, 4, 5), ("c5", 77, 0, 0)])
def test_conv_value_is_its_dot_product(client, predicted, digits_run, cfg, layer, k, y, x):
    xin = model_input(client, predicted["input_id"], cfg)
    ref = torch_lenet(digits_run, xin)
    prev = {"c1": xin, "c3": ref["s2"], "c5": ref["s4"]}[layer]
    w = load_file(str(digits_run / "model.safetensors"))
    d = client.get(f"/api/inputs/{predicted['input_id']}/value/{layer}?c={k}&y={y}&x={x}").json()
    assert d["kind"] == "conv" and d["index"] == [k, y, x]
    assert ("normalize" in d) == (layer == "c1")                                 # c1 reads the normalised picture
    rf, jump = {"c1": (5, 1), "c3": (14, 2), "c5": (32, 4)}[layer]            # the lecture's receptive fields
    assert d["receptive_box"] == [y * jump, y * jump + rf, x * jump, x * jump + rf]
    assert d["value"] == pytest.approx(ref[layer][k, y, x], abs=1e-4)             # the layer's own output
    assert d["sum"] + d["bias"] == pytest.approx(d["result"], abs=1e-9)
    assert d["result"] == pytest.approx(ref[layer][k, y, x], abs=1e-4)            # = PyTorch's
    assert d["bias"] == pytest.approx(float(w[f"{layer}.bias"][k]), abs=1e-7)
    brute = 0.0                                                                   # the loop the lecture writes
    for c in range(prev.shape[0]):
        for a in range(5):
            for b in range(5):
                brute += float(prev[c, y + a, x + b]) * float(w[f"{layer}.weight"][k, c, a, b])
    assert d["sum"] == pytest.approx(brute, abs=1e-4)
    assert sum(d["channel_sums"]) == pytest.approx(d["sum"], abs=1e-9)
    assert len(d["channels"]) == prev.shape[0] and d["terms"] == prev.shape[0] * 25
    ch = d["channels"][0]
    np.testing.assert_allclose(ch["patch"], prev[0, y:y + 5, x:x + 5], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ch["weight"], w[f"{layer}.weight"][k, 0], atol=1e-7)
    np.testing.assert_allclose(ch["products"], np.asarray(ch["patch"]) * np.asarray(ch["weight"]), atol=1e-9)


def test_maxpool_window(client, predicted, digits_run, cfg):
    ref = torch_lenet(digits_run, model_input(client, predicted["input_id"], cfg))
    d = client.get(f"/api/inputs/{predicted['input_id']}/value/s2?c=2&y=6&x=5").json()
    assert d["kind"] == "maxpool" and d["rows"] == [12, 13] and d["cols"] == [10, 11]
    np.testing.assert_allclose(d["window"], ref["act1"][2, 12:14, 10:12], atol=1e-5)
    assert d["result"] == pytest.approx(ref["s2"][2, 6, 5], abs=1e-5) == d["value"]
    a, b = d["argmax"]
    assert d["window"][a][b] == max(max(r) for r in d["window"])


def test_linear_value(client, predicted, digits_run, cfg):
    ref = torch_lenet(digits_run, model_input(client, predicted["input_id"], cfg))
    d = client.get(f"/api/inputs/{predicted['input_id']}/value/output?c=7").json()
    assert d["kind"] == "linear" and d["terms"] == 84 and len(d["x"]) == 84
    np.testing.assert_allclose(d["x"], ref["act6"], atol=1e-5)
    assert d["result"] == pytest.approx(ref["output"][7], abs=1e-4) and d["value"] == pytest.approx(d["result"], abs=1e-4)
    r = client.get(f"/api/inputs/{predicted['input_id']}/value/act1?c=0&y=3&x=3").json()
    assert r["kind"] == "value" and "max(0, x)" in r["formula"]


def test_value_errors(client, predicted):
    i = predicted["input_id"]
    cases = [(f"/api/inputs/{i}/value/c1?c=6&y=0&x=0", 400, "c=6 is out of range"),
             (f"/api/inputs/{i}/value/c1?c=0&y=28&x=0", 400, "y=28"),
             (f"/api/inputs/{i}/value/c1?c=0&y=-1&x=0", 400, "y=-1"),
             (f"/api/inputs/{i}/value/c1?c=0&y=1", 400, "needs c, y, x"),
             (f"/api/inputs/{i}/value/c1?c=a&y=1&x=1", 400, "not an integer"),
             (f"/api/inputs/{i}/value/nope?c=0", 404, "no layer named 'nope'"),
             ("/api/inputs/nope/value/c1?c=0&y=0&x=0", 404, "send the image again")]
    for url, status, words in cases:
        r = client.get(url)
        assert r.status_code == status and words in r.json()["error"], (url, r.text)
        healthy(client)


# ------------------------------------------------------------------ the cache
def test_cache_holds_inputs_by_id_and_forgets_the_oldest(digits_run):
    from cnnkit.serve import open_explorer
    ex = open_explorer(str(digits_run), cache_bytes=1)          # room for one input only
    a = ex.run(np.zeros((1, 32, 32), np.float32))
    assert ex.run(np.zeros((1, 32, 32), np.float32)) is a and a.hits == 1   # the same picture is computed once
    b = ex.run(np.ones((1, 32, 32), np.float32))
    assert ex.get(b.id) is b
    with pytest.raises(LookupError, match="send the image again"):
        ex.get(a.id)


# ------------------------------------------------------------------ saliency, occlusion, top patches
def test_saliency_is_pytorchs_gradient(client, predicted, digits_run, cfg):
    xin = model_input(client, predicted["input_id"], cfg)
    r = client.get(f"/api/inputs/{predicted['input_id']}/saliency?target=3").json()
    assert r["target"] == 3 and r["class"] == "3"
    w = {k: torch.from_numpy(v.astype(np.float64)) for k, v in load_file(str(digits_run / "model.safetensors")).items()}
    t = torch.from_numpy(xin.astype(np.float64))[None].requires_grad_(True)
    h = tF.max_pool2d(tF.relu(tF.conv2d(t, w["c1.weight"], w["c1.bias"])), 2)
    h = tF.max_pool2d(tF.relu(tF.conv2d(h, w["c3.weight"], w["c3.bias"])), 2)
    h = tF.relu(tF.conv2d(h, w["c5.weight"], w["c5.bias"])).flatten(1)
    z = tF.linear(tF.relu(tF.linear(h, w["f6.weight"], w["f6.bias"])), w["output.weight"], w["output.bias"])
    z[0, 3].backward()
    np.testing.assert_allclose(arr(r["map"]), t.grad[0].abs().amax(0).numpy(), atol=1e-5)


def test_occlusion_against_brute_force(client, predicted, digits_run, cfg):
    xin = model_input(client, predicted["input_id"], cfg)
    r = client.get(f"/api/inputs/{predicted['input_id']}/occlusion?size=8&stride=4").json()
    target = predicted["prediction"]["index"]
    assert r["target"] == target and r["probability"] == pytest.approx(predicted["probabilities"][target])
    m = arr(r["map"])
    assert m.shape == (8, 8)
    for i, j in ((0, 0), (3, 5), (7, 2)):
        top, left = i * 4 + 2 - 4, j * 4 + 2 - 4                           # an 8×8 square centred on block (i, j)
        x = xin.copy()
        x[:, max(top, 0):top + 8, max(left, 0):left + 8] = xin.mean()
        assert m[i, j] == pytest.approx(torch_lenet(digits_run, x)["softmax"][target], abs=1e-5)


def test_top_patches_against_brute_force(client, digits_run, cfg):
    import cnnkit
    test = cnnkit.data.load("digits").test
    r = client.get("/api/layers/c3/top-patches?channel=5").json()
    assert r["searched"] == len(test) and len(r["values"]) == 9 and r["receptive_field"] == [14, 14]
    mean, std = cfg["normalize"]["mean"][0], cfg["normalize"]["std"][0]
    best = np.array([torch_lenet(digits_run, (im - mean) / std)["c3"][5].max() for im in test.images])
    np.testing.assert_allclose(r["values"], np.sort(best)[::-1][:9], atol=1e-4)
    assert [str(test.labels[i]) for i in r["image_index"]] == r["labels"]
    p = arr(r["patches"])                                                  # (9, 1, 14, 14) pictures in [0, 1]
    top, bottom, left, right = r["boxes"][0]
    i0 = r["image_index"][0]
    inside = p[0, 0][~np.isnan(p[0, 0])].reshape(bottom - top, right - left)
    np.testing.assert_allclose(inside, test.images[i0, 0, top:bottom, left:right], atol=1e-6)


def test_picture_errors(client, predicted):
    i = predicted["input_id"]
    cases = [(f"/api/inputs/{i}/saliency?target=10", 400, "target=10"),
             (f"/api/inputs/{i}/occlusion?size=0", 400, "size=0"),
             (f"/api/inputs/{i}/occlusion?stride=33", 400, "stride=33"),
             ("/api/inputs/gone/occlusion", 404, "send the image again"),
             ("/api/layers/f6/top-patches", 400, "top patches need a layer with maps"),
             ("/api/layers/c1/top-patches?channel=6", 400, "channel=6"),
             ("/api/layers/c1/top-patches?k=26", 400, "k=26")]
    for url, status, words in cases:
        r = client.get(url)
        assert r.status_code == status and words in r.json()["error"], (url, r.text)
        healthy(client)


def test_untrained_model_has_no_data_set_to_search():
    from starlette.testclient import TestClient

    from cnnkit.serve import create_app, open_explorer
    with TestClient(create_app(open_explorer("lenet5"))) as c:
        r = c.get("/api/layers/c1/top-patches")
        assert r.status_code == 404 and "untrained" in r.json()["error"]


def test_server_answers_while_a_pass_runs(client, explorer, predicted):
    """With the model busy (its lock held, as during a VGG-16 pass), the page, the report and the maps of
    inputs the server holds still answer at once."""
    import time
    with explorer._model_lock:
        t = time.perf_counter()
        assert client.get("/api/model").status_code == 200
        assert client.get(f"/api/inputs/{predicted['input_id']}/maps/c1?count=2").status_code == 200
        assert client.get(f"/api/inputs/{predicted['input_id']}/value/c1?c=0&y=3&x=4").status_code == 200
        assert client.get("/api/layers/c3/explain").status_code == 200
        assert time.perf_counter() - t < 5


def test_nothing_in_the_explorer_can_unpickle():
    """No module of cnnkit.serve imports pickle or calls a loader that unpickles (np.load, torch.load)."""
    import ast
    from pathlib import Path

    import cnnkit.serve
    for path in Path(cnnkit.serve.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                 for a in n.names} | {n.module.split(".")[0] for n in ast.walk(tree)
                                      if isinstance(n, ast.ImportFrom) and n.module}
        assert not names & {"pickle", "cPickle", "dill", "joblib", "shelve", "marshal", "torch"}, path
        calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        assert not {c for c in calls if c.endswith(("np.load", "numpy.load", "torch.load"))}, path


def test_batchnorm_value_against_pytorch():
    """ResNet-20 (untrained, its batch norms given running statistics): a BN value is (x − μ)/√(σ² + ε)·γ + β."""
    from starlette.testclient import TestClient

    from cnnkit.serve import create_app, open_explorer
    ex = open_explorer("resnet20")
    rng = np.random.default_rng(0)
    bn = ex.module("layer1.0.bn1")
    for t, v in ((bn.running_mean, rng.normal(size=16)), (bn.running_var, rng.uniform(0.5, 2, 16)),
                 (bn.weight, rng.normal(size=16)), (bn.bias, rng.normal(size=16))):
        t.data[...] = v.astype(np.float32)
    with TestClient(create_app(ex)) as c:
        a = (rng.uniform(size=(32, 32, 3)) * 255).astype(np.uint8)
        p = c.post("/api/predict", content=png_bytes(a), headers={"Content-Type": "image/png"}).json()
        d = c.get(f"/api/inputs/{p['input_id']}/value/layer1.0.bn1?c=5&y=7&x=9").json()
        conv = arr(c.get(f"/api/inputs/{p['input_id']}/maps/layer1.0.conv1?start=5&count=1").json())[0]
    assert d["kind"] == "batchnorm" and d["x"] == pytest.approx(float(conv[7, 9]), abs=1e-6)
    ref = tF.batch_norm(torch.tensor([[[[conv[7, 9]]] * 16]], dtype=torch.float64).reshape(1, 16, 1, 1),
                        torch.from_numpy(bn.running_mean.data.astype(np.float64)),
                        torch.from_numpy(bn.running_var.data.astype(np.float64)),
                        torch.from_numpy(bn.weight.data.astype(np.float64)),
                        torch.from_numpy(bn.bias.data.astype(np.float64)), eps=bn.eps)[0, 5, 0, 0].item()
    assert d["result"] == pytest.approx(ref, abs=1e-5) and d["value"] == pytest.approx(ref, abs=1e-4)
