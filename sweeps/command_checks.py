"""Checks of a command spec across keys: every value reaches the program, every placeholder
can be filled, the program and the base config exist.

Like sweeps.checks, every function returns problems (with their key paths) instead of
raising, so that a spec's problems are all reported at once, before anything is created.
Over 400 lines: one check per way a command spec can be wrong, each short and on its own;
they share the key-path helpers at the top.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweeps import checks
from sweeps.command import (
    KEY_PATTERN,
    PARAM_NAME_PATTERN,
    PLACEHOLDERS,
    CommandSpec,
    is_arg_key,
    placeholders_in,
)
from sweeps.dotted import DottedKeyError, with_dotted
from sweeps.errors import SpecProblem, join_path
from sweeps.params import SearchParam, is_searched
from sweeps.settings import Budget, ObjectiveSpec, PrunerSpec, SamplerSpec
from trainer.io import YamlFileError, read_yaml

__all__ = [
    "command_problems",
    "command_sweep_problems",
    "resolve_paths",
]

_WHERE = "command"


def _at(*parts: str | int) -> str:
    return join_path(_WHERE, *parts)


def resolve_paths(command: CommandSpec, cwd: Path) -> CommandSpec:
    """``command`` with ``workdir`` and ``base_config`` made absolute: ``workdir`` against
    ``cwd`` (``cwd`` itself when null), ``base_config`` against ``workdir``."""
    workdir = cwd if command.workdir is None else cwd / _expand(command.workdir)
    base = command.base_config
    if base is not None:
        base = workdir / _expand(base)
    return command.model_copy(update={"workdir": workdir, "base_config": base})


def _expand(path: Path) -> Path:
    """``~`` and ``~user`` expanded; kept as written when there is no such home (the
    checks then report the path that does not exist)."""
    try:
        return path.expanduser()
    except RuntimeError:
        return path


def _placeholder_problems(command: CommandSpec) -> list[SpecProblem]:
    out = []
    for i, word in enumerate(command.argv):
        names = placeholders_in(word)
        for name in names:
            if name not in PLACEHOLDERS:
                close = difflib.get_close_matches(name, PLACEHOLDERS, n=1)
                hint = f"did you mean {{{close[0]}}}? " if close else ""
                valid = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
                out.append(
                    SpecProblem(
                        _at("argv", i),
                        f"unknown placeholder {{{name}}} ({hint}valid: {valid}; "
                        "write {{ and }} for literal braces)",
                    )
                )
        if "args" in names and word != "{args}":
            out.append(
                SpecProblem(
                    _at("argv", i),
                    f"{{args}} must be a word on its own (it expands to several arguments): "
                    f"got {word!r}",
                )
            )
    return out


def _program_problem(command: CommandSpec) -> str | None:
    """Why the program (argv[0]) cannot be run, or None."""
    try:
        return _program_lookup(command)
    except OSError as exc:  # e.g. a name too long for the file system
        return f"cannot look up {command.program()!r}: {exc.strerror or exc}"


def _program_lookup(command: CommandSpec) -> str | None:
    program = command.program()
    if "/" in program:
        path = _expand(Path(program))
        if not path.is_absolute() and command.workdir is not None:
            path = command.workdir / path
        if not path.is_file():
            return f"no such file: {path}"
        if not os.access(path, os.X_OK):
            return f"{path} is not executable (chmod +x, or run it with its interpreter)"
        return None
    if shutil.which(program) is None:
        local = command.workdir / program if command.workdir is not None else Path(program)
        hint = f"; for the file in workdir write ./{program}" if local.is_file() else ""
        return f"{program!r} is not found on PATH{hint}"
    return None


def _read_base(command: CommandSpec) -> tuple[dict[str, Any] | None, list[SpecProblem]]:
    """The base config as a mapping, or None with the problems that say why."""
    path = command.base_config
    if path is None:
        return None, []
    where = _at("base_config")
    try:
        if not path.is_file():
            return None, [SpecProblem(where, f"no such file: {path}")]
        data = read_yaml(path)
    except YamlFileError as exc:
        return None, [SpecProblem(where, f"{path}: {p}") for p in exc.problems]
    except OSError as exc:
        return None, [SpecProblem(where, f"cannot read {path}: {exc.strerror or exc}")]
    if data is None:
        return {}, []
    if not isinstance(data, dict):
        found = type(data).__name__
        return None, [SpecProblem(where, f"{path}: expected a mapping at the top, got {found}")]
    return data, []


def _key_problems(
    command: CommandSpec, search: Mapping[str, SearchParam] | None
) -> list[SpecProblem]:
    """Names and keys of ``command.keys`` and ``seed_key``: well-formed, searched, distinct."""
    out = []
    owners: dict[str, str] = {}  # program key -> the first name mapped to it
    for name, key in command.keys.items():
        where = _at("keys", name)
        if re.fullmatch(PARAM_NAME_PATTERN, name) is None:
            out.append(SpecProblem(where, "not a searched name (letters, digits, _ . - /)"))
            continue
        if re.fullmatch(KEY_PATTERN, key) is None:
            out.append(
                SpecProblem(
                    where,
                    f"{key!r} is neither a dotted config key (model.loss.lambda_sg) nor an "
                    "argument (--lr)",
                )
            )
            continue
        if search is not None and name not in search:
            close = difflib.get_close_matches(name, list(search), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append(SpecProblem(where, f"{name!r} is not in search{hint}"))
        if key in owners:
            out.append(SpecProblem(where, f"{key} is also the key of {owners[key]!r}"))
        owners.setdefault(key, name)
    seed = command.seed_key
    if seed is not None and seed in owners:
        out.append(
            SpecProblem(_at("seed_key"), f"{seed} is also the key of {owners[seed]!r} in keys")
        )
    config = sorted(k for k in [*owners, seed] if k is not None and not is_arg_key(k))
    for i, key in enumerate(config):
        for other in config[i + 1 :]:
            if other.startswith(f"{key}."):
                out.append(
                    SpecProblem(
                        _at("keys"), f"{key} and {other}: a key cannot be set inside another"
                    )
                )
    return out


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # e.g. a name too long for the file system
        return False


def _first_word_with(command: CommandSpec, placeholder: str) -> int:
    """The index of the first word of argv holding ``placeholder`` (0 when none does)."""
    for i, word in enumerate(command.argv):
        if placeholder in placeholders_in(word):
            return i
    return 0


def _carrier_problems(
    command: CommandSpec, search: Mapping[str, SearchParam] | None
) -> list[SpecProblem]:
    """Every value has a way into the program, and every way is used."""
    used = command.used_placeholders()
    has_base = command.base_config is not None
    out = []
    config_index = _first_word_with(command, "config")
    args_index = _first_word_with(command, "args")
    if "config" in used and not has_base:
        out.append(
            SpecProblem(
                _at("argv", config_index),
                "{config} cannot be filled: set command.base_config (the file to copy)",
            )
        )
    if has_base and "config" not in used:
        out.append(
            SpecProblem(
                _at("base_config"),
                "the copy reaches the program by no way: put {config} in command.argv",
            )
        )
    targets = dict(command.keys.items())
    if command.seed_key is not None:
        targets["(seed)"] = command.seed_key
    for name, key in targets.items():
        where = _at("seed_key") if name == "(seed)" else _at("keys", name)
        if re.fullmatch(KEY_PATTERN, key) is None:
            continue  # reported by _key_problems
        if is_arg_key(key) and "args" not in used:
            out.append(
                SpecProblem(where, f"{key} is an argument, but command.argv has no {{args}}")
            )
        elif not is_arg_key(key) and not (has_base and "config" in used):
            needs = [] if has_base else ["command.base_config"]
            needs += [] if "config" in used else ["{config} in command.argv"]
            out.append(
                SpecProblem(
                    where,
                    f"{key} is a key of the config copy, which needs {' and '.join(needs)}",
                )
            )
    if "args" in used and not any(is_arg_key(k) for k in targets.values()):
        out.append(
            SpecProblem(
                _at("argv", args_index),
                "{args} has nothing to carry: no key of command.keys (nor seed_key) is an "
                "argument (--name)",
            )
        )
    if command.seed_key is None and "json" not in used:
        out.append(
            SpecProblem(
                _at("seed_key"),
                "required: the training seed must reach your program (a dotted config key or "
                "--name; or pass {json} in command.argv, which holds it as `seed`)",
            )
        )
    if search is not None and "json" not in used:
        for name in search:
            if name not in command.keys:
                out.append(
                    SpecProblem(
                        join_path("search", name),
                        "reaches your program by no way: map it in command.keys (a dotted "
                        "config key or --name), or pass {json} in command.argv",
                    )
                )
    return out


def _base_key_problems(command: CommandSpec, base: Mapping[str, Any]) -> list[SpecProblem]:
    """Config keys whose way goes through a value of the base config that is no mapping."""
    out = []
    targets = [(_at("keys", n), k) for n, k in command.config_keys().items()]
    if command.seed_key is not None and not is_arg_key(command.seed_key):
        targets.append((_at("seed_key"), command.seed_key))
    for where, key in targets:
        if re.fullmatch(KEY_PATTERN, key) is None:
            continue
        try:
            with_dotted(base, {key: 0})
        except DottedKeyError as exc:
            out.append(SpecProblem(where, str(exc)))
    return out


def command_problems(
    command: CommandSpec, search: Mapping[str, SearchParam] | None
) -> list[SpecProblem]:
    """Every problem of ``command`` and its fit with ``search`` (None: search invalid; the
    names of search that parsed otherwise)."""
    out = _placeholder_problems(command)
    if command.workdir is not None and not _is_dir(command.workdir):
        out.append(SpecProblem(_at("workdir"), f"no such folder: {command.workdir}"))
    else:
        why = _program_problem(command)
        if why is not None:
            out.append(SpecProblem(_at("argv", 0), why))
    if command.metrics == "stdout" and command.pattern is None:
        out.append(
            SpecProblem(
                _at("pattern"),
                "required with metrics: stdout (a regex with (?P<value>...), e.g. "
                r"'val_loss=(?P<value>\S+)')",
            )
        )
    if command.metrics != "stdout" and command.pattern is not None:
        out.append(
            SpecProblem(
                _at("pattern"), f"applies to metrics: stdout only (metrics is {command.metrics})"
            )
        )
    out += _key_problems(command, search)
    out += _carrier_problems(command, search)
    base, found = _read_base(command)
    out += found
    if base is not None:
        out += _base_key_problems(command, base)
    return out


def _search_name_problems(search: Mapping[str, SearchParam]) -> list[SpecProblem]:
    return [
        SpecProblem(
            join_path("search", name),
            "not a name for a command's setting (letters, digits, _ . - /, not starting "
            "with . - /)",
        )
        for name in search
        if re.fullmatch(PARAM_NAME_PATTERN, name) is None
    ]


def command_sweep_problems(
    command: CommandSpec | None,
    search: Mapping[str, SearchParam] | None,
    budget: Budget | None,
    objective: ObjectiveSpec | None,
    sampler: SamplerSpec | None,
    pruner: PrunerSpec | None,
    baseline: bool | None,
    *,
    search_complete: bool = True,
) -> list[SpecProblem]:
    """The checks across keys of a spec with a ``command`` (None: the section is invalid),
    on the parts that are valid by themselves (None = invalid). A command's settings are
    not `TrainConfig` paths: ranges are checked alone, values by the program."""
    out: list[SpecProblem] = []
    if objective is not None:
        out += checks.objective_problems(objective)
    if baseline:
        out.append(
            SpecProblem(
                "baseline",
                "the SSI baseline needs the built-in trainer (salsweep cannot swap the loss "
                "of your program): set baseline: false",
            )
        )
    ranges_ok = search_complete
    if search is not None:
        out += _search_name_problems(search)
        if search_complete and not any(is_searched(p) for p in search.values()):
            out.append(
                SpecProblem("search", "needs at least one searched setting (range or choices)")
            )
        for path, param in search.items():
            found = checks.range_problems(path, param)
            ranges_ok = ranges_ok and not found
            out += found
        if sampler is not None and budget is not None and ranges_ok:
            out += checks.budget_problems(search, sampler, budget)
    if command is not None:
        out += command_problems(command, search)
        if pruner is not None:
            out += _pruner_problems(command, pruner)
    return out


def _pruner_problems(command: CommandSpec, pruner: PrunerSpec) -> list[SpecProblem]:
    steps = command.steps
    if steps is None:
        if pruner.type == "hyperband":
            return [
                SpecProblem(
                    _at("steps"),
                    "required with pruner type hyperband (its maximum resource: the last "
                    "step your program reports)",
                )
            ]
        return []
    out = []
    if pruner.min_resource is not None and pruner.min_resource > steps:
        out.append(
            SpecProblem(
                "pruner.min_resource",
                f"{pruner.min_resource} is more than the steps of a trial ({steps})",
            )
        )
    if pruner.n_warmup_steps is not None and pruner.n_warmup_steps > steps:
        out.append(
            SpecProblem(
                "pruner.n_warmup_steps",
                f"{pruner.n_warmup_steps} is more than the steps of a trial ({steps}): "
                "nothing would ever be pruned (use type: none for that)",
            )
        )
    return out
