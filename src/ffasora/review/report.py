"""The study's results for its owner: unblinded tables (CSV), agreement statistics, a summary and a figure.

Written to OUT:
  ratings.csv     one row per stored rating (rater, video uid, kind, source, position, scores, revision, times)
  per_video.csv   per video: kind, source, n ratings, mean/SD/median/IQR, each rater's score, real-call accuracy
  per_rater.csv   per rater and kind: n, mean/SD/median/IQR, score counts; Turing-test accuracy, sens., spec.
  agreement.csv   ICC(2,1), ICC(2,k), Krippendorff alpha (ordinal, interval), Gwet AC2 (quadratic, ordinal),
                  Gwet AC1, Fleiss kappa, pairwise quadratic-weighted Cohen's kappa; for synthetic, real and
                  all videos; with CI and the units used
  turing.csv      per rater and pooled: real/synthetic accuracy with exact binomial test vs 50 %, sens., spec.
  findings.csv    per kind: precision/recall of the findings raters checked against each video's report codes
  summary.json    everything above in one document, plus Fleiss' kappa of the real/synthetic calls and the
                  real-vs-synthetic comparison of scores (Mann-Whitney U on per-video means)
  distributions.png  score distributions per rater and per kind
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ffasora.review import stats
from ffasora.review.store import KINDS, Store

_RATINGS_SQL = """
SELECT ra.name AS rater, v.uid AS video, v.kind, v.source, a.position, r.quality, r.real_call, r.findings,
       r.comment, r.revision, r.created_at, r.updated_at
FROM ratings r JOIN raters ra ON ra.id = r.rater_id JOIN videos v ON v.id = r.video_id
JOIN assignments a ON a.rater_id = r.rater_id AND a.video_id = r.video_id
ORDER BY ra.name, a.position
"""


def rating_matrix(rows: list[dict[str, Any]], videos: list[str], raters: list[str]) -> np.ndarray:
    """Quality scores as (n_videos, n_raters) with NaN where a rater did not (yet) rate a video."""
    m = np.full((len(videos), len(raters)), np.nan)
    vi, ri = {v: i for i, v in enumerate(videos)}, {r: j for j, r in enumerate(raters)}
    for row in rows:
        m[vi[row["video"]], ri[row["rater"]]] = row["quality"]
    return m


def agreement_rows(matrix: np.ndarray, subset: str, n_boot: int, seed: int) -> list[dict[str, Any]]:
    """Every agreement statistic on one ratings matrix, with a CI (analytic for ICC, bootstrap otherwise)."""
    out: list[dict[str, Any]] = []
    complete = stats.complete_rows(matrix)
    if complete.shape[0] >= 2 and complete.shape[1] >= 2:
        icc = stats.icc2(complete)
        out.append(
            _row(subset, "ICC(2,1)", icc.icc_1, icc.ci_1, icc.n, "two-way random, absolute, single rater")
        )
        out.append(_row(subset, "ICC(2,k)", icc.icc_k, icc.ci_k, icc.n, f"mean of k={icc.k} raters"))
    coefficients: list[tuple[str, Callable[[np.ndarray], stats.Agreement], np.ndarray, str]] = [
        ("Krippendorff alpha (ordinal)", lambda m: stats.krippendorff_alpha(m, "ordinal"), matrix, ""),
        ("Krippendorff alpha (interval)", lambda m: stats.krippendorff_alpha(m, "interval"), matrix, ""),
        ("Gwet AC2 (quadratic)", lambda m: stats.gwet_ac2(m, weights="quadratic"), matrix, ""),
        ("Gwet AC2 (ordinal)", lambda m: stats.gwet_ac2(m, weights="ordinal"), matrix, ""),
        ("Gwet AC1 (unweighted)", lambda m: stats.gwet_ac2(m, weights="identity"), matrix, ""),
        ("Fleiss kappa", stats.fleiss_kappa, complete, "nominal; complete videos only"),
    ]
    for name, fn, data, note in coefficients:
        if data.shape[0] == 0:
            continue
        result = fn(data)
        ci = stats.bootstrap_ci(_coefficient_of(fn), data, n_boot, seed) if n_boot else None
        out.append(
            _row(
                subset, name, result.coefficient, ci, result.n_units, note or f"bootstrap CI, {n_boot} draws"
            )
        )
    return out


def pairwise_kappa_rows(matrix: np.ndarray, raters: list[str], subset: str) -> list[dict[str, Any]]:
    """Quadratic-weighted Cohen's kappa for every pair of raters (videos both rated)."""
    out = []
    for i, a in enumerate(raters):
        for j in range(i + 1, len(raters)):
            k = stats.cohen_kappa(matrix[:, i], matrix[:, j])
            if k.n_units >= 2:
                name = f"Cohen kappa (quadratic) {a} vs {raters[j]}"
                out.append(_row(subset, name, k.coefficient, None, k.n_units, "pairwise; no CI"))
    return out


