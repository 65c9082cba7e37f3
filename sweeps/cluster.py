"""The spec's ``slurm:`` section: what each worker job of ``sweep launch --executor slurm``
asks the cluster for. Every key has a default, so ``slurm: {}`` (or no section: the
defaults) runs on the cluster's default partition; the command line's options
(``--partition``, ``--time-limit``, ``--cpus-per-worker``, ``--gpus-per-worker``,
``--sbatch KEY=VALUE``) override the spec's values for one launch.

    slurm:
      partition: gpu            # default: the cluster's default partition
      time_limit: 60            # minutes per job; a job at its limit is resubmitted
      cpus_per_worker: 2        # torch's threads in the job
      gpus_per_worker: 1        # 0: none (GPUs are asked as --gpus-per-node)
      mem_gb: 8                 # default: the partition's default
      sbatch: {account: lab, qos: preemptible}   # any other sbatch option, verbatim
      setup: ["module load cuda/12.4"]           # shell lines before the worker starts
      resubmits: 3              # per worker: jobs started again after one ended early
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sweeps.errors import SpecError, problems_from_validation

__all__ = ["SBATCH_RESERVED", "SlurmSpec"]

# sbatch options that salsweep sets itself (from the keys above, or for its logs and
# signals): `sbatch:` may not give them.
SBATCH_RESERVED = frozenset(
    {
        "array",
        "cpus-per-task",
        "error",
        "gpus-per-node",
        "job-name",
        "mem",
        "open-mode",
        "output",
        "partition",
        "signal",
        "time",
        "wrap",
    }
)
_OPTION = re.compile(r"^[a-z][a-z0-9-]*$")


class SlurmSpec(BaseModel):
    """The resources of each worker job on a Slurm cluster (``--executor slurm``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    partition: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.,\-]+$",
        description="Partition (sbatch --partition); null = the cluster's default.",
    )
    time_limit: int = Field(
        60,
        ge=1,
        le=30 * 24 * 60,
        description="Minutes per worker job (sbatch --time). A job at its limit fails its "
        "running trial and is resubmitted while the sweep has work: short limits start "
        "sooner on busy clusters.",
    )
    cpus_per_worker: int = Field(
        1,
        ge=1,
        le=1024,
        description="CPUs per worker job (sbatch --cpus-per-task), torch's threads.",
    )
    gpus_per_worker: int = Field(
        0, ge=0, le=64, description="GPUs per worker job (sbatch --gpus-per-node); 0 = none."
    )
    mem_gb: float | None = Field(
        None,
        gt=0,
        le=100_000,
        description="Memory per worker job in GB (sbatch --mem); null = the partition's default.",
    )
    sbatch: dict[str, str] = Field(
        default_factory=dict,
        max_length=64,
        description="Other sbatch options, name (without --) -> value, e.g. account, qos, "
        "constraint; not those the keys above set.",
    )
    setup: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Shell lines each job runs before the worker (module load ..., source "
        "a virtual environment).",
    )
    resubmits: int = Field(
        3,
        ge=0,
        le=1000,
        description="Per worker: how many times a job that ended before the sweep did (time "
        "limit, preemption, a lost node) is submitted again.",
    )

    @field_validator("sbatch")
    @classmethod
    def _options(cls, value: dict[str, str]) -> dict[str, str]:
        problems = []
        for name in value:
            if not _OPTION.match(name):
                problems.append(f"{name!r} is not an sbatch option name (e.g. account, qos)")
            elif name in SBATCH_RESERVED:
                problems.append(f"{name!r} is set by salsweep (use the slurm keys or options)")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    def overridden(self, source: str, **changes: Any) -> SlurmSpec:
        """These settings with ``changes`` (None values: unchanged; ``sbatch`` options are
        added to the spec's), checked; `SpecError` from ``source`` (e.g. the command line's
        options) lists what is wrong."""
        given = {k: v for k, v in changes.items() if v is not None}
        if "sbatch" in given:
            given["sbatch"] = {**self.sbatch, **given["sbatch"]}
        try:
            return SlurmSpec.model_validate({**self.model_dump(), **given})
        except ValidationError as exc:
            raise SpecError(source, problems_from_validation(exc, SlurmSpec, "slurm")) from None
