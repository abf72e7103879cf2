"""The demo app: one page, a JSON API, and one worker thread that runs the pipeline.

Routes::

    GET  /                      the page
    GET  /api/examples          example reports (English and Chinese)
    POST /api/findings          {"report"} -> the findings the parser reads from it
    POST /api/generate          {"report", "seed"} -> {"job"}; the job queues behind earlier ones
    GET  /api/jobs/<job>        state, phase and progress; when done, the video, frames and findings
    GET  /media/<job>/<file>    a job's video (mp4, gif) and frames (png)

Generation is slow on a CPU, so it never runs in a request: jobs go to a single worker thread (one model,
one generation at a time) and the page polls the job for progress. At most ``max_waiting`` jobs wait or run
at once; past that ``/api/generate`` answers 503 "busy, try again" (with ``Retry-After``). The app is meant
for 127.0.0.1: it keeps the last ``keep_jobs`` results in a temporary folder, serves nothing else from disk,
and removes that folder when it shuts down (Ctrl-C included). Reports take the pipeline's text path, so
English and Chinese work alike. A failed job shows the reason for a report the model cannot use, never a
file path of the server; other failures show a plain sentence and go to the server log.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import re
import shutil
import tempfile
import threading
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from fastapi import Body, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.exceptions import HTTPException

from ffasora.demo.examples import example_reports
from ffasora.pipeline import FFASoraPipeline, PipelineFolder, resolve_settings

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
MAX_REPORT_CHARS = 4000
MAX_WAITING = 4  # jobs queued or running at once; more get "busy, try again"
RETRY_AFTER_S = 30
# An absolute path of two or more parts (POSIX or Windows), as error messages of the libraries name files.
_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?[/\\](?:[^\s/\\'\"]+[/\\])+([^\s/\\'\"]*)")
DEFAULT_ARM_RETINA_S = 12.0  # a typical arm-to-retina time, used when the report states none
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
MEDIA_NAME = re.compile(r"^(video\.mp4|video\.gif|frame_\d{2,3}\.png)$")
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}


def parse_findings(report: str) -> dict[str, Any]:
    """The report parser's reading of ``report`` as JSON-ready data: present signs (code, English and Chinese
    names, location, phase), negatives, diagnoses, arm-to-retina time; ``error`` holds the parser's
    complaint about a report it cannot read."""
    from ffasora.findings import DIAGNOSIS_CODES, FINDING_CODES, parse_report

    try:
        findings = parse_report(report)
    except ValueError as err:
        return {"error": str(err)}

    def names(code: str, table: Any) -> dict[str, str]:
        entry = table.get(code)
        return {"code": code, "en": entry.en if entry else code, "zh": entry.zh if entry else ""}

    return {
        "eye": findings.eye,
        "present": [
            names(f.code, FINDING_CODES)
            | {"location": list(f.location), "onset_phase": f.onset_phase, "evolution": f.evolution}
            for f in findings.present
        ],
        "absent": [names(code, FINDING_CODES) for code in sorted(findings.absent)],
        "diagnoses": [names(d.code, DIAGNOSIS_CODES) | {"grade": d.grade} for d in findings.diagnoses],
        "arm_retina_s": findings.arm_retina_s,
    }


def frame_times(num_frames: int, arm_retina_s: float | None) -> list[float]:
    """Seconds after injection of each generated frame: the simulator's canonical G21 grid (12 frames around
    the arm-to-retina time, 9 out to 10 min) that the bundled model was trained on, resampled for other
    lengths."""
    from ffasora.simulate.sampling import canonical

    times = canonical(arm_retina_s or DEFAULT_ARM_RETINA_S, num_frames)
    return [round(float(t), 1) for t in times]


def clock(seconds: float) -> str:
    """``"mm:ss.s"`` as FFA devices burn the elapsed time into the image."""
    minutes, rest = divmod(max(seconds, 0.0), 60.0)
    return f"{int(minutes):02d}:{rest:04.1f}"


class Busy(Exception):
    """The queue is full."""


class _Closing(Exception):
    """Raised inside a running job when the app shuts down."""


def public_message(err: Exception) -> str:
    """What the page may show about a failed job: a ``ValueError``'s reason (a report the model cannot use)
    with any file path cut to its last part; for anything else a plain sentence (the details are logged)."""
    if isinstance(err, ValueError):
        return _PATH.sub(lambda m: m.group(1) or "(a server folder)", str(err))
    return "generation failed because of an error on the server (it is in the server's log); try again"


@dataclass
class Job:
    report: str
    seed: int
    state: str = "queued"  # queued -> running -> done | error
    phase: str = ""
    done: int = 0
    total: int = 0
    error: str = ""
    result: dict[str, Any] = field(default_factory=dict)

    def view(self, job_id: str) -> dict[str, Any]:
        fraction = self.done / self.total if self.total else 0.0
        out = {
            "job": job_id,
            "state": self.state,
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
        }
        return out | {"fraction": round(fraction, 3), "error": self.error, "result": self.result}


class Demo:
    """The app's state: the pipeline, the jobs and their files, the worker thread."""

    def __init__(
        self,
        pipeline: FFASoraPipeline,
        steps: int | None,
        out_dir: Path,
        keep_jobs: int,
        max_waiting: int = MAX_WAITING,
        owns_out_dir: bool = False,
    ) -> None:
        self.pipeline, self.steps, self.out_dir, self.keep_jobs = pipeline, steps, out_dir, keep_jobs
        self.max_waiting = max_waiting
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ffasora-demo")
        self.examples = example_reports()
        # A temporary folder of our own goes when the app shuts down, or at the latest when Python exits.
        self._remove_out_dir = (
            weakref.finalize(self, shutil.rmtree, str(out_dir), True) if owns_out_dir else None
        )

    def waiting(self) -> int:
        return sum(job.state in ("queued", "running") for job in self.jobs.values())

    def close(self) -> None:
        """Stop the running job at its next step, drop the queued ones, remove our temporary folder."""
        self.closing.set()
        self.worker.shutdown(wait=True, cancel_futures=True)
        if self._remove_out_dir is not None:
            self._remove_out_dir()

    def submit(self, report: str, seed: int) -> str:
        job_id = uuid.uuid4().hex
        with self.lock:
            if self.waiting() >= self.max_waiting:
                raise Busy
            self.jobs[job_id] = Job(report, seed)
            for old in list(self.jobs)[: max(0, len(self.jobs) - self.keep_jobs)]:
                if self.jobs[old].state in ("done", "error"):
                    del self.jobs[old]
                    shutil.rmtree(self.out_dir / old, ignore_errors=True)
        self.worker.submit(self.run, job_id)
        return job_id

    def run(self, job_id: str) -> None:
        job = self.jobs[job_id]
        job.state = "running"

        def progress(phase: str, done: int, total: int) -> None:
            if self.closing.is_set():
                raise _Closing
            job.phase, job.done, job.total = phase, done, total

        try:
            findings = parse_findings(job.report)
            video = self.pipeline(job.report, seed=job.seed, steps=self.steps, progress=progress)
            job.result = self.write(job_id, video.frames, video.metadata, findings)
            job.state = "done"
        except _Closing:
            job.error, job.state = "the demo is shutting down", "error"
        except Exception as err:  # noqa: BLE001 - any failure must reach the page, not kill the worker
            if not isinstance(err, ValueError):
                log.exception("demo job %s failed", job_id)
            job.error = public_message(err)
            job.state = "error"

    def write(
        self, job_id: str, frames: np.ndarray, metadata: dict[str, Any], findings: dict[str, Any]
    ) -> dict[str, Any]:
        """Save the video (mp4 + gif) and each frame (png); return what the page shows."""
        from ffasora.pipeline import GeneratedVideo

        folder = self.out_dir / job_id
        folder.mkdir(parents=True, exist_ok=True)
        video = GeneratedVideo(frames, metadata)
        video.save(folder / "video.mp4")
        video.save(folder / "video.gif")
        times = frame_times(len(frames), findings.get("arm_retina_s"))
        strip = []
        for i, (frame, t) in enumerate(zip(frames, times, strict=True)):
            Image.fromarray(frame).save(folder / f"frame_{i:02d}.png")
            strip.append({"url": f"/media/{job_id}/frame_{i:02d}.png", "t_s": t, "clock": clock(t)})
        return {
            "mp4": f"/media/{job_id}/video.mp4",
            "gif": f"/media/{job_id}/video.gif",
            "frames": strip,
            "findings": findings,
            "metadata": {
                k: metadata[k] for k in ("seed", "steps", "sampler", "guidance", "seconds") if k in metadata
            },
        }


