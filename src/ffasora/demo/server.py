"""The demo app: one page, a JSON API, and one worker thread that runs the pipeline.

Routes::

    GET  /                      the page
    GET  /api/examples          example reports (English and Chinese)
    POST /api/findings          {"report"} -> the findings the parser reads from it
    GET  /api/variants          the models of the pipeline folder: name, description, steps, whether it takes a photo
    POST /api/generate          {"report", "seed", "variant", "image"} -> {"job"}; queues behind earlier jobs
    GET  /api/jobs/<job>        state, phase and progress; when done, the video, frames and findings
    GET  /media/<job>/<file>    a job's video (mp4, gif) and frames (png)

Generation is slow on a CPU, so it never runs in a request: jobs go to a single worker thread (one model,
one generation at a time) and the page polls the job for progress. At most ``max_waiting`` jobs wait or run
at once; past that ``/api/generate`` answers 503 "busy, try again" (with ``Retry-After``). The app is meant
for 127.0.0.1: it keeps the last ``keep_jobs`` results in a temporary folder, serves nothing else from disk,
and removes that folder when it shuts down (Ctrl-C included). Reports take the pipeline's text path, so
English and Chinese work alike. A failed job shows the reason for a report the model cannot use, never a
file path of the server; other failures show a plain sentence and go to the server log.

A pipeline folder with variants (:mod:`ffasora.pipeline_variants`) gets a model selector; a variant loads
(its DiT only; the VAE and text encoder are shared) the first time a job asks for it. A variant whose DiT takes
a colour fundus photograph accepts one with the job (``image``: PNG or JPEG bytes in base64, at most
``MAX_PHOTO_BYTES``), read as ``generate --image`` reads a file (:func:`ffasora.io.photo.decode_photo`); other
models refuse it. The provenance names the photograph by its SHA-256 (the page never sends a file name).
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import contextlib
import dataclasses
import hashlib
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
from ffasora.io.photo import decode_photo
from ffasora.pipeline import FFASoraPipeline, PipelineFolder, resolve_settings
from ffasora.pipeline_variants import STANDARD

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
MAX_REPORT_CHARS = 4000
MAX_WAITING = 4  # jobs queued or running at once; more get "busy, try again"
RETRY_AFTER_S = 30
MAX_PHOTO_BYTES = 10 * 2**20  # an uploaded fundus photograph, as PNG or JPEG bytes
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


@dataclass(frozen=True)
class Choice:
    """A model the page offers: the folder's own DiT ("standard") or one of its variants."""

    name: str
    description: str
    steps: int
    takes_image: bool


def model_choices(pipeline: FFASoraPipeline) -> dict[str, Choice]:
    """The loaded pipeline's model and, when it came from a folder, every variant the folder lists (read from
    the folder alone: nothing more loads until a job asks for it)."""
    folder = getattr(pipeline, "folder", None)
    if folder is None:
        dit = getattr(pipeline, "dit", None)
        name = getattr(pipeline, "variant", None) or STANDARD
        takes_image = bool(dit is not None and dit.config.image_channels)
        return {name: Choice(name, "", pipeline.config.diffusion.steps, takes_image)}
    choices = {}
    for name in (STANDARD, *folder.variants):
        read = PipelineFolder.read(folder.root, name)
        description = folder.variants[name].description if name in folder.variants else ""
        choices[name] = Choice(name, description, read.config.diffusion.steps, read.image_channels > 0)
    return choices


@dataclass
class Job:
    report: str
    seed: int
    variant: str = STANDARD
    photo: np.ndarray | None = None  # (H, W, 3) uint8 RGB
    photo_sha256: str = ""  # of the uploaded bytes
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
        self.choices = model_choices(pipeline)
        self.default = getattr(pipeline, "variant", None) or STANDARD
        if steps is not None:  # the demo's steps are the loaded model's; a variant keeps its own
            self.choices[self.default] = dataclasses.replace(self.choices[self.default], steps=steps)
        self.pipelines = {self.default: pipeline}  # variants load in the worker, when first asked for
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

    def submit(
        self,
        report: str,
        seed: int,
        variant: str | None = None,
        photo: np.ndarray | None = None,
        photo_sha256: str = "",
    ) -> str:
        job_id = uuid.uuid4().hex
        with self.lock:
            if self.waiting() >= self.max_waiting:
                raise Busy
            self.jobs[job_id] = Job(report, seed, variant or self.default, photo, photo_sha256)
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
            if job.variant not in self.pipelines:
                self.pipelines[job.variant] = self.pipeline.load_variant(job.variant)
            steps = self.steps if job.variant == self.default else None  # a variant keeps its own steps
            pipe = self.pipelines[job.variant]
            options: dict[str, Any] = {"image": job.photo} if job.photo is not None else {}
            video = pipe(job.report, seed=job.seed, steps=steps, progress=progress, **options)
            if job.photo_sha256:  # the uploaded file's hash, as `generate --image` names a file
                video.metadata["image_sha256"] = job.photo_sha256
            job.photo = None  # the pixels are not kept once used
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
                k: metadata[k]
                for k in ("seed", "steps", "sampler", "guidance", "seconds", "variant", "image_sha256")
                if k in metadata
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
            choices=list(demo.choices.values()),
            default=demo.default,
            max_photo_mb=MAX_PHOTO_BYTES // 2**20,
            variant_data={
                "default": demo.default,
                "choices": [dataclasses.asdict(choice) for choice in demo.choices.values()],
                "max_photo_bytes": MAX_PHOTO_BYTES,
            },
        )
        return HTMLResponse(page)

    @app.get("/api/examples")
    def examples() -> list[dict[str, str]]:
        return demo.examples

    @app.get("/api/variants")
    def variants() -> list[dict[str, Any]]:
        return [dataclasses.asdict(choice) for choice in demo.choices.values()]

    @app.post("/api/findings")
    def findings(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        return parse_findings(_report(body))

    @app.post("/api/generate")
    def generate(body: dict[str, Any] = Body(...)) -> JSONResponse:
        report = _report(body)
        seed = body.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31:
            raise HTTPException(400, f"seed must be an integer in [0, 2^31), got {str(seed)[:40]!r}")
        variant = body.get("variant", demo.default)
        if not isinstance(variant, str) or variant not in demo.choices:
            available = ", ".join(demo.choices)
            raise HTTPException(400, f"unknown model variant {str(variant)[:40]!r}; available: {available}")
        photo, digest = None, ""
        if body.get("image") is not None:
            photo, digest = _photo(body["image"], demo.choices[variant])
        try:
            job_id = demo.submit(report, seed, variant, photo, digest)
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


def _photo(value: Any, choice: Choice) -> tuple[np.ndarray, str]:
    """An uploaded photograph (base64 PNG or JPEG bytes) for the model ``choice``: its pixels and the SHA-256
    of its bytes, or a 4xx saying what is wrong."""
    if not choice.takes_image:
        raise HTTPException(
            400,
            f"the model {choice.name!r} takes no colour photograph (its DiT has no image condition); "
            "leave the photograph out or choose a model that takes one",
        )
    if not isinstance(value, str):
        raise HTTPException(400, "image must be a PNG or JPEG file's bytes in base64")
    if len(value) > (MAX_PHOTO_BYTES + 2) // 3 * 4:
        raise HTTPException(413, f"the photograph is larger than {MAX_PHOTO_BYTES // 2**20} MB")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, "image is not base64 text (a PNG or JPEG file's bytes in base64)") from None
    try:
        photo = decode_photo(data, "the photograph")
    except ValueError as err:
        raise HTTPException(400, str(err)) from None
    return photo, hashlib.sha256(data).hexdigest()


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
