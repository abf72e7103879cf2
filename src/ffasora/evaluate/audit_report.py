"""Render ``ffasora evaluate utility`` and ``ffasora evaluate privacy`` results as report.json + report.html
with PNG plots beside them (the layout of ``report.py``)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ffasora.evaluate.report import html_table as _html_table
from ffasora.evaluate.report import jsonable

STYLE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>"
    "body{{font-family:sans-serif;max-width:1150px;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}"
    "td,th{{border:1px solid #ccc;padding:4px 8px;font-size:13px}}th{{background:#eee}}</style></head><body>"
)


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def format_ci(d: dict[str, Any] | None) -> str:
    if not d or d.get("value") is None:
        return "n/a"
    if d.get("low") is None:
        return _f(d["value"])
    return f"{d['value']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"


def _table(rows: Sequence[Sequence[str]], header: tuple[str, ...]) -> str:
    return _html_table([tuple(r) for r in rows], header)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _page(title: str, parts: list[str], results: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(jsonable(results), indent=2, ensure_ascii=False) + "\n")
    protocol = html.escape(json.dumps(jsonable(results["protocol"]), indent=2, ensure_ascii=False))
    body = [STYLE.format(title=title), f"<h1>{title}</h1>", *parts, f"<h2>Protocol</h2><pre>{protocol}</pre>"]
    path = out / "report.html"
    path.write_text("\n".join([*body, "</body></html>"]))
    return path


# ------------------------------------------------------------------------------------------------ utility

METRICS = (
    ("micro_f1", "micro F1"),
    ("macro_f1", "macro F1"),
    ("micro_auroc", "micro AUROC"),
    ("macro_auroc", "macro AUROC"),
)


def write_utility_report(results: dict[str, Any], out: str | Path) -> Path:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    n = results["n"]
    cmp = results["TSTR_vs_TRTR"]
    rows = [
        (label, format_ci(cmp[m]["a"]), format_ci(cmp[m]["b"]), format_ci(cmp[m]["ratio"]))
        for m, label in METRICS
    ]
    parts = [
        f"<p>Classifiers trained on {n['synthetic']} synthetic or {n['real_train']} real videos (same reports), "
        f"tested on {n['real_test']} real test videos. 95 % CIs: bootstrap over test videos.</p>",
        "<h2>Train on synthetic, test on real</h2>",
        _table(rows, ("metric", "TSTR", "TRTR (control)", "TSTR / TRTR")),
    ]
    if "TRTS" in results:
        t = results["TRTS"]
        parts += [
            "<h2>Train on real, test on synthetic</h2>",
            _table(
                [(label, _f(t["synthetic"][m]), _f(t["real_same_reports"][m])) for m, label in METRICS],
                (
                    "metric",
                    f"TRTS ({t['synthetic']['n_videos']} generated)",
                    "real videos of the same reports",
                ),
            ),
        ]
    per = [
        (
            code,
            _f(v["f1"]),
            _f(results["TRTR"]["per_code"][code]["f1"]),
            _f(v["auroc"]),
            _f(results["TRTR"]["per_code"][code]["auroc"]),
            str(v["support"]),
        )
        for code, v in results["TSTR"]["per_code"].items()
    ]
    parts += [
        "<h2>Per code</h2>",
        _table(per, ("code", "TSTR F1", "TRTR F1", "TSTR AUROC", "TRTR AUROC", "test positives")),
    ]
    curve = [
        (
            str(r["n"]),
            _f(r["TSTR"]["macro_auroc"]),
            _f(r["TRTR"]["macro_auroc"]),
            _f(r["TSTR"]["micro_f1"]),
            _f(r["TRTR"]["micro_f1"]),
        )
        for r in results["learning_curve"]
    ]
    mixed = results["real_plus_synthetic"]
    mix_rows = [
        ("real alone", _f(mixed["real_alone"]["macro_auroc"]), _f(mixed["real_alone"]["micro_f1"]))
    ] + [
        (f"real + {r['n_synthetic']} synthetic", _f(r["scores"]["macro_auroc"]), _f(r["scores"]["micro_f1"]))
        for r in mixed["added"]
    ]
    big = mixed["largest_vs_real"]
    parts += [
        "<h2>Learning curve</h2>",
        _table(curve, ("videos", "TSTR macro AUROC", "TRTR macro AUROC", "TSTR micro F1", "TRTR micro F1")),
        "<h2>Synthetic added to real</h2>",
        _table(mix_rows, ("training set", "macro AUROC", "micro F1")),
        "<p>All synthetic added vs real alone: macro AUROC ratio "
        f"{format_ci(big['macro_auroc']['ratio'])}, micro F1 ratio {format_ci(big['micro_f1']['ratio'])}.</p>",
        f"<h2>Plots</h2><img src='{_utility_plot(results, folder)}'>",
    ]
    return _page("ffasora utility: train on synthetic, test on real", parts, results, folder)


def _utility_plot(results: dict[str, Any], out: Path) -> str:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric, label in ((axes[0], "macro_auroc", "macro AUROC"), (axes[1], "micro_f1", "micro F1")):
        curve = results["learning_curve"]
        ns = [r["n"] for r in curve]
        ax.plot(ns, [r["TSTR"][metric] or np.nan for r in curve], "o-", label="TSTR (synthetic only)")
        ax.plot(ns, [r["TRTR"][metric] or np.nan for r in curve], "s-", label="TRTR (real only, same n)")
        mixed = results["real_plus_synthetic"]["added"]
        ax.plot(
            [r["n_synthetic"] for r in mixed],
            [r["scores"][metric] or np.nan for r in mixed],
            "^-",
            label=f"{results['n']['real_train']} real + n synthetic",
        )
        alone = results["real_plus_synthetic"]["real_alone"][metric]
        if alone is not None:
            ax.axhline(alone, color="grey", ls="--", lw=1, label=f"{results['n']['real_train']} real alone")
        ax.set_xlabel("training videos (synthetic n)")
        ax.set_ylabel(f"{label} on real test")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "learning_curve.png", dpi=100)
    plt.close(fig)
    return "learning_curve.png"


# ------------------------------------------------------------------------------------------------ privacy


def privacy_rows(block: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per generator: copy rate, held-out rate, training videos copied, DCR, both attacks' AUC."""
    rows = []
    for name, r in block.items():
        c, d = r["copies"], r["dcr"]
        g, h = c["generated_flagged"], c["heldout_flagged"]
        mia = r.get("membership", {})
        rows.append(
            (
                html.escape(name),
                f"{g['rate']:.3f} [{g['low']:.3f}, {g['high']:.3f}] ({g['count']}/{g['n']})",
                f"{h['rate']:.3f} ({h['count']}/{h['n']})",
                f"{c['training_videos_copied']['count']} "
                f"({c['training_videos_copied'].get('own_source_copied', 0)} own source)",
                f"{d['generated']['median']:.3f} / {d['heldout_real']['median']:.3f}",
                _f(d["closer_to_training_share"]),
                *(
                    f"{mia[a]['auc']:.3f} [{mia[a]['low']:.3f}, {mia[a]['high']:.3f}]; TPR@1%FPR {mia[a]['tpr_at_1pct_fpr']:.2f}"
                    if a in mia
                    else "n/a"
                    for a in ("nearest", "own_report")
                ),
            )
        )
    return rows


