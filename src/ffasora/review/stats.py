"""Statistics for expert ratings on an ordinal 1-5 scale: pure functions on numpy arrays.

A ratings matrix has shape (n_units, n_raters) with NaN where a rater did not rate a unit. The scores of FFA
studies pile up on 1-2, which is exactly where Cohen/Fleiss-type kappas collapse although raters agree
(the "kappa paradox"), so ordinal-aware coefficients are reported beside them: Krippendorff's alpha with the
ordinal metric and Gwet's AC2 with ordinal or quadratic weights (Gwet 2008; Handbook of Inter-Rater
Reliability, 4th ed., 2014). ICC follows Shrout & Fleiss (1979) / McGraw & Wong (1996), case 2 (two-way random,
absolute agreement), with the McGraw & Wong confidence interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

SCALE = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Summary:
    """Descriptive statistics of a set of scores; ``counts`` follows the scale's order."""

    n: int
    mean: float
    sd: float
    median: float
    q1: float
    q3: float
    counts: tuple[int, ...]

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1


@dataclass(frozen=True)
class ICC:
    """ICC(2,1) (one rater) and ICC(2,k) (mean of k raters) with 95 % CIs, from n complete units."""

    icc_1: float
    icc_k: float
    ci_1: tuple[float, float]
    ci_k: tuple[float, float]
    f: float
    p_value: float
    n: int
    k: int


@dataclass(frozen=True)
class Agreement:
    """A chance-corrected coefficient with its observed (pa) and chance (pe) agreement where defined."""

    coefficient: float
    pa: float
    pe: float
    n_units: int


@dataclass(frozen=True)
class Binomial:
    """k successes out of n against chance 0.5: two-sided exact test and Clopper-Pearson 95 % CI."""

    k: int
    n: int
    proportion: float
    p_value: float
    ci: tuple[float, float]


