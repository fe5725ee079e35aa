"""Images in and out: the N×N×3 / N×N×1 uint8 convention, checked against OpenCV's and Pillow's readers."""
import os

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

import cnnkit
from cnnkit.files import read_image, to_image, to_tensor, write_image


@pytest.fixture(scope="module")
def rgb():
    return skimage.data.astronaut()[::8, ::8].copy()        # (64, 64, 3) uint8


@pytest.fixture(scope="module")
def grey():
    return skimage.data.camera()[::8, ::8].copy()           # (64, 64) uint8


def cv_read_rgb(path):
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]


# ---------------------------------------------------------------- reading and writing
def test_png_round_trip_rgb(tmp_path, rgb):
    p = tmp_path / "a.png"
    write_image(p, rgb)
    np.testing.assert_array_equal(cv_read_rgb(p), rgb)           # independent reader
    got = read_image(p)
    assert got.shape == (64, 64, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, rgb)


def test_png_round_trip_grey(tmp_path, grey):
    p = tmp_path / "g.png"
    write_image(p, grey[..., None])                               # (H, W, 1) → 8-bit greyscale PNG
    assert Image.open(p).mode == "L"
    np.testing.assert_array_equal(cv2.imread(str(p), cv2.IMREAD_UNCHANGED), grey)
    assert read_image(p, mode="gray").shape == (64, 64, 1)
    np.testing.assert_array_equal(read_image(p, mode="gray")[..., 0], grey)
    np.testing.assert_array_equal(read_image(p, mode="auto")[..., 0], grey)
    np.testing.assert_array_equal(read_image(p, mode="rgb"), np.repeat(grey[..., None], 3, axis=2))


def test_auto_mode_keeps_colour(tmp_path, rgb):
    p = tmp_path / "c.png"
    cv2.imwrite(str(p), rgb[..., ::-1])
    assert read_image(p, mode="auto").shape == (64, 64, 3)


def test_gray_conversion_matches_opencv(tmp_path, rgb):
    p = tmp_path / "c.png"
    cv2.imwrite(str(p), rgb[..., ::-1])
    ref = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    got = read_image(p, mode="gray")[..., 0]
    assert np.abs(got.astype(int) - ref).max() <= 1


def test_jpeg(tmp_path, rgb):
    p = tmp_path / "a.jpg"
    write_image(p, rgb, quality=95)
    cv = cv_read_rgb(p)
    got = read_image(p)
    assert np.abs(got.astype(int) - cv).max() <= 2                # both decode the same file
    err95 = np.abs(got.astype(float) - rgb).mean()
    write_image(p, rgb, quality=10)
    err10 = np.abs(read_image(p).astype(float) - rgb).mean()
    assert err95 < 8 and err95 < err10 / 2                        # quality is passed through


@pytest.mark.parametrize("suffix", [".bmp", ".tif"])
def test_other_lossless_formats(tmp_path, rgb, suffix):
    p = tmp_path / f"a{suffix}"
    write_image(p, rgb)
    np.testing.assert_array_equal(cv_read_rgb(p), rgb)
    np.testing.assert_array_equal(read_image(p), rgb)


def test_16bit_grey_png_keeps_high_byte(tmp_path):
    v = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16 + 7).astype(np.uint16)
    p = tmp_path / "g16.png"
    cv2.imwrite(str(p), v)
    assert cv2.imread(str(p), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    got = read_image(p, mode="auto")
    assert got.shape == (64, 64, 1) and got.dtype == np.uint8
    np.testing.assert_array_equal(got[..., 0], v >> 8)


def test_16bit_colour_png_keeps_high_byte(tmp_path):
    rng = np.random.default_rng(0)
    v = rng.integers(0, 65536, (16, 16, 3), dtype=np.uint16)
    p = tmp_path / "c16.png"
    cv2.imwrite(str(p), v[..., ::-1])
    np.testing.assert_array_equal(read_image(p), (v >> 8).astype(np.uint8))


def test_rgba_opaque_alpha_is_dropped(tmp_path, rgb):
    p = tmp_path / "o.png"
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), "RGBA").save(p)
    np.testing.assert_array_equal(read_image(p), rgb)


