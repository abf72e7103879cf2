"""Screenshot of the demo page running the bundled model, for docs/images/demo_page.png (docs/bundled-model.md).

    .venv/bin/python scripts/bundled_model/demo_screenshot.py --model pretrained --out docs/images/demo_page.png

Starts ``ffasora demo`` on a free local port, opens it in headless Debian Chromium through Selenium (as the
browser tests do), clicks an example report, generates its video and saves the finished page. Chinese glyphs
need a CJK font (Debian: ``fonts-noto-cjk``).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the demo did not answer at {url} within {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("pretrained"))
    parser.add_argument("--out", type=Path, default=Path("docs/images/demo_page.png"))
    parser.add_argument("--example", type=int, default=1, help="index of the example button to click")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    port = free_port()
    demo = [sys.executable, "-m", "ffasora", "demo", "--model", str(args.model), "--port", str(port)]
    server = subprocess.Popen(demo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    profile = tempfile.mkdtemp(prefix="ffasora-chromium-")
    driver = None
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_up(url, 120)
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", "--disable-dev-shm-usage",
                     f"--user-data-dir={profile}"):  # fmt: skip
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        driver.set_window_size(1280, 1400)
        driver.get(url)
        driver.find_elements(By.CSS_SELECTOR, "button.example")[args.example].click()
        seed = driver.find_element(By.ID, "seed")
        seed.clear()
        seed.send_keys(str(args.seed))
        driver.find_element(By.ID, "generate").click()
        WebDriverWait(driver, 180).until(ec.visibility_of_element_located((By.ID, "result")))
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script(
                "return [...document.querySelectorAll('#frames img')].every(i => i.complete && i.naturalWidth > 0)"
            )
        )
        time.sleep(1.0)  # let the video element draw its first frame
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
        print(f"wrote {args.out}: {driver.find_element(By.ID, 'meta').text}")
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
