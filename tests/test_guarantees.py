import numpy as np
import pytest
import torch
from scipy import stats

from stretto.optimizer.certify import clopper_pearson_lower
from stretto.optimizer.guarantees import (
    _normal_approx,
    blended_recall,
    forced_keep,
    lower_bound,
)


@pytest.mark.parametrize("alpha", [0.5, 0.8, 0.95, 0.99])
def test_beta_lower_bound_value_is_the_exact_quantile(alpha):
    tp = torch.tensor([0.0, 3.0, 17.5, 120.0, 999.0])
    fp = torch.tensor([0.0, 1.0, 4.25, 30.0, 2.0])
    got = lower_bound(tp, fp, alpha, "beta").numpy()
    np.testing.assert_allclose(got, stats.beta.ppf(1 - alpha, tp.numpy() + 1, fp.numpy() + 1), atol=1e-6)


def test_beta_lower_bound_gradient_is_the_normal_approximation_gradient():
    tp = torch.tensor([10.0, 50.0], dtype=torch.float64, requires_grad=True)
    fp = torch.tensor([5.0, 2.0], dtype=torch.float64, requires_grad=True)
    lower_bound(tp, fp, 0.95, "beta").sum().backward()
    tp2, fp2 = tp.detach().clone().requires_grad_(), fp.detach().clone().requires_grad_()
    _normal_approx(tp2, fp2, 0.95).sum().backward()
    torch.testing.assert_close(tp.grad, tp2.grad)
    torch.testing.assert_close(fp.grad, fp2.grad)
    assert (tp.grad > 0).all() and (fp.grad < 0).all()  # more hits raise the bound, more misses lower it


def test_clopper_pearson_against_scipy_and_edges():
    assert clopper_pearson_lower(0, 10, 0.95) == 0.0
    assert clopper_pearson_lower(8, 10, 0.95) == pytest.approx(stats.beta.ppf(0.05, 8, 3), abs=1e-12)
    assert clopper_pearson_lower(10, 10, 0.95) == pytest.approx(0.05 ** (1 / 10), abs=1e-9)


def test_bad_confidence_and_fraction():
    with pytest.raises(ValueError, match=r"alpha=1\.0"):
        lower_bound(torch.tensor(1.0), torch.tensor(1.0), 1.0, "beta")
    with pytest.raises(ValueError, match="sample fraction"):
        blended_recall(torch.tensor(1.0), torch.tensor(0.5), 1.5)
    assert float(blended_recall(torch.tensor(0.9), torch.tensor(0.7), 0.25)) == pytest.approx(0.75)


@pytest.mark.parametrize("alpha", [0.8, 0.95])
def test_clopper_pearson_option_matches_scipy_and_is_below_the_bayesian_bound(alpha):
    tp = torch.tensor([0.0, 3.0, 17.5, 120.0])
    fp = torch.tensor([2.0, 1.0, 4.25, 30.0])
    cp = lower_bound(tp, fp, alpha, "clopper_pearson").numpy()
    expected = np.where(tp.numpy() > 0, stats.beta.ppf(1 - alpha, tp.numpy().clip(1e-12), fp.numpy() + 1), 0.0)
    np.testing.assert_allclose(cp, expected, atol=1e-6)
    assert (cp <= lower_bound(tp, fp, alpha, "beta").numpy() + 1e-12).all()
    with pytest.raises(ValueError, match="unknown bound 'hoeffding'"):
        lower_bound(tp, fp, alpha, "hoeffding")


def test_forced_fractions_move_cheap_decisions_to_gold():
    accepted, discarded, unsure = (
        torch.tensor([1.0, 0.0, 0.0]),
        torch.tensor([0.0, 1.0, 0.0]),
        torch.tensor([0.0, 0.0, 1.0]),
    )
    label = torch.tensor([0.0, 1.0, 1.0])  # a false accept, a false discard, an unsure positive
    keep, to_gold = forced_keep(accepted, discarded, unsure, label, torch.tensor(0.25), torch.tensor(0.5))
    torch.testing.assert_close(keep, torch.tensor([0.75, 0.5, 1.0]))  # 25% of the false accept is corrected, ...
    torch.testing.assert_close(to_gold, torch.tensor([0.25, 0.5, 1.0]))
