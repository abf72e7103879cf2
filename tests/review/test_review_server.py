"""The app's rules, request by request (FastAPI TestClient): tokens, CSRF, own ratings only, files, errors."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from ffasora.review.server import create_app
from ffasora.review.store import Store


@pytest.fixture(scope="module")
def app_and_study(study_factory):
    created = study_factory()
    return TestClient(create_app(created.path), raise_server_exceptions=False), created


def _csrf(client: TestClient, token: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get(f"/r/{token}/item/1").text)
    assert match
    return match.group(1)


def test_pages_need_a_valid_token(app_and_study) -> None:
    client, created = app_and_study
    token = created.tokens["ana"]
    assert client.get(f"/r/{token}/").status_code == 200
    for bad in ("x" * 32, token[:-1] + ("a" if token[-1] != "a" else "b"), "short", "%00" * 20):
        for path in ("/", "/item/1", "/media/1", "/strip/1", "/done", "/next"):
            assert client.get(f"/r/{bad}{path}").status_code == 403
        assert client.get(f"/api/r/{bad}/progress").status_code == 403
        assert client.post(f"/r/{bad}/item/1", data={"quality": "1"}).status_code == 403


def test_form_needs_csrf_and_valid_values(app_and_study) -> None:
    client, created = app_and_study
    token = created.tokens["ben"]
    csrf = _csrf(client, token)
    assert client.post(f"/r/{token}/item/1", data={"quality": "2"}).status_code == 403
    assert client.post(f"/r/{token}/item/1", data={"quality": "2", "csrf": "0" * 64}).status_code == 403
    other = _csrf(client, created.tokens["ana"])
    assert (
        other != csrf
        and client.post(f"/r/{token}/item/1", data={"quality": "2", "csrf": other}).status_code == 403
    )
    for form, message in (
        ({"quality": "0"}, "quality score"),
        ({"quality": "six"}, "quality score"),
        ({"quality": "2", "real_call": "maybe"}, "real or synthetic"),
        ({"quality": "2", "finding": ["MA", "NOT_A_CODE"]}, "Unknown finding"),
        ({"quality": "2", "comment": "x" * 3000}, "comment"),
    ):
        response = client.post(f"/r/{token}/item/1", data={"csrf": csrf, **form})
        assert response.status_code == 400 and message in response.text
    ok = client.post(f"/r/{token}/item/7", data={"csrf": csrf, "quality": "2"}, follow_redirects=False)
    assert ok.status_code == 404  # the list has 6 items
    headers = {"Sec-Fetch-Site": "cross-site"}
    cross = client.post(f"/r/{token}/item/1", data={"csrf": csrf, "quality": "2"}, headers=headers)
    assert cross.status_code == 403
    assert Store(created.path).table("SELECT COUNT(*) AS n FROM rating_events")[0]["n"] == 0


def test_a_rater_sees_and_changes_only_their_own_ratings(app_and_study) -> None:
    client, created = app_and_study
    ana, chen = created.tokens["ana"], created.tokens["chen"]
    csrf_ana, csrf_chen = _csrf(client, ana), _csrf(client, chen)
    saved = client.post(f"/r/{ana}/item/2", data={"csrf": csrf_ana, "quality": "4", "finding": ["NPA"]})
    assert saved.status_code == 200 and "Video 3 of 6" in saved.text  # redirected to the next video
    # chen's position 2 is chen's own item: unrated, whatever video it is.
    assert not re.search(r'<input[^>]*name="quality"[^>]*\schecked', client.get(f"/r/{chen}/item/2").text)
    assert re.search(r'<input[^>]*name="quality"[^>]*\schecked', client.get(f"/r/{ana}/item/2").text)
    assert all("quality" not in r for r in client.get(f"/api/r/{chen}/ratings").json())
    # chen's token with ana's CSRF is refused, and a JSON write goes to chen's list only.
    assert (
        client.put(
            f"/api/r/{chen}/ratings/2", json={"quality": 1}, headers={"X-CSRF-Token": csrf_ana}
        ).status_code
        == 403
    )
    put = client.put(f"/api/r/{chen}/ratings/2", json={"quality": 1}, headers={"X-CSRF-Token": csrf_chen})
    assert put.status_code == 200 and put.json()["revision"] == 1
    mine = {r["position"]: r for r in client.get(f"/api/r/{ana}/ratings").json()}
    assert mine[2]["quality"] == 4 and mine[2]["findings"] == ["NPA"]
    again = client.put(f"/api/r/{ana}/ratings/2", json={"quality": 3}, headers={"X-CSRF-Token": csrf_ana})
    assert again.json()["revision"] == 2
    assert (
        client.put(
            f"/api/r/{ana}/ratings/2", json={"quality": 9}, headers={"X-CSRF-Token": csrf_ana}
        ).status_code
        == 422
    )
    assert (
        client.put(f"/api/r/{ana}/ratings/2", content=b"[", headers={"X-CSRF-Token": csrf_ana}).status_code
        == 422
    )
    assert client.get(f"/api/r/{ana}/progress").json()["rated"] == 1


def test_only_the_study_files_are_served(app_and_study) -> None:
    client, created = app_and_study
    token = created.tokens["ana"]
    video = client.get(f"/r/{token}/media/1")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    part = client.get(f"/r/{token}/media/1", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and len(part.content) == 10  # seekable playback
    assert client.get(f"/r/{token}/strip/1").content[:8] == b"\x89PNG\r\n\x1a\n"
    for path in (
        f"/r/{token}/media/0",
        f"/r/{token}/media/-1",
        f"/r/{token}/media/..%2F..%2Fstudy.sqlite",
        f"/r/{token}/strip/..%2Fraters.csv",
        f"/r/{token}/media/1%2F..%2F..%2Fstudy.sqlite",
        "/static/..%2Freview%2Fstore.py",
        "/static/../../study.sqlite",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"SQLite" not in response.content and b"def " not in response.content


def test_pages_reveal_nothing_about_the_source(app_and_study) -> None:
    client, created = app_and_study
    token = created.tokens["ben"]
    videos = Store(created.path).table("SELECT uid, source FROM videos")
    for position in range(1, 7):
        page = client.get(f"/r/{token}/item/{position}").text
        for v in videos:
            assert v["uid"] not in page and v["source"] not in page
        assert "realset" not in page and "case_" not in page and ".npz" not in page
    headers = client.get(f"/r/{token}/item/1").headers
    assert (
        headers["referrer-policy"] == "no-referrer"
        and "frame-ancestors 'none'" in headers["content-security-policy"]
    )
    assert headers["cache-control"] == "no-store"


def test_errors_show_no_stack_trace(app_and_study, monkeypatch) -> None:
    client, created = app_and_study
    app = client.app
    review = app.state.review  # type: ignore[attr-defined]

    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(review.store, "positions", broken)
    response = client.get(f"/r/{created.tokens['ana']}/")
    assert response.status_code == 500
    assert "Traceback" not in response.text and "secret internal detail" not in response.text
    assert "Something went wrong" in response.text
    assert client.get("/r/abc/item/notanumber").status_code in (403, 404)
    assert "Traceback" not in client.get(f"/r/{created.tokens['ana']}/item/notanumber").text


@pytest.mark.parametrize("quality", [True, 2.9, 5.99, 3.0, "3.5", "", None, [3], 10**30, "9" * 40])
def test_quality_is_a_whole_number_from_1_to_5(app_and_study, quality) -> None:
    client, created = app_and_study
    token = created.tokens["ben"]
    csrf = client.get(f"/api/r/{token}/progress").json()["csrf"]
    before = client.get(f"/api/r/{token}/ratings").json()
    put = client.put(f"/api/r/{token}/ratings/3", json={"quality": quality}, headers={"X-CSRF-Token": csrf})
    assert put.status_code == 422 and "whole number" in put.json()["error"]
    assert client.get(f"/api/r/{token}/ratings").json() == before
    form = client.post(f"/r/{token}/item/3", data={"csrf": csrf, "quality": str(quality)})
    assert form.status_code == 400 and client.get(f"/api/r/{token}/ratings").json() == before


@pytest.mark.parametrize("position", ["0", "-1", str(2**63), "9" * 40])
def test_positions_outside_the_list_are_404_not_500(app_and_study, position) -> None:
    client, created = app_and_study
    token = created.tokens["ben"]
    csrf = client.get(f"/api/r/{token}/progress").json()["csrf"]
    put = client.put(
        f"/api/r/{token}/ratings/{position}", json={"quality": 2}, headers={"X-CSRF-Token": csrf}
    )
    assert put.status_code == 404 and "no such video" in put.json()["error"]
    for path in (
        f"/r/{token}/item/{position}",
        f"/r/{token}/media/{position}",
        f"/r/{token}/strip/{position}",
    ):
        assert client.get(path).status_code == 404
