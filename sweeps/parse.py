"""Read a sweep spec from YAML, reporting every problem at once with its key path.

Each part of the file is validated on its own, so that an error in ``base`` does not hide
one in ``search``; the checks across parts run on the parts that are valid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from sweeps.cluster import SlurmSpec
from sweeps.command import CommandSpec
from sweeps.command_checks import command_sweep_problems, resolve_paths
from sweeps.confirmation import RETIRED_SEEDS, ConfirmSpec
from sweeps.errors import SpecError, SpecProblem, join_path, problems_from_validation, unknown_key
from sweeps.params import Choices, FloatRange, IntRange, SearchParam
from sweeps.paths import PathError, check_value, field_kind, resolve_field
from sweeps.settings import Budget, ObjectiveSpec, PrunerSpec, SamplerSpec
from sweeps.spec import SweepSpec, semantic_problems
from trainer.config import TrainConfig
from trainer.io import YamlFileError, read_yaml

__all__ = ["load_spec", "parse_spec"]

_RANGE_KEYS = frozenset({"low", "high", "log", "step"})
_SECTIONS: dict[str, type[BaseModel]] = {
    "budget": Budget,
    "objective": ObjectiveSpec,
    "sampler": SamplerSpec,
    "pruner": PrunerSpec,
}


def load_spec(path: str | Path) -> SweepSpec:
    """Load and validate a sweep spec; ``name`` defaults to the file's stem.

    The YAML is read safely (`trainer.io.read_yaml`: no Python tags, no duplicate keys, a
    bounded nesting depth, UTF-8)."""
    path = Path(path)
    try:
        data = read_yaml(path)
    except YamlFileError as exc:
        raise SpecError(str(path), [SpecProblem("", p) for p in exc.problems]) from None
    return parse_spec(data, str(path), default_name=path.stem)


def parse_spec(data: Any, source: str = "<spec>", *, default_name: str | None = None) -> SweepSpec:
    """Validate a mapping (parsed YAML, or a spec's JSON dump) as a `SweepSpec`.

    Raises `SpecError` listing every problem, each with its key path.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        found = type(data).__name__
        raise SpecError(source, [SpecProblem("(top level)", f"expected a mapping, got {found}")])
    problems: list[SpecProblem] = []
    for key in data:
        if key not in SweepSpec.model_fields:
            problems.append(
                SpecProblem(join_path(str(key)), unknown_key(str(key), SweepSpec.model_fields))
            )

    parts: dict[str, Any] = {}
    name = data.get("name", default_name)
    parts["name"] = _field("name", name, problems) if name is not None else None
    if name is None:
        problems.append(SpecProblem("name", "required (the default study name)"))
    # `command: null` (or no key) = the built-in trainer.
    is_command = data.get("command") is not None
    if is_command:
        parts["command"] = _command(data["command"], problems)
        problems += _command_section_problems(data)
    else:
        parts["base"] = _base(data.get("base"), problems)
    parts["search"], complete = _search(data.get("search"), problems, command=is_command)
    for key, model in _SECTIONS.items():
        parts[key] = _section(key, model, data.get(key, {}), problems)
    parts["baseline"] = _field("baseline", data.get("baseline", False), problems)
    # `confirm: null` (or no key) = no confirmation; `confirm: {}` = the defaults.
    confirm = data.get("confirm")
    if isinstance(confirm, dict) and "seeds" in confirm:
        # The fixed-seed confirmation's key: refused under its own path, naming the race's
        # keys, and the rest of the section checked as well.
        problems.append(SpecProblem("confirm.seeds", RETIRED_SEEDS.removeprefix("seeds: ")))
        confirm = {k: v for k, v in confirm.items() if k != "seeds"}
    parts["confirm"] = (
        None if confirm is None else _section("confirm", ConfirmSpec, confirm, problems)
    )
    # `slurm: null` (or no key) = the defaults of `--executor slurm`.
    slurm = data.get("slurm")
    parts["slurm"] = None if slurm is None else _section("slurm", SlurmSpec, slurm, problems)

    args = [parts[k] for k in ("search", "budget", "objective", "sampler", "pruner", "baseline")]
    if is_command:
        problems += command_sweep_problems(parts["command"], *args, search_complete=complete)
    else:
        problems += semantic_problems(parts["base"], *args, search_complete=complete)
    if problems:
        raise SpecError(source, problems)
    return SweepSpec.model_validate(parts, context={"checked": True})


def _field(key: str, value: Any, problems: list[SpecProblem]) -> Any:
    """One top-level scalar, checked against its field in `SweepSpec` (bounds included)."""
    field = SweepSpec.model_fields[key]
    adapter: TypeAdapter[Any] = TypeAdapter(Annotated[field.annotation, field])  # type: ignore[arg-type]
    try:
        return adapter.validate_python(value, strict=True)
    except ValidationError as exc:
        problems += problems_from_validation(exc, SweepSpec, key)
        return None


def _base(value: Any, problems: list[SpecProblem]) -> TrainConfig | None:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        found = type(value).__name__
        problems.append(SpecProblem("base", f"expected a mapping of TrainConfig, got {found}"))
        return None
    try:
        return TrainConfig.model_validate(value)
    except ValidationError as exc:
        problems += problems_from_validation(exc, TrainConfig, "base")
        return None


def _command(value: Any, problems: list[SpecProblem]) -> CommandSpec | None:
    """The command section, validated alone, its paths made absolute (`resolve_paths`)."""
    if isinstance(value, str | list):
        value = {"argv": value}  # shorthand: `command: python train.py {json}`
    if not isinstance(value, dict):
        found = type(value).__name__
        problems.append(SpecProblem("command", f"expected a mapping, got {found}"))
        return None
    try:
        command = CommandSpec.model_validate(value)
    except ValidationError as exc:
        problems += problems_from_validation(exc, CommandSpec, "command")
        return None
    return resolve_paths(command, Path.cwd())


def _command_section_problems(data: dict[str, Any]) -> list[SpecProblem]:
    """Keys of a command spec that only the built-in trainer reads, or that need saying."""
    out = []
    if "base" in data:
        out.append(
            SpecProblem(
                "base",
                "not used with command (your program's settings come from "
                "command.base_config): remove it",
            )
        )
    objective = data.get("objective")
    if not isinstance(objective, dict) or "metric" not in objective:
        out.append(
            SpecProblem(
                "objective.metric",
                "required with command: the name of the metric your program reports",
            )
        )
    return out


def _section(key: str, model: type[BaseModel], value: Any, problems: list[SpecProblem]) -> Any:
    if value is None and key == "pruner":
        # `pruner: null` reads as "no pruning" but would mean the default (median).
        problems.append(
            SpecProblem(
                key,
                "null is ambiguous: write `pruner: none` for no "
                "pruning, or leave the key out for the default",
            )
        )
        return None
    if value is None:
        value = {}
    if isinstance(value, str) and key in ("sampler", "pruner"):
        value = {"type": value}  # shorthand: `sampler: random`, `pruner: none`
    if not isinstance(value, dict):
        found = type(value).__name__
        problems.append(SpecProblem(key, f"expected a mapping, got {found}"))
        return None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problems += problems_from_validation(exc, model, key)
        return None


def _search(
    value: Any, problems: list[SpecProblem], *, command: bool = False
) -> tuple[dict[str, SearchParam] | None, bool]:
    """The params that parsed, and whether all did. ``command``: the names are a program's
    settings (sweeps.command), not `TrainConfig` paths."""
    if value is None:
        problems.append(SpecProblem("search", "required: the settings to search"))
        return None, False
    if not isinstance(value, dict):
        problems.append(SpecProblem("search", f"expected a mapping, got {type(value).__name__}"))
        return None, False
    search: dict[str, SearchParam] = {}
    ok = True
    for key, raw in value.items():
        path = str(key)
        found: list[SpecProblem] = []
        param = _command_param(path, raw, found) if command else _param(path, raw, found)
        problems += found
        if found:
            ok = False
        else:
            search[path] = param
    return search, ok


def _param(path: str, raw: Any, problems: list[SpecProblem]) -> SearchParam:
    where = join_path("search", path)
    try:
        field = resolve_field(path)
    except PathError as exc:
        problems.append(SpecProblem(where, str(exc)))
        return None
    kind = field_kind(field)
    if raw == "bool" and isinstance(raw, str) and kind != "other":
        if kind == "bool":
            return Choices(choices=[True, False])
        problems.append(
            SpecProblem(where, f"the shorthand `bool` is for true/false settings, not {kind}")
        )
        return None
    if isinstance(raw, list):
        raw = {"choices": raw}  # shorthand: a list is its choices
    if not isinstance(raw, dict):
        value, why = check_value(path, raw)
        if why is not None:
            problems.append(SpecProblem(where, why))
        return value
    if "choices" in raw:
        return _choices(path, raw, problems)
    if kind not in ("int", "float"):
        problems.append(
            SpecProblem(
                where,
                f"a range needs a number setting ({path} is {field.annotation}); "
                "use choices: [...] or a fixed value",
            )
        )
        return None
    return _range(where, IntRange if kind == "int" else FloatRange, raw, problems)


def _range(
    where: str,
    model: type[FloatRange | IntRange],
    raw: dict[str, Any],
    problems: list[SpecProblem],
) -> SearchParam:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        found = problems_from_validation(exc, model, where)
        for p in found:
            if p.message.startswith("unknown key"):
                # Say which keys a range takes (and that choices do not mix with them).
                p = SpecProblem(
                    p.path,
                    f"unknown key (a range takes {', '.join(sorted(_RANGE_KEYS))}; "
                    "or give choices alone)",
                )
            problems.append(p)
        return None


def _command_param(path: str, raw: Any, problems: list[SpecProblem]) -> SearchParam:
    """A setting of the user's program: its kind follows the values written (a range of
    ints is an int range; ``{low: 1.0, high: 10}`` a float range)."""
    where = join_path("search", path)
    if isinstance(raw, str) and raw == "bool":
        return Choices(choices=[True, False])
    if isinstance(raw, list):
        raw = {"choices": raw}
    if isinstance(raw, dict) and "choices" in raw:
        for key in raw:
            if key != "choices":
                problems.append(
                    SpecProblem(
                        join_path(where, str(key)), "unknown key (choices take no other keys)"
                    )
                )
        try:
            return Choices.model_validate({"choices": raw["choices"]})
        except ValidationError as exc:
            problems += problems_from_validation(exc, Choices, where)
            return None
    if isinstance(raw, dict):
        bounds = [raw.get(k) for k in ("low", "high", "step")]
        ints = all(b is None or (isinstance(b, int) and not isinstance(b, bool)) for b in bounds)
        return _range(where, IntRange if ints else FloatRange, raw, problems)
    if raw is None or isinstance(raw, bool | int | float | str):
        return raw
    found = type(raw).__name__
    problems.append(
        SpecProblem(
            where, f"expected a range, choices or a fixed value (number, text, bool), got {found}"
        )
    )
    return None


def _choices(path: str, raw: dict[str, Any], problems: list[SpecProblem]) -> SearchParam:
    where = join_path("search", path)
    for key in raw:
        if key != "choices":
            problems.append(
                SpecProblem(join_path(where, str(key)), "unknown key (choices take no other keys)")
            )
    try:
        choices = Choices.model_validate({"choices": raw["choices"]})
    except ValidationError as exc:
        problems += problems_from_validation(exc, Choices, where)
        return None
    values = []
    for i, value in enumerate(choices.choices):
        checked, why = check_value(path, value)
        if why is not None:
            problems.append(SpecProblem(join_path(where, "choices", i), why))
        values.append(checked)
    return Choices(choices=values)
