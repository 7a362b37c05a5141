"""Metric code on small synthetic distance arrays whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from facesearch.evaluation import metrics

# Four same-person pairs and four different-person pairs, perfectly separable between 0.4 and 0.6.
SEP_D = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
SEP_S = np.array([True] * 4 + [False] * 4)


def test_roc_of_separable_pairs():
    roc = metrics.roc_curve(SEP_D, SEP_S)
    assert roc.tar.tolist() == [0, 0.25, 0.5, 0.75, 1, 1, 1, 1, 1]
    assert roc.far.tolist() == [0, 0, 0, 0, 0, 0.25, 0.5, 0.75, 1]
    assert roc.thresholds[0] < 0.1 and roc.thresholds[-1] == 0.9
    assert metrics.auc(roc) == pytest.approx(1.0)


def test_auc_of_reversed_and_tied_scores():
    assert metrics.auc(metrics.roc_curve(SEP_D, ~SEP_S)) == pytest.approx(0.0)
    # every distance equal: a coin toss, ties counted half
    assert metrics.auc(metrics.roc_curve(np.full(8, 0.5), SEP_S)) == pytest.approx(0.5)
    # one inversion out of 4x4 pairs: AUC = 15/16
    d = np.array([0.1, 0.2, 0.3, 0.65, 0.6, 0.7, 0.8, 0.9])
    assert metrics.auc(metrics.roc_curve(d, SEP_S)) == pytest.approx(15 / 16)


def test_best_threshold_is_midpoint_of_the_gap():
    acc, t = metrics.best_threshold(SEP_D, SEP_S)
    assert acc == 1.0
    assert t == pytest.approx(0.5)


def test_tar_at_far():
    d = np.array([0.1, 0.2, 0.3, 0.65, 0.6, 0.7, 0.8, 0.9])
    roc = metrics.roc_curve(d, SEP_S)
    # FAR 0 allows accepting up to 0.3 (the 0.6 impostor comes before the 0.65 genuine)
    assert metrics.tar_at_far(roc, 0.0) == (0.75, pytest.approx(0.3))
    tar, t = metrics.tar_at_far(roc, 0.25)
    assert (tar, t) == (1.0, pytest.approx(0.65))


def test_kfold_accuracy_on_known_folds():
    # Fold 1: genuine 0.1 0.2 0.3 0.55, impostors 0.45 0.7 0.8 0.9.
    d = np.r_[SEP_D, [0.1, 0.2, 0.3, 0.55, 0.45, 0.7, 0.8, 0.9]]
    s = np.r_[SEP_S, SEP_S]
    fold_of = np.repeat([0, 1], 8)
    kf = metrics.kfold_accuracy(d, s, fold_of=fold_of)
    # Fold 1 is tested at fold 0's threshold 0.5: the 0.55 genuine is rejected and the 0.45
    # impostor accepted -> 6/8. Fold 1's best accuracy (7/8) is first reached accepting up to
    # 0.3, so fold 0 is tested at (0.3 + 0.45) / 2: its 0.4 genuine is rejected -> 7/8.
    assert kf.fold_threshold == pytest.approx((0.375, 0.5))
    assert kf.fold_accuracy == (0.875, 0.75)
    assert kf.accuracy == pytest.approx(0.8125)
    assert kf.accuracy_std == pytest.approx(0.0625)


def test_kfold_default_folds_are_contiguous():
    d = np.tile(SEP_D, 10)
    s = np.tile(SEP_S, 10)
    kf = metrics.kfold_accuracy(d, s, folds=10)
    assert len(kf.fold_accuracy) == 10 and kf.accuracy == 1.0 and kf.accuracy_std == 0.0


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="both"):
        metrics.roc_curve(np.array([0.1, 0.2]), np.array([True, True]))
    with pytest.raises(ValueError, match="labels"):
        metrics.roc_curve(np.array([0.1, 0.2]), np.array([True]))
    with pytest.raises(ValueError, match="finite"):
        metrics.roc_curve(np.array([0.1, np.nan]), np.array([True, False]))


def test_open_set_rates_and_threshold_for_far():
    result = metrics.OpenSet(
        known_dist=np.array([0.1, 0.2, 0.3, 0.5]),
        known_right=np.array([True, True, False, True]),
        stranger_dist=np.array([0.25, 0.45, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0, 1.1, 1.2]),
    )
    assert result.rank1 == 0.75
    at = result.at(0.3)
    assert at == {
        "known_correct": 0.5,
        "known_wrong": 0.25,
        "known_rejected": 0.25,
        "stranger_false_accept": 0.1,
        "stranger_rejected": 0.9,
    }
    # no stranger may be accepted: strictly below the closest one (0.25)
    assert result.threshold_for_far(0.0) == pytest.approx(0.249)
    assert result.threshold_for_far(0.05) == pytest.approx(0.249)  # 0.5 of a stranger rounds down
    # one in ten allowed: below the second-closest stranger (0.45)
    t = result.threshold_for_far(0.1)
    assert t == pytest.approx(0.449)
    assert result.at(t)["stranger_false_accept"] == 0.1
    assert result.threshold_for_far(0.1, step=0.05) == pytest.approx(0.40)
    rows = result.tradeoff(np.array([0.0, 2.0]))
    assert rows[0]["known_correct"] == 0.0 and rows[1]["stranger_false_accept"] == 1.0


def test_threshold_for_far_needs_strangers():
    empty = metrics.OpenSet(np.array([0.1]), np.array([True]), np.array([]))
    with pytest.raises(ValueError, match="stranger"):
        empty.threshold_for_far(0.01)
