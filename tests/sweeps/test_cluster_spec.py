"""The spec's ``slurm:`` section (sweeps.cluster): defaults, every problem with its key
path, the command line's overrides, and specs without it stored as before."""

from __future__ import annotations

from typing import Any

import pytest

from sweeps import SlurmSpec, SpecError, parse_spec, spec_json_schema


def test_no_section_means_the_defaults_and_dumps_as_before(good: dict[str, Any]) -> None:
    spec = parse_spec(good, "t")
    assert spec.slurm is None
    assert "slurm" not in spec.model_dump(mode="json")  # studies launched before compare equal
    defaults = SlurmSpec()
    assert (defaults.partition, defaults.time_limit) == (None, 60)
    assert (defaults.cpus_per_worker, defaults.gpus_per_worker, defaults.resubmits) == (1, 0, 3)
    assert "slurm" in spec_json_schema()["properties"]


def test_a_section_round_trips(good: dict[str, Any]) -> None:
    good["slurm"] = {
        "partition": "gpu",
        "time_limit": 30,
        "gpus_per_worker": 1,
        "mem_gb": 8,
        "sbatch": {"account": "lab", "qos": "preempt"},
        "setup": ["module load cuda"],
    }
    spec = parse_spec(good, "t")
    assert spec.slurm is not None and spec.slurm.sbatch == {"account": "lab", "qos": "preempt"}
    assert parse_spec(spec.model_dump(mode="json"), "again") == spec
    assert parse_spec({**good, "slurm": {}}, "t").slurm == SlurmSpec()


def test_every_problem_is_named_with_its_key(good: dict[str, Any]) -> None:
    good["slurm"] = {
        "time_limit": 0,
        "cpus_per_worker": "2",
        "gpus": 1,
        "sbatch": {"time": "5", "Bad Name": "x"},
    }
    with pytest.raises(SpecError) as caught:
        parse_spec(good, "t")
    text = str(caught.value)
    for key in ("slurm.time_limit", "slurm.cpus_per_worker", "slurm.gpus", "slurm.sbatch"):
        assert key in text, text
    assert "'time' is set by salsweep" in text and "'Bad Name' is not an sbatch option" in text


def test_options_override_the_spec() -> None:
    base = SlurmSpec(partition="cpu", sbatch={"account": "lab"})
    changed = base.overridden("options", partition="gpu", time_limit=None, sbatch={"qos": "hi"})
    assert changed.partition == "gpu" and changed.time_limit == 60
    assert changed.sbatch == {"account": "lab", "qos": "hi"}
    with pytest.raises(SpecError, match=r"slurm\.cpus_per_worker"):
        base.overridden("options", cpus_per_worker=0)