def create_app(
    pipeline_dir: str | Path | None = None,
    *,
    pipeline: FFASoraPipeline | None = None,
    steps: int | None = None,
    device: str = "cpu",
    out_dir: str | Path | None = None,
    keep_jobs: int = 20,
    max_waiting: int = MAX_WAITING,
) -> FastAPI:
    """The demo app for the pipeline folder ``pipeline_dir`` (or an already loaded ``pipeline``).

    ``steps`` overrides the pipeline's sampler steps (fewer is faster on a CPU); results go to ``out_dir``
    (default: a new temporary folder, removed at shutdown); ``max_waiting`` bounds the queue.
    """
    if max_waiting < 1 or keep_jobs < 1:
        raise ValueError(f"max_waiting={max_waiting} and keep_jobs={keep_jobs} must be at least 1")
    if pipeline is None:
        if pipeline_dir is None:
            raise ValueError("create_app needs a pipeline folder or a pipeline")
        if steps is not None:  # checked before the models load
            folder = PipelineFolder.read(pipeline_dir)
            resolve_settings(folder.config, folder.patch_size, steps=steps)
        pipeline = FFASoraPipeline.from_pretrained(pipeline_dir, device=device)
    if steps is not None:
        pipeline.settings(steps=steps)
    owned = out_dir is None
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="ffasora-demo-"))
    demo = Demo(pipeline, steps, out, keep_jobs, max_waiting, owns_out_dir=owned)
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        demo.close()

    app = FastAPI(title="ffasora demo", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.demo = demo
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def headers(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers.update(_HEADERS)
        return response

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        c = demo.pipeline.config
        page = templates.get_template("index.html").render(
            examples=demo.examples,
            frames=c.num_frames,
            size=f"{c.height}x{c.width}",
            steps=demo.steps or c.diffusion.steps,
        )
        return HTMLResponse(page)

    @app.get("/api/examples")
    def examples() -> list[dict[str, str]]:
        return demo.examples

    @app.post("/api/findings")
    def findings(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        return parse_findings(_report(body))

    @app.post("/api/generate")
    def generate(body: dict[str, Any] = Body(...)) -> JSONResponse:
        report = _report(body)
        seed = body.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31:
            raise HTTPException(400, f"seed must be an integer in [0, 2^31), got {str(seed)[:40]!r}")
        try:
            job_id = demo.submit(report, seed)
        except Busy:
            message = f"busy: {demo.max_waiting} videos are being made or waiting; try again in a minute"
            raise HTTPException(503, message, headers={"Retry-After": str(RETRY_AFTER_S)}) from None
        return JSONResponse({"job": job_id}, status_code=202)

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str) -> dict[str, Any]:
        found = demo.jobs.get(job_id) if JOB_ID.match(job_id) else None
        if found is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return found.view(job_id)

    @app.get("/media/{job_id}/{name}")
    def media(job_id: str, name: str) -> FileResponse:
        if not (JOB_ID.match(job_id) and MEDIA_NAME.match(name)) or job_id not in demo.jobs:
            raise HTTPException(404, "not found")
        path = demo.out_dir / job_id / name
        if not path.is_file():
            raise HTTPException(404, "not found")
        return FileResponse(path)

    return app


def _report(body: dict[str, Any]) -> str:
    report = body.get("report")
    if not isinstance(report, str) or not report.strip():
        raise HTTPException(400, "report must be a non-empty string")
    if len(report) > MAX_REPORT_CHARS:
        raise HTTPException(400, f"report has {len(report)} characters; at most {MAX_REPORT_CHARS}")
    try:
        report.encode("utf-8")
    except UnicodeEncodeError:
        raise HTTPException(400, "report holds characters that are not valid Unicode text") from None
    return report
