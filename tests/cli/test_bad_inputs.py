"""Every command fails clearly and early: a table of bad inputs across the command line and the two web APIs.

Each row asserts a non-zero exit (or the HTTP status), a message naming the problem, no traceback, and that
nothing under the shared working folder was written or changed (for the web apps: their stored state).
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ffasora.cli import app
from ffasora.cli.errors import BUG_NOTE
from ffasora.config import load_config, save_config
from ffasora.data.format import read_manifest
from ffasora.train.vae_task import VAETaskConfig

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "pretrained"
VAE_PRESET = ROOT / "configs" / "vae" / "small.toml"
DIT_PRESET = ROOT / "configs" / "dit" / "train_small.toml"
runner = CliRunner()


@dataclass(frozen=True)
class World:
    """The inputs every row draws on, all under ``root`` (snapshotted around each row)."""

    root: Path
    ds: Path  # a simulated dataset: 6 videos, 5 frames of 32 px (train 5, val 1)
    ids: list[str]

    def __truediv__(self, name: str) -> Path:
        return self.root / name


def _edit_manifest(dataset: Path, **changes: Any) -> None:
    lines = (dataset / "manifest.jsonl").read_text().splitlines()
    lines[0] = json.dumps(json.loads(lines[0]) | changes)
    (dataset / "manifest.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("world")
    ds = root / "ds"
    made = runner.invoke(app, ["simulate", "--n", "6", "--size", "32", "--frames", "5", "--out", str(ds)])
    assert made.exit_code == 0, made.output
    ids = [r.id for r in read_manifest(ds)]
    for name in ("ds_missing_video", "ds_bad_id", "ds_no_manifest"):
        shutil.copytree(ds, root / name)
    (root / "ds_missing_video" / "videos" / f"{ids[0]}.npz").unlink()
    _edit_manifest(root / "ds_bad_id", id="../escape")
    (root / "ds_no_manifest" / "manifest.jsonl").unlink()
    shutil.copytree(ds, root / "ds_bad_json")
    with (root / "ds_bad_json" / "manifest.jsonl").open("a") as f:
        f.write('{"id": \n')

    (root / "afile").write_text("a file, not a folder\n")
    (root / "exists.mp4").write_bytes(b"an earlier video")
    (root / "sheet.png").write_bytes(b"an earlier sheet")
    (root / "notes").mkdir()
    (root / "folder.mp4").mkdir()
    (root / "notes" / "keep.txt").write_text("not a latent cache\n")
    (root / "gen_empty_gif").mkdir()
    (root / "gen_empty_gif" / "a.gif").write_bytes(b"")
    (root / "gen_empty_gif" / "a.json").write_text('{"report": "late leakage.", "seed": 0}\n')
    (root / "gen_nothing").mkdir()
    (root / "empty.gif").write_bytes(b"")
    (root / "fake_encoder").mkdir()
    (root / "fake_encoder" / "config.json").write_text("{}\n")

    batches = {
        "bad_utf8.txt": b"Normal angiogram.\nLeakage at the macula \xff\xfe.\n",
        "not_json.jsonl": b'{"report": "Normal angiogram."}\n{"report": \n',
        "no_report.jsonl": b'{"report": "Normal angiogram."}\n{"id": "b"}\n',
        "dup_ids.jsonl": b'{"report": "a.", "id": "x"}\n{"report": "b.", "id": "y"}\n{"report": "c.", "id": "x"}\n',
        "bad_seed.jsonl": b'{"report": "a."}\n{"report": "b.", "seed": "seven"}\n',
        "huge_seed.jsonl": b'{"report": "a."}\n{"report": "b.", "seed": 100000000000000000000000}\n',
        "unreadable.txt": "Normal angiogram.\n\U0001f600\U0001f600 \U0001f600\n".encode(),
    }
    for name, data in batches.items():
        (root / name).write_bytes(data)
    (root / "index_nocol.csv").write_text("video,report\na.mp4,Normal angiogram.\n")
    (root / "index_latin1.csv").write_bytes(b"video,patient_id,eye,report\na.mp4,P1,OD,Leakage \xe0 disc.\n")
    (root / "index_no_image.csv").write_text("video,patient_id,eye,report,image\na.mp4,P1,OD,Normal.,\n")

    shutil.copytree(BUNDLED, root / "model_truncated", ignore=shutil.ignore_patterns("*.md", "*.png"))
    weights = root / "model_truncated" / "dit" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    shutil.copytree(
        BUNDLED, root / "model_variant_gone", ignore=shutil.ignore_patterns("*.md", "*.png", "dit_fast")
    )
    index = json.loads((root / "model_variant_gone" / "model_index.json").read_text())
    index["variants"] = {"fast": {"dit": "dit_fast", "diffusion": {"steps": 4}}}  # dit_fast/ not copied
    (root / "model_variant_gone" / "model_index.json").write_text(json.dumps(index))
    (root / "model_bad_index").mkdir()
    (root / "model_bad_index" / "model_index.json").write_text('{"vae": "vae", ')

    cfg = load_config(VAETaskConfig, VAE_PRESET, [f"data.root={ds}", "data.frames=5", "data.size=32"])
    for name in ("run_damaged", "run_empty"):
        (root / name).mkdir()
        (root / name / "run.json").write_text('{"task": "vae"}\n')
        save_config(cfg, root / name / "config.json")
    step = root / "run_damaged" / "checkpoints" / "step-00000001"
    step.mkdir(parents=True)
    (step / "trainer.pt").write_bytes(b"")
    (step / "ema.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")  # header cut short
    (root / "model_out").mkdir()
    (root / "model_out" / "config.json").write_text("{}\n")

    created = runner.invoke(
        app,
        [
            "review",
            "create",
            str(root / "study"),
            "--videos",
            str(ds),
            "--raters",
            "ana,ben",
            "--real-share",
            "0",
        ],
    )
    assert created.exit_code == 0, created.output
    return World(root, ds, ids)


# --------------------------------------------------------------------------------------------- the CLI table
W = World  # rows build their arguments from the world: Callable[[World], list[str]]
CLI_ROWS: list[tuple[str, Callable[[World], list[str]], str]] = [
    # generate: everything before the model loads, unless the row says otherwise
    ("generate: output suffix", lambda w: ["generate", "x", "--out", str(w / "v.avi")], r"--out .*v\.avi: expected a file name ending in \.mp4 or \.gif"),
    ("generate: output under a file", lambda w: ["generate", "x", "--out", str(w / "afile" / "v.mp4")], r"afile is a file, not a folder"),
    ("generate: output exists", lambda w: ["generate", "x", "--out", str(w / "exists.mp4")], r"exists\.mp4 exists; pass --overwrite"),
    ("generate: output is a folder", lambda w: ["generate", "x", "--out", str(w / "folder.mp4")], r"folder\.mp4 is a folder; expected a file name"),
    ("generate: --steps 0", lambda w: ["generate", "x", "--steps", "0", "--out", str(w / "v.mp4")], r"--steps 0: expected an integer from 1 to 1000"),
    ("generate: --steps too many", lambda w: ["generate", "x", "--steps", "100000", "--out", str(w / "v.mp4")], r"--steps 100000: expected an integer from 1 to 1000"),
    ("generate: huge --seed", lambda w: ["generate", "x", "--seed", str(2**70), "--out", str(w / "v.mp4")], r"--seed 1180591620717411303424: expected an integer from 0 to 2\^63 - 1"),
    ("generate: negative --seed", lambda w: ["generate", "x", "--seed", "-1", "--out", str(w / "v.mp4")], r"--seed -1: expected an integer from 0"),
    ("generate: --frames not 1+4k", lambda w: ["generate", "x", "--frames", "20", "--out", str(w / "v.mp4")], r"--frames 20: the WF-VAE makes 1 \+ 4k frames"),
    ("generate: --height not a multiple", lambda w: ["generate", "x", "--height", "30", "--out", str(w / "v.mp4")], r"--height 30: must be a multiple of 16"),
    ("generate: unknown --sampler", lambda w: ["generate", "x", "--sampler", "bogus", "--out", str(w / "v.mp4")], r"unknown sampler 'bogus'"),
    ("generate: unknown --dtype", lambda w: ["generate", "x", "--dtype", "fp64", "--out", str(w / "v.mp4")], r"--dtype 'fp64': expected one of fp32, bf16, fp16"),
    ("generate: negative --guidance", lambda w: ["generate", "x", "--guidance", "-1", "--out", str(w / "v.mp4")], r"--guidance -1.0: expected a finite number >= 0"),
    ("generate: negative --cache", lambda w: ["generate", "x", "--cache", "-1", "--out", str(w / "v.mp4")], r"--cache -1.0: expected a finite threshold >= 0"),
    ("generate: absent --device", lambda w: ["generate", "x", "--device", "cuda:7", "--out", str(w / "v.mp4")], r"--device cuda:7: no such CUDA device"),
    ("generate: report not UTF-8", lambda w: ["generate", "Leakage \udcff.", "--out", str(w / "v.mp4")], r"the report holds bytes that are not UTF-8 text"),
    ("generate: no report", lambda w: ["generate", "--out", str(w / "v.mp4")], r"give a report"),
    ("generate: report and --batch", lambda w: ["generate", "x", "--batch", str(w / "not_json.jsonl")], r"either a report or --batch"),
    ("generate: report the encoder cannot read (model loaded)", lambda w: ["generate", "\U0001f600\U0001f600 \U0001f600", "--out", str(w / "v.mp4")], r"the text encoder cannot read the report"),
    ("generate: missing --batch file", lambda w: ["generate", "--batch", str(w / "nothing.txt"), "--out", str(w / "o")], r"--batch .*nothing\.txt: no such file"),
    ("generate: --batch not UTF-8", lambda w: ["generate", "--batch", str(w / "bad_utf8.txt"), "--out", str(w / "o")], r"bad_utf8\.txt, line 2: not UTF-8 text \(byte 0xff\)"),
    ("generate: --batch line not JSON", lambda w: ["generate", "--batch", str(w / "not_json.jsonl"), "--out", str(w / "o")], r"not_json\.jsonl, line 2: not JSON"),
    ("generate: --batch line without report", lambda w: ["generate", "--batch", str(w / "no_report.jsonl"), "--out", str(w / "o")], r"no_report\.jsonl, line 2: expected an object with a non-empty \"report\""),
    ("generate: --batch repeated id", lambda w: ["generate", "--batch", str(w / "dup_ids.jsonl"), "--out", str(w / "o")], r"dup_ids\.jsonl, line 3: id 'x' repeats line 1"),
    ("generate: --batch seed not an integer", lambda w: ["generate", "--batch", str(w / "bad_seed.jsonl"), "--out", str(w / "o")], r"bad_seed\.jsonl, line 2: \"seed\" must be an integer"),
    ("generate: --batch huge seed", lambda w: ["generate", "--batch", str(w / "huge_seed.jsonl"), "--out", str(w / "o")], r"huge_seed\.jsonl, line 2: seed=\d+: expected an integer from 0 to 2\^63 - 1"),
    ("generate: --batch unreadable line 2 (model loaded, line 1 not made)", lambda w: ["generate", "--batch", str(w / "unreadable.txt"), "--out", str(w / "o")], r"unreadable\.txt, line 2: the text encoder cannot read the report"),
    ("generate: --batch --out is a file", lambda w: ["generate", "--batch", str(w / "unreadable.txt"), "--out", str(w / "afile")], r"--out .*afile is a file; expected a folder"),
    ("generate: --model not a pipeline", lambda w: ["generate", "x", "--model", str(w / "notes"), "--out", str(w / "v.mp4")], r"notes: no model_index\.json"),
    ("generate: damaged model_index.json", lambda w: ["generate", "x", "--model", str(w / "model_bad_index"), "--out", str(w / "v.mp4")], r"model_index\.json: not valid JSON"),
    ("generate: unknown --variant", lambda w: ["generate", "x", "--variant", "bogus", "--out", str(w / "v.mp4")], r"model_index\.json: no variant 'bogus'; available: standard"),
    ("generate: a variant's folder is missing", lambda w: ["generate", "x", "--model", str(w / "model_variant_gone"), "--variant", "fast", "--out", str(w / "v.mp4")], r"model_index\.json: variant 'fast': its dit folder dit_fast/ is missing"),
    ("pipeline add-variant: bad name", lambda w: ["pipeline", "add-variant", str(w / "model_truncated"), "Fast", "--dit", str(BUNDLED / "dit")], r"variant name 'Fast': expected 1-32 lowercase letters"),
    ("pipeline add-variant: no --dit folder", lambda w: ["pipeline", "add-variant", str(w / "model_truncated"), "fast", "--dit", str(w / "nodit")], r"--dit .*nodit: no such folder"),
    ("pipeline add-variant: not a pipeline", lambda w: ["pipeline", "add-variant", str(w / "notes"), "fast", "--dit", str(BUNDLED / "dit")], r"notes: not a pipeline folder"),
    ("generate: truncated DiT weights (model loaded)", lambda w: ["generate", "x", "--model", str(w / "model_truncated"), "--out", str(w / "v.mp4")], r"dit/model\.safetensors: cannot read the weights .*damaged or truncated"),
    # train and export
    ("train: missing --config", lambda w: ["train", "vae", "-c", str(w / "nothing.toml"), "--run", str(w / "r")], r"--config .*nothing\.toml: no such file"),
    ("train: unknown task", lambda w: ["train", "gan", "-c", str(VAE_PRESET), "--run", str(w / "r")], r"known tasks"),
    ("train: empty data.root", lambda w: ["train", "vae", "-c", str(VAE_PRESET), "--run", str(w / "r")], r"data\.root is empty"),
    ("train: missing dataset", lambda w: ["train", "vae", "-c", str(VAE_PRESET), "--set", f"data.root={w / 'nothing'}", "--run", str(w / "r")], r"nothing: no dataset\.json; not an FFA dataset folder"),
    ("train: empty data.cache", lambda w: ["train", "dit", "-c", str(DIT_PRESET), "--run", str(w / "r")], r"data\.cache is empty"),
    ("train: --set without =", lambda w: ["train", "vae", "-c", str(VAE_PRESET), "--set", "train.max_steps", "--run", str(w / "r")], r"train\.max_steps"),
    ("train: unknown config key", lambda w: ["train", "vae", "-c", str(VAE_PRESET), "--set", "train.max_stepz=3", "--run", str(w / "r")], r"train\.max_stepz"),
    ("train: --run is a file", lambda w: ["train", "vae", "-c", str(VAE_PRESET), "--set", f"data.root={w.ds}", "--run", str(w / "afile")], r"--run .*afile is a file"),
    ("train: every checkpoint damaged (model built)", lambda w: ["train", "vae", "-c", str(VAE_PRESET), "--set", f"data.root={w.ds}", "--set", "data.frames=5", "--set", "data.size=32", "--run", str(w / "run_damaged")], r"no checkpoint can be read .*trainer\.pt is empty"),
    ("export: not a run", lambda w: ["export", str(w / "notes"), "--out", str(w / "m")], r"not a training run folder: run\.json is missing"),
    ("export: no such checkpoint", lambda w: ["export", str(w / "run_damaged"), "--out", str(w / "m"), "--checkpoint", "99"], r"checkpoint '99' not found"),
    ("export: no checkpoint at all", lambda w: ["export", str(w / "run_empty"), "--out", str(w / "m")], r"has no complete checkpoint"),
    ("export: unknown --dtype", lambda w: ["export", str(w / "run_damaged"), "--out", str(w / "m"), "--dtype", "fp8"], r"--dtype 'fp8'"),
    ("export: --out holds a model", lambda w: ["export", str(w / "run_damaged"), "--out", str(w / "model_out")], r"model_out already holds a model .*--overwrite"),
    ("export: damaged EMA weights (model built)", lambda w: ["export", str(w / "run_damaged"), "--out", str(w / "m")], r"ema\.safetensors cannot be read"),
    # latents
    ("simulate: --mix unknown diagnosis", lambda w: ["simulate", "--out", str(w / "sim"), "--mix", "BRVO=1,flu=2"], r"--mix 'BRVO=1,flu=2': unknown diagnosis 'flu'"),
    ("simulate: --mix weight not positive", lambda w: ["simulate", "--out", str(w / "sim"), "--mix", "CRVO=0"], r"--mix 'CRVO=0': 'CRVO=0': the weight must be a finite number > 0"),
    ("latents: missing dataset", lambda w: ["latents", str(w / "nothing"), "--vae", str(BUNDLED / "vae"), "--out", str(w / "c")], r"nothing: no such dataset folder"),
    ("latents: missing --vae", lambda w: ["latents", str(w.ds), "--vae", str(w / "novae"), "--out", str(w / "c")], r"novae: no config\.json"),
    ("latents: missing --text-encoder", lambda w: ["latents", str(w.ds), "--vae", str(BUNDLED / "vae"), "--out", str(w / "c"), "--text-encoder", str(w / "notes")], r"--text-encoder .*notes: not 'default' nor a local Hugging Face folder"),
    ("latents: --frames not 1+4k", lambda w: ["latents", str(w.ds), "--vae", str(BUNDLED / "vae"), "--out", str(w / "c"), "--frames", "20"], r"frames = 20: the WF-VAE makes 1 \+ 4k frames"),
    ("latents: --max-tokens 0", lambda w: ["latents", str(w.ds), "--vae", str(BUNDLED / "vae"), "--out", str(w / "c"), "--max-tokens", "0"], r"--max-tokens 0"),
    ("latents: unknown --split", lambda w: ["latents", str(w.ds), "--vae", str(BUNDLED / "vae"), "--out", str(w / "c"), "--split", "dev"], r"split 'dev' is not one of"),
    ("latents: --chunk not a multiple of 4", lambda w: ["latents", str(w.ds), "--vae", str(BUNDLED / "vae"), "--out", str(w / "c"), "--chunk", "3"], r"--chunk 3: expected a positive multiple of 4"),
    ("latents: --out is another folder", lambda w: ["latents", str(w.ds), "--vae", str(BUNDLED / "vae"), "--out", str(w / "notes")], r"notes is a folder that holds no latent cache"),
    ("latents: a video file is missing", lambda w: ["latents", str(w / "ds_missing_video"), "--vae", str(BUNDLED / "vae"), "--out", str(w / "c")], r"1 video file\(s\) listed in the manifest are missing"),
    # evaluate
    ("evaluate: missing --generated", lambda w: ["evaluate", "-g", str(w / "nothing"), "-r", str(w.ds), "-o", str(w / "e")], r"--generated .*nothing: no such folder"),
    ("evaluate: reference not a dataset", lambda w: ["evaluate", "-g", str(w / "gen_nothing"), "-r", str(w / "notes"), "-o", str(w / "e")], r"--reference .*notes: not an FFA dataset folder"),
    ("evaluate: no --out", lambda w: ["evaluate", "-g", str(w / "gen_nothing"), "-r", str(w.ds)], r"missing --out"),
    ("evaluate: empty gif beside its JSON", lambda w: ["evaluate", "-g", str(w / "gen_empty_gif"), "-r", str(w.ds), "--split", "train", "--encoder", str(w / "fake_encoder"), "-o", str(w / "e")], r"a\.gif: cannot read the video beside a\.json .*empty or damaged"),
    ("evaluate: generated dataset misses a video file", lambda w: ["evaluate", "-g", str(w / "ds_missing_video"), "-r", str(w.ds), "--split", "train", "--encoder", str(w / "fake_encoder"), "-o", str(w / "e")], r"is in manifest\.jsonl but its file .*\.npz is missing"),
    ("evaluate: reference manifest missing", lambda w: ["evaluate", "-g", str(w.ds), "--generated-split", "train", "-r", str(w / "ds_no_manifest"), "--encoder", str(w / "fake_encoder"), "-o", str(w / "e")], r"ds_no_manifest: manifest\.jsonl is missing; the dataset folder is incomplete"),
    ("evaluate: no videos in --generated", lambda w: ["evaluate", "-g", str(w / "gen_nothing"), "-r", str(w.ds), "--encoder", str(w / "fake_encoder"), "-o", str(w / "e")], r"gen_nothing: no \.mp4 or \.gif videos"),
    # show and validate
    ("show: missing path", lambda w: ["show", str(w / "nothing")], r"nothing does not exist"),
    ("show: a video file is missing", lambda w: ["show", str(w / "ds_missing_video"), "--out", str(w / "s.png")], r"the video file of .* is missing"),
    ("show: empty gif", lambda w: ["show", str(w / "empty.gif"), "--out", str(w / "s.png")], r"empty\.gif: cannot read the video .*empty or damaged"),
    ("show: --frames 0", lambda w: ["show", str(w.ds), "--frames", "0", "--out", str(w / "s.png")], r"--frames 0 and --cases 8 must be positive"),
    ("show: --indices not numbers", lambda w: ["show", str(w.ds), "--indices", "a,b", "--out", str(w / "s.png")], r"--indices 'a,b': expected comma-separated frame numbers"),
    ("show: --indices out of range", lambda w: ["show", str(w.ds), "--indices", "0,9", "--out", str(w / "s.png")], r"--indices 0,9: .* has 5 frames"),
    ("show: unknown --ids", lambda w: ["show", str(w.ds), "--ids", "nobody", "--out", str(w / "s.png")], r"--ids: .* has no video\(s\) \['nobody'\]"),
    ("show: --out exists", lambda w: ["show", str(w.ds), "--out", str(w / "sheet.png")], r"sheet\.png exists; pass --overwrite"),
    ("show: --out not a png", lambda w: ["show", str(w.ds), "--out", str(w / "s.txt")], r"--out .*s\.txt: expected a \.png file name"),
    ("show: --fps 0", lambda w: ["show", str(w.ds), "--fps", "0", "--out", str(w / "s.png")], r"--fps 0\.0: expected a frame rate above 0"),
    ("validate: an id with ../", lambda w: ["validate", str(w / "ds_bad_id")], r"'\.\./escape': id must be a plain file name"),
    ("validate: missing folder", lambda w: ["validate", str(w / "nothing")], r"nothing: not a folder"),
    ("validate: manifest line not JSON", lambda w: ["validate", str(w / "ds_bad_json")], r"manifest\.jsonl:7: not valid JSON"),
    # review and demo command lines
    ("review create: study folder in use", lambda w: ["review", "create", str(w / "study"), "--videos", str(w.ds), "--raters", "a"], r"not empty"),
    ("review create: unknown finding code", lambda w: ["review", "create", str(w / "s2"), "--videos", str(w.ds), "--raters", "a", "--findings", "BOGUS"], r"unknown finding code\(s\) \['BOGUS'\]"),
    ("review serve: no study", lambda w: ["review", "serve", str(w / "notes")], r"notes: not a study folder \(no study\.sqlite\)"),
    ("review serve: bad --port", lambda w: ["review", "serve", str(w / "study"), "--port", "70000"], r"--port 70000"),
    ("review stats: --n-boot 0", lambda w: ["review", "stats", str(w / "study"), "--out", str(w / "st"), "--n-boot", "0"], r"--n-boot 0"),
    ("review reset-link: unknown rater", lambda w: ["review", "reset-link", str(w / "study"), "nobody"], r"nobody"),
    ("demo: --model not a pipeline", lambda w: ["demo", "--model", str(w / "notes")], r"--model .*notes is not a pipeline folder"),
    ("demo: --steps 0", lambda w: ["demo", "--model", str(BUNDLED), "--steps", "0"], r"steps=0: expected an integer from 1 to 1000"),
    ("demo: --steps too many", lambda w: ["demo", "--model", str(BUNDLED), "--steps", "5000"], r"steps=5000"),
    ("demo: bad --port", lambda w: ["demo", "--port", "70000"], r"--port 70000: expected a port number"),
    # prepare (a refused index writes nothing: no dataset folder blocks the next run)
    ("prepare: missing --videos folder", lambda w: ["prepare", "--videos", str(w / "novideos"), "--index", str(w / "afile"), "--out", str(w / "p")], r"--videos .*novideos: not a folder"),
    ("prepare: --frames not 1+4k", lambda w: ["prepare", "--videos", str(w / "notes"), "--index", str(w / "afile"), "--out", str(w / "p"), "--frames", "20"], r"frames = 20: the WF-VAE makes 1 \+ 4k frames"),
    ("prepare: index misses columns", lambda w: ["prepare", "--videos", str(w / "notes"), "--index", str(w / "index_nocol.csv"), "--out", str(w / "p")], r"index_nocol\.csv: missing column\(s\) \['patient_id', 'eye'\]"),
    ("prepare: index not UTF-8", lambda w: ["prepare", "--videos", str(w / "notes"), "--index", str(w / "index_latin1.csv"), "--out", str(w / "p")], r"index_latin1\.csv: line 2, byte \d+: not UTF-8"),
    ("prepare: --size 0", lambda w: ["prepare", "--videos", str(w / "notes"), "--index", str(w / "afile"), "--out", str(w / "p"), "--size", "0"], r"size = 0 px is too small"),
    ("prepare: --drop-mismatched-pairs, no photograph", lambda w: ["prepare", "--videos", str(w / "notes"), "--index", str(w / "index_no_image.csv"), "--out", str(w / "p"), "--drop-mismatched-pairs"], r"--drop-mismatched-pairs: no row of .*index_no_image\.csv names a photograph \(column 'image'\)"),
]  # fmt: skip


def snapshot(root: Path) -> dict[str, Any]:
    """Every file and folder under ``root`` with size and modification time (SQLite's own files aside:
    reading a database may touch them; the web rows compare the ratings themselves)."""
    state: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        if "study.sqlite" in path.name:
            continue
        stat = path.stat()
        state[str(path.relative_to(root))] = "dir" if path.is_dir() else (stat.st_size, stat.st_mtime_ns)
    return state


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(("args", "message"), [row[1:] for row in CLI_ROWS], ids=[row[0] for row in CLI_ROWS])
def test_a_bad_command_line_fails_early_and_clearly(world: World, args: Any, message: str) -> None:
    before = snapshot(world.root)
    result = runner.invoke(app, args(world))
    output = result.output
    assert result.exit_code not in (0, None), output
    assert isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    assert "Traceback" not in output and BUG_NOTE not in output
    assert re.search(message, _flat(output)), output
    error = output[output.index("error:") :] if "error:" in output else output
    if args(world)[0] != "validate":  # validate lists every problem; the rest say one thing
        assert len(error.strip().splitlines()) <= 2, error
    assert snapshot(world.root) == before, "a failed command wrote or changed files"


def test_the_table_has_forty_rows_beyond_prepare() -> None:
    commands = [row[1](World(Path("w"), Path("ds"), []))[0] for row in CLI_ROWS]
    assert sum(c != "prepare" for c in commands) + len(HTTP_ROWS) >= 40
    assert {
        "generate",
        "train",
        "export",
        "latents",
        "evaluate",
        "show",
        "validate",
        "review",
        "demo",
    } <= set(commands)


def test_a_real_bug_keeps_its_traceback_and_asks_for_a_report(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ffasora.cli.data_commands as data_commands

    def broken(indices: str | None) -> list[int] | None:
        raise RuntimeError("an internal invariant broke")

    monkeypatch.setattr(data_commands, "_parse_indices", broken)
    result = runner.invoke(app, ["show", str(world.ds), "--out", str(world / "s.png")])
    assert isinstance(result.exception, RuntimeError)
    assert BUG_NOTE in getattr(result.exception, "__notes__", [])


# -------------------------------------------------------------------------------------------- the web APIs
class _Held:
    """Demo pipeline stand-in whose calls wait until released, so that jobs queue; ``image_channels`` > 0
    stands for a DiT that takes a colour photograph."""

    def __init__(self, image_channels: int = 0) -> None:
        from types import SimpleNamespace

        from ffasora.pipeline import PipelineConfig

        self.config = PipelineConfig(num_frames=5, height=32, width=32)
        self.dit = SimpleNamespace(config=SimpleNamespace(image_channels=image_channels))
        self.release = threading.Event()

    def __call__(self, report: str, **options: Any) -> Any:
        self.release.wait(60)
        raise ValueError("released")


@pytest.fixture(scope="module")
def review_client(world: World) -> Iterator[tuple[TestClient, dict[str, str]]]:
    from ffasora.review.server import create_app

    tokens = {}
    for line in (world / "study" / "raters.csv").read_text().splitlines()[1:]:
        name, link = line.split(",")[:2]
        tokens[name] = link.strip("/").split("/")[-1]  # /r/<token>/
    with TestClient(create_app(world / "study"), raise_server_exceptions=False) as client:
        yield client, tokens


@pytest.fixture(scope="module")
def demo_client(world: World) -> Iterator[tuple[TestClient, Any]]:
    from ffasora.demo.server import create_app

    held = _Held()
    demo_app = create_app(pipeline=held, out_dir=world / "demo_out", max_waiting=1)  # type: ignore[arg-type]
    with TestClient(demo_app, raise_server_exceptions=False) as client:
        assert client.post("/api/generate", json={"report": "late leakage."}).status_code == 202  # fills it
        yield client, demo_app.state.demo
        held.release.set()


@pytest.fixture(scope="module")
def demo_photo_client(world: World) -> Iterator[tuple[TestClient, Any]]:
    """The demo of a model that takes a colour photograph (nothing queued: a request let through would queue)."""
    from ffasora.demo.server import create_app

    held = _Held(image_channels=12)
    demo_app = create_app(pipeline=held, out_dir=world / "demo_photo_out")  # type: ignore[arg-type]
    with TestClient(demo_app, raise_server_exceptions=False) as client:
        yield client, demo_app.state.demo
        held.release.set()


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def _png(size: tuple[int, int] = (8, 8)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 60, 20)).save(buffer, format="PNG")
    return buffer.getvalue()


def _put(
    client: TestClient, tokens: dict[str, str], position: str, body: Any, csrf: str | None = None
) -> Any:
    token = tokens["ana"]
    csrf = csrf if csrf is not None else client.get(f"/api/r/{token}/progress").json()["csrf"]
    return client.put(f"/api/r/{token}/ratings/{position}", json=body, headers={"X-CSRF-Token": csrf})


HTTP_ROWS: list[tuple[str, str, Callable[[Any, Any], Any], int, str]] = [
    ("review: quality true", "review", lambda c, t: _put(c, t, "1", {"quality": True}), 422, "whole number"),
    ("review: quality 2.9", "review", lambda c, t: _put(c, t, "1", {"quality": 2.9}), 422, "whole number"),
    ("review: quality 5.99", "review", lambda c, t: _put(c, t, "1", {"quality": 5.99}), 422, "whole number"),
    ("review: quality 0", "review", lambda c, t: _put(c, t, "1", {"quality": 0}), 422, "from 1 to 5"),
    ("review: overflowing position", "review", lambda c, t: _put(c, t, str(10**30), {"quality": 2}), 404, "no such video"),
    ("review: position 0", "review", lambda c, t: _put(c, t, "0", {"quality": 2}), 404, "no such video"),
    ("review: wrong CSRF token", "review", lambda c, t: _put(c, t, "1", {"quality": 2}, csrf="0" * 64), 403, "expired"),
    ("review: unknown finding", "review", lambda c, t: _put(c, t, "1", {"quality": 2, "findings": ["BOGUS"]}), 422, "Unknown finding"),
    ("demo: huge seed", "demo", lambda c, d: c.post("/api/generate", json={"report": "late.", "seed": 2**40}), 400, "seed must be an integer"),
    ("demo: empty report", "demo", lambda c, d: c.post("/api/generate", json={"report": "  "}), 400, "non-empty"),
    ("demo: report too long", "demo", lambda c, d: c.post("/api/generate", json={"report": "x" * 5000}), 400, "at most 4000"),
    ("demo: report not Unicode", "demo", lambda c, d: c.post("/api/generate", content=b'{"report": "a \\udcff"}', headers={"content-type": "application/json"}), 400, "not valid Unicode"),
    ("demo: unknown model variant", "demo", lambda c, d: c.post("/api/generate", json={"report": "late.", "variant": "bogus"}), 400, r"unknown model variant 'bogus'; available: standard"),
    ("demo: a photograph for a model that takes none", "demo", lambda c, d: c.post("/api/generate", json={"report": "late.", "image": _b64(_png())}), 400, r"model 'standard' takes no colour photograph"),
    ("demo: photograph not an image", "demo_photo", lambda c, d: c.post("/api/generate", json={"report": "late.", "image": _b64(b"GIF89a not a photo")}), 400, r"the photograph: not a readable PNG or JPEG image"),
    ("demo: photograph a cut-off PNG", "demo_photo", lambda c, d: c.post("/api/generate", json={"report": "late.", "image": _b64(_png((64, 64))[:60])}), 400, r"not a readable PNG or JPEG image"),
    ("demo: photograph not base64", "demo_photo", lambda c, d: c.post("/api/generate", json={"report": "late.", "image": "%%% not base64"}), 400, r"image is not base64"),
    ("demo: photograph not a string", "demo_photo", lambda c, d: c.post("/api/generate", json={"report": "late.", "image": [1, 2]}), 400, r"image must be a PNG or JPEG"),
    ("demo: photograph too large", "demo_photo", lambda c, d: c.post("/api/generate", json={"report": "late.", "image": "A" * (14 * 2**20)}), 413, r"larger than 10 MB"),
    ("demo: queue full", "demo", lambda c, d: c.post("/api/generate", json={"report": "late leakage."}), 503, "busy.*try again"),
]  # fmt: skip


def _review_state(client: TestClient, tokens: dict[str, str]) -> Any:
    return [client.get(f"/api/r/{token}/ratings").json() for token in tokens.values()]


@pytest.mark.parametrize(
    ("app_name", "call", "status", "message"), [r[1:] for r in HTTP_ROWS], ids=[r[0] for r in HTTP_ROWS]
)
def test_a_bad_request_gets_a_4xx_or_busy_and_changes_nothing(
    request: pytest.FixtureRequest, world: World, app_name: str, call: Any, status: int, message: str
) -> None:
    if app_name == "review":
        client, extra = request.getfixturevalue("review_client")
        state = lambda: (_review_state(client, extra), snapshot(world.root))  # noqa: E731
    else:
        client, extra = request.getfixturevalue(f"{app_name}_client")
        state = lambda: (sorted(extra.jobs), snapshot(world.root))  # noqa: E731
    before = state()
    response = call(client, extra)
    body = response.json()
    text = body.get("error") or body.get("detail") or ""
    assert response.status_code == status, body
    assert re.search(message, text), text
    assert "Traceback" not in response.text and str(world.root) not in response.text
    assert state() == before
