"""prepare_digit against MNIST itself: real digits put on paper (dark on white, off-centre, other sizes)
must come back close to the originals; the centre of mass and box are checked by explicit loops."""
import numpy as np
import pytest
from PIL import Image

import cnnkit
from cnnkit.data import prepare_digit
from tests.data.drawn import draw_digit


@pytest.fixture(scope="module")
def mnist():
    s = cnnkit.data.load("mnist-5k", size=28)
    return s.test.images[::25, 0], s.test.labels[::25]            # 40 digits, 4 per class


def _centre_of_mass(a):
    total = ry = rx = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            total += a[i, j]
            ry += i * a[i, j]
            rx += j * a[i, j]
    return ry / total, rx / total


def _box(a, level):
    rows = [i for i in range(a.shape[0]) if any(v > level for v in a[i])]
    cols = [j for j in range(a.shape[1]) if any(v > level for v in a[:, j])]
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def _on_paper(digit, scale, rng, shape=(180, 240)):
    """An MNIST digit enlarged by ``scale`` and pasted, dark on white, somewhere on a sheet."""
    n = round(28 * scale)
    big = 255 - np.asarray(Image.fromarray((digit * 255).round().astype(np.uint8)).resize((n, n), Image.BILINEAR))
    paper = np.full(shape, 255, np.uint8)
    r, c = rng.integers(0, shape[0] - n), rng.integers(0, shape[1] - n)
    paper[r:r + n, c:c + n] = big
    return paper


def _corr(a, b):
    """The best correlation over shifts of one pixel (centring rounds to whole pixels)."""
    return max(np.corrcoef(np.roll(a, (dy, dx), (0, 1)).ravel(), b.ravel())[0, 1] for dy in (-1, 0, 1)
               for dx in (-1, 0, 1))


def test_mnist_digits_are_fixed_points(mnist):
    for d in mnist[0]:
        np.testing.assert_allclose(prepare_digit(d), d, atol=0.02)   # up to the faintest edge pixels


def test_digits_on_paper_come_back(mnist):
    rng = np.random.default_rng(0)
    scores = []
    for d in mnist[0]:
        for scale in (1.5, 2.5, 4.0):
            out = prepare_digit(_on_paper(d, scale, rng))
            assert out.shape == (28, 28) and out.dtype == np.float32 and 0 <= out.min() and out.max() > 0.8
            cy, cx = _centre_of_mass(out)
            assert 13.5 <= cy <= 14.5 and 13.5 <= cx <= 14.5
            assert max(_box(out, 0.2)) in (19, 20, 21)
            scores.append(_corr(out, d))
    assert min(scores) >= 0.85 and np.median(scores) >= 0.95


def test_inputs_of_every_kind_give_the_same_digit(tmp_path):
    sheet = draw_digit(7, canvas=(120, 90), box=(10, 20, 40, 70))                 # dark on light, (120, 90)
    ref = prepare_digit(sheet)
    path = tmp_path / "seven.png"
    Image.fromarray(sheet).save(path)
    np.testing.assert_array_equal(prepare_digit(path), ref)
    np.testing.assert_array_equal(prepare_digit(str(path)), ref)
    np.testing.assert_array_equal(prepare_digit(Image.open(path)), ref)
    np.testing.assert_allclose(prepare_digit(np.repeat(sheet[..., None], 3, 2)), ref, atol=1e-6)     # RGB
    np.testing.assert_allclose(prepare_digit(sheet[None] / 255.0), ref, atol=1e-6)                  # (1, H, W)
    np.testing.assert_allclose(prepare_digit((sheet.astype(np.uint16) * 257)), ref, atol=1e-6)      # 16-bit
    np.testing.assert_allclose(prepare_digit(255 - sheet, invert=False), ref, atol=1e-6)            # light ink
    padded = prepare_digit(sheet, size=32)
    assert padded.shape == (32, 32) and np.all(padded[2:30, 2:30] == ref) and padded.sum() == ref.sum()


def test_a_canvas_with_transparency_is_read_by_its_strokes():
    ink = draw_digit(3, canvas=(100, 100), box=(20, 10, 50, 80))
    alpha = 255 - ink                                                             # strokes opaque, paper clear
    ref = prepare_digit(ink)
    for colour in (0, 255):                                                       # black or white strokes
        rgba = np.zeros((100, 100, 4), np.uint8)
        rgba[..., :3], rgba[..., 3] = colour, alpha
        np.testing.assert_allclose(prepare_digit(rgba), ref, atol=0.02)
        np.testing.assert_allclose(prepare_digit(Image.fromarray(rgba, "RGBA")), ref, atol=0.02)


def test_errors_name_the_argument_and_value(tmp_path):
    sheet = draw_digit(1)
    with pytest.raises(ValueError, match="no ink found"):
        prepare_digit(np.full((40, 40), 200, np.uint8))
    with pytest.raises(ValueError, match="no ink found"):
        prepare_digit(sheet, invert=False)                   # dark ink on white read as light ink: no ink
    with pytest.raises(ValueError, match="invert must be 'auto', True or False, got invert='yes'"):
        prepare_digit(sheet, invert="yes")
    with pytest.raises(ValueError, match=r"threshold must be a number in \(0, 1\), got threshold=1"):
        prepare_digit(sheet, threshold=1)
    with pytest.raises(ValueError, match="box must be 1–28, got box=30"):
        prepare_digit(sheet, box=30)
    with pytest.raises(ValueError, match="size must be at least 28, got size=20"):
        prepare_digit(sheet, size=20)
    with pytest.raises(TypeError, match="size must be an int, got size=32.0"):
        prepare_digit(sheet, size=32.0)
    with pytest.raises(ValueError, match=r"image must be .* got shape \(5, 5, 5, 5\)"):
        prepare_digit(np.zeros((5, 5, 5, 5)))
    with pytest.raises(ValueError, match=r"values must lie in \[0, 1\] or 0–255, got -1.0–-1.0"):
        prepare_digit(-np.ones((8, 8)))
    with pytest.raises(TypeError, match="image must be a path, a PIL image or a numpy array, got list"):
        prepare_digit([[0, 1]])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare_digit(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match="not an image format Pillow recognises"):
        prepare_digit(tmp_path / "text.png")
