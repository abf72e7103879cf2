"""Rating statistics against pingouin, krippendorff, statsmodels, scipy and Gwet's published worked example."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ffasora.review import stats

NA = np.nan
# irrCAC's ``cac.raw4raters`` (Gwet 2014, Handbook of Inter-Rater Reliability): 12 units x 4 raters, with gaps.
RAW4RATERS = np.array(
    [
        [1, 1, NA, 1], [2, 2, 3, 2], [3, 3, 3, 3], [3, 3, 3, 3], [2, 2, 2, 2], [1, 2, 3, 4],
        [4, 4, 4, 4], [1, 1, 2, 1], [2, 2, 2, 2], [NA, 5, 5, 5], [NA, NA, 1, 1], [NA, NA, 3, NA],
    ]
)  # fmt: skip


def skewed_ratings(n: int = 40, k: int = 3, seed: int = 0, missing: float = 0.0) -> np.ndarray:
    """FFA-Sora-like scores piled on 1-2, raters one step apart now and then; optional random gaps."""
    rng = np.random.default_rng(seed)
    truth = rng.choice([1, 1, 1, 2, 2, 3, 4], size=n)
    m = np.clip(truth[:, None] + rng.choice([-1, 0, 0, 0, 0, 1], size=(n, k)), 1, 5).astype(float)
    if missing:
        m[rng.random(m.shape) < missing] = np.nan
    return m


def test_gwet_ac1_and_ac2_reproduce_the_published_example() -> None:
    ac1 = stats.gwet_ac2(RAW4RATERS, weights="identity")
    assert ac1.coefficient == pytest.approx(0.77544, abs=5e-6)
    assert ac1.pa == pytest.approx(0.81818, abs=5e-6)
    assert ac1.pe == pytest.approx(0.19032, abs=5e-6)
    assert ac1.n_units == 11  # the last unit has a single rating
    ac2 = stats.gwet_ac2(RAW4RATERS, weights="quadratic")
    assert ac2.coefficient == pytest.approx(0.9140, abs=5e-5)
    assert ac2.pa == pytest.approx(0.97538, abs=5e-6)
    assert ac2.pe == pytest.approx(0.7137, abs=5e-5)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
@pytest.mark.parametrize("seed", [0, 1])
def test_krippendorff_alpha_matches_the_krippendorff_package(level: str, seed: int) -> None:
    krippendorff = pytest.importorskip("krippendorff")
    for m in (RAW4RATERS, skewed_ratings(seed=seed, missing=0.2)):
        expected = krippendorff.alpha(reliability_data=m.T, level_of_measurement=level)
        assert stats.krippendorff_alpha(m, level).coefficient == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_icc2_matches_pingouin(seed: int) -> None:
    pg = pytest.importorskip("pingouin")
    m = skewed_ratings(n=30, k=3, seed=seed)
    long = pd.DataFrame(
        [(i, j, m[i, j]) for i in range(m.shape[0]) for j in range(m.shape[1])], columns=["u", "r", "s"]
    )
    table = pg.intraclass_corr(long, targets="u", raters="r", ratings="s").set_index("Type")
    ci_col = "CI95" if "CI95" in table.columns else "CI95%"
    rows = {"1": ("ICC2", "ICC(A,1)"), "k": ("ICC2k", "ICC(A,k)")}
    got = stats.icc2(m)
    for which, value, ci in (("1", got.icc_1, got.ci_1), ("k", got.icc_k, got.ci_k)):
        row = table.loc[[name for name in rows[which] if name in table.index][0]]
        assert value == pytest.approx(row["ICC"], abs=1e-10)
        # pingouin rounds its interval to two decimals.
        assert ci == pytest.approx(tuple(row[ci_col]), abs=0.0051)
    assert got.f == pytest.approx(table.loc[[n for n in rows["1"] if n in table.index][0], "F"])


def test_fleiss_kappa_matches_statsmodels() -> None:
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    for seed in range(3):
        m = skewed_ratings(n=25, k=4, seed=seed)
        table, _ = inter_rater.aggregate_raters(m.astype(int))
        assert stats.fleiss_kappa(m).coefficient == pytest.approx(inter_rater.fleiss_kappa(table), abs=1e-12)


def test_weighted_cohen_kappa_matches_scikit_learn() -> None:
    cohen_kappa_score = pytest.importorskip("sklearn.metrics").cohen_kappa_score
    m = skewed_ratings(n=50, k=2, seed=4)
    for ours, theirs in (("quadratic", "quadratic"), ("linear", "linear"), ("identity", None)):
        expected = cohen_kappa_score(m[:, 0], m[:, 1], weights=theirs, labels=[1, 2, 3, 4, 5])
        assert stats.cohen_kappa(m[:, 0], m[:, 1], weights=ours).coefficient == pytest.approx(
            expected, abs=1e-12
        )
    m[:5, 0] = np.nan
    assert stats.cohen_kappa(m[:, 0], m[:, 1]).n_units == 45


def test_ordinal_coefficients_survive_the_kappa_paradox() -> None:
    """Raters agree within one step on scores piled on 1: kappa is low, AC2 and ordinal alpha are high."""
    rng = np.random.default_rng(3)
    m = np.ones((60, 3))
    m[rng.random(m.shape) < 0.2] = 2
    kappa = stats.fleiss_kappa(m).coefficient
    ac2 = stats.gwet_ac2(m, weights="quadratic").coefficient
    assert kappa < 0.2 < 0.8 < ac2
    assert stats.gwet_ac2(np.ones((5, 3)), weights="quadratic").coefficient == pytest.approx(1.0)


def test_weights_and_bad_input() -> None:
    w = stats.weight_matrix([1, 2, 3, 4, 5], "ordinal")
    assert np.allclose(np.diag(w), 1) and np.allclose(w, w.T) and w[0, 4] == 0
    assert np.all(np.diff(w[0]) < 0)  # further apart, less agreement
    with pytest.raises(ValueError, match="categories"):
        stats.gwet_ac2(np.array([[1.0, 7.0]]))
    with pytest.raises(ValueError, match="weights"):
        stats.weight_matrix([1, 2], "cubic")
    with pytest.raises(ValueError, match="complete units"):
        stats.icc2(np.array([[1.0, NA], [2.0, 2.0]]))


def test_describe_and_binomial() -> None:
    from scipy import stats as sps

    s = stats.describe([1, 1, 2, 2, 2, 3, 5, NA])
    assert (s.n, s.median, s.counts) == (7, 2.0, (2, 3, 1, 0, 1))
    assert s.mean == pytest.approx(16 / 7) and s.sd == pytest.approx(np.std([1, 1, 2, 2, 2, 3, 5], ddof=1))
    assert s.iqr == pytest.approx(
        np.percentile([1, 1, 2, 2, 2, 3, 5], 75) - np.percentile([1, 1, 2, 2, 2, 3, 5], 25)
    )
    b = stats.binomial_vs_chance(32, 40)
    assert b.p_value == pytest.approx(sps.binomtest(32, 40, 0.5).pvalue)
    assert b.ci[0] < 0.8 < b.ci[1] and b.p_value < 0.001
    t = stats.turing_test(["real", "synthetic", "synthetic", "real"], ["real", "synthetic", "real", "real"])
    assert (t.accuracy.k, t.accuracy.n, t.sensitivity, t.specificity) == (3, 4, 1.0, pytest.approx(2 / 3))


def test_bootstrap_ci_brackets_the_estimate() -> None:
    m = skewed_ratings(n=50, seed=5)
    value = stats.krippendorff_alpha(m).coefficient
    low, high = stats.bootstrap_ci(lambda x: stats.krippendorff_alpha(x).coefficient, m, n_boot=200, seed=0)
    assert low < value < high
    assert stats.bootstrap_ci(lambda x: stats.krippendorff_alpha(x).coefficient, m, n_boot=200, seed=0) == (
        low,
        high,
    )