PRIVACY_HEADER = (
    "generator",
    "generated called copies [95 % CI]",
    "held-out real called copies (cross-fitted)",
    "training videos copied",
    "median DCR generated / held-out",
    "closer-to-training share (0.5 = none)",
    "MIA nearest: AUC [95 % CI]",
    "MIA own report: AUC [95 % CI]",
)


def write_privacy_report(
    results: dict[str, Any], pictures: dict[str, Any], out: str | Path, examples: int = 6
) -> Path:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    p = results["protocol"]
    parts = [
        f"<p>Members: the {p['n_members']} videos of split {html.escape(p['config']['members'])} (the generator's "
        f"training set, the copy gallery); non-members: the {p['n_nonmembers']} videos of split "
        f"{html.escape(p['config']['nonmembers'])} (copy threshold calibration at FPR {p['config']['fpr']}). "
        "Each row is one generator asked for the same reports; the two controls say what the numbers look "
        "like for a generator that memorised its training set and for one that draws new eyes.</p>",
    ]
    if "loss_attack" in results:
        a = results["loss_attack"]
        parts += [
            "<h2>Denoising-error attack (the generator's weights given)</h2>",
            f"<p>Rectified-flow error of the DiT on each real video's own latents and report at t = "
            f"{', '.join(str(t) for t in a['times'])}: {a['n_members']} members vs {a['n_nonmembers']} "
            f"non-members. AUC {format_ci({'value': a['auc'], 'low': a['low'], 'high': a['high']})}, "
            f"TPR at 1 % FPR {a['tpr_at_1pct_fpr']:.3f}; median error members "
            f"{a['median_error']['members']:.4f}, non-members {a['median_error']['nonmembers']:.4f}.</p>",
        ]
    for e, (label, block) in enumerate(results["embeddings"].items()):
        parts += [f"<h2>{html.escape(label)}</h2>", _table(privacy_rows(block), PRIVACY_HEADER)]
        parts.append(f"<img src='{_privacy_plot(block, folder, e)}' style='max-width:100%'>")
        if e == 0:
            for name, r in list(block.items())[:2]:
                sheet = _neighbour_sheet(name, r, pictures, folder, examples)
                parts.append(
                    f"<h3>{html.escape(name)}: the {examples} generated videos nearest to a training video, "
                    f"each beside its {r['copies']['nearest'][0] and len(r['copies']['nearest'][0]['index'])} "
                    f"nearest training videos</h3><img src='{sheet}' style='max-width:100%'>"
                )
    return _page("ffasora privacy: copies, DCR and membership inference", parts, results, folder)


