"""Screenshots of a user's journey through a sweep in the MLflow UI, in a fresh headless
Chromium (no local storage): the address `sweep launch` prints, a trial opened by a click
in the table, its artifacts, its parent run, and the experiment opened from MLflow's home
page. See docs/screenshots/README.md.

    .venv/bin/python docs/screenshots/shoot.py OUT_DIR [--port 5077] [--prefix after-]

Runs a tiny sweep (4 trials, the SSI baseline, a confirmation of 2 configurations and the
baseline on 3 seeds) in a temporary data dir with its own server, about 2 minutes on 2
cores. Needs Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

SPEC = """\
name: screenshots
base:
  loss: {method: sparse-scale-adaptive}
  data: {height: 32, width: 64, num_train: 16, num_val: 4, num_test: 4}
  model: {base_channels: 4, num_stages: 2}
  epochs: 2
  steps_per_epoch: 2
  batch_size: 2
  device: cpu
  previews: true
search:
  loss.lambda_sg: {low: 0.1, high: 1.0, log: true}
  loss.num_scales: {low: 1, high: 3}
  loss.use_inv_depth: bool
budget: {n_trials: 4}
sampler: {type: tpe, seed: 0}
pruner: {type: none}
baseline: true
confirm: {top_k: 2, initial_seeds: 3, max_seeds: 3}
"""
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1600,900",
)
WAIT_S = 60


def browser(profile: Path) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(WAIT_S)
    return driver


def settle(driver: WebDriver, xpath: str, seconds: float = 3.0) -> None:
    WebDriverWait(driver, WAIT_S).until(ec.visibility_of_element_located((By.XPATH, xpath)))
    time.sleep(seconds)  # charts and lazy columns
    for button in driver.find_elements(
        By.CSS_SELECTOR, "button[data-component-id='mlflow.assistant.chat_panel.close']"
    ):
        if button.is_displayed():
            button.click()
    time.sleep(0.5)


def click(driver: WebDriver, xpath: str) -> None:
    """A real click (MLflow's tabs answer the mouse, not a scripted click event)."""
    WebDriverWait(driver, WAIT_S).until(ec.element_to_be_clickable((By.XPATH, xpath))).click()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--port", type=int, default=5077)
    parser.add_argument("--prefix", default="")
    parser.add_argument(
        "--home", type=Path, help="keep the data dir and its server (again: no new sweep)"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    salsweep = [sys.executable, "cli.py"]
    with tempfile.TemporaryDirectory(prefix="salsweep-shots-") as tmp:
        home = args.home or Path(tmp) / "home"
        env = {**os.environ, "SALSWEEP_HOME": str(home)}
        env.pop("MLFLOW_TRACKING_URI", None)
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(SPEC)
        run = dict(env=env, check=True, capture_output=True, text=True)
        subprocess.run([*salsweep, "server", "start", "--port", str(args.port)], **run)
        try:
            printed = home / "printed.txt"
            if not printed.is_file():
                launched = subprocess.run([*salsweep, "sweep", "launch", str(spec)], **run)
                printed.write_text(launched.stdout)
            url = re.search(r"MLflow runs: (\S+)", printed.read_text())
            assert url is not None, printed.read_text()
            shown = subprocess.run([*salsweep, "studies", "show", "screenshots"], **run)
            (args.out / f"{args.prefix}studies-show.txt").write_text(shown.stdout)
            shoot(args.out, args.prefix, url.group(1), f"http://127.0.0.1:{args.port}/")
        finally:
            if args.home is None:
                subprocess.run([*salsweep, "server", "stop"], env=env, check=False)
    return 0


def shoot(out: Path, prefix: str, url: str, home_page: str) -> None:
    with tempfile.TemporaryDirectory(prefix="salsweep-chromium-") as profile:
        driver = browser(Path(profile))
        try:
            driver.get(url)
            settle(driver, "//a[contains(@href, '/runs/') and normalize-space(.)='trial-0']")
            driver.save_screenshot(str(out / f"{prefix}1-printed-address.png"))
            driver.set_window_size(3000, 900)  # every column of the view
            time.sleep(3)
            driver.save_screenshot(str(out / f"{prefix}1-printed-address-wide.png"))
            driver.set_window_size(1600, 900)
            time.sleep(2)
            click(driver, "//a[contains(@href, '/runs/') and normalize-space(.)='trial-0']")
            settle(driver, "//*[normalize-space(.)='trial-0']")
            driver.save_screenshot(str(out / f"{prefix}2-trial-run.png"))
            click(driver, "//button[@role='tab' and normalize-space(.)='Artifacts']")
            time.sleep(3)
            for name in ("previews", "epoch_002.png"):
                click(driver, f"//*[normalize-space(text())='{name}']")
                time.sleep(3)
            driver.save_screenshot(str(out / f"{prefix}3-trial-artifacts.png"))
            click(driver, "//button[@role='tab' and normalize-space(.)='Overview']")
            click(driver, "//a[contains(@href, '/runs/') and normalize-space(.)='sweep']")
            settle(driver, "//*[normalize-space(.)='sweep']")
            driver.save_screenshot(str(out / f"{prefix}4-parent-run.png"))
            driver.get(home_page)
            time.sleep(2)
            click(driver, "//a[normalize-space(.)='screenshots']")
            time.sleep(6)
            driver.save_screenshot(str(out / f"{prefix}5-experiment-from-home.png"))
        finally:
            driver.quit()


if __name__ == "__main__":
    raise SystemExit(main())
