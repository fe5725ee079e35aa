"""imagefolder on PNG/JPEG files generated here with Pillow."""
import numpy as np
import pytest
from PIL import Image

import cnnkit


def _write(folder, rng, counts, size=(12, 10), mode="RGB", fmt="png"):
    arrays = {}
    for name, n in counts.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            a = rng.integers(0, 256, shape, dtype=np.uint8)
            path = folder / name / f"{i:02d}.{fmt}"
            Image.fromarray(a, mode).save(path)
            arrays[path.name, name] = a
    return arrays


def test_imagefolder_rgb_png_round_trip(tmp_path, rng):
    arrays = _write(tmp_path / "pets", rng, {"dog": 10, "cat": 10, "bird": 5})
    s = cnnkit.data.load(str(tmp_path / "pets"), val_fraction=0.2, test_fraction=0.2)
    assert s.classes == ["bird", "cat", "dog"] and s.name == "pets"
    assert s.input_size == (3, 10, 12)  # (C, H, W) of 12-wide, 10-high pictures
    assert (len(s.train), len(s.val), len(s.test)) == (15, 5, 5)
    assert s.test.class_counts().tolist() == [1, 2, 2]
    # PNG is lossless: every picture comes back exactly, /255, CHW
    ours = sorted((int(y), np.rint(x * 255).astype(np.uint8).tobytes())
                  for d in (s.train, s.val, s.test) for x, y in zip(d.images, d.labels))
    ref = sorted((s.classes.index(c), a.transpose(2, 0, 1).tobytes()) for (_, c), a in arrays.items())
    assert ours == ref


def test_imagefolder_modes_sizes_and_jpeg(tmp_path, rng):
    root = tmp_path / "mixed"
    _write(root, rng, {"a": 4}, size=(16, 16), mode="L")
    _write(root, rng, {"b": 3}, size=(20, 8), mode="L", fmt="jpg")
    s = cnnkit.data.imagefolder(root, val_fraction=0.0)
    assert s.input_size == (1, 16, 16)  # all grey; the most common size wins
    s = cnnkit.data.imagefolder(root, size=8, mode="RGB", val_fraction=0.0)
    assert s.input_size == (3, 8, 8)
    _write(root, rng, {"c": 2}, size=(16, 16), mode="RGB")
    assert cnnkit.data.imagefolder(root).input_size[0] == 3  # auto: one colour image → RGB


def test_imagefolder_errors(tmp_path, rng):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no sub-folders"):
        cnnkit.data.imagefolder(tmp_path / "empty")
    root = tmp_path / "set"
    _write(root, rng, {"a": 3})
    (root / "b").mkdir()
    with pytest.raises(ValueError, match=r"class folder .*set/b has no PNG or JPEG images"):
        cnnkit.data.imagefolder(root)
    (root / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot read image .*broken.png"):
        cnnkit.data.imagefolder(root)
    with pytest.raises(ValueError, match="mode must be 'L', 'RGB' or 'auto', got 'CMYK'"):
        cnnkit.data.imagefolder(root, mode="CMYK")


def test_presplit_folder(tmp_path, rng):
    root = tmp_path / "ready"
    _write(root / "train", rng, {"x": 6, "y": 4}, mode="L")
    _write(root / "test", rng, {"x": 2, "y": 3}, mode="L")
    s = cnnkit.data.load(str(root), val_fraction=0.2)
    assert s.classes == ["x", "y"] and s.name == "ready"
    assert (len(s.train), len(s.val), len(s.test)) == (8, 2, 5)
    assert s.test.labels.tolist() == [0, 0, 1, 1, 1]
    _write(root / "val", rng, {"y": 1}, mode="L")
    s = cnnkit.data.load(str(root))
    assert (len(s.train), len(s.val), len(s.test)) == (10, 1, 5) and s.val.labels.tolist() == [1]
    _write(root / "test", rng, {"z": 1}, mode="L")
    with pytest.raises(ValueError, match=r"has class folders \['z'\] that the training folder lacks"):
        cnnkit.data.load(str(root))


def test_load_image_prepares_like_training(tmp_path, rng):
    root = tmp_path / "set"
    _write(root, rng, {"a": 2, "b": 2}, size=(9, 7), mode="RGB")
    s = cnnkit.data.imagefolder(root, size=(5, 6), mode="L", val_fraction=0.0, test_fraction=0.0)
    x = cnnkit.data.load_image(root / "a" / "00.png", s.input_size)
    assert x.shape == (1, 5, 6) and x.dtype == np.float32
    assert any(np.array_equal(x, im) for im in s.train.images)
    # independent reference: Pillow's own grey conversion and bilinear resize
    ref = np.asarray(Image.open(root / "a" / "00.png").convert("L").resize((6, 5), Image.Resampling.BILINEAR))
    np.testing.assert_allclose(x[0], ref / 255.0, atol=1e-7)
    with pytest.raises(ValueError, match=r"input_size must be \(C, H, W\) with C = 1 or 3"):
        cnnkit.data.load_image(root / "a" / "00.png", (2, 5, 5))
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ValueError, match="cannot read image .*bad.jpg"):
        cnnkit.data.load_image(tmp_path / "bad.jpg", (3, 4, 4))
