"""The CUDA path of a training run: device selection, bf16 autocast, finite metrics.

Tests marked ``cuda`` need a GPU and skip, with the reason, where torch sees none (CI has
none: they run on GPU machines, `pytest -m cuda`). The tests without the mark run
everywhere: they hide the GPUs from a child process (``CUDA_VISIBLE_DEVICES=""``), so that
asking for CUDA without one is checked on GPU machines too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import yaml

from tests.process_helpers import PythonChild, SalsweepProcess
from trainer import TrainConfig, fit, resolve_device
from trainer.metrics import metric_keys

ROOT = Path(__file__).resolve().parents[2]

gpu_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")

# One optimiser step: the epoch's train/total_loss is then the loss of the initial weights
# on the first batch, the same on every device up to rounding.
ONE_STEP = {
    "data": {"height": 32, "width": 64, "num_train": 8, "num_val": 4, "num_test": 4},
    "model": {"base_channels": 4, "num_stages": 2},
    "loss": {"num_scales": 2},
    "epochs": 1,
    "steps_per_epoch": 1,
    "batch_size": 2,
    "previews": False,
}


def one_step(device: str, method: str = "sparse-scale-adaptive") -> TrainConfig:
    return TrainConfig.model_validate(
        {**ONE_STEP, "device": device, "loss": {"num_scales": 2, "method": method}}
    )


@contextmanager
def conv_output_dtypes() -> Iterator[set[torch.dtype]]:
    """The dtypes of every Conv2d output while the block runs (a real forward hook)."""
    seen: set[torch.dtype] = set()

    def hook(module: torch.nn.Module, _inputs: object, output: object) -> None:
        if isinstance(module, torch.nn.Conv2d) and isinstance(output, torch.Tensor):
            seen.add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def hidden_gpus_env() -> dict[str, str]:
    return {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}


@pytest.mark.cuda
@gpu_only
def test_auto_picks_cuda() -> None:
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda").type == "cuda"
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.cuda
@gpu_only
@pytest.mark.parametrize("method", ["sparse-scale-adaptive", "scale-adaptive", "ssi"])
def test_fit_on_cuda_uses_bf16_and_matches_cpu_at_step_0(method: str) -> None:
    with conv_output_dtypes() as gpu_dtypes:
        gpu = fit(one_step("auto", method))
    with conv_output_dtypes() as cpu_dtypes:
        cpu = fit(one_step("cpu", method))
    assert gpu.device.startswith("cuda") and cpu.device == "cpu"
    # bf16 autocast on CUDA only: convolutions ran in bfloat16 there, float32 on CPU.
    assert torch.bfloat16 in gpu_dtypes and gpu_dtypes <= {torch.bfloat16, torch.float32}
    assert cpu_dtypes == {torch.float32}
    metrics = gpu.final
    for key in ("train/total_loss", *(f"val/{k}" for k in metric_keys()), "val/total_loss"):
        assert math.isfinite(metrics[key]), (key, metrics[key])
    assert metrics["val/num_images"] == 4.0
    assert metrics["peak_memory_mb"] > 0.0  # torch.cuda.max_memory_allocated
    # Same seed, same initial weights and batch: the step-0 loss differs by bf16 rounding
    # only (about 0.2% when bf16 autocast is emulated on CPU; 2% leaves room for kernels).
    assert metrics["train/total_loss"] == pytest.approx(cpu.final["train/total_loss"], rel=0.02)


def test_cuda_without_a_gpu_is_a_clear_value_error(python_child: PythonChild) -> None:
    """Runs everywhere: the GPUs are hidden from a child process."""
    code = (
        "import torch\n"
        "from trainer import resolve_device\n"
        "assert not torch.cuda.is_available()\n"
        "assert resolve_device('auto').type == 'cpu'\n"
        "try:\n"
        "    resolve_device('cuda')\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('no error')\n"
    )
    result = python_child.run("-c", code, env=hidden_gpus_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "device 'cuda' was requested but CUDA is not available here"


def test_train_on_cuda_without_a_gpu_fails_in_one_line(
    tmp_path: Path, salsweep_process: SalsweepProcess
) -> None:
    """``salsweep train --device cuda`` where there is no GPU: exit 1 with one error line,
    no traceback. A child process: only a fresh one can have the GPUs hidden."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**ONE_STEP, "device": "cpu"}))
    result = salsweep_process.run(
        "train", str(config), "--device", "cuda", env=hidden_gpus_env(), cwd=ROOT, timeout=120
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "CUDA is not available" in errors[0], result.stderr
