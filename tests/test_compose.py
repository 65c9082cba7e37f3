"""docker-compose.yml validates (docker-compose v1 ``config``) and is wired as designed:
MLflow published on loopback only, its SQLite file on a named volume, the sweep pointed at
it, PostgreSQL and workers only under the ``multi`` profile, GPU variants of the sweep and
the worker built from the Dockerfile's ``cuda`` target with an NVIDIA device reservation.
No Docker engine is needed (the images are not built here)."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# Variables the compose file reads: the test sees the file's own defaults.
COMPOSE_VARS = (
    "POSTGRES_PASSWORD",
    "SALSWEEP_STORAGE",
    "SALSWEEP_STUDY",
    "COMPOSE_PROFILES",
    "TORCH_CUDA",
)
# The CUDA builds PyTorch publishes for torch 2.13 (download.pytorch.org/whl/<variant>).
TORCH_213_CUDA_VARIANTS = ("cu126", "cu129", "cu130", "cu132")


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


def dockerfile_stages() -> dict[str, str]:
    """The Dockerfile's stages by name -> their text, in file order (the last is the default
    target of a plain ``docker build``)."""
    text = (ROOT / "Dockerfile").read_text()
    stages: dict[str, str] = {}
    parts = re.split(r"^FROM \S+ AS (\S+)$", text, flags=re.MULTILINE)
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        stages[name] = body
    return stages


def torch_pin() -> str:
    """The torch version pyproject.toml pins (``torch==X``)."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d.split("==", 1)[1] for d in deps if re.match(r"torch\s*==", d)]
    assert len(pins) == 1, deps
    return pins[0].strip()


def gpu_devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    devices: list[dict[str, Any]] = (
        service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    )
    return devices


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


def test_mlflow_runs_salsweep_ui_plugin(config: dict[str, Any]) -> None:
    """The server opens its UI in the model-training layout (studies/tracking/ui_app.py):
    the image installs the project's wheel (without its dependencies: the plugin imports
    MLflow only), built by an earlier stage."""
    command = config["services"]["mlflow"]["command"]
    assert command[command.index("--app-name") + 1] == "salsweep"
    stages = dockerfile_stages()
    mlflow = stages["mlflow"]
    assert "COPY --from=app /wheels /wheels" in mlflow
    assert "pip install --no-deps /wheels/*.whl" in mlflow
    assert '"--app-name", "salsweep"' in mlflow  # a plain `docker run` too
    assert list(stages).index("app") < list(stages).index("mlflow")


def test_mlflow_runs_without_its_job_runner(config: dict[str, Any]) -> None:
    env = config["services"]["mlflow"]["environment"]
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


