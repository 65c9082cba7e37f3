"""Screenshots of what a sweep with pruned trials and a confirmation shows, in a fresh
headless Chromium: the runs table at the printed address (every column of the view), a
pruned trial's run page, the view's Chart tab, and the companion study ``NAME:confirm`` in
optuna-dashboard. See docs/screenshots/README.md.

    .venv/bin/python docs/screenshots/shoot_states.py OUT_DIR [--port 5078] [--prefix after-]

Runs a tiny sweep (8 trials, the median pruner, the SSI baseline, a confirmation of 2
configurations and the baseline on 3 seeds) in a temporary data dir with its own server,
about 2 minutes on 2 cores. Needs Debian's chromium and chromium-driver, and
optuna-dashboard (`make setup-dev`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import optuna

# The browser and its wait are shoot.py's (this folder is on sys.path when run as a script).
from shoot import browser, settle

SPEC = """\
name: states
base:
  loss: {method: sparse-scale-adaptive}
  data: {height: 32, width: 64, num_train: 16, num_val: 4, num_test: 4, sparse: true}
  model: {base_channels: 4, num_stages: 2}
  epochs: 3
  steps_per_epoch: 2
  batch_size: 2
  device: cpu
  previews: false
search:
  loss.lambda_sg: {low: 0.05, high: 2.0, log: true}
  loss.num_scales: {low: 1, high: 3}
  lr: {low: 1.0e-4, high: 3.0e-3, log: true}
budget: {n_trials: 8}
sampler: {type: tpe, seed: 0, n_startup_trials: 4}
pruner: {type: median, n_startup_trials: 2, n_warmup_steps: 1}
baseline: true
confirm: {top_k: 2, initial_seeds: 3, max_seeds: 3}
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--port", type=int, default=5078)
    parser.add_argument("--dashboard-port", type=int, default=8089)
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
            shown = subprocess.run([*salsweep, "studies", "show", "states"], **run)
            (args.out / f"{args.prefix}states-studies-show.txt").write_text(shown.stdout)
            storage = f"sqlite:///{home / 'optuna.db'}"
            shoot_mlflow(args.out, args.prefix, url.group(1), storage)
            shoot_dashboard(args.out, args.prefix, storage, args.dashboard_port)
        finally:
            if args.home is None:
                subprocess.run([*salsweep, "server", "stop"], env=env, check=False)
    return 0


def shoot_mlflow(out: Path, prefix: str, url: str, storage: str) -> None:
    """The printed address (wide: every column), a pruned trial's run page, the Chart tab."""
    with tempfile.TemporaryDirectory(prefix="salsweep-chromium-") as profile:
        driver = browser(Path(profile))
        try:
            driver.set_window_size(3000, 1100)  # every column and run of the view
            driver.get(url)
            settle(driver, "//a[contains(@href, '/runs/') and normalize-space(.)='trial-0']")
            driver.save_screenshot(str(out / f"{prefix}6-runs-with-states-wide.png"))
            pruned = pruned_run_url(url, storage)
            if pruned is not None:
                driver.set_window_size(1600, 900)
                driver.get(pruned)
                settle(driver, "//*[normalize-space(.)='Overview']")
                driver.save_screenshot(str(out / f"{prefix}7-pruned-trial-run.png"))
            driver.set_window_size(1600, 2400)
            driver.get(url + "&compareRunsMode=CHART")
            settle(driver, "//*[contains(normalize-space(.), 'optuna.value')]", seconds=8)
            driver.save_screenshot(str(out / f"{prefix}8-chart-tab.png"))
        finally:
            driver.quit()


def pruned_run_url(url: str, storage: str) -> str | None:
    """The run page of the first pruned trial (from the Optuna study), same server."""
    study = optuna.load_study(study_name="states", storage=storage)
    for trial in study.trials:
        if trial.state == optuna.trial.TrialState.PRUNED and "mlflow_run_id" in trial.user_attrs:
            base, _, _query = url.partition("/#/")
            experiment = study.user_attrs["mlflow_experiment_id"]
            run = trial.user_attrs["mlflow_run_id"]
            return f"{base}/#/experiments/{experiment}/runs/{run}?workflowType=machine_learning"
    return None


def shoot_dashboard(out: Path, prefix: str, storage: str, port: int) -> None:
    """optuna-dashboard's page of the companion study ``states:confirm``."""
    summaries = optuna.study.get_all_study_summaries(storage)
    study_id = next(s._study_id for s in summaries if s.study_name == "states:confirm")
    dashboard = shutil.which("optuna-dashboard", path=str(Path(sys.executable).parent))
    assert dashboard is not None, "optuna-dashboard is not installed (make setup-dev)"
    server = subprocess.Popen(
        [dashboard, storage, "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):  # gunicorn and the storage: 20 s and more on a busy machine
            try:
                urllib.request.urlopen(f"{base}/api/studies", timeout=2).read()
                break
            except OSError:
                time.sleep(1)
        with tempfile.TemporaryDirectory(prefix="salsweep-chromium-") as profile:
            driver = browser(Path(profile))
            try:
                driver.set_window_size(1600, 1800)
                driver.get(f"{base}/dashboard/studies/{study_id}")
                settle(driver, "//*[contains(normalize-space(.), 'Best Trial')]", seconds=5)
                driver.save_screenshot(str(out / f"{prefix}9-dashboard-companion.png"))
                # A confirmation replicate's page: its user attributes (label, seed, ...).
                driver.get(f"{base}/dashboard/studies/{study_id}/trials?numbers=1")
                settle(driver, "//*[contains(normalize-space(.), 'User Attributes')]", seconds=4)
                driver.save_screenshot(str(out / f"{prefix}9-dashboard-companion-trial.png"))
            finally:
                driver.quit()
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    raise SystemExit(main())