def test_rgba_transparency_rules(tmp_path, rgb):
    a = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))
    p = tmp_path / "t.png"
    Image.fromarray(np.dstack([rgb, a]), "RGBA").save(p)
    with pytest.raises(ValueError, match=r"has transparency \(64 pixels with alpha < 255\)|has transparency"):
        read_image(p)
    np.testing.assert_array_equal(read_image(p, alpha="drop"), rgb)
    w = a[..., None] / 255.0
    np.testing.assert_array_equal(read_image(p, alpha="white"), np.rint(rgb * w + 255 * (1 - w)).astype(np.uint8))
    np.testing.assert_array_equal(read_image(p, alpha="black"), np.rint(rgb * w).astype(np.uint8))
    np.testing.assert_array_equal(read_image(p, alpha="drop", mode="gray")[..., 0],
                                  np.asarray(Image.fromarray(rgb).convert("L")))


def test_grey_with_alpha(tmp_path, grey):
    p = tmp_path / "la.png"
    a = np.zeros_like(grey)
    Image.fromarray(np.dstack([grey, a]), "LA").save(p)
    with pytest.raises(ValueError, match="4096 pixels with alpha < 255"):
        read_image(p, mode="gray")
    got = read_image(p, mode="auto", alpha="drop")
    assert got.shape == (64, 64, 1)
    np.testing.assert_array_equal(got[..., 0], grey)


def test_palette_and_bilevel(tmp_path, rgb, grey):
    p = tmp_path / "p.png"
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    pal.save(p)
    np.testing.assert_array_equal(read_image(p), np.asarray(pal.convert("RGB")))
    np.testing.assert_array_equal(read_image(p), cv_read_rgb(p))
    b = tmp_path / "b.png"
    Image.fromarray(grey > 128).save(b)                           # mode "1"
    got = read_image(b, mode="auto")
    assert got.shape == (64, 64, 1)
    np.testing.assert_array_equal(got[..., 0], np.where(grey > 128, 255, 0))


def test_float_and_wide_int_images_rejected(tmp_path):
    f = tmp_path / "f.tif"
    Image.fromarray(np.zeros((4, 4), np.float32), "F").save(f)
    with pytest.raises(ValueError, match="floating-point images are not supported"):
        read_image(f)
    i = tmp_path / "i.tif"
    Image.fromarray(np.full((4, 4), 70000, np.int32), "I").save(i)
    with pytest.raises(ValueError, match=r"samples outside 0–65535 \(range 70000–70000\)"):
        read_image(i)


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"image file '.*nope.png' does not exist"):
        read_image(tmp_path / "nope.png")
    txt = tmp_path / "notes.png"
    txt.write_text("not an image")
    with pytest.raises(ValueError, match="not an image format Pillow recognises"):
        read_image(txt)
    good = tmp_path / "good.png"
    write_image(good, np.zeros((32, 32, 3), np.uint8) + 100)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:60])
    with pytest.raises(ValueError, match="cannot read"):
        read_image(cut)
    with pytest.raises(IsADirectoryError):
        read_image(tmp_path)
    with pytest.raises(ValueError, match=r"mode must be 'rgb', 'gray' or 'auto', got mode='grey'"):
        read_image(good, mode="grey")
    with pytest.raises(ValueError, match=r"alpha must be 'error', 'drop', 'white' or 'black'"):
        read_image(good, alpha="keep")


