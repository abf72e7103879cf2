"""The rating web app: server-rendered pages, one secret link per rater, nothing that reveals a video's source.

Every page and API call is addressed through the rater's token (``/r/<token>/...``); a rater's videos are
addressed by position in *their* blinded list, so a rater can neither name another rater's items nor any file:
media are looked up in the database by (rater, position) and served only from the study's media folder.
Forms carry a CSRF token (an HMAC of the rater's token hash under the study secret); JSON calls must send it in
``X-CSRF-Token``, which a cross-site page cannot do without a CORS pre-flight this app never grants.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Body, FastAPI, Form, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from ffasora.review.store import REAL_CALLS, Item, Rater, Store, hash_token

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_COMMENT = 2000
MAX_POSITION = 1_000_000  # far above any study; keeps a path's number inside the database's integers

# The anchors raters see beside each score (1 = best, as in FFA Sora's 1-5 scale).
QUALITY_ANCHORS: dict[int, tuple[str, str]] = {
    1: (
        "Excellent",
        "Looks like a diagnostic-quality angiogram: vessels, filling phases and lesions are clear.",
    ),
    2: ("Good", "Minor artefacts that do not affect interpretation."),
    3: ("Fair", "Noticeable artefacts; interpretation is possible with effort."),
    4: ("Poor", "Major artefacts; anatomy or dye dynamics are implausible in places."),
    5: ("Very poor", "Not interpretable as a fluorescein angiogram."),
}

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self'; script-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The token is in the URL: never send it on to another site.
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Submission:
    quality: int
    real_call: str | None
    findings: tuple[str, ...]
    comment: str


class Review:
    """The app's state: the store, the template environment and the study settings read once at start."""

    def __init__(self, study_path: str | Path) -> None:
        self.store = Store(study_path)
        meta = self.store.meta()
        self.title: str = meta.get("title", "Review")
        self.ask_real: bool = bool(meta.get("ask_real"))
        self.secret = bytes.fromhex(meta["secret"])
        self.findings = self.store.findings()
        self.codes = {code for code, _ in self.findings}
        self.media_root = (self.store.root / "media").resolve()
        self.strip_root = (self.store.root / "strips").resolve()
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(name).render(title=self.title, **context)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def rater(self, token: str) -> Rater:
        rater = self.store.rater_by_token(token) if TOKEN_PATTERN.match(token) else None
        if rater is None:
            raise HTTPException(403, "This link is not valid. Please use the personal link you were sent.")
        return rater

    def item(self, rater: Rater, position: int) -> Item:
        item = self.store.item(rater.id, position) if 1 <= position <= MAX_POSITION else None
        if item is None:
            raise HTTPException(404, "There is no such video in your list.")
        return item

    def csrf(self, token: str) -> str:
        return hmac.new(self.secret, b"csrf:" + hash_token(token).encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, token: str, sent: str | None) -> None:
        if not sent or not hmac.compare_digest(sent, self.csrf(token)):
            raise HTTPException(
                403, "The form has expired or did not come from this site. Reload and try again."
            )

    def validate(self, quality: Any, real_call: Any, findings: Any, comment: Any) -> Submission:
        """Check a submission from a form or JSON; ``ValueError`` says what is wrong in rater-facing words.

        The quality is a whole number 1-5: a JSON integer, or a form's digit string. ``true``, ``2.9`` or
        ``"5.99"`` are refused, not rounded.
        """
        score = _whole_number(quality)
        if score not in QUALITY_ANCHORS:
            raise ValueError("Choose a quality score from 1 to 5 (a whole number).")
        call = real_call or None
        if call is not None and (not self.ask_real or call not in REAL_CALLS):
            raise ValueError("Answer 'real or synthetic?' with one of the offered choices.")
        if not isinstance(findings, list | tuple) or not all(isinstance(f, str) for f in findings):
            raise ValueError("Findings must be a list of codes.")
        unknown = set(findings) - self.codes
        if unknown:
            raise ValueError(f"Unknown finding code(s): {', '.join(sorted(unknown))[:200]}.")
        text = comment or ""
        if not isinstance(text, str) or len(text) > MAX_COMMENT:
            raise ValueError(f"The comment must be text of at most {MAX_COMMENT} characters.")
        return Submission(score, call, tuple(sorted(set(findings))), text.strip())

    def next_position(self, rater: Rater, after: int) -> int | None:
        """The next unrated position after ``after`` (wrapping round), or None when all are rated."""
        positions = self.store.positions(rater.id)
        unrated = [p for p, rated in positions if not rated]
        later = [p for p in unrated if p > after]
        candidates = later or unrated
        return candidates[0] if candidates else None

    def rate_page(
        self, token: str, rater: Rater, item: Item, error: str | None = None, **form: Any
    ) -> HTMLResponse:
        saved = self.store.rating(rater.id, item.video_id)
        positions = self.store.positions(rater.id)
        values = {
            "quality": form.get("quality", saved.quality if saved else None),
            "real_call": form.get("real_call", saved.real_call if saved else None),
            "findings": set(form.get("findings", saved.findings if saved else ())),
            "comment": form.get("comment", saved.comment if saved else ""),
        }
        return self.render(
            "rate.html",
            status=400 if error else 200,
            token=token,
            rater=rater,
            item=item,
            positions=positions,
            rated=sum(r for _, r in positions),
            saved=saved,
            values=values,
            error=error,
            anchors=QUALITY_ANCHORS,
            ask_real=self.ask_real,
            findings=self.findings,
            csrf=self.csrf(token),
        )


