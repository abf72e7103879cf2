"""`ffasora evaluate` end to end on a tiny simulated dataset: dataset and video-folder inputs, the report."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ffasora.cli import app
from ffasora.data.format import load_video, read_manifest
from ffasora.io.video import write_gif

runner = CliRunner()


def test_help_of_both_commands():
    for args in (["evaluate", "--help"], ["evaluate", "train-features", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "--" in result.output


def test_train_features_writes_a_model_folder(sim_dataset, tmp_path):
    out = tmp_path / "enc"
    args = [
        "evaluate",
        "train-features",
        str(sim_dataset),
        "--out",
        str(out),
        "--frames",
        "5",
    ]  # no --size: the dataset's own frame size, so blur costs FVD-FFA
    result = runner.invoke(app, [*args, "--width", "8", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "ffasora-video-encoder" and config["trained_on"]["n_train"] > 0
    assert config["size"] == 32  # the simulated dataset's frames
    assert (out / "model.safetensors").is_file()
    held = config["holdout"]
    assert held["split"] == "val"  # thresholds are chosen on val, never on test
    assert set(held["thresholds"]) == set(config["codes"]) and "micro_f1_at_0.5" in held
    assert all(0.0 < t < 1.0 for t in held["thresholds"].values())


def test_evaluate_dataset_against_itself(sim_dataset, encoder_dir, tmp_path):
    out = tmp_path / "report"
    args = ["evaluate", "-g", str(sim_dataset), "-r", str(sim_dataset), "--encoder", str(encoder_dir)]
    result = runner.invoke(app, [*args, "--out", str(out), "--bootstrap", "10", "--no-bertscore"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert (out / "report.html").read_text().count("<table>") >= 1
    assert report["paired"]["ssim"]["n"] == 0 or report["paired"]["ssim"]["mean"] == 1.0
    fvd = report["distribution"]["fvd_ffa"]
    assert abs(fvd["frechet"]["value"]) < 1e-6 * max(1.0, fvd["frechet_floor"]["value"])  # same set: zero
    assert abs(report["distribution"]["fd_bands"]["frechet"]["value"]) < 1e-6
    assert "FD-bands" in (out / "report.html").read_text()
    assert report["privacy"]["positive_control"]["found"]
    checks = report["physiology"]["checks"]
    assert checks["arterial_before_venous"]["pass_rate"] == 1.0  # the references obey physiology
    controls = report["physiology"]["controls"]
    assert controls["reference"] == report["physiology"]["checks"]  # generated == reference here
    assert controls["time_reversed"]["arterial_before_venous"]["pass_rate"] < 1.0  # the control bites
    assert controls["other_anatomy"]["arterial_before_venous"]["n"] > 0
    real = report["alignment"]["real_ceiling"]["findings"]["micro"]
    assert report["alignment"]["generated"]["findings"]["micro"] == real
    assert report["alignment"]["real_ceiling"]["onset_accuracy"] is not None  # the truth files give onsets
    assert report["protocol"]["feature_extractor"]["frames"] == 9
    vessels = report["vessels"]  # generated == reference: same visibility; the blurred control falls out
    assert vessels["visibility"] == vessels["reference_visibility"]
    assert vessels["controls"]["blur_2px"] < vessels["controls"]["reference"]
    assert "vessel visibility" in (out / "report.html").read_text()
    assert len(report["protocol"]["feature_extractor"]["weights_sha256_16"]) == 16


def test_evaluate_a_folder_of_generated_videos(sim_dataset, encoder_dir, tmp_path):
    gen = tmp_path / "gen"
    gen.mkdir()
    records = [r for r in read_manifest(sim_dataset) if r.split == "test"][:3]
    for i, r in enumerate(records):
        write_gif(load_video(sim_dataset, r.id), gen / f"video_{i}.gif")
        (gen / f"video_{i}.json").write_text(json.dumps({"report": r.report, "seed": i}))
    out = tmp_path / "report"
    args = ["evaluate", "-g", str(gen), "-r", str(sim_dataset), "--encoder", str(encoder_dir)]
    result = runner.invoke(app, [*args, "--out", str(out), "--bootstrap", "5", "--no-bertscore"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["protocol"]["n_generated"] == 3 and report["protocol"]["n_paired"] == 3
    assert report["paired"]["ssim"]["mean"] > 0.95  # gif frames of the reference itself
    # test reports have no training video: each is scored against the most alike training video instead
    assert report["privacy"]["targets"] == {"source_report": 0, "most_alike_findings": 3}
    assert report["privacy"]["generated"]["n"] == 3


def test_missing_options_are_a_clear_error(tmp_path):
    result = runner.invoke(app, ["evaluate", "--generated", str(tmp_path)])
    assert result.exit_code != 0 and "--reference" in result.output