def test_sweep_uses_the_mlflow_service(config: dict[str, Any]) -> None:
    sweep = config["services"]["sweep"]
    assert sweep["build"]["target"] == "cpu"
    assert sweep["command"] == ["sweep", "launch", "sweeps/default.yaml"]
    assert sweep["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert sweep["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert (ROOT / "sweeps" / "default.yaml").is_file()
    assert "mlflow==3.17.2" in dockerfile_stages()["mlflow"]


def test_every_build_target_is_a_dockerfile_stage(config: dict[str, Any]) -> None:
    stages = dockerfile_stages()
    assert list(stages)[-1] == "cpu"  # a plain `docker build .` gives the CPU image
    targets = {name: s["build"]["target"] for name, s in config["services"].items() if "build" in s}
    assert targets == {
        "mlflow": "mlflow",
        "sweep": "cpu",
        "worker": "cpu",
        "sweep-gpu": "cuda",
        "worker-gpu": "cuda",
    }
    assert set(targets.values()) <= set(stages)


def test_cpu_and_cuda_images_install_the_pinned_torch() -> None:
    """Both images install the torch that pyproject.toml pins, each from its own PyTorch
    index; the CUDA variant is one that exists for torch 2.13, and compose builds the
    Dockerfile's default one."""
    stages, version = dockerfile_stages(), torch_pin()
    cpu_install = f"pip install torch=={version} --index-url https://download.pytorch.org/whl/cpu"
    assert cpu_install in stages["cpu"]
    cuda = stages["cuda"]
    assert (
        f"pip install torch=={version} --index-url https://download.pytorch.org/whl/${{TORCH_CUDA}}"
        in cuda
    )
    default = re.search(r"^ARG TORCH_CUDA=(\S+)$", cuda, re.MULTILINE)
    assert default is not None and default.group(1) in TORCH_213_CUDA_VARIANTS
    assert version.startswith("2.13."), "check TORCH_213_CUDA_VARIANTS for the new torch"
    compose_text = (ROOT / "docker-compose.yml").read_text()
    assert f"TORCH_CUDA: ${{TORCH_CUDA:-{default.group(1)}}}" in compose_text
    # Neither salsweep image lets the project's own install pull another torch.
    for name in ("cpu", "cuda"):
        body = stages[name]
        torch_at = body.index("pip install torch==")
        assert body.index("pip install /wheels/") > torch_at, name
    assert "pip wheel --no-deps" in stages["app"]


def test_gpu_profile_adds_a_sweep_with_a_gpu_reservation(docker_compose: str) -> None:
    services = _config(docker_compose, "--profile", "gpu")["services"]
    gpu, cpu = services["sweep-gpu"], services["sweep"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["target"] == "cuda" and gpu["image"] != cpu["image"]
    assert gpu["build"]["args"] == {"TORCH_CUDA": "cu130"}
    assert gpu_devices(gpu) == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    # The same sweep as the CPU service, on its own study file.
    assert gpu["command"] == cpu["command"]
    assert gpu["environment"] == cpu["environment"]
    assert gpu["depends_on"] == cpu["depends_on"]
    assert gpu["volumes"] != cpu["volumes"]
    assert [str(v).split(":")[1] for v in gpu["volumes"]] == ["/data"]
    # No other service asks for a GPU.
    for name, service in services.items():
        if name not in ("sweep-gpu", "worker-gpu"):
            assert gpu_devices(service) == [] and "deploy" not in service, name


def test_build_arg_picks_another_cuda_variant(docker_compose: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_VARS}
    result = subprocess.run(
        [docker_compose, "-f", "docker-compose.yml", "config"],
        cwd=ROOT,
        env={**env, "TORCH_CUDA": "cu126"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert services["sweep-gpu"]["build"]["args"] == {"TORCH_CUDA": "cu126"}
    assert services["worker-gpu"]["build"]["args"] == {"TORCH_CUDA": "cu126"}


def test_multi_profile_adds_postgres_and_workers(docker_compose: str) -> None:
    config = _config(docker_compose, "--profile", "multi")
    services = config["services"]
    assert services["postgres"]["profiles"] == ["multi", "multi-gpu"]
    assert services["worker"]["profiles"] == ["multi"]
    assert "profiles" not in services["mlflow"] and "profiles" not in services["sweep"]
    storage = services["worker"]["environment"]["SALSWEEP_STORAGE"]
    assert storage.startswith("postgresql+psycopg2://") and "@postgres:5432/" in storage
    assert services["worker"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "ports" not in services["postgres"]


def test_multi_gpu_profile_adds_postgres_and_a_gpu_worker(docker_compose: str) -> None:
    services = _config(docker_compose, "--profile", "multi-gpu")["services"]
    worker, cpu_worker = services["worker-gpu"], services["worker"]
    assert worker["profiles"] == ["multi-gpu"]
    assert "multi-gpu" in services["postgres"]["profiles"]
    assert worker["build"]["target"] == "cuda"
    assert gpu_devices(worker) == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert worker["environment"] == cpu_worker["environment"]  # the shared PostgreSQL study
    assert worker["command"] == cpu_worker["command"]
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
