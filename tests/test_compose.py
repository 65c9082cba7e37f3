"""docker-compose.yml validates (docker-compose v1 ``config``) and is wired as designed:
MLflow published on loopback only, its SQLite file on a named volume, the sweep pointed at
it, PostgreSQL and workers only under the ``multi`` profile. No Docker engine is needed."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# Variables the compose file reads: the test sees the file's own defaults.
COMPOSE_VARS = ("POSTGRES_PASSWORD", "SALSWEEP_STORAGE", "SALSWEEP_STUDY", "COMPOSE_PROFILES")


def _config(docker_compose: str, *extra: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_VARS}
    result = subprocess.run(
        [docker_compose, "-f", "docker-compose.yml", *extra, "config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@pytest.fixture(scope="module")
def config(docker_compose: str) -> dict[str, Any]:
    return _config(docker_compose)


def test_mlflow_is_published_on_loopback_only(config: dict[str, Any]) -> None:
    ports = config["services"]["mlflow"]["ports"]
    assert ports, "the MLflow port is not published"
    for port in ports:
        # docker-compose v1 prints "HOST_IP:HOST_PORT:CONTAINER_PORT/tcp"; long syntax
        # would be a mapping with host_ip.
        if isinstance(port, dict):
            assert port.get("host_ip") == "127.0.0.1", port
        else:
            assert str(port).startswith("127.0.0.1:"), port
    assert any(str(p).startswith("127.0.0.1:5000:5000") for p in ports)
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_mlflow_sqlite_file_is_on_a_named_volume(config: dict[str, Any]) -> None:
    mlflow = config["services"]["mlflow"]
    command = mlflow["command"]
    backend = command[command.index("--backend-store-uri") + 1]
    assert backend.startswith("sqlite:////")
    db_dir = str(Path(backend.removeprefix("sqlite:///")).parent)
    mounts = {}
    for volume in mlflow["volumes"]:
        source, target = str(volume).split(":")[:2]
        mounts[target] = source
    assert db_dir in mounts, f"no volume at {db_dir} (mounts: {mounts})"
    assert mounts[db_dir] in config["volumes"], "the SQLite volume is not a named volume"
    artifacts = command[command.index("--artifacts-destination") + 1]
    assert artifacts.startswith(db_dir + "/")  # artifacts persist on the same volume
    assert "--serve-artifacts" in command
    assert command[command.index("--workers") + 1] == "1"
    assert "test" in mlflow["healthcheck"]


def test_mlflow_accepts_the_host_names_it_is_called_by(config: dict[str, Any]) -> None:
    command = config["services"]["mlflow"]["command"]
    allowed = command[command.index("--allowed-hosts") + 1].split(",")
    assert "mlflow:5000" in allowed and "127.0.0.1:5000" in allowed


def test_sweep_uses_the_mlflow_service(config: dict[str, Any]) -> None:
    sweep = config["services"]["sweep"]
    assert sweep["build"]["target"] == "sweep"
    assert sweep["command"] == ["sweep", "launch", "sweeps/default.yaml"]
    assert sweep["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert sweep["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert (ROOT / "sweeps" / "default.yaml").is_file()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM \S+ AS sweep$", dockerfile, re.MULTILINE)
    assert "torch==2.13.0" in dockerfile and "mlflow==3.17.2" in dockerfile


def test_multi_profile_adds_postgres_and_workers(docker_compose: str) -> None:
    config = _config(docker_compose, "--profile", "multi")
    services = config["services"]
    assert services["postgres"]["profiles"] == ["multi"]
    assert services["worker"]["profiles"] == ["multi"]
    assert "profiles" not in services["mlflow"] and "profiles" not in services["sweep"]
    storage = services["worker"]["environment"]["SALSWEEP_STORAGE"]
    assert storage.startswith("postgresql+psycopg2://") and "@postgres:5432/" in storage
    assert services["worker"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "ports" not in services["postgres"]
