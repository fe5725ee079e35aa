"""PNG plots of a run: training curves and the confusion matrix (matplotlib's Agg canvas, no pyplot,
so nothing global is touched and no display is needed). Files are written atomically."""
from __future__ import annotations

import numpy as np

from ..files import atomic_path

__all__ = ["available", "plot_curves", "plot_confusion"]


def available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def plot_curves(records: list, path, title: str = "") -> None:
    """Loss and accuracy per epoch, training and validation, side by side."""
    fig = _figure((10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [r["epoch"] for r in records]
    for split in ("train", "val"):
        if all(f"{split}_loss" in r for r in records):
            ax_loss.plot(epochs, [r[f"{split}_loss"] for r in records], marker=".", label=split)
            ax_acc.plot(epochs, [100 * r[f"{split}_accuracy"] for r in records], marker=".", label=split)
    best = [r["epoch"] for r in records if r.get("best")]
    if best:
        ax_acc.axvline(best[-1], color="grey", linestyle=":", label=f"best (epoch {best[-1]})")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    from matplotlib.ticker import MaxNLocator
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def plot_confusion(cm: np.ndarray, classes: list, path, title: str = "confusion matrix") -> None:
    """Counts with true class down, predicted class across (row-normalised colours)."""
    cm = np.asarray(cm)
    k = len(classes)
    side = min(12.0, 3.0 + 0.5 * k)
    fig = _figure((side, side))
    ax = fig.subplots()
    rows = cm.sum(axis=1, keepdims=True)
    ax.imshow(np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), [str(c) for c in classes], rotation=45 if k > 10 or max(map(len, map(str, classes))) > 3
                  else 0, ha="right" if k > 10 else "center")
    ax.set_yticks(range(k), [str(c) for c in classes])
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if rows[i, 0] and cm[i, j] / rows[i, 0] > 0.5 else "black")
    fig.tight_layout()
    _save(fig, path)
