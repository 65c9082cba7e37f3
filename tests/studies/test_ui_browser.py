"""The MLflow UI, in real headless Chromium, opens a sweep's URL on the answer.

``Client.share_sweep_view`` stores the sweep's view on the experiment and returns the
URL a sweep prints. Loaded without a click, the page must show the model-training layout
(not MLflow 3's GenAI one), every trial (listed flat, not folded under the parent run),
the searched parameters, ``optuna.value`` and the objective metric as visible columns,
and the best trial in the first row. Screenshots are copied to a stable path (printed).
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from cli import cli
from studies import load_study, trial_rows
from studies.attrs import config_label
from studies.confirmation.confirmed import load_confirmation
from studies.report.confirmation import divergence, format_estimate
from studies.run.session import LOSS_CHART_METRICS
from studies.store import as_record
from studies.tracking.layout import (
    CONFIRM_VALUE_METRIC,
    LABEL_TAG,
    STATE_TAG,
    SWEEP_VIEW_KEY,
    VALUE_METRIC,
    VERDICT_TAGS,
    ChildState,
    now_ms,
)
from studies.tracking.runs import Tracker
from studies.tracking.server import ServerInfo
from studies.tracking.view import LOSS_SECTION
from studies.urls import run_page_url, runs_page_url
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
# Sidebar entries of MLflow 3's GenAI layout that its model-training layout has not.
GENAI_SIDEBAR = {"Overview", "Judges", "Evaluation runs", "Sessions"}
METRIC = "val/abs_rel"
METHOD = "sparse-scale-adaptive"
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


def _check_training_layout(browser: WebDriver, where: str) -> None:
    """The page shows the model-training sidebar (Runs, Models), not the GenAI one
    (Overview, Judges, Evaluation runs), once its sidebar has rendered."""
    wait = WebDriverWait(browser, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))
    try:
        wait.until(lambda b: {"Runs", "Evaluation runs"} & _side_nav(b))
    except TimeoutException:
        pytest.fail(f"{where}: no sidebar at {browser.current_url}")
    nav = _side_nav(browser)
    assert {"Runs", "Models"} <= nav and not GENAI_SIDEBAR & nav, (where, browser.current_url, nav)


def _check_layout_and_columns(
    browser: WebDriver, searched: Sequence[str], metric: str, *, confirming: bool = False
) -> None:
    _check_training_layout(browser, "the printed address")
    expected = [
        (_column("tags", LABEL_TAG), LABEL_TAG),
        (_column("tags", STATE_TAG), STATE_TAG),
        (_column("params", "loss.method"), "loss.method"),
    ]
    expected += [(_column("params", p), p) for p in searched if p != "loss.method"]
    expected += [(_column("metrics", VALUE_METRIC), VALUE_METRIC)]
    expected += [(_column("metrics", metric), metric)]
    if confirming:
        expected += [(_column("metrics", CONFIRM_VALUE_METRIC), CONFIRM_VALUE_METRIC)]
        expected += [(_column("tags", tag), tag) for tag in VERDICT_TAGS]

    def shown(b: WebDriver) -> list[tuple[str, str]]:
        return [h for h in _headers(b) if h[0].startswith(("params.", "metrics.", "tags."))]

    # The table renders only the columns in view: a window as wide as a wide screen.
    browser.set_window_size(3200, 900)
    with contextlib.suppress(TimeoutException):  # compared below
        WebDriverWait(browser, 10).until(lambda b: len(shown(b)) >= len(expected))
    assert shown(browser) == expected


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
        params = {
            "loss.method": METHOD,
            "loss.lambda_sg": lambda_sg,
            "loss.num_scales": num_scales,
            "lr": 0.001,
        }
        run = open_child(runs, tmp_path / "trials", experiment_id, parent, number, params, study)
        for epoch in (1, 2):
            last = (value if value is not None else 0.5) + 0.01 * (2 - epoch)
            run.log_epoch(epoch, {METRIC: last, "train/total_loss": 1.0, "val/total_loss": 1.2})
        run.end(state, value)
    assert runs.flush_runs()
    tracker.finish_run(parent, "FINISHED", now_ms())

    url = tracker.share_sweep_view(
        experiment_id, SEARCHED, METRIC, ascending=True, loss_metrics=LOSS_CHART_METRICS
    )
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
        _column("params", "loss.method"): METHOD,
        _column("params", "loss.lambda_sg"): "0.7",
        _column("params", "loss.num_scales"): "3",
        _column("metrics", VALUE_METRIC): "0.125",
        _column("metrics", METRIC): "0.125",  # its last epoch
    }
    values = [r.cells[_column("metrics", VALUE_METRIC)] for r in rows]
    assert values == ["0.125", "0.2", "0.25", "0.31", "-", "-", "-"]
    # How each trial ended, as a column: the pruned one reads PRUNED (its run is FINISHED,
    # not KILLED, which MLflow's UI draws in red as it draws FAILED).
    states = {r.name: r.cells[_column("tags", STATE_TAG)] for r in rows}
    assert states == {f"trial-{n}": t[0] for n, t in enumerate(TRIALS)} | {"sweep": "-"}

    # The Chart tab of the same view: the objective's cards first, then train and
    # validation loss on one chart, then MLflow's own cards (section "val": the rest).
    _check_charts(browser, url, tmp_path, tmp_path_factory)


# Where each text shows on the page: [top, left] of every element whose own text is it (or
# it followed by a count, "Objective (2)"), in the order of the page.
_TEXT_AT = """
const want = arguments[0], out = {};
for (const el of document.querySelectorAll('body *')) {
  const own = Array.from(el.childNodes).filter(n => n.nodeType === 3)
    .map(n => n.textContent).join('').trim();
  if (!own) continue;
  for (const w of want) {
    if (own === w || own.startsWith(w + ' (')) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.height > 0) (out[w] = out[w] || []).push([r.top, r.left]);
    }
  }
}
return out;
"""


def _check_charts(
    browser: WebDriver, url: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The view's Chart tab: section "Objective" first (optuna.value, then the objective
    per epoch), then "Loss: train and validation" with both losses on one card, then the
    UI's own sections ("val")."""
    browser.set_window_size(1600, 4000)  # every card in view: the grid renders lazily
    browser.get(url + "&compareRunsMode=CHART")
    loss = " vs ".join(LOSS_CHART_METRICS)  # the UI's title of a card of several metrics
    order = ["Objective", VALUE_METRIC, METRIC, LOSS_SECTION, loss, "val"]

    def found(b: WebDriver) -> dict[str, list[list[float]]]:
        return dict(b.execute_script(_TEXT_AT, order))

    wait = WebDriverWait(browser, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))
    try:
        wait.until(lambda b: set(found(b)) == set(order))
    except TimeoutException:
        shot = tmp_path / "charts.png"
        browser.save_screenshot(str(shot))
        pytest.fail(f"the chart cards did not show ({found(browser)}); screenshot: {shot}")
    _close_assistant_panel(browser)
    shot = tmp_path / "mlflow-charts.png"
    browser.save_screenshot(str(shot))
    _keep(shot, tmp_path_factory, "mlflow-charts.png")
    at = found(browser)
    top = min(y for y, _x in at["Objective"])  # the first section; the toolbar is above it
    first = {text: min(tuple(p) for p in at[text] if p[0] >= top) for text in order}
    # Sections top to bottom; in "Objective", optuna.value's card left of the metric's.
    rows = [first[t][0] for t in ("Objective", VALUE_METRIC, LOSS_SECTION, loss, "val")]
    assert rows == sorted(rows), first
    assert first[VALUE_METRIC][0] == pytest.approx(first[METRIC][0], abs=5), first
    assert first[VALUE_METRIC][1] < first[METRIC][1], first


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
    # The address the sweep printed: the view the sweep stored (with its confirmation).
    url = runs_page_url(sweep.target.tracking_uri, sweep.experiment_id, SWEEP_VIEW_KEY)
    shown = [r for r in trial_rows(as_record(study)) if r.mlflow_run_id is not None]
    scored = [r for r in shown if r.value is not None]
    assert scored, "the sweep fixture finished no trial"
    best = (min if ascending else max)(scored, key=lambda r: r.value or 0.0)
    names = [f"trial-{r.number}" for r in shown if r.number is not None]
    shot = tmp_path / "sweep-runs.png"
    rows = _open(browser, url, names, shot)
    _keep(shot, tmp_path_factory, "sweep-runs.png")

    _check_layout_and_columns(browser, searched, metric, confirming=True)
    first = rows[0]
    assert first.href.endswith(f"/runs/{best.mlflow_run_id}")
    assert float(first.cells[_column("metrics", VALUE_METRIC)]) == pytest.approx(best.value)
    for key, value in best.params.items():
        if key in searched:
            assert first.cells[_column("params", key)] == str(value)