def _privacy_plot(block: dict[str, Any], out: Path, index: int) -> str:
    from ffasora.evaluate.membership import roc_curve

    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    first = next(iter(block.values()))["copies"]
    bins = np.linspace(
        min(
            min(first["heldout_similarity"]),
            *(min(n["similarity"][0] for n in r["copies"]["nearest"]) for r in block.values()),
        ),
        1.0,
        40,
    )
    axes[0].hist(first["heldout_similarity"], bins, histtype="step", lw=2, color="k", label="held-out real")
    for name, r in block.items():
        axes[0].hist([n["similarity"][0] for n in r["copies"]["nearest"]], bins, histtype="step", label=name)
    axes[0].axvline(first["threshold"], color="r", ls="--", label=f"copy threshold (FPR {first['fpr']})")
    axes[0].set_xlabel("similarity to nearest training video")
    axes[0].legend(fontsize=7)
    for ax, attack in ((axes[1], "nearest"), (axes[2], "own_report")):
        for name, r in block.items():
            if "membership" not in r:
                continue
            a = r["membership"][attack]
            fpr, tpr = roc_curve(np.array(a["scores"]["members"]), np.array(a["scores"]["nonmembers"]))
            ax.plot(fpr, tpr, label=f"{name}: AUC {a['auc']:.2f}")
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set_xlabel("false-positive rate (non-members)")
        ax.set_ylabel("true-positive rate (members)")
        ax.set_title(f"membership attack: {attack.replace('_', ' ')}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    name = f"privacy_{index}.png"
    fig.savefig(out / name, dpi=100)
    plt.close(fig)
    return name


def _neighbour_sheet(name: str, r: dict[str, Any], pictures: dict[str, Any], out: Path, examples: int) -> str:
    """One row per generated video (the most similar to a training video first): its middle frame, then its
    nearest training videos' middle frames."""
    from ffasora.io.sheet import contact_sheet

    gen = pictures["sets"][name]
    members = pictures["members"]
    nearest = r["copies"]["nearest"]
    order = np.argsort([-n["similarity"][0] for n in nearest], kind="stable")[:examples]
    rows, labels = [], []
    for i in order:
        item = gen.items[int(i)]
        mid = len(item.frames) // 2
        tiles = [item.frames[mid]] + [
            members[j].frames[len(members[j].frames) // 2] for j in nearest[i]["index"]
        ]
        rows.append(np.stack([_fit(t, item.frames.shape[1:]) for t in tiles]))
        sims = ", ".join(f"{s:.3f}" for s in nearest[i]["similarity"])
        side, src = gen.sources[int(i)]
        own = " (its own source)" if side == "member" and nearest[i]["index"][0] == src else ""
        labels.append(
            f"{item.name} ({'training' if side == 'member' else 'held-out'} report) -> nearest training "
            f"{members[nearest[i]['index'][0]].name}{own}; cos {sims}; {'COPY' if nearest[i]['copy'] else 'not a copy'}"
        )
    file = f"neighbours_{''.join(ch for ch in name.split(' ')[0] if ch.isalnum())}.png"
    contact_sheet(rows, labels, tile=128).save(out / file)
    return file


def _fit(frame: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if frame.shape == tuple(shape):
        return frame
    from skimage.transform import resize

    return (resize(frame, shape, anti_aliasing=True, preserve_range=True)).astype(np.uint8)
