"""Render an evaluation as ``report.json`` (every number and the protocol) and ``report.html`` (headline table,
section tables, matplotlib plots, contact sheets of examples). Plots and sheets are PNG files beside the HTML.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from ffasora.evaluate.suite import Evaluation


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _mean_sd(d: dict[str, Any] | None) -> str:
    if not d or "mean" not in d:
        return "n/a"
    return f"{d['mean']:.4g} ± {d.get('sd', 0.0):.3g} (n={d['n']})"


def _ci(d: dict[str, Any] | None) -> str:
    if not d:
        return "n/a"
    return f"{d['value']:.4g} [{d['low']:.4g}, {d['high']:.4g}]"


def _physiology_rows(title: str, block: dict[str, Any]) -> list[tuple[str, str, str]]:
    """One row per measured check: generated pass rate, n, and each control's pass rate beside it."""
    rows = []
    for check, value in block["checks"].items():
        if not value["n"]:
            continue
        compare = "; ".join(
            f"{name.replace('_', ' ')} {_fmt(rates[check]['pass_rate'])}"
            for name, rates in block.get("controls", {}).items()
        )
        rows.append((f"{title}: {check}", _fmt(value["pass_rate"]), f"n={value['n']}; {compare}".strip("; ")))
    return rows


def headline(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(metric, generated, reference / floor / chance) rows: the table at the top of the report."""
    rows: list[tuple[str, str, str]] = []
    dist = results["distribution"]
    for key, label, kernel_label in (
        ("fvd_ffa", "FVD-FFA (in-domain)", "KVD-FFA (in-domain)"),
        ("fd_bands", "FD-bands (detail by octave)", "KD-bands (detail by octave)"),
        ("fvd_i3d", "FVD (I3D Kinetics-400)", "KVD (I3D Kinetics-400)"),
    ):
        if key in dist:
            rows.append((label, _ci(dist[key]["frechet"]), "floor " + _ci(dist[key].get("frechet_floor"))))
            rows.append(
                (kernel_label, _ci(dist[key]["kernel"]), "floor " + _ci(dist[key].get("kernel_floor")))
            )
    paired = results["paired"]
    for key in ("psnr", "ssim", "ms_ssim", "lpips"):
        if key in paired:
            rows.append((f"{key.upper()} (paired)", _mean_sd(paired[key]), f"{paired['n_pairs']} pairs"))
    gen, real = results["alignment"]["generated"], results["alignment"]["real_ceiling"]
    rows.append(("VQAScore-style", _mean_sd(gen["vqa_style"]), "real " + _mean_sd(real["vqa_style"])))
    rows.append(
        (
            "Finding F1 (micro)",
            _fmt(gen["findings"]["micro"]["f1"]),
            "real " + _fmt(real["findings"]["micro"]["f1"]),
        )
    )
    rows.append(
        ("Onset phase accuracy", _fmt(gen.get("onset_accuracy")), "real " + _fmt(real.get("onset_accuracy")))
    )
    if "bertscore" in gen:
        rows.append(
            (
                gen["bertscore"]["label"],
                _mean_sd(gen["bertscore"]["f1"]),
                "real " + _mean_sd(real["bertscore"]["f1"]),
            )
        )
    phys = results.get("physiology")
    if phys:
        rows += _physiology_rows("physiology", phys)
        if phys.get("own_anatomy"):
            rows += _physiology_rows("physiology, own anatomy", phys["own_anatomy"])
    ves = results.get("vessels")
    if ves:
        ctl = ves["controls"]
        rows.append(
            (
                "vessel visibility inside the real 10-90 % range",
                _fmt(ves["inside_reference_range"]),
                f"real {_fmt(ctl['reference'])}; blurred 1 px {_fmt(ctl['blur_1px'])}, "
                f"2 px {_fmt(ctl['blur_2px'])}",
            )
        )
        rows.append(
            (
                "vessel visibility",
                _mean_sd(ves["visibility"]),
                "real " + _mean_sd(ves["reference_visibility"]),
            )
        )
    priv = results["privacy"]
    for k in priv["ks"]:
        gen_r = priv.get("generated", {}).get("recall", {}).get(k)
        held = priv.get("heldout_real", {}).get("recall", {}).get(k)
        rows.append(
            (
                f"Recall@{k} (train gallery)",
                _fmt(gen_r),
                f"chance {_fmt(priv['chance'][k])}; held-out real {_fmt(held)}",
            )
        )
    if "positive_control" in priv:
        pc = priv["positive_control"]
        rows.append(
            ("positive control Recall@1", _fmt(pc["recall"][1]), "found" if pc["found"] else "NOT FOUND")
        )
    return rows


def html_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _plots(results: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    gen, real = (
        results["alignment"]["generated"]["findings"],
        results["alignment"]["real_ceiling"]["findings"],
    )
    codes = [c for c, v in real["per_code"].items() if v["support"] > 0 or gen["per_code"][c]["support"] > 0]
    if codes:
        fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(codes)), 3))
        x = np.arange(len(codes))
        ax.bar(x - 0.2, [gen["per_code"][c]["f1"] for c in codes], 0.4, label="generated")
        ax.bar(x + 0.2, [real["per_code"][c]["f1"] for c in codes], 0.4, label="real (ceiling)")
        ax.set_xticks(x, codes, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("F1")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "findings_f1.png", dpi=100)
        plt.close(fig)
        files.append("findings_f1.png")
    priv = results["privacy"]
    fig, ax = plt.subplots(figsize=(4, 3))
    ks = priv["ks"]
    ax.plot(ks, [priv["chance"][k] for k in ks], "k--", label="chance")
    for key, label in (("generated", "generated"), ("heldout_real", "held-out real")):
        if key in priv:
            ax.plot(ks, [priv[key]["recall"][k] for k in ks], "o-", label=label)
    ax.set_xlabel("K")
    ax.set_ylabel("Recall@K")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "recall_at_k.png", dpi=100)
    plt.close(fig)
    files.append("recall_at_k.png")
    return files


def _sheets(evaluation: Evaluation, out: Path) -> list[str]:
    from ffasora.io.sheet import contact_sheet

    files = []
    for i, ex in enumerate(evaluation.examples):
        rows, labels = [ex.generated], [f"generated {ex.name}: {ex.report}"]
        if ex.reference is not None:
            rows.append(ex.reference)
            labels.append("reference (same report)")
        name = f"example_{i}.png"
        contact_sheet(rows, labels, tile=96).save(out / name)
        files.append(name)
    return files


def jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def write_report(evaluation: Evaluation, out: str | Path) -> Path:
    """Write report.json, report.html and its PNGs into ``out``; returns the HTML path."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    results = evaluation.results
    (folder / "report.json").write_text(json.dumps(jsonable(results), indent=2, ensure_ascii=False) + "\n")
    plots, sheets = _plots(results, folder), _sheets(evaluation, folder)
    protocol = html.escape(json.dumps(jsonable(results["protocol"]), indent=2, ensure_ascii=False))
    warnings = [
        v["warning"]
        for d in results["distribution"].values()
        for v in d.values()
        if isinstance(v, dict) and v.get("warning")
    ]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ffasora evaluation</title><style>",
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}",
        "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}th{background:#eee}</style></head><body>",
        "<h1>ffasora evaluation</h1>",
        f"<p>{results['protocol']['n_generated']} generated videos against {results['protocol']['n_reference']} "
        f"reference videos ({html.escape(str(results['protocol']['config']['split']))} split).</p>",
        "<h2>Headline</h2>",
        html_table([tuple(r) for r in headline(results)], ("metric", "generated", "compare with")),
    ]
    if warnings:
        parts.append(
            "<h3>Warnings</h3><ul>"
            + "".join(f"<li>{html.escape(w)}</li>" for w in sorted(set(warnings)))
            + "</ul>"
        )
    parts += [f"<h2>Plots</h2>{''.join(f'<img src={p!r}>' for p in plots)}"]
    parts += ["<h2>Examples</h2>" + "".join(f"<p><img src={s!r} style='max-width:100%'></p>" for s in sheets)]
    parts += [f"<h2>Protocol</h2><pre>{protocol}</pre>", "</body></html>"]
    path = folder / "report.html"
    path.write_text("\n".join(parts))
    return path
