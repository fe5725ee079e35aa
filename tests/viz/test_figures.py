"""The figures show what independent references say they must: OpenCV's Sobel kernel and filter
responses, the lecture's LeNet-5 volumes, PyTorch's activations, a model that only sees one corner, a
linear model's weights, hand-derived receptive boxes. Rendered PNGs are read back pixel by pixel."""
import io
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import cnnkit
from cnnkit import nn, viz
from cnnkit.viz.draw import DPI
from tests.models.torch_ref import LeNet5 as TorchLeNet5
from tests.viz.test_maps import _corner_model


def _rgba(fig) -> np.ndarray:
    png = fig._repr_png_()                                    # what a notebook shows inline
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and im.size == tuple(fig._px)
        return np.asarray(im.convert("RGB")).astype(int)


def _pixel_box(fig, ax):
    """The axes' data area in PNG pixel coordinates (top, bottom, left, right)."""
    fig.canvas.draw()
    b = ax.get_window_extent()
    h = fig._px[1]
    return h - b.y1, h - b.y0, b.x0, b.x1


def _axes_titled(fig, text):
    found = [ax for ax in fig.axes if ax.get_title() == text]
    assert len(found) == 1, [ax.get_title() for ax in fig.axes]
    return found[0]


def _texts(fig):
    return [t.get_text() for t in fig.texts] + [t.get_text() for ax in fig.axes for t in ax.texts]


@pytest.fixture(scope="module")
def digit():
    s = cnnkit.data.load("mnist-5k")
    return ((s.test.images[0] - s.mean[0]) / s.std[0]).astype(np.float32)


# ----------------------------------------------------------------------------- filters
def test_a_first_filter_set_to_sobel_shows_that_kernel():
    kx, ky = cv2.getDerivKernels(1, 0, 3)                     # OpenCV's Sobel x: smoothing ⊗ derivative
    sobel = (ky @ kx.T).astype(np.float32)                    # [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    model[0].weight.data[...] = np.random.default_rng(0).uniform(-0.5, 0.5, (4, 1, 3, 3))
    model[0].weight.data[0, 0] = sobel
    fig = viz.plot_filters(model)
    ax = _axes_titled(fig, "filter 0")
    np.testing.assert_array_equal(ax.images[0].get_array(), sobel)
    printed = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert printed == {(i, j): f"{sobel[i, j]:.2g}" for i in range(3) for j in range(3)}
    rgb = _rgba(fig)
    top, bottom, left, right = _pixel_box(fig, ax)
    cell = (bottom - top) / 3

    def colour(i, j):                                         # near a cell's corner, away from its number
        return rgb[int(top + (i + 0.15) * cell), int(left + (j + 0.15) * cell)]
    red, blue = colour(1, 2), colour(1, 0)                    # +2 and −2: the two ends of the scale
    assert red[0] > 90 and red[0] > red[2] + 60 and blue[2] > 90 and blue[2] > blue[0] + 60
    assert np.all(np.abs(colour(1, 1) - 247) < 12)            # 0: white


def test_filters_of_deeper_and_colour_layers(lenet):
    table = viz.plot_filters(lenet, "c3", max_filters=4, max_channels=3)
    assert sum(len(ax.images) for ax in table.axes if ax.images and ax.get_xticks().size == 0) == 4 * 3
    assert any("the 4 with the largest weights" in t for t in _texts(table))
    colour = viz.plot_filters(cnnkit.models.create("resnet18"), max_filters=6)
    shown = [ax.images[0].get_array() for ax in colour.axes if ax.images]
    assert len(shown) == 6 and all(a.shape == (7, 7, 3) and 0 <= a.min() and a.max() <= 1 for a in shown)
    with pytest.raises(ValueError, match=r"layer 's2' \(MaxPool2d\) has no 2-D convolution weight"):
        viz.plot_filters(lenet, "s2")


# ----------------------------------------------------------------------------- activations
def test_activations_show_each_layer_with_the_lectures_volume(lenet, digit):
    fig = viz.plot_activations(lenet, digit)
    texts = _texts(fig)
    for name, volume in [("c1", "Conv2d 28×28×6"), ("s2", "MaxPool2d 14×14×6"), ("c3", "Conv2d 10×10×16"),
                         ("s4", "MaxPool2d 5×5×16")]:                # LeNet-5's table in the lecture
        assert name in texts and volume in texts
    t = TorchLeNet5()
    t.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in lenet.state_dict().items()})
    with torch.no_grad():
        c1 = t.c1(torch.from_numpy(digit[None]))[0].numpy()
        pred = int(t(torch.from_numpy(digit[None])).argmax())
    c1_tiles = [ax.images[0].get_array() for ax in fig.axes if ax.images and ax.images[0].get_array().shape == (28, 28)]
    for ch in range(6):
        np.testing.assert_allclose(c1_tiles[ch], c1[ch], rtol=1e-4, atol=1e-5)
    assert any(s.startswith(f"prediction: {pred} (") for s in [ax.get_title() for ax in fig.axes])
    rgb = _rgba(fig)
    assert rgb.std() > 20                                     # drawn, not blank


