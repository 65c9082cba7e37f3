"""The MLflow UI, in real headless Chromium, opens a sweep's URL on the answer.

``Client.share_sweep_view`` stores the sweep's view on the experiment and returns the
URL a sweep prints. Loaded without a click, the page must show the model-training layout
(not MLflow 3's GenAI one), every trial (listed flat, not folded under the parent run),
the searched parameters, ``optuna.value`` and the objective metric as visible columns,
and the best trial in the first row. Screenshots are copied to a stable path (printed).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from studies import load_study, trial_rows
from studies.store import as_record
from studies.tracking.client import Client
from studies.tracking.layout import VALUE_METRIC, ChildState, now_ms
from studies.tracking.runs import Tracker
from studies.tracking.server import ServerInfo
from tests.studies.sweep_helpers import Sweep
from tests.studies.tracking_helpers import open_child

pytestmark = pytest.mark.slow  # browser: from the chromium fixture (tests/conftest.py)

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
SEARCHED = ("loss.lambda_sg", "loss.num_scales")
METRIC = "val/abs_rel"
# (state, objective value, lambda_sg, num_scales) of trial-0 .. trial-5.
TRIALS: tuple[tuple[ChildState, float | None, float, int], ...] = (
    ("COMPLETE", 0.31, 0.1, 1),
    ("COMPLETE", 0.125, 0.7, 3),
    ("PRUNED", None, 0.2, 2),
    ("COMPLETE", 0.2, 0.4, 1),
    ("FAIL", None, 0.9, 2),
    ("COMPLETE", 0.25, 0.5, 2),
)


@dataclass(frozen=True)
class Row:
    """One row of the runs table: the run's name, link and cell texts by column key."""

    name: str
    href: str
    cells: dict[str, str]


def _column(kind: str, key: str) -> str:
    return f"{kind}.`{key}`"


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


def _close_assistant_panel(browser: WebDriver) -> None:
    """Close MLflow 3's chat panel, when shown, so that the table has the page's width."""
    for button in browser.find_elements(
        By.CSS_SELECTOR, "button[data-component-id='mlflow.assistant.chat_panel.close']"
    ):
        if button.is_displayed():
            button.click()


def _headers(browser: WebDriver) -> list[tuple[str, str]]:
    """(column key, header text) of every displayed header with a text, left to right."""
    cells = browser.find_elements(By.CSS_SELECTOR, ".ag-header-row-column .ag-header-cell")
    shown = [c for c in cells if c.is_displayed() and c.text.strip()]
    shown.sort(key=lambda c: c.location["x"])
    return [(str(c.get_attribute("col-id")), c.text.strip()) for c in shown]


def _rows(browser: WebDriver) -> list[Row]:
    """The table's rows in display order (ag-grid's row-index)."""
    names: dict[int, tuple[str, str]] = {}
    for row in browser.find_elements(By.CSS_SELECTOR, ".ag-pinned-left-cols-container .ag-row"):
        links = row.find_elements(By.CSS_SELECTOR, "a[href*='/runs/']")
        if links:
            index = int(str(row.get_attribute("row-index")))
            names[index] = (links[0].text.strip(), str(links[0].get_attribute("href")))
    cells: dict[int, dict[str, str]] = {}
    for row in browser.find_elements(By.CSS_SELECTOR, ".ag-center-cols-container .ag-row"):
        index = int(str(row.get_attribute("row-index")))
        cells[index] = {
            str(c.get_attribute("col-id")): c.text.strip()
            for c in row.find_elements(By.CSS_SELECTOR, ".ag-cell[col-id]")
        }
    return [Row(*names[i], cells.get(i, {})) for i in sorted(names)]


def _side_nav(browser: WebDriver) -> set[str]:
    return {a.text.strip() for a in browser.find_elements(By.TAG_NAME, "a") if a.text.strip()}


def _open(browser: WebDriver, url: str, names: Sequence[str], shot: Path) -> list[Row]:
    """Load ``url`` (no click on the table), wait until every run in ``names`` shows,
    save a screenshot; returns the rows."""
    browser.get(url)
    wait = WebDriverWait(browser, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))
    try:
        for name in names:
            link = f"//a[contains(@href, '/runs/') and normalize-space(.)='{name}']"
            wait.until(ec.visibility_of_element_located((By.XPATH, link)))
    except TimeoutException:
        browser.save_screenshot(str(shot))
        pytest.fail(f"runs did not show at {url}; screenshot: {shot}")
    _close_assistant_panel(browser)
    wait.until(lambda b: len(_rows(b)) >= len(names))
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    return _rows(browser)


def _keep(shot: Path, tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    """A stable copy, overwritten by each session: <pytest tmp root>/salsweep-ui/."""
    stable = tmp_path_factory.getbasetemp().parent / "salsweep-ui" / name
    stable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, stable)
    print(f"MLflow runs page screenshot: {stable}")