def test_write_errors_leave_no_file(tmp_path, rgb):
    with pytest.raises(TypeError, match=r"image must be uint8 \(0–255\), got dtype float32; convert with "
                                        r"cnnkit.files.to_image"):
        write_image(tmp_path / "f.png", rgb.astype(np.float32))
    with pytest.raises(ValueError, match=r"cannot tell the format of '.*a.gif'"):
        write_image(tmp_path / "a.gif", rgb)
    with pytest.raises(ValueError, match=r"JPEG cannot store an alpha channel"):
        write_image(tmp_path / "a.jpg", np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"got shape \(4, 4, 2\)"):
        write_image(tmp_path / "a.png", np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(FileNotFoundError, match="output directory"):
        write_image(tmp_path / "missing" / "a.png", rgb)
    with pytest.raises(ValueError, match=r"quality must be an int from 1 to 100, got quality=0"):
        write_image(tmp_path / "q.jpg", rgb, quality=0)
    with pytest.raises(TypeError, match="got a Tensor"):
        write_image(tmp_path / "t.png", cnnkit.zeros(3, 4, 4))
    assert os.listdir(tmp_path) == []


def test_write_is_atomic_on_failure(tmp_path, rgb, monkeypatch):
    p = tmp_path / "keep.png"
    write_image(p, rgb)
    before = p.read_bytes()

    def boom(self, *a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        write_image(p, rgb[::-1])
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.png"]


# ---------------------------------------------------------------- tensors
def test_to_tensor_matches_torch(rgb, grey):
    t = to_tensor(rgb)
    assert isinstance(t, cnnkit.Tensor) and t.shape == (3, 64, 64) and t.dtype == np.float32
    ref = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
    np.testing.assert_allclose(t.data, ref.numpy(), rtol=1e-7)
    raw = to_tensor(grey, scale="raw")
    assert raw.shape == (1, 64, 64)
    np.testing.assert_array_equal(raw.data[0], grey.astype(np.float32))
    with pytest.raises(ValueError, match=r"scale must be 'unit' or 'raw', got scale='byte'"):
        to_tensor(rgb, scale="byte")
    with pytest.raises(ValueError, match=r"image must be \(H, W\) or \(H, W, C\), got shape \(3,\)"):
        to_tensor(np.zeros(3))


def test_to_image_inverts_to_tensor(rgb, grey):
    np.testing.assert_array_equal(to_image(to_tensor(rgb)), rgb)
    np.testing.assert_array_equal(to_image(to_tensor(grey, scale="raw"), scale="raw")[..., 0], grey)
    # an ndarray is HWC unless told otherwise
    np.testing.assert_array_equal(to_image(rgb.astype(np.float32), scale="raw"), rgb)
    np.testing.assert_array_equal(to_image(to_tensor(rgb).data, layout="chw"), rgb)


def test_to_image_clip_and_normalize():
    resp = np.array([[-300.0, -1.0, 0.4, 0.6], [127.5, 254.6, 255.0, 900.0]])
    np.testing.assert_array_equal(to_image(resp, scale="raw")[..., 0], [[0, 0, 0, 1], [128, 255, 255, 255]])
    lo, hi = resp.min(), resp.max()
    expected = np.rint((resp - lo) / (hi - lo) * 255)
    np.testing.assert_array_equal(to_image(resp, normalize="minmax")[..., 0], expected)
    np.testing.assert_array_equal(to_image(np.full((2, 2), 7.0), normalize="minmax"), np.zeros((2, 2, 1)))
    with pytest.raises(ValueError, match=r"values outside 0–255 after scale='raw' \(min -300, max 900\); "
                                         r"pass clip=True or normalize='minmax'"):
        to_image(resp, scale="raw", clip=False)
    np.testing.assert_array_equal(to_image(np.array([[0.0, 1.0]]), clip=False)[..., 0], [[0, 255]])


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(array=np.array([[np.nan]])), ValueError, "NaN or infinite"),
    (dict(array=np.zeros((2, 2)), normalize="max"), ValueError, r"normalize must be None or 'minmax'"),
    (dict(array=np.zeros((2, 2)), layout="nhwc"), ValueError, r"layout must be 'auto', 'chw' or 'hwc'"),
    (dict(array=np.zeros((1, 2, 2, 3))), ValueError, r"array must be 2-D or 3-D, got shape \(1, 2, 2, 3\)"),
    (dict(array=np.array([["x"]])), TypeError, r"array must hold numbers"),
])
def test_to_image_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        to_image(**kwargs)


def test_the_image_functions_are_also_reached_from_cnnkit_io():
    """The README's ``cnnkit.io.read_image`` & co. are the same functions as ``cnnkit.files``'."""
    import cnnkit.files
    import cnnkit.io
    for name in ("read_image", "write_image", "to_tensor", "to_image"):
        assert getattr(cnnkit.io, name) is getattr(cnnkit.files, name)
