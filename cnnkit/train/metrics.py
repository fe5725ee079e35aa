"""Classification metrics computed from labels and predictions (numbers only; printing lives in the CLI)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..tensor import Tensor, no_grad

__all__ = ["confusion_matrix", "precision_recall", "Evaluation", "evaluate", "default_loss"]


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """``(K, K)`` int64 counts: row = true class, column = predicted class (scikit-learn's layout)."""
    labels = np.asarray(labels, dtype=np.int64).ravel()
    predictions = np.asarray(predictions, dtype=np.int64).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(f"confusion_matrix: {labels.size} labels but {predictions.size} predictions")
    for name, arr in (("labels", labels), ("predictions", predictions)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} must lie in [0, {num_classes}), "
                             f"got values from {arr.min()} to {arr.max()}")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, predictions), 1)
    return cm


def precision_recall(cm: np.ndarray):
    """Per-class ``(precision, recall, support)`` from a confusion matrix; 0 where undefined."""
    cm = np.asarray(cm)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)  # column sums
    support = cm.sum(axis=1)    # row sums
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    return precision, recall, support


def default_loss():
    """Cross-entropy on logits, the loss every classifier here trains with."""
    from ..nn import functional as F
    return F.cross_entropy


@dataclass
class Evaluation:
    """Result of :func:`evaluate`: mean loss, accuracy, and the per-example labels and predictions."""

    loss: float
    accuracy: float
    labels: np.ndarray
    predictions: np.ndarray

    def confusion_matrix(self, num_classes: int) -> np.ndarray:
        return confusion_matrix(self.labels, self.predictions, num_classes)


def evaluate(model, loader, loss=None) -> Evaluation:
    """Run ``model`` in eval mode without gradients over ``loader``; ``loss`` defaults to cross-entropy."""
    loss_fn = loss if loss is not None else default_loss()
    was_training = getattr(model, "training", False)
    model.eval()
    total, n, labels, preds = 0.0, 0, [], []
    try:
        with no_grad():
            for x, y in loader:
                out = model(x)
                y_arr = y.data if isinstance(y, Tensor) else np.asarray(y)
                total += float(loss_fn(out, y).item()) * len(y_arr)
                n += len(y_arr)
                labels.append(y_arr)
                preds.append(out.data.argmax(axis=1))
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("evaluate: the loader yielded no examples")
    labels, preds = np.concatenate(labels), np.concatenate(preds)
    return Evaluation(loss=total / n, accuracy=float((labels == preds).mean()), labels=labels, predictions=preds)