def _wait_url(browser: WebDriver, part: str) -> None:
    WebDriverWait(browser, WAIT_S).until(lambda b: part in b.current_url)


def _click(browser: WebDriver, xpath: str) -> None:
    """A real click (MLflow's tabs answer the mouse, not a scripted click event)."""
    wait = WebDriverWait(browser, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))
    wait.until(ec.element_to_be_clickable((By.XPATH, xpath))).click()


def test_a_journey_through_a_sweep_stays_in_the_training_layout(
    sweep: Sweep,
    browser: WebDriver,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A fresh browser on the server salsweep started: the printed address, a click on a
    trial in the table, its artifacts, its parent run, the experiment from MLflow's home
    page, and the addresses salsweep writes (a run page, its artifacts) all open in the
    model-training layout; the UI's own links carry no ``workflowType``."""
    study = as_record(load_study(sweep.name, sweep.target.storage_url))
    trial = next(r for r in trial_rows(study) if r.number is not None and r.mlflow_run_id)
    name, run_id = f"trial-{trial.number}", str(trial.mlflow_run_id)
    url = runs_page_url(sweep.target.tracking_uri, sweep.experiment_id, SWEEP_VIEW_KEY)
    rows = _open(browser, url, [name], tmp_path / "journey-0.png")
    _check_training_layout(browser, "the printed address")
    link = next(r.href for r in rows if r.name == name)
    assert "workflowType" not in link  # MLflow's own link: the layout comes from storage
    assert (
        browser.execute_script("return window.localStorage.getItem('mlflow.workflowType_v1')")
        == '"machine_learning"'
    )

    _click(browser, f"//a[contains(@href, '/runs/') and normalize-space(.)='{name}']")
    _wait_url(browser, f"/runs/{run_id}")
    _check_training_layout(browser, "a trial clicked in the table")
    _click(browser, "//button[@role='tab' and normalize-space(.)='Artifacts']")
    _wait_url(browser, f"/runs/{run_id}/artifacts")
    WebDriverWait(browser, WAIT_S).until(
        ec.visibility_of_element_located((By.XPATH, "//*[normalize-space(.)='previews']"))
    )
    _check_training_layout(browser, "the trial's artifacts")
    browser.save_screenshot(str(tmp_path / "journey-artifacts.png"))
    _keep(tmp_path / "journey-artifacts.png", tmp_path_factory, "journey-artifacts.png")
    _click(browser, "//button[@role='tab' and normalize-space(.)='Overview']")
    _click(browser, "//a[contains(@href, '/runs/') and normalize-space(.)='sweep']")
    _wait_url(browser, f"/runs/{sweep.parent_run_id}")
    _check_training_layout(browser, "the parent run")

    # The experiment's own address, without the printed link's parameters (as from MLflow's
    # home page or a bookmark): the layout comes from the browser's storage. (The home
    # page's list shows only the most recent experiments: in a whole-suite run the session's
    # server holds dozens, so the test opens the address a click on it opens.)
    browser.get(sweep.target.tracking_uri.rstrip("/") + "/")
    browser.get(f"{sweep.target.tracking_uri.rstrip('/')}/#/experiments/{sweep.experiment_id}")
    _wait_url(browser, f"/experiments/{sweep.experiment_id}")
    _check_training_layout(browser, "the experiment opened without the printed link")

    for written in (
        run_page_url(sweep.target.tracking_uri, sweep.experiment_id, run_id),
        run_page_url(sweep.target.tracking_uri, sweep.experiment_id, run_id, "previews"),
    ):
        browser.get(written)
        _wait_url(browser, run_id)
        _check_training_layout(browser, written)


def test_the_confirmation_reads_in_the_runs_table_as_studies_show_prints_it(
    sweep: Sweep,
    browser: WebDriver,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Each replicate shows its configuration and the score the verdict counts; the
    parent run shows the verdict's figures, the ones `salsweep studies show` prints."""
    study = as_record(load_study(sweep.name, sweep.target.storage_url))
    confirmation = load_confirmation(study)
    assert confirmation is not None
    replicates = {
        run_id: (config, value)
        for config in confirmation.configs
        for run_id, value in zip(config.mlflow_run_ids, config.validation.values(), strict=True)
    }
    browser.set_window_size(3000, 1100)  # every column in view, as a wide screen shows it
    url = runs_page_url(sweep.target.tracking_uri, sweep.experiment_id, SWEEP_VIEW_KEY)
    shot = tmp_path / "confirmation.png"
    rows = _open(browser, url, ["sweep"], shot)
    _keep(shot, tmp_path_factory, "sweep-confirmation.png")

    by_run = {r.href.rsplit("/", 1)[-1]: r for r in rows}
    for run_id, (config, value) in replicates.items():
        cells = by_run[run_id].cells
        assert cells[_column("tags", LABEL_TAG)] == config.label
        assert float(cells[_column("metrics", CONFIRM_VALUE_METRIC)]) == pytest.approx(value)
        method = "ssi" if config.is_baseline else "sparse-scale-adaptive"
        assert cells[_column("params", "loss.method")].startswith(("sparse-", method))
    trial = next(r for r in rows if r.name.startswith("trial-"))
    assert trial.cells[_column("tags", LABEL_TAG)] == config_label(trial.name)

    shown = CliRunner().invoke(
        cli,
        ["studies", "show", sweep.name, "--storage", sweep.target.storage_url],
        terminal_width=400,
    )
    assert shown.exit_code == 0, shown.output
    parent = by_run[sweep.parent_run_id].cells
    for tag, role in zip(
        VERDICT_TAGS,
        (confirmation.winner, confirmation.runner_up, confirmation.baseline),
        strict=True,
    ):
        assert role is not None
        label, _, figures = parent[_column("tags", tag)].partition(": ")
        validation = format_estimate(role.validation_estimate)
        test = format_estimate(role.test_estimate)
        assert label == role.label
        assert figures == (
            f"{validation} on validation, test {test}, {role.seeds} seeds, "
            f"diverged {divergence(role)}"
        )
        row = next(line for line in shown.output.splitlines() if f" {label} " in line)
        # as show prints it: seeds, the divergence rate beside the means
        assert validation in row and test in row and divergence(role) in row
        assert f" {role.seeds} " in row