def _whole_number(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = value.strip() if isinstance(value, str) else ""
    if text.isascii() and text.isdigit():
        digits = text.lstrip("0") or "0"
        return int(digits) if len(digits) <= 3 else None  # no giant numbers; "05" is 5
    return None


def create_app(study_path: str | Path) -> FastAPI:
    """The FastAPI app serving one study folder (see ``store.py`` for its layout)."""
    review = Review(study_path)
    app = FastAPI(title="ffasora review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.review = review
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _install_handlers(app, review)
    _page_routes(app, review)
    _media_routes(app, review)
    _api_routes(app, review)
    return app


def _install_handlers(app: FastAPI, review: Review) -> None:
    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        # A form posted from another site is refused before it reaches a handler.
        if request.method not in ("GET", "HEAD") and request.headers.get("sec-fetch-site") == "cross-site":
            return _error(review, request, 403, "Cross-site requests are not accepted.")
        response: Response = await call_next(request)
        response.headers.update(_SECURITY_HEADERS)
        return response

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error(review, request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith("/api/"):
            return _error(review, request, 422, "The request's path or body is not valid.")
        return _error(review, request, 404, "There is no such page.")

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        # The traceback goes to the server log only; the rater sees a plain apology.
        log.exception("error serving %s %s", request.method, request.url.path.split("/")[1])
        return _error(
            review, request, 500, "Something went wrong on the server. Your saved ratings are safe."
        )


def _error(review: Review, request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status, headers=_SECURITY_HEADERS)
    response = review.render("error.html", status=status, message=message, status_code=status)
    response.headers.update(_SECURITY_HEADERS)
    return response


def _page_routes(app: FastAPI, review: Review) -> None:
    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return review.render("error.html", message="Open the personal link you were sent.", status_code=200)

    @app.get("/r/{token}/", response_class=HTMLResponse)
    def start(token: str) -> HTMLResponse:
        rater = review.rater(token)
        positions = review.store.positions(rater.id)
        rated = sum(r for _, r in positions)
        return review.render(
            "start.html", token=token, rater=rater, total=len(positions), rated=rated, anchors=QUALITY_ANCHORS
        )

    @app.get("/r/{token}/next")
    def next_item(token: str) -> RedirectResponse:
        rater = review.rater(token)
        position = review.next_position(rater, 0)
        target = f"/r/{token}/item/{position}" if position else f"/r/{token}/done"
        return RedirectResponse(target, status_code=303)

    @app.get("/r/{token}/item/{position}", response_class=HTMLResponse)
    def rate(token: str, position: int) -> HTMLResponse:
        rater = review.rater(token)
        return review.rate_page(token, rater, review.item(rater, position))

    @app.post("/r/{token}/item/{position}")
    def submit(
        token: str,
        position: int,
        csrf: str = Form(""),
        quality: str = Form(""),
        real_call: str = Form(""),
        finding: list[str] = Form([]),  # noqa: B006 - FastAPI reads the default, never mutates it
        comment: str = Form(""),
    ) -> Response:
        rater = review.rater(token)
        review.check_csrf(token, csrf)
        item = review.item(rater, position)
        try:
            sub = review.validate(quality, real_call, finding, comment)
        except ValueError as exc:
            form = {"quality": quality, "real_call": real_call, "findings": finding, "comment": comment}
            return review.rate_page(token, rater, item, error=str(exc), **form)
        review.store.save_rating(rater.id, position, sub.quality, sub.real_call, sub.findings, sub.comment)
        following = position + 1 if position < item.total else review.next_position(rater, position)
        target = f"/r/{token}/item/{following}" if following else f"/r/{token}/done"
        return RedirectResponse(target, status_code=303)

    @app.get("/r/{token}/done", response_class=HTMLResponse)
    def done(token: str) -> HTMLResponse:
        rater = review.rater(token)
        positions = review.store.positions(rater.id)
        return review.render(
            "done.html", token=token, rater=rater, positions=positions, rated=sum(r for _, r in positions)
        )


def _media_routes(app: FastAPI, review: Review) -> None:
    def serve(path: Path | None, root: Path, media_type: str) -> FileResponse:
        resolved = path.resolve() if path is not None else None
        # The database names the file; still, only files inside the study's own folder are ever sent.
        if resolved is None or not resolved.is_relative_to(root) or not resolved.is_file():
            raise HTTPException(404, "There is no such file.")
        return FileResponse(
            resolved, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"}
        )

    @app.get("/r/{token}/media/{position}")
    def video(token: str, position: int) -> FileResponse:
        rater = review.rater(token)
        return serve(review.item(rater, position).media, review.media_root, "video/mp4")

    @app.get("/r/{token}/strip/{position}")
    def strip(token: str, position: int) -> FileResponse:
        rater = review.rater(token)
        return serve(review.item(rater, position).strip, review.strip_root, "image/png")


def _api_routes(app: FastAPI, review: Review) -> None:
    @app.get("/api/r/{token}/progress")
    def progress(token: str) -> dict[str, Any]:
        rater = review.rater(token)
        positions = review.store.positions(rater.id)
        return {"rated": sum(r for _, r in positions), "total": len(positions), "csrf": review.csrf(token)}

    @app.get("/api/r/{token}/ratings")
    def ratings(token: str) -> list[dict[str, Any]]:
        rater = review.rater(token)
        out = []
        for position, rated in review.store.positions(rater.id):
            saved = review.store.rating(rater.id, review.item(rater, position).video_id) if rated else None
            out.append({"position": position, **(dataclasses.asdict(saved) if saved else {})})
        return out

    @app.put("/api/r/{token}/ratings/{position}")
    def put_rating(
        token: str,
        position: int,
        body: dict[str, Any] = Body(...),
        x_csrf_token: str | None = Header(None),
    ) -> JSONResponse:
        rater = review.rater(token)
        review.check_csrf(token, x_csrf_token)
        review.item(rater, position)
        try:
            sub = review.validate(
                body.get("quality"), body.get("real_call"), body.get("findings", []), body.get("comment", "")
            )
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        revision = review.store.save_rating(
            rater.id, position, sub.quality, sub.real_call, sub.findings, sub.comment
        )
        return JSONResponse({"position": position, "revision": revision})
