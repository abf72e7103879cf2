"""The demo page through a real headless Chromium (Debian's chromium + chromedriver, driven by Selenium):
pick an example, see the parsed findings, generate, watch the progress, get the video and the frame strip.

``FFASORA_DEMO_SCREENSHOT=path.png`` saves a screenshot of the finished page (docs/images/demo_page.png).
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.browser


def test_example_to_video_and_frames(browser, server) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.set_window_size(1280, 1400)  # the docs screenshot shows the whole page
    wait = WebDriverWait(driver, 60)
    driver.get(server.url + "/")
    examples = driver.find_elements(By.CSS_SELECTOR, "button.example")
    assert len(examples) >= 5 and examples[0].text == "Central serous chorioretinopathy"
    examples[0].click()
    report = driver.find_element(By.ID, "report")
    assert "leak" in report.get_attribute("value")

    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#findings-present li.finding")))
    present = [
        li.get_attribute("data-code") for li in driver.find_elements(By.CSS_SELECTOR, "#findings-present li")
    ]
    absent = [
        li.get_attribute("data-code") for li in driver.find_elements(By.CSS_SELECTOR, "#findings-absent li")
    ]
    assert "CSC_LEAK" in present and "NVD" in absent

    # The tiny encoder knows only some words: generate from a report it can read.
    report.clear()
    report.send_keys("late leakage at the macula .")
    driver.find_element(By.ID, "seed").clear()
    driver.find_element(By.ID, "seed").send_keys("4")
    driver.find_element(By.ID, "generate").click()
    assert driver.find_element(By.ID, "progress").is_displayed()
    wait.until(ec.visibility_of_element_located((By.ID, "result")))
    frames = driver.find_elements(By.CSS_SELECTOR, "#frames li.frame")
    assert len(frames) == 5
    times = [f.find_element(By.CSS_SELECTOR, ".time").text for f in frames]
    assert times[0] == "00:10.0" and times[-1] == "10:00.0"  # G21 around the typical 12 s arm-retina time
    loaded = driver.execute_script(
        "return [...document.querySelectorAll('#frames img, #gif')].every(i => i.complete && i.naturalWidth === 32)"
    )
    assert loaded
    playable = "const v = document.getElementById('video'); return v.readyState >= 1 || !document.getElementById('gif').hidden"
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script(playable)
    )  # the mp4 plays, or the GIF stands in
    assert "seed 4, 2 steps" in driver.find_element(By.ID, "meta").text
    assert driver.find_element(By.ID, "progress-text").text == "done"
    assert not driver.find_element(By.ID, "generate").get_attribute("disabled")
    shot = os.environ.get("FFASORA_DEMO_SCREENSHOT")
    if shot:
        driver.save_screenshot(shot)


def test_an_unreadable_report_shows_an_error(browser, server) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.get(server.url + "/")
    driver.find_element(By.ID, "report").send_keys("qqq zzz www")
    driver.find_element(By.ID, "generate").click()
    WebDriverWait(driver, 60).until(ec.visibility_of_element_located((By.ID, "error")))
    assert "unknown" in driver.find_element(By.ID, "error").text.lower()


def test_a_variant_with_a_photograph(browser, variant_server, tmp_path) -> None:
    import hashlib

    import numpy as np
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    photo = tmp_path / "fundus.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(photo)
    driver = browser
    driver.get(variant_server.url + "/")
    assert not driver.find_element(By.ID, "photo-box").is_displayed()  # the standard model takes no photo
    Select(driver.find_element(By.ID, "variant")).select_by_value("photo")
    assert driver.find_element(By.ID, "photo-box").is_displayed()
    driver.find_element(By.ID, "photo").send_keys(str(photo))
    driver.find_element(By.ID, "report").send_keys("late leakage at the macula .")
    driver.find_element(By.ID, "generate").click()
    WebDriverWait(driver, 60).until(ec.visibility_of_element_located((By.ID, "result")))
    meta = driver.find_element(By.ID, "meta").text
    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    assert meta.startswith("model photo, ") and f"photograph sha256 {digest[:12]}" in meta
