"""The parts of a sweep spec around the search space: budget, objective, sampler, pruner
(the confirmation's: sweeps.confirmation)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Budget", "ObjectiveSpec", "PrunerSpec", "SamplerSpec"]


class _Frozen(BaseModel):
    # Model validators raise "field: problem" lines, which sweeps.errors files under the
    # field's key path.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Budget(_Frozen):
    """How many trials the study runs (all workers together) and for how long."""

    n_trials: int = Field(
        8,
        ge=1,
        le=100_000,
        description="Search trials of the study in all workers (the baseline run and the "
        "confirmation's replicates are not counted).",
    )
    timeout: float | None = Field(
        None,
        gt=0.0,
        le=30 * 24 * 3600.0,
        description="Seconds after which one launch starts no new search trial (the "
        "confirmation still runs); null = no limit.",
    )


class ObjectiveSpec(_Frozen):
    """What a trial is scored by."""

    # The default scores every trial after a per-image least-squares scale and shift in
    # inverse depth (MiDaS' protocol): no metric scale is asked of the SSI baseline, but
    # the fit forgives what losses in inverse depth get wrong; val/abs_rel_align_depth is
    # the same fit in depth (README, "The objective"); raw val/abs_rel (metres) is for
    # metric-depth work.
    metric: str = Field(
        "val/abs_rel_align",
        min_length=1,
        max_length=200,
        # - and . also in the first part: names of command programs, e.g. packnet-sfm's
        # KITTI_raw-eigen_val_files-velodyne-abs_rel_pp_gt (MLflow takes them as they are).
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_.\-]+)*$",
        description="Per-epoch metric of the trainer, e.g. val/abs_rel_align (scale and shift "
        "aligned in inverse depth), val/abs_rel_align_depth (the same in depth), "
        "val/abs_rel_med (median-scaled), val/abs_rel (raw, metric depth), val/a1; "
        "with command: a name your program reports.",
    )
    direction: Literal["minimize", "maximize"] = Field(
        "minimize", description="minimize for errors (abs_rel, rmse), maximize for a1..a3."
    )
    reduce: Literal["best", "last"] = Field(
        "best",
        description="Trial value: the best epoch's value (as the kept checkpoint) or the last.",
    )

    @model_validator(mode="after")
    def _check(self) -> ObjectiveSpec:
        if self.metric.startswith("test/"):
            # Selection (trials, epochs) uses validation; only the confirmation reports test.
            raise ValueError(
                f"metric: {self.metric} is a test-split metric, which the search never sees; "
                f"use val/{self.metric.removeprefix('test/')} (the confirmation reports the "
                "test split)"
            )
        return self


class SamplerSpec(_Frozen):
    """How Optuna proposes the next trial."""

    type: Literal["tpe", "random", "grid"] = Field(
        "tpe", description="tpe (default), random, or grid (every searched param discrete)."
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=2**32 - 1,
        description="Seed of the sampler (grid: its order); null = fresh each launch. Several "
        "workers sharing a study should not share a seed.",
    )
    n_startup_trials: int | None = Field(
        None,
        ge=0,
        le=10_000,
        description="tpe only: random trials before TPE takes over; null = Optuna's 10.",
    )

    @model_validator(mode="after")
    def _check(self) -> SamplerSpec:
        if self.n_startup_trials is not None and self.type != "tpe":
            raise ValueError(f"n_startup_trials: applies to type tpe only (type is {self.type})")
        return self


class PrunerSpec(_Frozen):
    """When a running trial is stopped early (reported step = epoch, from 1)."""

    type: Literal["median", "hyperband", "none"] = Field(
        "median", description="median (default), hyperband, or none."
    )
    n_startup_trials: int | None = Field(
        None,
        ge=0,
        le=10_000,
        description="median: complete trials before any pruning; null = Optuna's 5.",
    )
    n_warmup_steps: int | None = Field(
        None,
        ge=0,
        le=10_000,
        description="median: no pruning at epochs below this; null = 0.",
    )
    min_resource: int | None = Field(
        None, ge=1, le=10_000, description="hyperband: epochs every trial gets; null = 1."
    )
    reduction_factor: int | None = Field(
        None, ge=2, le=100, description="hyperband: 1/factor of trials go on per rung; null = 3."
    )

    @model_validator(mode="after")
    def _check(self) -> PrunerSpec:
        owners = {
            "n_startup_trials": "median",
            "n_warmup_steps": "median",
            "min_resource": "hyperband",
            "reduction_factor": "hyperband",
        }
        wrong = [
            f"{key}: applies to type {owner} only (type is {self.type})"
            for key, owner in owners.items()
            if getattr(self, key) is not None and owner != self.type
        ]
        if wrong:
            # One "key: problem" line each: sweeps.errors turns them into key paths.
            raise ValueError("\n".join(wrong))
        return self
