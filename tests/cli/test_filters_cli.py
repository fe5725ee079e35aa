"""`cnnkit filters` / `cnnkit filter` run for real on real images; outputs checked against OpenCV."""
import math
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from cnnkit.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("img")
    cam = skimage.data.camera()[::8, ::8].copy()                # (64, 64) grey
    cat = skimage.data.chelsea()[::6, ::6][:48, :60].copy()      # (48, 60, 3) colour
    Image.fromarray(cam).save(d / "camera.png")
    Image.fromarray(cat).save(d / "chelsea.png")
    return {"camera": (d / "camera.png", cam), "chelsea": (d / "chelsea.png", cat)}


def run(*args):
    """The real command in a fresh interpreter: (exit code, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-m", "cnnkit", *map(str, args)], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    return p.returncode, p.stdout, p.stderr


def png(path):
    return np.asarray(Image.open(path))


def minmax(ref):
    ref = ref.astype(np.float64)
    return np.rint((ref - ref.min()) / (ref.max() - ref.min()) * 255)


def test_filters_lists_the_bank():
    code, out, err = run("filters")
    assert code == 0, err
    for name in ("identity", "gaussian_5x5", "unsharp_5x5", "sobel_x", "emboss"):
        assert f"\n{name}\n" in f"\n{out}"
    assert "1/256 × [1,  4,  6,  4, 1]" in out
    assert "[-1, 0, 1]\n  [-2, 0, 2]\n  [-1, 0, 1]" in out


def test_filters_one_and_unknown(capsys):
    assert main(["filters", "sobel_vertical"]) == 0
    assert capsys.readouterr().out.splitlines()[2:] == ["  [1, 0, -1]", "  [2, 0, -2]", "  [1, 0, -1]"]
    assert main(["filters", "sobel_x", "sobol"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "cnnkit: error: unknown filter 'sobol'" in captured.err


def test_filter_sobel_real_command(tmp_path, images):
    path, cam = images["camera"]
    out, raw = tmp_path / "edges.png", tmp_path / "edges.npy"
    code, stdout, err = run("filter", "sobel_x", path, "-o", out, "--raw", raw)
    assert code == 0, err
    assert "sobel_x" in stdout and "64×64×1" in stdout
    ref = cv2.Sobel(cam, cv2.CV_32F, 1, 0, ksize=3)
    img = png(out)
    assert img.shape == (64, 64) and img.dtype == np.uint8                 # 8-bit greyscale PNG, input size
    np.testing.assert_array_equal(img, np.clip(np.rint(ref), 0, 255))      # --clip is the default
    r = np.load(raw, allow_pickle=False)
    assert r.shape == (64, 64, 1) and r.dtype == np.float32
    np.testing.assert_allclose(r[..., 0], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_filter_normalize_border_mode(tmp_path, images):
    path, cam = images["camera"]
    out = tmp_path / "lap.png"
    assert main(["filter", "laplacian_8", str(path), "-o", str(out), "--normalize", "--border", "constant"]) == 0
    ref = cv2.filter2D(cam, cv2.CV_32F, np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], np.float32),
                       borderType=cv2.BORDER_CONSTANT)
    got = png(out).astype(int)
    assert np.abs(got - minmax(ref)).max() <= 1 and got.min() == 0 and got.max() == 255
    assert main(["filter", "gaussian_5x5", str(path), "-o", str(out), "--mode", "valid"]) == 0
    ref = cv2.GaussianBlur(cam.astype(np.float32), (5, 5), 0)[2:-2, 2:-2]
    assert png(out).shape == (60, 60)
    assert np.abs(png(out).astype(int) - np.rint(ref)).max() <= 1


def test_filter_colour_and_gray(tmp_path, images):
    path, cat = images["chelsea"]
    out = tmp_path / "c.png"
    assert main(["filter", "sharpen", str(path), "-o", str(out), "--border", "replicate"]) == 0
    ref = cv2.filter2D(cat, cv2.CV_32F, np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32),
                       borderType=cv2.BORDER_REPLICATE)
    got = png(out)
    assert got.shape == (48, 60, 3)
    assert np.abs(got.astype(int) - np.clip(np.rint(ref), 0, 255)).max() <= 1
    assert main(["filter", "identity", str(path), "-o", str(out), "--gray"]) == 0
    assert png(out).shape == (48, 60)
    assert np.abs(png(out).astype(int) - cv2.cvtColor(cat, cv2.COLOR_RGB2GRAY)).max() <= 1


def test_custom_kernel_and_convolve(tmp_path, images):
    path, cam = images["camera"]
    raw = tmp_path / "k.npy"
    k = np.array([[1, 2, 0, -1], [0.5, 0, 0, -2]], np.float32)
    assert main(["filter", "--kernel", "1,2,0,-1; 1/2 0 0 -2", str(path), "--raw", str(raw)]) == 0
    ref = cv2.filter2D(cam, cv2.CV_32F, k)
    np.testing.assert_allclose(np.load(raw)[..., 0], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert main(["filter", "--kernel", "1,2,0,-1; 1/2 0 0 -2", str(path), "--raw", str(raw), "--convolve",
                 "--border", "wrap"]) == 0
    import scipy.ndimage as ndi
    ref = ndi.convolve(cam.astype(np.float64), k.astype(np.float64), mode="wrap")
    np.testing.assert_allclose(np.load(raw)[..., 0], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert sorted(os.listdir(tmp_path)) == ["k.npy"]


def _sheet_tiles(sheet, image_shape):
    from cnnkit.filters import names
    from cnnkit.filters.sheet import sheet_layout
    n = 1 + len(names())
    for lines in range(1, 8):                  # the caption's height: the layout whose size is the sheet's
        lay = sheet_layout(image_shape, n, lines)
        if (lay.height, lay.width) == sheet.shape[:2]:
            return lay
    raise AssertionError(f"no layout gives a {sheet.shape} sheet")


def _ink_rows(band):
    """Rows of a label band holding dark pixels (text drawn in black)."""
    grey = band if band.ndim == 2 else band.min(axis=2)
    return np.flatnonzero((grey < 100).any(axis=1))


def test_contact_sheet(tmp_path, images):
    from cnnkit.filters import names
    path, cat = images["chelsea"]
    out = tmp_path / "sheet.png"
    code, stdout, err = run("filter", "--all", path, "-o", out)
    assert code == 0, err
    sheet = png(out)
    lay = _sheet_tiles(sheet, cat.shape)
    k = int(lay.factor)
    assert lay.factor == k and lay.tile_w >= 240           # a 60×48 image enlarged by a whole factor (5)

    def tile(t):
        y, x = lay.tile(t)
        return sheet[y:y + lay.tile_h, x:x + lay.tile_w].astype(int), sheet[y - lay.band:y, x:x + lay.tile_w]

    original, label = tile(0)
    np.testing.assert_array_equal(original, np.kron(cat, np.ones((k, k, 1), int)))   # nearest enlargement
    assert label.min() < 128 and label.max() == 255                       # text drawn on a white band
    t = names().index("sobel_y") + 1
    ref = cv2.Sobel(cat, cv2.CV_32F, 0, 1, ksize=3).astype(np.float64)
    a = np.percentile(np.abs(ref), 99)                                    # zero-sum: 0 grey, ±p99 black/white
    want = np.clip(np.rint((ref + a) * 255 / (2 * a)), 0, 255)
    got, label = tile(t)
    assert np.abs(got - np.kron(want, np.ones((k, k, 1)))).max() <= 1
    t = names().index("sharpen") + 1                                       # sums to 1: the image's units
    ref = cv2.filter2D(cat.astype(np.float64), -1, np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], float),
                       borderType=cv2.BORDER_REFLECT_101)
    got, _ = tile(t)
    assert np.abs(got - np.kron(np.clip(np.rint(ref), 0, 255), np.ones((k, k, 1)))).max() <= 1
    assert sheet[0].min() == 255 and sheet[:, 0].min() == 255               # white margins


def test_contact_sheet_labels_and_ranges_as_seen(tmp_path):
    """The photograph of the issue (512×512): the sheet fits a 1920×1080 screen, its names are at least 24 px
    tall, and every panel spans a readable part of the grey scale (sharpen and emboss are not washed out)."""
    from cnnkit.filters import names
    photo = skimage.data.astronaut()
    path, out = tmp_path / "photo.png", tmp_path / "sheet.png"
    Image.fromarray(photo).save(path)
    assert main(["filter", "--all", str(path), "-o", str(out)]) == 0
    sheet = png(out)
    assert sheet.shape[1] <= 1920 and sheet.shape[0] <= 1080
    lay = _sheet_tiles(sheet, photo.shape)
    spreads = {}
    for t, name in enumerate(["original"] + names()):
        y, x = lay.tile(t)
        band = sheet[y - lay.band:y, x:x + lay.tile_w]
        rows = _ink_rows(band[:lay.band // 2 + 4])                         # the name's line (the range follows)
        if any(c in name for c in "bdfhklt") and any(c in name for c in "gjpqy"):
            assert rows.max() - rows.min() + 1 >= 24, (name, rows.min(), rows.max())
        panel = sheet[y:y + lay.tile_h, x:x + lay.tile_w].astype(float).mean(axis=2)
        lo, hi = np.percentile(panel, [1, 99])
        spreads[name] = hi - lo
    assert all(s >= 0.35 * 255 for s in spreads.values()), spreads        # none squeezed into a sliver of grey
    for name in ("sharpen", "emboss", "unsharp_5x5"):                   # as much contrast as the photograph
        assert spreads[name] >= 0.9 * spreads["original"], spreads


@pytest.mark.parametrize("argv,message", [
    (["filter", "sobel_x", "{d}/missing.png", "-o", "{d}/o.png"], "image file '.*missing.png' does not exist"),
    (["filter", "sobel_x", "{d}/notes.png", "-o", "{d}/o.png"], "not an image format Pillow recognises"),
    (["filter", "--kernel", "1,0,-1;2,O,-2", "{img}", "-o", "{d}/o.png"], r"'O' in row 2 is not a number"),
    (["filter", "--kernel", "1,0,-1;2,0", "{img}", "-o", "{d}/o.png"], r"is ragged: rows have 3, 2 values"),
    (["filter", "--kernel", "", "{img}", "-o", "{d}/o.png"], r"kernel string is empty"),
    (["filter", "sobol_x", "{img}", "-o", "{d}/o.png"], r"unknown filter 'sobol_x'"),
    (["filter", "sobel_x", "{img}"], r"nothing to write: give -o OUT.png and/or --raw OUT.npy"),
    (["filter", "{img}", "-o", "{d}/o.png"], r"expected NAME IMAGE \(or --kernel ROWS IMAGE, or --all IMAGE\)"),
    (["filter", "--all", "sobel_x", "{img}", "-o", "{d}/o.png"], r"with --all give only the IMAGE"),
    (["filter", "sobel_x", "{img}", "-o", "{d}/o.txt"], r"'.*o.txt': an output image must end in one of .png"),
    (["filter", "sobel_x", "{img}", "-o", "{d}/o.png", "--raw", "{d}/r.bin"], r"name it OUT.npy"),
    (["filter", "sobel_x", "{img}", "-o", "{d}/nodir/o.png"], r"output directory '.*nodir' does not exist"),
    (["filter", "--all", "{img}", "-o", "{d}/o.png", "--raw", "{d}/r.npy"], r"--raw is for one filter"),
    (["filter", "gaussian_5x5", "{tiny}", "-o", "{d}/o.png", "--raw", "{d}/r.npy", "--mode", "valid"],
     r"kernel 5×5 does not fit in the 3×3 image in mode='valid'"),
])
def test_errors_exit_2_and_write_nothing(tmp_path, images, capsys, argv, message):
    d = tmp_path / "out"
    d.mkdir()
    (d / "notes.png").write_text("hello")
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tiny)
    argv = [a.format(d=d, img=images["camera"][0], tiny=tiny) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnkit: error: ")
    import re
    assert re.search(message, err), err
    assert sorted(os.listdir(d)) == ["notes.png"]                           # no partial output


def test_error_via_real_command(tmp_path):
    code, out, err = run("filter", "sobel_x", tmp_path / "nope.png", "-o", tmp_path / "o.png")
    assert code == 2 and out == ""
    assert "cnnkit: error: image file" in err and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_bad_choice_is_an_argparse_error(images, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["filter", "sobel_x", str(images["camera"][0]), "-o", "x.png", "--border", "mirror"])
    assert exc.value.code == 2
    assert "invalid choice: 'mirror'" in capsys.readouterr().err


def test_the_report_names_the_border_only_where_one_is_used(tmp_path, images, capsys):
    path = images["camera"][0]
    assert main(["filter", "sobel_x", str(path), "-o", str(tmp_path / "v.png"), "--mode", "valid",
                 "--border", "wrap"]) == 0
    out = capsys.readouterr().out
    assert "(mode valid: no border)" in out and "wrap" not in out and "62×62×1" in out
    assert main(["filter", "sobel_x", str(path), "-o", str(tmp_path / "s.png"), "--border", "wrap"]) == 0
    out = capsys.readouterr().out
    assert "(mode same, border wrap)" in out and "clipped to 0–255 (--clip: " in out
