"""The demo app's API in-process: page, examples, findings, a generation job from queue to frames, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import ffasora.findings
from ffasora.demo.server import clock, create_app, frame_times
from ffasora.pipeline import FFASoraPipeline
from served_app import wait_for_job


@pytest.fixture(scope="module")
def client(pipeline_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    app = create_app(pipeline_dir, steps=2, out_dir=tmp_path_factory.mktemp("demo-out"), keep_jobs=2)
    with TestClient(app) as c:
        yield c


def test_page_lists_the_examples(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
    examples = client.get("/api/examples").json()
    assert {e["lang"] for e in examples} == {"en", "zh"} and len(examples) >= 5
    for example in examples:
        assert example["label"] in page.text
    assert "5 frames, 32x32 px, 2 sampler steps" in page.text


def test_findings_of_an_example(client: TestClient) -> None:
    csc = client.get("/api/examples").json()[0]
    data = client.post("/api/findings", json={"report": csc["report"]}).json()
    assert not data.get("error")
    assert "CSC_LEAK" in [f["code"] for f in data["present"]]
    assert "NVD" in [f["code"] for f in data["absent"]] and data["arm_retina_s"] == 11.0
    leak = next(f for f in data["present"] if f["code"] == "CSC_LEAK")
    assert leak["en"] == ffasora.findings.FINDING_CODES["CSC_LEAK"].en and leak["zh"]
    assert client.post("/api/findings", json={"report": "  "}).status_code == 400


def test_generation_job_writes_video_frames_and_times(client: TestClient, pipeline_dir: Path) -> None:
    report = "late leakage at the macula ."
    response = client.post("/api/generate", json={"report": report, "seed": 3})
    assert response.status_code == 202
    state = wait_for_job(client, response.json()["job"])
    assert state["state"] == "done", state["error"]
    assert state["fraction"] == 1.0 and state["phase"] == "decode"
    result = state["result"]
    assert result["metadata"]["seed"] == 3 and result["metadata"]["steps"] == 2
    times = [f["t_s"] for f in result["frames"]]
    assert len(times) == 5 and times == sorted(times) and times[-1] == 600.0
    video = client.get(result["mp4"])
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert client.get(result["gif"]).content[:3] == b"GIF"
    # the frames served are the pipeline's frames for this report and seed
    from io import BytesIO

    from PIL import Image

    expected = FFASoraPipeline.from_pretrained(pipeline_dir)(report, seed=3, steps=2).frames
    first = np.asarray(Image.open(BytesIO(client.get(result["frames"][0]["url"]).content)))
    np.testing.assert_array_equal(first, expected[0])


def test_a_chinese_example_is_translated_for_the_english_encoder(client: TestClient) -> None:
    chinese = next(e for e in client.get("/api/examples").json() if e["lang"] == "zh")
    job = client.post("/api/generate", json={"report": chinese["report"], "seed": 1}).json()["job"]
    state = wait_for_job(client, job)
    assert state["state"] == "done", state["error"]
    codes = [f["code"] for f in state["result"]["findings"]["present"]]
    assert "CSC_LEAK" in codes and state["result"]["findings"]["arm_retina_s"] == 11.0


def test_bad_requests_and_unknown_media(client: TestClient) -> None:
    assert client.post("/api/generate", json={"report": ""}).status_code == 400
    assert client.post("/api/generate", json={"report": "late .", "seed": "x"}).status_code == 400
    assert client.post("/api/generate", json={"report": "x" * 5000}).status_code == 400
    assert client.get("/api/jobs/nope").status_code == 404
    assert client.get("/media/" + "0" * 32 + "/video.mp4").status_code == 404
    assert client.get("/media/" + "0" * 32 + "/..%2Fsecret").status_code == 404


def test_a_failing_report_reaches_the_page_as_an_error(client: TestClient) -> None:
    job = client.post("/api/generate", json={"report": "qqq zzz www", "seed": 0}).json()["job"]
    state = wait_for_job(client, job)
    assert state["state"] == "error" and "unknown" in state["error"].lower()


def test_old_jobs_are_dropped(client: TestClient) -> None:
    jobs = [
        client.post("/api/generate", json={"report": "late leakage .", "seed": s}).json()["job"]
        for s in range(3)
    ]
    for job in jobs:
        wait_for_job(client, job)
    client.post("/api/generate", json={"report": "late leakage .", "seed": 9})
    assert client.get(f"/api/jobs/{jobs[0]}").status_code == 404


def test_frame_times_follow_the_canonical_grid() -> None:
    times = frame_times(21, 10.0)
    assert times[:3] == [8.0, 9.0, 10.0] and times[-1] == 600.0 and len(times) == 21
    assert frame_times(21, None)[2] == 12.0
    assert clock(75.25) == "01:15.2" and clock(8.0) == "00:08.0"


def test_cli_demo_needs_a_pipeline_folder(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ffasora.cli import app

    result = CliRunner().invoke(app, ["demo", "--model", str(tmp_path)])
    assert result.exit_code != 0 and "model_index.json" in result.output
    assert CliRunner().invoke(app, ["demo", "--help"]).exit_code == 0


class _Stub:
    """Stands in for the pipeline: each call waits for ``release`` (so jobs queue up), then raises ``error``."""

    def __init__(self, error: Exception | None = None) -> None:
        import threading

        from ffasora.pipeline import PipelineConfig

        self.config = PipelineConfig(num_frames=5, height=32, width=32)
        self.release = threading.Event()
        self.error = error

    def __call__(self, report: str, **options: object) -> object:
        assert self.release.wait(60)
        raise self.error or ValueError("no error given")


def test_the_queue_is_bounded_and_says_busy(tmp_path: Path) -> None:
    stub = _Stub()
    app = create_app(pipeline=stub, out_dir=tmp_path, max_waiting=2)  # type: ignore[arg-type]
    with TestClient(app) as client:
        jobs = [client.post("/api/generate", json={"report": "late .", "seed": s}) for s in range(2)]
        assert [r.status_code for r in jobs] == [202, 202]
        busy = client.post("/api/generate", json={"report": "late .", "seed": 3})
        assert (
            busy.status_code == 503
            and "busy" in busy.json()["detail"]
            and "try again" in busy.json()["detail"]
        )
        assert busy.headers["retry-after"] == "30" and len(app.state.demo.jobs) == 2  # nothing queued
        stub.release.set()
        for response in jobs:
            wait_for_job(client, response.json()["job"])
        assert client.post("/api/generate", json={"report": "late .", "seed": 4}).status_code == 202


def test_job_errors_show_no_server_paths(tmp_path: Path) -> None:
    secret = "/srv/private/models/ffasora/dit/model.safetensors"
    for error, shown in (
        (ValueError(f"{secret}: cannot read the weights"), "model.safetensors: cannot read the weights"),
        (RuntimeError(f"CUDA error in {secret}"), "error on the server"),
    ):
        stub = _Stub(error)
        stub.release.set()
        with TestClient(create_app(pipeline=stub, out_dir=tmp_path)) as client:  # type: ignore[arg-type]
            state = wait_for_job(
                client, client.post("/api/generate", json={"report": "late ."}).json()["job"]
            )
        assert state["state"] == "error" and shown in state["error"]
        assert "/srv" not in state["error"] and "private" not in state["error"]


def test_the_temporary_folder_goes_when_the_app_stops() -> None:
    stub = _Stub()
    app = create_app(pipeline=stub)  # type: ignore[arg-type]
    folder = app.state.demo.out_dir
    with TestClient(app) as client:
        assert folder.is_dir()
        client.post("/api/generate", json={"report": "late ."})  # left queued: shutdown must not hang
        stub.release.set()
    assert not folder.exists()


def test_ctrl_c_removes_the_served_demo_temporary_folder(
    pipeline_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    from served_app import ServedApp, serve_code

    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the server process makes its folder here
    served = ServedApp(serve_code("ffasora.demo.server"), pipeline_dir, 90).start()
    try:
        (folder,) = tmp_path.glob("ffasora-demo-*")
        assert served.proc is not None
        served.proc.send_signal(signal.SIGINT)
        assert served.proc.wait(timeout=30) == 0
    finally:
        served.stop()
    assert not folder.exists()
