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
