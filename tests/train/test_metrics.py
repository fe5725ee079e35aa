import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import precision_recall_fscore_support

from cnnkit.train import confusion_matrix, precision_recall


def test_confusion_and_precision_recall_match_sklearn(rng):
    y = rng.integers(0, 5, 200)
    p = np.where(rng.random(200) < 0.7, y, rng.integers(0, 5, 200))
    p[p == 4] = 3  # class 4 never predicted: precision undefined → 0, as scikit-learn's zero_division=0
    cm = confusion_matrix(y, p, 5)
    np.testing.assert_array_equal(cm, sk_confusion(y, p, labels=range(5)))
    prec, rec, sup = precision_recall(cm)
    sp, sr, _, ss = precision_recall_fscore_support(y, p, labels=range(5), zero_division=0)
    np.testing.assert_allclose(prec, sp)
    np.testing.assert_allclose(rec, sr)
    np.testing.assert_array_equal(sup, ss)


def test_confusion_rejects_bad_labels():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got values from 0 to 3"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="2 labels but 1 predictions"):
        confusion_matrix([0, 1], [0], 3)
