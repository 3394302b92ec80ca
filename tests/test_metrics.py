import numpy as np
import pytest

from stretto.evaluation.metrics import auc, quality


def test_quality_worked_example():
    pred = np.array([1, 1, 1, 0, 0, 0], bool)
    truth = np.array([1, 1, 0, 1, 0, 0], bool)
    q = quality(pred, truth)
    assert q.precision == pytest.approx(2 / 3)
    assert q.recall == pytest.approx(2 / 3)
    assert q.f1 == pytest.approx(2 / 3)
    assert (q.support, q.predicted) == (3, 3)


def test_quality_empty_prediction_has_full_precision_zero_recall():
    q = quality(np.zeros(4, bool), np.array([1, 0, 0, 0], bool))
    assert (q.precision, q.recall, q.f1) == (1.0, 0.0, 0.0)


def test_auc():
    assert auc(np.array([0.1, 0.2, 0.9, 0.8]), np.array([0, 0, 1, 1])) == 1.0
    assert auc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([0, 0, 1, 1])) == 0.0
    assert np.isnan(auc(np.array([0.1, 0.2]), np.array([1, 1])))
