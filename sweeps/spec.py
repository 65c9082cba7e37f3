"""`SweepSpec`: one sweep, as the YAML file in sweeps/ describes it (see sweeps/default.yaml)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    model_serializer,
    model_validator,
)

from sweeps import checks
from sweeps.cluster import SlurmSpec
from sweeps.command import CommandSpec
from sweeps.command_checks import command_sweep_problems
from sweeps.confirmation import ConfirmSpec
from sweeps.errors import SpecError, SpecProblem, problems_from_validation
from sweeps.metric_checks import metric_problems
from sweeps.params import Choices, FloatRange, IntRange, SearchParam, is_searched
from sweeps.paths import apply_values
from sweeps.settings import Budget, ObjectiveSpec, PrunerSpec, SamplerSpec
from trainer.config import LossMethod, TrainConfig
from trainer.validation import shown

__all__ = [
    "NAME_MAX_LENGTH",
    "NAME_PATTERN",
    "Distribution",
    "StudyNameError",
    "SweepSpec",
    "baseline_method",
    "check_study_name",
    "semantic_problems",
    "spec_json_schema",
    "spec_to_yaml",
]

# Study, MLflow experiment and folder name alike: no spaces, slashes or leading dots.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
NAME_MAX_LENGTH = 100
Distribution = FloatRange | IntRange | Choices


class StudyNameError(SpecError):
    """A study name that cannot be used (it also names a folder and an MLflow experiment).

    A `SpecError` with a one-line message: the CLI reports it like a bad spec (exit 1).
    """

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"study name {name!r}", [SpecProblem("", why)])
        self.name = name
        self.args = (f"invalid study name {name!r}: {why}",)


def check_study_name(name: str) -> str:
    """``name`` when it can name a study: letters, digits, ``_ . -``, starting with a
    letter or digit, at most `NAME_MAX_LENGTH` characters (no slash, no leading dot, so a
    folder named after it stays inside the data dir). Raises `StudyNameError`."""
    if not name:
        raise StudyNameError(name, "empty")
    if len(name) > NAME_MAX_LENGTH:
        raise StudyNameError(name, f"longer than {NAME_MAX_LENGTH} characters")
    if re.fullmatch(NAME_PATTERN, name) is None:
        raise StudyNameError(
            name,
            "use letters, digits, '_', '.' and '-', starting with a letter or digit "
            "(it names a folder of the data dir and the MLflow experiment)",
        )
    return name


def baseline_method(method: str) -> LossMethod:
    """The SSI counterpart of a loss: sparse-ssi for the sparse- methods, else ssi."""
    return "sparse-ssi" if method.startswith("sparse-") else "ssi"


def semantic_problems(
    base: TrainConfig | None,
    search: Mapping[str, SearchParam] | None,
    budget: Budget | None,
    objective: ObjectiveSpec | None,
    sampler: SamplerSpec | None,
    pruner: PrunerSpec | None,
    baseline: bool | None,
    *,
    search_complete: bool = True,
) -> list[SpecProblem]:
    """Every check across keys, on the parts that are valid by themselves (None = invalid).

    ``search_complete``: False when some search entries did not parse (``search`` holds
    the others): each param is still checked, but not the params together.
    """
    out: list[SpecProblem] = []
    if objective is not None:
        out += checks.objective_problems(objective)
    if search is None:
        return out
    out += checks.seed_problems(search)
    if search_complete and not any(is_searched(p) for p in search.values()):
        out.append(SpecProblem("search", "needs at least one searched setting (range or choices)"))
    bad_ranges = set()
    for path, param in search.items():
        found = checks.range_problems(path, param)
        if found:
            bad_ranges.add(path)
        out += found
    ranges_ok = not bad_ranges and search_complete
    if base is None:
        return out
    for path, param in search.items():
        if not is_searched(param):
            out += checks.value_problems(base, path, param)
    fixed = {p: v for p, v in search.items() if not is_searched(v)}
    try:
        effective = apply_values(base, fixed)
    except ValidationError as exc:
        if not out:  # each fixed value is fine alone: they clash together
            listed = ", ".join(f"{p}={shown(v)}" for p, v in fixed.items())
            why = "; ".join(p.message for p in problems_from_validation(exc, TrainConfig))
            out.append(SpecProblem("search", f"the fixed values {listed} are invalid: {why}"))
        return out
    searched_ok = True
    for path, param in search.items():
        if is_searched(param) and path not in bad_ranges:
            found = checks.value_problems(effective, path, param)
            searched_ok = searched_ok and not found
            out += found
    if ranges_ok and searched_ok:
        out += checks.combination_problems(effective, search)
    if not search_complete:
        return out
    out += checks.method_problems(effective, search)
    if baseline is not None:
        out += checks.baseline_problems(effective, search, baseline)
    if sampler is not None and budget is not None and ranges_ok:
        out += checks.budget_problems(search, sampler, budget)
    if pruner is not None:
        out += checks.pruner_problems(effective, search, pruner)
    if objective is not None and baseline is not None:
        out += metric_problems(effective, search, objective, baseline)
    return out


class SweepSpec(BaseModel):
    """A sweep: the base training run, the searched settings, budget, objective, sampler."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=NAME_MAX_LENGTH,
        pattern=NAME_PATTERN,
        description="Default study (and MLflow experiment) name; --study-name overrides it.",
    )
    base: TrainConfig = Field(
        default_factory=TrainConfig,
        description="The training run every trial starts from (TrainConfig; defaults filled).",
    )
    search: dict[str, SearchParam] = Field(
        min_length=1,
        max_length=64,
        description="Dotted TrainConfig path -> range, choices, or fixed value.",
    )
    budget: Budget = Field(default_factory=Budget, description="Number of trials and time.")
    objective: ObjectiveSpec = Field(
        default_factory=ObjectiveSpec, description="The metric a trial is scored by."
    )
    sampler: SamplerSpec = Field(
        default_factory=SamplerSpec, description="How the next trial is proposed."
    )
    pruner: PrunerSpec = Field(
        default_factory=PrunerSpec, description="When a running trial is stopped early."
    )
    baseline: bool = Field(
        False,
        strict=True,
        description="Run the base config with the SSI loss before the search (kept out of the "
        "sampler's history) and confirm it next to the best configurations.",
    )
    confirm: ConfirmSpec | None = Field(
        None,
        description="After the search, race the top configurations and the baseline on "
        "paired replicates (the winner chosen on validation, the test split reported) "
        "with a stated error rate; null or absent = no confirmation.",
    )
    command: CommandSpec | None = Field(
        None,
        description="Run your own training program for every trial instead of the built-in "
        "trainer (then search names your program's settings, and base is not used); "
        "null or absent = the built-in trainer.",
    )
    slurm: SlurmSpec | None = Field(
        None,
        description="What each worker job asks a Slurm cluster for (--executor slurm); null "
        "or absent = the defaults.",
    )

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> SweepSpec:
        if info.context and info.context.get("checked"):
            return self  # parse_spec has just run these checks
        args = (self.search, self.budget, self.objective, self.sampler, self.pruner)
        if self.command is not None:
            problems = command_sweep_problems(self.command, *args, self.baseline)
        else:
            problems = semantic_problems(self.base, *args, self.baseline)
        if problems:
            # One "key.path: problem" line each: sweeps.errors keeps the key paths.
            raise ValueError("\n".join(str(p) for p in problems))
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A dump reads back as the same spec (studies store it and parse it again): a
        # command spec has no `base` (parse_spec refuses one beside `command`), and a
        # built-in one no `command` key (so that its dump is what it was before commands).
        data: dict[str, Any] = handler(self)
        if self.slurm is None:
            data.pop("slurm", None)  # as before the section existed: stored specs compare equal
        if self.command is None:
            data.pop("command", None)
        else:
            data.pop("base", None)
        return data

    def is_command(self) -> bool:
        """True when trials run the user's program (`command`), not the built-in trainer."""
        return self.command is not None

    def searched(self) -> dict[str, Distribution]:
        """The searched params (ranges and choices), in file order."""
        return {p: v for p, v in self.search.items() if isinstance(v, Distribution)}

    def fixed(self) -> dict[str, Any]:
        """The fixed values of ``search`` (applied to every trial, baseline included)."""
        return {p: v for p, v in self.search.items() if not is_searched(v)}

    def method(self) -> str | None:
        """The loss method of every trial; None when it is searched, or for a command."""
        if self.command is not None:
            return None
        return checks.method_of(self.base, self.search)

    def max_epochs(self) -> int:
        """The most epochs a trial runs (reported steps are epochs 1..max); for a command,
        its ``steps`` (ValueError when unknown: the checks require it for hyperband)."""
        if self.command is not None:
            if self.command.steps is None:
                raise ValueError("command.steps is not set: the last step is unknown")
            return self.command.steps
        return checks.max_epochs(self.base, self.search)

    def training_seed(self) -> int:
        """The search's training seed (the base's, or a fixed ``seed`` of ``search``; for
        a command, ``command.seed``). Confirmation replicates use the seeds after it."""
        if self.command is not None:
            return self.command.seed
        seed = self.fixed().get("seed", self.base.seed)
        return int(seed)

    def data_seed(self) -> int | None:
        """The search's data seed (the base's ``data.seed``, or a fixed ``data.seed`` of
        ``search``); None for a command (its program owns its data). Confirmation replicate
        s uses ``data_seed() + 1 + s``."""
        if self.command is not None:
            return None
        return int(self.fixed().get("data.seed", self.base.data.seed))

    def baseline_config(self) -> TrainConfig:
        """The base config (fixed values applied) with the SSI counterpart of its loss."""
        return self.config_for({}, baseline=True)

    def config_for(self, values: Mapping[str, Any], *, baseline: bool = False) -> TrainConfig:
        """The base config with the fixed values and ``values`` (dotted paths) applied.

        ``baseline``: the loss becomes the SSI counterpart of the method (ssi / sparse-ssi).
        Raises `SpecError` when the values give an invalid config, or for a command spec
        (its trials run the user's program with its own config: studies.command).
        """
        if self.command is not None:
            raise SpecError(
                f"{self.name}: config for the built-in trainer",
                [
                    SpecProblem(
                        "command",
                        f"the trials of this spec run {self.command.program()!r}, not the "
                        "built-in trainer",
                    )
                ],
            )
        merged = {**self.fixed(), **values}
        if baseline:
            merged["loss.method"] = baseline_method(self.method() or self.base.loss.method)
        try:
            return apply_values(self.base, merged)
        except ValidationError as exc:
            listed = ", ".join(f"{k}={shown(v)}" for k, v in values.items())
            raise SpecError(
                f"{self.name}: config for {listed or 'the base'}",
                problems_from_validation(exc, TrainConfig),
            ) from None


def spec_to_yaml(spec: SweepSpec) -> str:
    """The spec resolved (defaults filled) as YAML that `load_spec` reads back equal."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema of a sweep spec file (from the field types, bounds and descriptions)."""
    return SweepSpec.model_json_schema()