def _coefficient_of(fn: Callable[[np.ndarray], stats.Agreement]) -> Callable[[np.ndarray], float]:
    return lambda m: fn(m).coefficient


def _row(
    subset: str, name: str, value: float, ci: tuple[float, float] | None, n: int, note: str
) -> dict[str, Any]:
    low, high = ci if ci is not None else (math.nan, math.nan)
    return {
        "videos": subset,
        "statistic": name,
        "value": value,
        "ci_low": low,
        "ci_high": high,
        "n_units": n,
        "note": note,
    }


def analyse(study_dir: str | Path, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """All results of a study as plain data (see the module docstring for what is in it)."""
    st = Store(study_dir)
    rows = st.table(_RATINGS_SQL)
    for row in rows:
        row["findings"] = json.loads(row["findings"])
    videos = st.table("SELECT uid, kind, source, frames, report, codes FROM videos ORDER BY id")
    raters = [r["name"] for r in st.table("SELECT name FROM raters ORDER BY id")]
    kind_of = {v["uid"]: v["kind"] for v in videos}
    agreement: list[dict[str, Any]] = []
    for subset in ("synthetic", "real", "all"):
        chosen = [v["uid"] for v in videos if subset == "all" or v["kind"] == subset]
        matrix = rating_matrix([r for r in rows if r["video"] in set(chosen)], chosen, raters)
        rated = matrix[(~np.isnan(matrix)).sum(axis=1) >= 2]
        if rated.shape[0] >= 2:
            agreement += agreement_rows(rated, subset, n_boot, seed)
            agreement += pairwise_kappa_rows(rated, raters, subset)
    per_video = _per_video(rows, videos, raters)
    synthetic_means = [v["mean"] for v in per_video if v["kind"] == "synthetic" and v["n"]]
    real_means = [v["mean"] for v in per_video if v["kind"] == "real" and v["n"]]
    u, p, r_rb = stats.mann_whitney(real_means, synthetic_means)
    return {
        "study": str(st.root),
        "meta": {k: v for k, v in st.meta().items() if k != "secret"},
        "counts": {
            "raters": len(raters),
            "videos": {k: sum(v["kind"] == k for v in videos) for k in KINDS},
            "ratings": len(rows),
            "assigned": st.table("SELECT COUNT(*) AS n FROM assignments")[0]["n"],
            "submissions": st.table("SELECT COUNT(*) AS n FROM rating_events")[0]["n"],
        },
        "overall": {k: _summary([r["quality"] for r in rows if kind_of[r["video"]] == k]) for k in KINDS},
        "per_rater": _per_rater(rows, raters),
        "per_video": per_video,
        "agreement": agreement,
        "turing": _turing(rows, raters),
        "turing_agreement": _call_agreement(rows, raters),
        "findings": _findings_agreement(rows, videos, {c for c, _ in st.findings()}),
        "real_vs_synthetic": {
            "test": "Mann-Whitney U on per-video mean scores (real vs synthetic)",
            "U": u,
            "p_value": p,
            "rank_biserial": r_rb,
        },
        "ratings": rows,
    }


def _summary(scores: list[float]) -> dict[str, Any]:
    s = stats.describe(scores)
    return {
        "n": s.n,
        "mean": s.mean,
        "sd": s.sd,
        "median": s.median,
        "q1": s.q1,
        "q3": s.q3,
        "iqr": s.iqr,
        **{f"n_score_{v}": c for v, c in zip(stats.SCALE, s.counts, strict=True)},
    }


def _per_video(
    rows: list[dict[str, Any]], videos: list[dict[str, Any]], raters: list[str]
) -> list[dict[str, Any]]:
    out = []
    for v in videos:
        mine = [r for r in rows if r["video"] == v["uid"]]
        calls = [r for r in mine if r["real_call"]]
        entry: dict[str, Any] = {
            "video": v["uid"],
            "kind": v["kind"],
            "source": v["source"],
            **_summary([r["quality"] for r in mine]),
        }
        by_rater = {r["rater"]: r["quality"] for r in mine}
        entry.update({f"rater:{name}": by_rater.get(name, "") for name in raters})
        entry["real_calls"] = len(calls)
        entry["real_call_accuracy"] = (
            sum(r["real_call"] == v["kind"] for r in calls) / len(calls) if calls else math.nan
        )
        out.append(entry)
    return out


def _per_rater(rows: list[dict[str, Any]], raters: list[str]) -> list[dict[str, Any]]:
    out = []
    for name in raters:
        for kind in (*KINDS, "all"):
            scores = [r["quality"] for r in rows if r["rater"] == name and kind in ("all", r["kind"])]
            if scores or kind == "all":
                out.append({"rater": name, "videos": kind, **_summary(scores)})
    return out


def _turing(rows: list[dict[str, Any]], raters: list[str]) -> list[dict[str, Any]]:
    out = []
    for name in (*raters, "pooled"):
        answered = [r for r in rows if r["real_call"] and name in ("pooled", r["rater"])]
        if not answered:
            continue
        t = stats.turing_test([r["real_call"] for r in answered], [r["kind"] for r in answered])
        out.append(
            {
                "rater": name,
                "n": t.accuracy.n,
                "correct": t.accuracy.k,
                "accuracy": t.accuracy.proportion,
                "ci_low": t.accuracy.ci[0],
                "ci_high": t.accuracy.ci[1],
                "p_value_vs_50": t.accuracy.p_value,
                "sensitivity": t.sensitivity,
                "specificity": t.specificity,
                "n_real": t.n_real,
                "n_synthetic": t.n_synthetic,
            }
        )
    return out


def _call_agreement(rows: list[dict[str, Any]], raters: list[str]) -> dict[str, Any]:
    """Fleiss' kappa of the real/synthetic calls, on videos every rater answered."""
    calls: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["real_call"]:
            calls.setdefault(r["video"], {})[r["rater"]] = float(r["real_call"] == "synthetic")
    matrix = np.array([[c.get(name, np.nan) for name in raters] for c in calls.values()]).reshape(
        -1, len(raters)
    )
    kappa = stats.fleiss_kappa(matrix, categories=(0.0, 1.0))
    return {
        "fleiss_kappa": kappa.coefficient,
        "n_units": kappa.n_units,
        "note": "videos every rater answered",
    }


def _findings_agreement(
    rows: list[dict[str, Any]], videos: list[dict[str, Any]], checklist: set[str]
) -> list[dict[str, Any]]:
    """How well raters' checked findings match each video's reference codes (from its report), per kind.

    Only videos whose source listed codes count, and only codes that were on the checklist; pooled over
    ratings (micro-averaged): precision = checked and in the reference / checked, recall = ... / reference.
    """
    reference = {v["uid"]: set(json.loads(v["codes"])) & checklist for v in videos}
    out = []
    for kind in KINDS:
        tp = fp = fn = n = 0
        for r in rows:
            truth = reference[r["video"]]
            if r["kind"] != kind or not truth:
                continue
            seen = set(r["findings"])
            tp, fp, fn, n = tp + len(seen & truth), fp + len(seen - truth), fn + len(truth - seen), n + 1
        if n:
            out.append(
                {
                    "videos": kind,
                    "ratings": n,
                    "precision": tp / (tp + fp) if tp + fp else math.nan,
                    "recall": tp / (tp + fn) if tp + fn else math.nan,
                    "checked": tp + fp,
                    "reference": tp + fn,
                }
            )
    return out


def write_report(
    study_dir: str | Path, out_dir: str | Path, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Analyse the study and write the CSVs, summary.json and distributions.png into ``out_dir``."""
    result = analyse(study_dir, n_boot, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "ratings.csv", [{**r, "findings": " ".join(r["findings"])} for r in result["ratings"]])
    _write_csv(out / "per_video.csv", result["per_video"])
    _write_csv(out / "per_rater.csv", result["per_rater"])
    _write_csv(out / "agreement.csv", result["agreement"])
    _write_csv(out / "turing.csv", result["turing"])
    _write_csv(out / "findings.csv", result["findings"])
    summary = {k: v for k, v in result.items() if k != "ratings"}
    (out / "summary.json").write_text(json.dumps(_finite(summary), indent=1, allow_nan=False))
    plot_distributions(result, out / "distributions.png")
    return result


def _finite(obj: Any) -> Any:
    """JSON-ready copy with NaN (undefined statistics) as null, since JSON has no NaN."""
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return None if math.isnan(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fields = list(dict.fromkeys(k for row in rows for k in row)) or ["empty"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k, "")) for k in fields})


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def plot_distributions(result: dict[str, Any], path: Path) -> None:
    """Bar charts of how often each score was given: per rater (left) and per kind of video (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_r, ax_k) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    scale = np.array(stats.SCALE)
    groups = [(r["rater"], r) for r in result["per_rater"] if r["videos"] == "all"]
    kinds = [(k, result["overall"][k]) for k in KINDS if result["overall"][k]["n"]]
    for ax, series, what in ((ax_r, groups, "rater"), (ax_k, kinds, "kind of video")):
        width = 0.8 / max(1, len(series))
        for n, (label, s) in enumerate(series):
            counts = np.array([s[f"n_score_{v}"] for v in scale], dtype=float)
            share = counts / counts.sum() if counts.sum() else counts
            mean = f"{s['mean']:.2f}" if s["n"] else "-"
            ax.bar(
                scale + (n - (len(series) - 1) / 2) * width,
                share,
                width,
                label=f"{label} (n={s['n']}, mean {mean})",
            )
        ax.set_xticks(scale, [f"{v}" for v in scale])
        ax.set_xlabel("quality score (1 = excellent, 5 = very poor)")
        ax.set_ylabel("share of ratings")
        ax.set_title(f"Score distribution by {what}")
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)
