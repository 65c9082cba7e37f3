"""The MLflow UI, in real headless Chromium, shows a sweep's trial runs under its parent.

Loads ``Tracker.experiment_ui_url`` (the training-runs table, not MLflow 3's GenAI
overview), unfolds the parent run ``sweep`` and finds ``trial-0`` .. ``trial-2``. A
screenshot is saved in the test's tmp folder and copied to a stable path (printed).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from studies import load_study
from studies.server import ServerInfo
from studies.tracking import ChildState, Tracker
from tests.studies.sweep_helpers import Sweep

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STATES: tuple[ChildState, ...] = ("COMPLETE", "PRUNED", "FAIL")  # trial-0, -1, -2
TRIALS = len(STATES)
# The React app loads its bundles and then the runs: allow a slow, shared machine.
WAIT_S = 60
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--window-size=1600,900",
)


def _run_link(name: str) -> str:
    """XPath of the link of the run named ``name`` in the runs table."""
    return f"//a[normalize-space(.)='{name}']"


def _close_assistant_panel(browser: WebDriver) -> None:
    """Close MLflow 3's chat panel, when shown, so the screenshot shows more of the table."""
    for button in browser.find_elements(
        By.CSS_SELECTOR, "button[data-component-id='mlflow.assistant.chat_panel.close']"
    ):
        if button.is_displayed():
            button.click()


@pytest.fixture
def browser(chromium: tuple[str, str], tmp_path: Path) -> Iterator[WebDriver]:
    binary, driver_path = chromium
    options = webdriver.ChromeOptions()
    # Both paths given: selenium never runs selenium-manager (no downloads).
    options.binary_location = binary
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def test_runs_table_shows_trials_under_the_parent(
    mlflow_server: ServerInfo,
    browser: WebDriver,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    study = f"ui-{uuid.uuid4().hex[:8]}"
    tracker = Tracker(mlflow_server.url)
    experiment_id = tracker.ensure_experiment(study)
    parent = tracker.find_or_create_parent(experiment_id, study, {"spec.name": study}, "x: 1\n")
    for trial, state in enumerate(STATES):
        run_id = tracker.start_child(
            experiment_id, parent, trial, {"lambda_sg": 0.1 * trial}, study
        )
        for epoch in (1, 2):
            tracker.log_epoch(run_id, epoch, {"val/abs_rel": 0.3 - 0.05 * epoch + 0.01 * trial})
        tracker.end_child(run_id, state, 0.2 if state == "COMPLETE" else None)
    tracker.end_parent(parent, "FINISHED")

    url = tracker.experiment_ui_url(experiment_id)
    assert url.endswith(f"/#/experiments/{experiment_id}/runs")
    names = [f"trial-{trial}" for trial in range(TRIALS)]
    screenshot = _show_trials(browser, url, parent, names, tmp_path)

    # A stable copy, overwritten by each session: <pytest tmp root>/salsweep-ui/.
    stable = tmp_path_factory.getbasetemp().parent / "salsweep-ui" / "mlflow-runs.png"
    stable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot, stable)
    print(f"MLflow runs table screenshot: {stable}")


def test_real_sweep_page_lists_its_trials(
    sweep: Sweep,
    browser: WebDriver,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The address a real sweep prints shows that sweep's trial runs."""
    study = load_study(sweep.name, sweep.target.storage_url)
    names = [f"trial-{t.number}" for t in study.get_trials()]
    url = Tracker(sweep.target.tracking_uri).experiment_ui_url(sweep.experiment_id)
    screenshot = _show_trials(browser, url, sweep.parent_run_id, names, tmp_path)
    stable = tmp_path_factory.getbasetemp().parent / "salsweep-ui" / "sweep-runs.png"
    stable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot, stable)
    print(f"MLflow runs table of a real sweep: {stable}")


def _show_trials(
    browser: WebDriver, url: str, parent: str, names: list[str], out_dir: Path
) -> Path:
    """Open ``url``, unfold the parent run ``sweep``, check every run in ``names`` shows;
    returns the screenshot."""
    browser.get(url)
    wait = WebDriverWait(browser, WAIT_S)
    screenshot = out_dir / "mlflow-runs.png"
    try:
        parent_link = wait.until(ec.presence_of_element_located((By.XPATH, _run_link("sweep"))))
        assert str(parent_link.get_attribute("href")).endswith(f"/runs/{parent}")
        # Child runs are folded: the expander is the button in the parent's name cell.
        expander = parent_link.find_element(
            By.XPATH, "./ancestor::div[contains(@class, 'ag-cell')][1]//button"
        )
        wait.until(ec.element_to_be_clickable(expander)).click()
        for name in names:
            wait.until(ec.visibility_of_element_located((By.XPATH, _run_link(name))))
    except TimeoutException:
        browser.save_screenshot(str(screenshot))
        pytest.fail(f"runs did not show at {url}; screenshot: {screenshot}")
    _close_assistant_panel(browser)
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000  # a rendered page, not a blank one
    body = browser.find_element(By.TAG_NAME, "body").text
    for name in names:
        assert name in body
    return screenshot