# ----------------------------------------------------------------------------- occlusion and saliency
def test_occlusion_of_a_model_that_sees_one_corner_lights_up_that_corner():
    model, _, _ = _corner_model()
    x = np.random.default_rng(4).random((1, 16, 16)).astype(np.float32) + 1.0
    fig = viz.plot_occlusion(model, x, target=1, size=4, stride=2, fill=0.0)
    ax = _axes_titled(fig, "p(class 1) by position")
    rgb = _rgba(fig)
    top, bottom, left, right = _pixel_box(fig, ax)
    panel = rgb[int(top) + 2:int(bottom) - 2, int(left) + 2:int(right) - 2].sum(axis=2)   # brightness
    q = panel.shape[0] // 4
    corner, elsewhere = panel[:q, :q].mean(), panel[2 * q:, 2 * q:].mean()
    assert corner < elsewhere - 50                            # viridis: low probability is dark
    darkest = np.unravel_index(panel.argmin(), panel.shape)
    assert darkest[0] < 2 * q and darkest[1] < 2 * q and panel[2 * q:, 2 * q:].std() < 1


def test_saliency_panel_of_a_linear_model_is_its_weights():
    fc = nn.Linear(3 * 8 * 8, 4)
    model = nn.Sequential(nn.Flatten(), fc)
    x = np.random.default_rng(5).standard_normal((3, 8, 8)).astype(np.float32)
    fig = viz.plot_saliency(model, x, target=2)
    shown = _axes_titled(fig, "|gradient|").images[0].get_array()
    np.testing.assert_allclose(shown, np.abs(fc.weight.data[2].reshape(3, 8, 8)).max(0), rtol=1e-6)


# ----------------------------------------------------------------------------- receptive field, top patches
def test_receptive_field_draws_the_hand_derived_box(lenet, digit):
    fig = viz.plot_receptive_field(lenet, "c3", (2, 3), digit)
    ax = _axes_titled(fig, "input")
    boxes = {p.get_label(): (p.get_y() + 0.5, p.get_y() + 0.5 + p.get_height(), p.get_x() + 0.5,
                             p.get_x() + 0.5 + p.get_width()) for p in ax.patches}
    assert boxes["c3 14×14"] == (4, 18, 6, 20)                # rows 2·2 … 2·2 + 14, columns 2·3 …
    assert boxes["c1 5×5"][1] - boxes["c1 5×5"][0] == 5 and boxes["s2 6×6"][1] - boxes["s2 6×6"][0] == 6
    assert "c3: unit (row 2, column 3) sees a 14×14 input window" in _texts(fig)


def test_top_patches_figure_shows_the_strongest_patches(lenet):
    images = np.random.default_rng(7).random((12, 1, 32, 32)).astype(np.float32)
    fig = viz.plot_top_patches(lenet, "c1", images, k=4, channels=[2, 5])
    tiles = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(tiles) == 8 and all(t.shape == (5, 5) for t in tiles)
    tp = viz.top_patches(lenet, "c1", images, k=4, channels=[2, 5])
    lo, hi = images.min(), images.max()
    np.testing.assert_allclose(tiles[0], (tp.patches[0, 0, 0] - lo) / (hi - lo), rtol=1e-6)
    assert {"channel 2", "channel 5"} <= set(_texts(fig))


# ----------------------------------------------------------------------------- maximisation
def test_maximized_class_of_a_linear_model_looks_like_its_weights():
    fc = nn.Linear(16 * 16, 2)
    model = nn.Sequential(nn.Flatten(), fc)
    fc.weight.data[...] = np.stack([np.outer(np.hanning(16), np.sin(np.arange(16) / 3)),
                                    np.outer(np.cos(np.arange(16) / 4), np.hanning(16))]).reshape(2, -1)
    fig = viz.plot_maximize(model, classes=["a", "b"], input_size=(1, 16, 16), steps=128)
    for name, w in zip("ab", fc.weight.data):
        tile = _axes_titled(fig, name).images[0].get_array()
        assert np.corrcoef(np.asarray(tile).ravel(), w)[0, 1] >= 0.9


# ----------------------------------------------------------------------------- the filter bank
def test_responses_equal_opencv_with_labels_of_24_px(tmp_path):
    photo = cv2.cvtColor(cv2.resize(np.asarray(Image.open(_photo(tmp_path))), (64, 48)), cv2.COLOR_RGB2GRAY)
    fig = viz.plot_responses(photo, ["sobel_x", "laplacian_4"])
    for name, kernel in [("sobel_x", np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64)),
                         ("laplacian_4", np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float64))]:
        ref = cv2.filter2D(photo.astype(np.float64), -1, kernel, borderType=cv2.BORDER_REFLECT_101)
        ref = (ref - ref.min()) / (ref.max() - ref.min())
        np.testing.assert_allclose(_axes_titled(fig, name).images[0].get_array(), ref, atol=1e-5)
    fig.canvas.draw()
    for ax in fig.axes:
        t = ax.title
        assert t.get_fontsize() * DPI / 72 >= 24 and t.get_window_extent().height >= 24


def _photo(tmp_path):
    from skimage import data
    p = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(p)
    return p


# ----------------------------------------------------------------------------- writing and notebooks
def test_save_is_atomic_and_png_only(tmp_path, lenet):
    fig = viz.plot_filters(lenet)
    out = viz.save(fig, tmp_path / "f.png")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == tuple(fig._px)
    with pytest.raises(ValueError, match=r"output must be a .png file, got '.*f.jpg'"):
        viz.save(fig, tmp_path / "f.jpg")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        viz.save(fig, tmp_path / "missing" / "f.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]        # no temporary file left


def test_figures_display_inline_and_maps_import_no_matplotlib(lenet):
    assert viz.plot_filters(lenet)._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    code = "import sys, cnnkit.viz.maps, cnnkit.viz; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
