"""The demo with a pipeline folder that has variants: the model selector, a variant's job, and a colour
photograph uploaded for a variant whose DiT takes one (and refused for one whose DiT does not)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from ffasora.demo.server import create_app
from ffasora.models.dit import DiT
from ffasora.models.pretrained import weights_sha256
from ffasora.pipeline import FFASoraPipeline
from served_app import wait_for_job

REPORT = "late leakage at the macula ."


@pytest.fixture(scope="module")
def client(variant_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    app = create_app(variant_dir, steps=2, out_dir=tmp_path_factory.mktemp("demo-variants-out"))
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def photo_png() -> bytes:
    pixels = np.random.default_rng(3).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _frame(client: TestClient, url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(client.get(url).content)))


def test_a_folder_without_variants_shows_no_selector(pipeline_dir: Path, tmp_path: Path) -> None:
    with TestClient(create_app(pipeline_dir, steps=2, out_dir=tmp_path)) as plain:
        page = plain.get("/").text
        assert 'id="variant"' not in page and 'id="photo-box" hidden' in page
        assert [c["name"] for c in plain.get("/api/variants").json()] == ["standard"]


def test_the_page_offers_the_variants(client: TestClient) -> None:
    page = client.get("/").text
    assert '<select id="variant">' in page
    assert '<option value="standard" selected>' in page and "photo: takes a fundus photograph" in page
    choices = {c["name"]: c for c in client.get("/api/variants").json()}
    assert choices["standard"]["takes_image"] is False and choices["photo"]["takes_image"] is True
    assert choices["photo"]["steps"] == 2


def test_a_photograph_job_runs_the_variant_and_names_the_photo_by_hash(
    client: TestClient, variant_dir: Path, photo_png: bytes
) -> None:
    body = {"report": REPORT, "seed": 5, "variant": "photo", "image": base64.b64encode(photo_png).decode()}
    response = client.post("/api/generate", json=body)
    assert response.status_code == 202, response.json()
    state = wait_for_job(client, response.json()["job"])
    assert state["state"] == "done", state["error"]
    meta = state["result"]["metadata"]
    assert meta["variant"] == "photo" and meta["image_sha256"] == hashlib.sha256(photo_png).hexdigest()

    pipe = FFASoraPipeline.from_pretrained(variant_dir, variant="photo")
    pixels = np.asarray(Image.open(io.BytesIO(photo_png)).convert("RGB"))
    expected = pipe(REPORT, seed=5, image=pixels).frames
    served = _frame(client, state["result"]["frames"][1]["url"])
    np.testing.assert_array_equal(served, expected[1])
    assert not np.array_equal(expected, pipe(REPORT, seed=5).frames)  # the photograph changed the video

    out_dir: Path = client.app.state.demo.out_dir  # type: ignore[attr-defined]
    saved = json.loads((out_dir / response.json()["job"] / "video.json").read_text())  # the provenance
    assert saved["variant"] == "photo" and saved["image_sha256"] == meta["image_sha256"]
    assert saved["model_hashes"]["dit"] == weights_sha256(DiT.from_pretrained(variant_dir / "dit_photo"))
    assert ".png" not in json.dumps(saved)


def test_the_standard_model_runs_by_default(client: TestClient) -> None:
    state = wait_for_job(
        client, client.post("/api/generate", json={"report": REPORT, "seed": 5}).json()["job"]
    )
    assert state["state"] == "done", state["error"]
    assert state["result"]["metadata"]["variant"] is None and state["result"]["metadata"]["steps"] == 2


def test_photographs_and_variants_are_refused_clearly(client: TestClient, photo_png: bytes) -> None:
    image = base64.b64encode(photo_png).decode()
    before = sorted(client.app.state.demo.jobs)  # type: ignore[attr-defined]
    refused = client.post("/api/generate", json={"report": REPORT, "image": image})
    assert refused.status_code == 400 and "'standard' takes no colour photograph" in refused.json()["detail"]
    unknown = client.post("/api/generate", json={"report": REPORT, "variant": "fast"})
    assert unknown.status_code == 400 and "available: standard, photo" in unknown.json()["detail"]
    bad = base64.b64encode(b"\x89PNG\r\n\x1a\n broken").decode()
    broken = client.post("/api/generate", json={"report": REPORT, "variant": "photo", "image": bad})
    assert broken.status_code == 400 and "not a readable PNG or JPEG" in broken.json()["detail"]
    assert sorted(client.app.state.demo.jobs) == before  # type: ignore[attr-defined]