def _check_layout_and_columns(browser: WebDriver, searched: Sequence[str], metric: str) -> None:
    nav = _side_nav(browser)
    # The model-training sidebar (Runs, Models), not the GenAI one (Overview, Judges).
    assert {"Runs", "Models"} <= nav and not {"Overview", "Judges"} & nav, nav
    expected = [(_column("params", p), p) for p in searched]
    expected += [(_column("metrics", VALUE_METRIC), VALUE_METRIC)]
    expected += [(_column("metrics", metric), metric)]
    shown = [h for h in _headers(browser) if h[0].startswith(("params.", "metrics."))]
    assert shown == expected


def test_sweep_url_opens_on_the_best_trial(
    mlflow_server: ServerInfo,
    browser: WebDriver,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    study = f"ui-{uuid.uuid4().hex[:8]}"
    runs = Tracker(mlflow_server.url)
    tracker = runs.client
    experiment_id = tracker.ensure_experiment(study)
    parent = tracker.find_or_create_parent(experiment_id, study, {"spec.name": study}, "x: 1\n")
    for number, (state, value, lambda_sg, num_scales) in enumerate(TRIALS):
        params = {"loss.lambda_sg": lambda_sg, "loss.num_scales": num_scales, "lr": 0.001}
        run = open_child(runs, tmp_path / "trials", experiment_id, parent, number, params, study)
        for epoch in (1, 2):
            last = (value if value is not None else 0.5) + 0.01 * (2 - epoch)
            run.log_epoch(epoch, {METRIC: last, "train/total_loss": 1.0})
        run.end(state, value)
    assert runs.flush_runs()
    tracker.finish_run(parent, "FINISHED", now_ms())

    url = tracker.share_sweep_view(experiment_id, SEARCHED, METRIC, ascending=True)
    names = [f"trial-{n}" for n in range(len(TRIALS))]
    shot = tmp_path / "mlflow-runs.png"
    rows = _open(browser, url, [*names, "sweep"], shot)
    _keep(shot, tmp_path_factory, "mlflow-runs.png")

    _check_layout_and_columns(browser, SEARCHED, METRIC)
    # Every trial listed flat without a click, best objective first; the trials without a
    # value (pruned, failed) after them, the parent run last.
    complete = sorted((v, n) for n, (_, v, _, _) in enumerate(TRIALS) if v is not None)
    order = [r.name for r in rows]
    assert order[: len(complete)] == [f"trial-{n}" for _, n in complete]
    assert sorted(order[len(complete) : -1]) == ["trial-2", "trial-4"]
    assert order[-1] == "sweep"
    shown = {k: v for k, v in rows[0].cells.items() if k.startswith(("params.", "metrics."))}
    assert shown == {
        _column("params", "loss.lambda_sg"): "0.7",
        _column("params", "loss.num_scales"): "3",
        _column("metrics", VALUE_METRIC): "0.125",
        _column("metrics", METRIC): "0.125",  # its last epoch
    }
    values = [r.cells[_column("metrics", VALUE_METRIC)] for r in rows]
    assert values == ["0.125", "0.2", "0.25", "0.31", "-", "-", "-"]


def test_real_sweep_url_opens_on_its_best_trial(
    sweep: Sweep,
    browser: WebDriver,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The view of a real sweep, compared with the rows `salsweep studies show` prints."""
    study = load_study(sweep.name, sweep.target.storage_url)
    searched = list(study.user_attrs["spec"]["search"])
    metric = str(study.user_attrs["objective_metric"])
    ascending = study.user_attrs.get("direction", "minimize") == "minimize"
    url = Client(sweep.target.tracking_uri).share_sweep_view(
        sweep.experiment_id, searched, metric, ascending
    )
    shown = [r for r in trial_rows(as_record(study)) if r.mlflow_run_id is not None]
    scored = [r for r in shown if r.value is not None]
    assert scored, "the sweep fixture finished no trial"
    best = (min if ascending else max)(scored, key=lambda r: r.value or 0.0)
    names = [f"trial-{r.number}" for r in shown if r.number is not None]
    shot = tmp_path / "sweep-runs.png"
    rows = _open(browser, url, names, shot)
    _keep(shot, tmp_path_factory, "sweep-runs.png")

    _check_layout_and_columns(browser, searched, metric)
    first = rows[0]
    assert first.href.endswith(f"/runs/{best.mlflow_run_id}")
    assert float(first.cells[_column("metrics", VALUE_METRIC)]) == pytest.approx(best.value)
    for key, value in best.params.items():
        if key in searched:
            assert first.cells[_column("params", key)] == str(value)