def describe(scores: Sequence[float] | np.ndarray, scale: Sequence[int] = SCALE) -> Summary:
    """Mean, SD (n - 1), median, quartiles and the count of each scale value; NaNs are ignored."""
    x = np.asarray(scores, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return Summary(0, np.nan, np.nan, np.nan, np.nan, np.nan, tuple(0 for _ in scale))
    q1, median, q3 = np.percentile(x, [25, 50, 75])
    sd = float(x.std(ddof=1)) if x.size > 1 else np.nan
    counts = tuple(int((x == v).sum()) for v in scale)
    return Summary(int(x.size), float(x.mean()), sd, float(median), float(q1), float(q3), counts)


def complete_rows(matrix: np.ndarray) -> np.ndarray:
    """The units every rater rated, shape (n_complete, n_raters)."""
    m = np.asarray(matrix, dtype=float)
    return m[~np.isnan(m).any(axis=1)]


def icc2(matrix: np.ndarray, confidence: float = 0.95) -> ICC:
    """Two-way random-effects, absolute-agreement ICC on the complete units of ``matrix`` (n, k).

    ICC(2,1) = (MSR - MSE) / (MSR + (k-1) MSE + k (MSC - MSE) / n); ICC(2,k) = (MSR - MSE) / (MSR + (MSC - MSE) / n).
    The CI uses the Satterthwaite degrees of freedom of McGraw & Wong (1996), Table 7.
    """
    x = complete_rows(matrix)
    n, k = x.shape
    if n < 2 or k < 2:
        raise ValueError(f"ICC needs at least 2 complete units and 2 raters, got {n} x {k}")
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    msr, msc, mse = ss_rows / (n - 1), ss_cols / (k - 1), ss_err / ((n - 1) * (k - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        icc_1 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
        icc_k = (msr - mse) / (msr + (msc - mse) / n)
        f_rows = msr / mse
        f_cols = msc / mse
        p_value = float(sps.f.sf(f_rows, n - 1, (n - 1) * (k - 1)))
        a = k * icc_1 * f_cols + n * (1 + (k - 1) * icc_1) - k * icc_1
        v = (
            (k - 1)
            * (n - 1)
            * a**2
            / ((n - 1) * k**2 * icc_1**2 * f_cols**2 + (n * (1 + (k - 1) * icc_1) - k * icc_1) ** 2)
        )
        tail = 1 - (1 - confidence) / 2
        f_up, f_low = sps.f.ppf(tail, n - 1, v), sps.f.ppf(tail, v, n - 1)
        denom = k * msc + (k * n - k - n) * mse
        lower = n * (msr - f_up * mse) / (f_up * denom + n * msr)
        upper = n * (f_low * msr - mse) / (denom + n * f_low * msr)
        # Spearman-Brown step-up from one rater to the mean of k.
        ci_k = (lower * k / (1 + lower * (k - 1)), upper * k / (1 + upper * (k - 1)))
    return ICC(
        float(icc_1),
        float(icc_k),
        (float(lower), float(upper)),
        (float(ci_k[0]), float(ci_k[1])),
        float(f_rows),
        p_value,
        n,
        k,
    )


def weight_matrix(categories: Sequence[float], kind: str) -> np.ndarray:
    """Agreement weights w[k, l] in [0, 1] (1 on the diagonal) between categories, shape (q, q).

    identity: AC1 / unweighted; linear: 1 - |k-l| / range; quadratic: 1 - (k-l)^2 / range^2;
    ordinal (Gwet 2014, ch. 3): 1 - C(|rank_k - rank_l| + 1, 2) / C(q, 2), which uses only the order.
    """
    c = np.asarray(categories, dtype=float)
    q = c.size
    if kind == "identity":
        return np.eye(q)
    span = c.max() - c.min()
    if kind == "linear":
        return 1 - np.abs(c[:, None] - c[None, :]) / span
    if kind == "quadratic":
        return 1 - (c[:, None] - c[None, :]) ** 2 / span**2
    if kind == "ordinal":
        gap = np.abs(np.arange(q)[:, None] - np.arange(q)[None, :]) + 1
        pairs = gap * (gap - 1) / 2
        return 1 - pairs / pairs.max()
    raise ValueError(f"weights {kind!r}: expected identity, linear, quadratic or ordinal")


def _category_counts(matrix: np.ndarray, categories: Sequence[float]) -> np.ndarray:
    """r[i, c]: how many raters put unit i in category c, shape (n_units, q)."""
    m = np.asarray(matrix, dtype=float)
    cats = np.asarray(categories, dtype=float)
    known = np.isnan(m) | np.isin(m, cats)
    if not known.all():
        raise ValueError(
            f"ratings {sorted(set(m[~known].tolist()))} are not among the categories {list(categories)}"
        )
    return (m[:, :, None] == cats[None, None, :]).sum(axis=1).astype(float)


def gwet_ac2(
    matrix: np.ndarray, categories: Sequence[float] = SCALE, weights: str = "quadratic"
) -> Agreement:
    """Gwet's AC2 (AC1 with ``weights='identity'``) for any number of raters, with missing ratings.

    pa averages, over units with at least 2 ratings, sum_c r_ic (r*_ic - 1) / (r_i (r_i - 1)), with
    r*_ic = sum_l w_cl r_il; pe = T_w / (q (q - 1)) * sum_c pi_c (1 - pi_c), pi_c averaging r_ic / r_i over
    units with any rating, T_w the sum of the weights (Gwet 2014, eq. 3.6-3.8 in its raw-ratings form).
    """
    r = _category_counts(matrix, categories)
    w = weight_matrix(categories, weights)
    q = len(categories)
    r_i = r.sum(axis=1)
    paired = r_i >= 2
    if not paired.any():
        return Agreement(np.nan, np.nan, np.nan, 0)
    r_star = r @ w.T
    rp, ip = r[paired], r_i[paired]
    pa = float(((rp * (r_star[paired] - 1)).sum(axis=1) / (ip * (ip - 1))).mean())
    rated = r_i >= 1
    pi = (r[rated] / r_i[rated, None]).mean(axis=0)
    pe = float(w.sum() / (q * (q - 1)) * (pi * (1 - pi)).sum())
    return Agreement(_corrected(pa, pe), pa, pe, int(paired.sum()))


def _corrected(pa: float, pe: float) -> float:
    """(pa - pe) / (1 - pe); undefined (NaN) when chance agreement is already perfect."""
    return (pa - pe) / (1 - pe) if pe < 1 - 1e-12 else np.nan


def fleiss_kappa(matrix: np.ndarray, categories: Sequence[float] = SCALE) -> Agreement:
    """Fleiss' kappa (nominal: it ignores the order of the scale) on the complete units of ``matrix``."""
    x = complete_rows(matrix)
    if x.shape[0] < 1 or x.shape[1] < 2:
        return Agreement(np.nan, np.nan, np.nan, 0)
    r = _category_counts(x, categories)
    m = x.shape[1]
    p_i = ((r * r).sum(axis=1) - m) / (m * (m - 1))
    p_c = r.sum(axis=0) / r.sum()
    pa, pe = float(p_i.mean()), float((p_c**2).sum())
    return Agreement(_corrected(pa, pe), pa, pe, int(x.shape[0]))


def cohen_kappa(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    categories: Sequence[float] = SCALE,
    weights: str = "quadratic",
) -> Agreement:
    """Weighted Cohen's kappa of two raters on the units both rated (NaN elsewhere).

    kappa_w = 1 - sum(v * O) / sum(v * E), disagreement weights v = 1 - w (``weight_matrix``), O the observed
    joint proportions and E the product of the two raters' marginals (Cohen 1968).
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both = ~(np.isnan(x) | np.isnan(y))
    if both.sum() < 1:
        return Agreement(np.nan, np.nan, np.nan, 0)
    rx, ry = _category_counts(x[both, None], categories), _category_counts(y[both, None], categories)
    observed = rx.T @ ry / both.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    v = 1 - weight_matrix(categories, weights)
    pa, pe = 1 - float((v * observed).sum()), 1 - float((v * expected).sum())
    return Agreement(_corrected(pa, pe), pa, pe, int(both.sum()))


def krippendorff_alpha(matrix: np.ndarray, level: str = "ordinal") -> Agreement:
    """Krippendorff's alpha from the coincidence matrix (Krippendorff 2011), units with >= 2 ratings only.

    alpha = 1 - D_o / D_e with D_o = sum o_ck d2_ck / n and D_e = sum n_c n_k d2_ck / (n (n - 1)); the ordinal
    metric is d2_ck = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2, interval (c - k)^2, nominal [c != k].
    Reported pa, pe are 1 - D_o and 1 - D_e on the metric's own scale.
    """
    m = np.asarray(matrix, dtype=float)
    values = np.unique(m[~np.isnan(m)])
    r = _category_counts(m, values.tolist())
    m_u = r.sum(axis=1)
    r = r[m_u >= 2]
    m_u = m_u[m_u >= 2]
    if r.shape[0] == 0 or values.size < 2:
        return Agreement(np.nan, np.nan, np.nan, int(r.shape[0]))
    # o[c, k] = sum_u r_uc (r_uk - [c == k]) / (m_u - 1)
    o = np.einsum("uc,uk->ck", r / (m_u - 1)[:, None], r) - np.diag((r / (m_u - 1)[:, None]).sum(axis=0))
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if level == "nominal":
        d2 = 1.0 - np.eye(values.size)
    elif level == "interval":
        d2 = (values[:, None] - values[None, :]) ** 2
    elif level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(n_c)])
        lo = np.minimum.outer(np.arange(values.size), np.arange(values.size))
        hi = np.maximum.outer(np.arange(values.size), np.arange(values.size))
        d2 = (cum[hi + 1] - cum[lo] - (n_c[:, None] + n_c[None, :]) / 2) ** 2
    else:
        raise ValueError(f"level {level!r}: expected nominal, ordinal or interval")
    d_o = (o * d2).sum() / n
    d_e = (np.outer(n_c, n_c) * d2).sum() / (n * (n - 1))
    alpha = float(1 - d_o / d_e) if d_e > 0 else np.nan
    return Agreement(alpha, float(1 - d_o), float(1 - d_e), int(r.shape[0]))


def bootstrap_ci(
    statistic: Callable[[np.ndarray], float],
    matrix: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile CI of ``statistic(matrix)`` resampling units (rows) with replacement; NaN draws are dropped."""
    m = np.asarray(matrix, dtype=float)
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(m[rng.integers(0, m.shape[0], m.shape[0])]) for _ in range(n_boot)])
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return (np.nan, np.nan)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return (float(low), float(high))


def binomial_vs_chance(k: int, n: int) -> Binomial:
    """Exact two-sided binomial test of k / n against 0.5, with the Clopper-Pearson 95 % interval."""
    if n == 0:
        return Binomial(0, 0, np.nan, np.nan, (np.nan, np.nan))
    test = sps.binomtest(k, n, 0.5)
    ci = test.proportion_ci(confidence_level=0.95, method="exact")
    return Binomial(k, n, k / n, float(test.pvalue), (float(ci.low), float(ci.high)))


@dataclass(frozen=True)
class Turing:
    """The visual Turing test: synthetic is the positive class."""

    accuracy: Binomial
    sensitivity: float
    specificity: float
    n_real: int
    n_synthetic: int


def turing_test(calls: Sequence[str], truths: Sequence[str]) -> Turing:
    """Accuracy of "real"/"synthetic" calls against the truth; unanswered calls must be left out beforehand."""
    c, t = np.asarray(calls), np.asarray(truths)
    if c.shape != t.shape:
        raise ValueError(f"{c.size} calls but {t.size} truths")
    syn, real = t == "synthetic", t == "real"
    with np.errstate(invalid="ignore"):
        sens = float((c[syn] == "synthetic").mean()) if syn.any() else np.nan
        spec = float((c[real] == "real").mean()) if real.any() else np.nan
    return Turing(
        binomial_vs_chance(int((c == t).sum()), int(c.size)), sens, spec, int(real.sum()), int(syn.sum())
    )


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """(U, two-sided p, rank-biserial r = 2U / (n_a n_b) - 1) comparing scores ``a`` with ``b``."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        return (np.nan, np.nan, np.nan)
    test = sps.mannwhitneyu(x, y, alternative="two-sided")
    return (float(test.statistic), float(test.pvalue), float(2 * test.statistic / (x.size * y.size) - 1))
