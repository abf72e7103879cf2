"""The rating app through a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium).

The server runs as its own process on 127.0.0.1, so "restart" really is a new process reading the database;
it is killed with SIGKILL first, so a rating acknowledged to the browser must already be on disk.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from review_fixtures import ServerProcess

from ffasora.review.store import Store

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(study_factory) -> Iterator[tuple[ServerProcess, object]]:
    created = study_factory()
    server = ServerProcess(created.path).start()
    try:
        yield server, created
    finally:
        server.stop()


def _rate(driver, score: int, call: str | None = None, findings: tuple[str, ...] = ()) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, f"quality-{score}").click()
    if call:
        driver.find_element(By.ID, f"real-call-{call}").click()
    for code in findings:
        box = driver.find_element(By.ID, f"finding-{code}")
        if not box.is_selected():
            box.click()
    driver.find_element(By.ID, "save").click()


def test_rater_completes_a_session_and_ratings_survive_a_restart(browser, served) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    server, created = served
    token = created.tokens["ana"]
    driver = browser
    driver.get(f"{server.url}/r/{token}/")
    driver.find_element(By.ID, "begin").click()
    assert "Video 1 of 6" in driver.title

    # The video really plays in Chromium (decoded, has a duration) and the frame strip loads.
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script("return document.getElementById('player').readyState") >= 2
    )
    assert driver.execute_script("return document.getElementById('player').duration") > 0
    assert driver.execute_script("return document.getElementById('strip').naturalWidth") > 0
    assert driver.execute_script("return document.getElementById('player').loop") is True

    scores = [2, 1, 3, 2, 4, 1]
    for n, score in enumerate(scores, start=1):
        WebDriverWait(driver, 10).until(lambda d, n=n: f"Video {n} of 6" in d.title)
        _rate(driver, score, call="synthetic" if n % 2 else "real", findings=("MA",) if n == 3 else ())
    WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.ID, "all-done")))

    # Go back and change the third rating; the form shows the saved answers.
    driver.get(f"{server.url}/r/{token}/item/3")
    assert driver.find_element(By.ID, "quality-3").is_selected()
    assert driver.find_element(By.ID, "finding-MA").is_selected()
    assert driver.find_element(By.ID, "progress-text").text == "6 / 6 rated"
    _rate(driver, 5)
    WebDriverWait(driver, 10).until(lambda d: "Video 4 of 6" in d.title)  # the server has acknowledged it

    # Kill the server without warning, start a new process, and find every rating again.
    server.stop(hard=True)
    server.start()
    driver.get(f"{server.url}/r/{token}/item/3")
    assert driver.find_element(By.ID, "quality-5").is_selected()
    assert driver.find_element(By.ID, "progress-text").text == "6 / 6 rated"
    rows = Store(created.path).table(
        "SELECT a.position, r.quality, r.revision FROM ratings r JOIN assignments a "
        "ON a.rater_id = r.rater_id AND a.video_id = r.video_id JOIN raters ra ON ra.id = r.rater_id "
        "WHERE ra.name = 'ana' ORDER BY a.position"
    )
    expected = [5 if p == 3 else s for p, s in enumerate(scores, start=1)]
    assert [r["quality"] for r in rows] == expected
    assert [r["revision"] for r in rows] == [1, 1, 2, 1, 1, 1]


def test_wrong_token_is_refused(browser, served) -> None:
    from selenium.webdriver.common.by import By

    server, created = served
    real = created.tokens["ben"]
    forged = ("A" if real[0] != "A" else "B") + real[1:]
    for path in (f"/r/{forged}/", f"/r/{forged}/item/1", f"/r/{forged}/media/1", "/r/not-a-token/item/1"):
        browser.get(server.url + path)
        assert "not valid" in browser.find_element(By.ID, "message").text
        assert browser.find_elements(By.ID, "player") == []


def test_path_traversal_is_refused(browser, served) -> None:
    server, created = served
    token = created.tokens["chen"]
    secret = created.path / "study.sqlite"
    for path in (
        f"/r/{token}/media/..%2F..%2Fstudy.sqlite",
        f"/r/{token}/media/%2e%2e/%2e%2e/study.sqlite",
        f"/r/{token}/strip/..%2F..%2Fraters.csv",
        "/static/..%2F..%2F..%2Fstudy.sqlite",
        f"/r/{token}/media/1/../../../../../../etc/passwd",
    ):
        browser.get(server.url + path)
        body = browser.page_source
        assert "SQLite format" not in body and "root:" not in body and "rater,path" not in body
        assert browser.execute_script("return document.contentType") == "text/html"
    # The raw request path, exactly as sent (a browser would normalise the dots away first).
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for raw in (
        f"/r/{token}/media/../../study.sqlite",
        f"/r/{token}/media/{secret}",
        "/static/../study.sqlite",
    ):
        conn.request("GET", raw)
        response = conn.getresponse()
        data = response.read()
        assert response.status in (400, 404), raw
        assert b"SQLite format" not in data
    conn.close()
