"""Command specs: the ``command:`` section parsed, checked across keys, and dumped back."""

from __future__ import annotations

import copy
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweeps import SpecError, load_spec, parse_spec, spec_json_schema, spec_to_yaml
from sweeps.command import CommandSpec, expand_word, placeholders_in
from tests.process_helpers import PythonChild

BASE_CONFIG = """\
model:
  loss: {lambda_sg: 0.5, num_scales: 4}
  layers: [1, 2, 3]
training: {seed: 1, epochs: 3}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's project folder (the working directory): train.yaml and train.py."""
    (tmp_path / "train.yaml").write_text(BASE_CONFIG)
    (tmp_path / "train.py").write_text("print('hello')\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def command_spec() -> dict[str, Any]:
    """A valid command spec mapping (relative paths: the project folder is the cwd)."""
    return {
        "name": "mine",
        "command": {
            "argv": "python train.py --config {config} {args} --out {trial_dir}",
            "base_config": "train.yaml",
            "keys": {
                "lambda_sg": "model.loss.lambda_sg",
                "num_scales": "model.loss.num_scales",
                "lr": "--lr",
            },
            "seed_key": "training.seed",
        },
        "search": {
            "lambda_sg": {"low": 0.05, "high": 2.0, "log": True},
            "num_scales": {"low": 1, "high": 4},
            "lr": [0.001, 0.01],
        },
        "objective": {"metric": "val/loss"},
    }


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data, "t")
    return [str(p) for p in info.value.problems]


def test_a_command_spec_parses_with_absolute_paths(project: Path) -> None:
    spec = parse_spec(command_spec(), "t")
    command = spec.command
    assert command is not None and spec.is_command()
    assert command.argv == [
        "python",
        "train.py",
        "--config",
        "{config}",
        "{args}",
        "--out",
        "{trial_dir}",
    ]
    assert command.workdir == project and command.base_config == project / "train.yaml"
    assert command.config_keys() == {
        "lambda_sg": "model.loss.lambda_sg",
        "num_scales": "model.loss.num_scales",
    }
    assert command.arg_keys() == {"lr": "--lr"}
    assert (command.metrics, command.grace_s, command.timeout_s) == ("file", 10.0, None)
    # The kind of a range follows the values written: ints give an int range.
    searched = spec.searched()
    assert type(searched["num_scales"]).__name__ == "IntRange"
    assert type(searched["lambda_sg"]).__name__ == "FloatRange"
    assert spec.training_seed() == 0 and spec.method() is None


def test_the_dump_reads_back_equal_and_has_no_base(project: Path) -> None:
    spec = parse_spec(command_spec(), "t")
    text = spec_to_yaml(spec)
    data = yaml.safe_load(text)
    assert "base" not in data and data["command"]["base_config"] == str(project / "train.yaml")
    assert parse_spec(data, "again") == spec
    # Stored specs go through model_dump(mode="json") and parse_spec, from another folder.
    os.chdir("/")
    assert parse_spec(spec.model_dump(mode="json"), "stored") == spec


def test_a_built_in_spec_dumps_without_a_command_key(good: dict[str, Any]) -> None:
    spec = parse_spec(good, "t")
    assert spec.command is None and not spec.is_command()
    assert "command" not in spec.model_dump(mode="json")
    assert parse_spec({**good, "command": None}, "t") == spec


def test_load_spec_reads_a_command_file(project: Path) -> None:
    text = """\
name: mine
command:
  argv: [python, train.py, --config, "{config}", "{args}"]
  base_config: train.yaml
  keys: {lambda_sg: model.loss.lambda_sg, lr: --lr}
  seed_key: --seed
  metrics: stdout
  pattern: 'epoch (?P<step>\\d+) val_loss=(?P<value>\\S+)'
  grace_s: 2
  timeout_s: 600
search:
  lambda_sg: {low: 0.05, high: 2.0, log: true}
  lr: {low: 1.0e-4, high: 1.0e-2, log: true}
objective: {metric: val_loss}
"""
    (project / "sweep.yaml").write_text(text)
    spec = load_spec(project / "sweep.yaml")
    assert spec.command is not None
    assert spec.command.grace_s == 2.0 and spec.command.timeout_s == 600.0
    assert spec.command.pattern == r"epoch (?P<step>\d+) val_loss=(?P<value>\S+)"


def test_command_shorthand_string(project: Path) -> None:
    data = {
        "name": "j",
        "command": "python train.py {json}",
        "search": {"x": {"low": 0.0, "high": 1.0}},
        "objective": {"metric": "score", "direction": "maximize"},
    }
    spec = parse_spec(data, "t")
    assert spec.command is not None and spec.command.argv == ["python", "train.py", "{json}"]
    assert spec.command.seed_key is None  # the seed travels in the JSON file


def test_placeholders() -> None:
    assert placeholders_in("--config={config}") == ["config"]
    assert placeholders_in("{{config}} {x} {1: 2}") == ["x"]
    assert expand_word("a={config},{{b}}", {"config": "/t/c.yaml"}) == "a=/t/c.yaml,{b}"
    assert expand_word("print({1: 2})", {}) == "print({1: 2})"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # A placeholder that cannot be filled.
        (
            lambda c: c.pop("base_config"),
            "command.argv[3]: {config} cannot be filled: set command.base_config",
        ),
        (
            lambda c: c.update(argv="python train.py {cnfig} {args}"),
            "command.argv[2]: unknown placeholder {cnfig} (did you mean {config}?",
        ),
        (
            lambda c: c.update(argv="python train.py --config {config} --x={args}"),
            "command.argv[4]: {args} must be a word on its own",
        ),
        (
            lambda c: c.update(keys={"lambda_sg": "model.loss.lambda_sg"}, seed_key="seed"),
            "command.argv[4]: {args} has nothing to carry",
        ),
        # A mapping with no placeholder to carry it.
        (
            lambda c: c.update(argv="python train.py --config {config}"),
            "command.keys.lr: --lr is an argument, but command.argv has no {args}",
        ),
        (
            lambda c: c.update(argv="python train.py {args}"),
            "command.base_config: the copy reaches the program by no way: put {config}",
        ),
        (
            lambda c: c["keys"].pop("lr"),
            "search.lr: reaches your program by no way: map it in command.keys",
        ),
        (
            lambda c: c["keys"].update(lrr="--lrr"),
            "command.keys.lrr: 'lrr' is not in search (did you mean 'lr'?)",
        ),
        (
            lambda c: c["keys"].update(lr="model.loss.lambda_sg"),
            "command.keys.lr: model.loss.lambda_sg is also the key of 'lambda_sg'",
        ),
        (
            lambda c: c["keys"].update(lr="-lr"),
            "command.keys.lr: '-lr' is neither a dotted config key",
        ),
        (
            lambda c: c.update(seed_key="model.loss"),
            "command.keys: model.loss and model.loss.lambda_sg: a key cannot be set inside",
        ),
        # A key through a value of the base config that is no mapping.
        (
            lambda c: c["keys"].update(lambda_sg="model.layers.first"),
            "command.keys.lambda_sg: cannot set model.layers.first: model.layers is a list",
        ),
        # The unmapped seed.
        (
            lambda c: c.pop("seed_key"),
            "command.seed_key: required: the training seed must reach your program",
        ),
        # An unknown program.
        (
            lambda c: c.update(argv="no-such-program-xyz {config} {args}"),
            "command.argv[0]: 'no-such-program-xyz' is not found on PATH",
        ),
        (
            lambda c: c.update(argv="./missing.sh {config} {args}"),
            "command.argv[0]: no such file: ",
        ),
        (
            lambda c: c.update(argv="./train.py {config} {args}"),
            "train.py is not executable",
        ),
        (
            lambda c: c.update(argv="train.py {config} {args}"),
            "'train.py' is not found on PATH; for the file in workdir write ./train.py",
        ),
        (
            lambda c: c.update(argv="{config} x"),
            "command.argv: the first word (the program) cannot hold a placeholder",
        ),
        (lambda c: c.update(workdir="nowhere"), "command.workdir: no such folder: "),
        (lambda c: c.update(base_config="nope.yaml"), "command.base_config: no such file: "),
        # Metrics from stdout without a pattern; an invalid regex.
        (
            lambda c: c.update(metrics="stdout"),
            "command.pattern: required with metrics: stdout",
        ),
        (
            lambda c: c.update(metrics="stdout", pattern="loss=(?P<value>[0-9.]+"),
            "command.pattern: not a valid regular expression: missing ), unterminated",
        ),
        (
            lambda c: c.update(metrics="stdout", pattern=r"loss=(\S+)"),
            "command.pattern: needs the named group (?P<value>...)",
        ),
        (
            lambda c: c.update(metrics="stdout", pattern=r"(?P<epoch>\d+) (?P<value>\S+)"),
            "command.pattern: unknown named group(s) epoch",
        ),
        (
            lambda c: c.update(pattern=r"(?P<value>\S+)"),
            "command.pattern: applies to metrics: stdout only (metrics is file)",
        ),
        # Bounds of the fields.
        (lambda c: c.update(grace_s=0), "command.grace_s: Input should be greater than 0"),
        (lambda c: c.update(timeout_s=-1.0), "command.timeout_s: Input should be greater than 0"),
        (lambda c: c.update(grace_s="10"), "command.grace_s: Input should be a valid number"),
        (lambda c: c.update(metrics="tensorboard"), "command.metrics: Input should be 'file'"),
        (lambda c: c.update(unknown=1), "command.unknown: unknown key"),
        (lambda c: c.update(argv=[]), "command.argv: List should have at least 1 item"),
        (lambda c: c.update(argv="python 'unbalanced"), "command.argv: cannot split"),
    ],
)
def test_bad_command_specs_are_refused_with_their_key_path(
    project: Path, change: Any, expected: str
) -> None:
    data = command_spec()
    change(data["command"])
    found = problems(data)
    assert any(p.startswith(expected) or expected in p for p in found), found


def test_an_unquoted_placeholder_in_a_yaml_list_is_explained(project: Path) -> None:
    data = command_spec()
    data["command"]["argv"] = yaml.safe_load("[python, train.py, {config}]")
    found = problems(data)
    assert found == [
        "command.argv: word 2 is the mapping {config: null}: quote the placeholder, '{config}'"
    ]


def test_keys_of_the_built_in_trainer_are_refused_with_a_command(
    project: Path, good: dict[str, Any]
) -> None:
    data = command_spec()
    data["base"] = good["base"]
    data["baseline"] = True
    data["pruner"] = "hyperband"
    del data["objective"]
    found = problems(data)
    assert any(p.startswith("base: not used with command") for p in found), found
    assert any(p.startswith("baseline: the SSI baseline needs the built-in") for p in found)
    assert any(p.startswith("objective.metric: required with command") for p in found)
    assert any(p.startswith("command.steps: required with pruner type hyperband") for p in found)


def test_search_names_of_a_command_are_free_but_checked(project: Path) -> None:
    data = command_spec()
    data["search"]["x"] = {"low": 2, "high": 1}
    data["search"]["bad name"] = 3
    data["search"]["when"] = {"choices": [1], "extra": 2}
    found = problems(data)
    assert "search.x.low: must be < high (got low=2, high=1)" in found
    assert any(p.startswith("search.bad name: not a name for a command") for p in found)
    assert "search.when.extra: unknown key (choices take no other keys)" in found


def test_pruner_steps_are_checked_against_command_steps(project: Path) -> None:
    data = command_spec()
    data["command"]["steps"] = 3
    data["pruner"] = {"type": "median", "n_warmup_steps": 5}
    assert problems(data) == [
        "pruner.n_warmup_steps: 5 is more than the steps of a trial (3): nothing would ever "
        "be pruned (use type: none for that)"
    ]
    data["pruner"] = {"type": "hyperband", "min_resource": 2}
    spec = parse_spec(data, "t")
    assert spec.max_epochs() == 3


def test_a_program_given_as_an_executable_file(project: Path) -> None:
    script = project / "run.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    data = command_spec()
    data["command"]["argv"] = "./run.sh {config} {args}"
    spec = parse_spec(data, "t")
    assert spec.command is not None and spec.command.program() == "./run.sh"


def test_config_for_refuses_a_command_spec(project: Path) -> None:
    spec = parse_spec(command_spec(), "t")
    with pytest.raises(SpecError, match="run 'python', not the built-in trainer"):
        spec.config_for({"lambda_sg": 0.1})


def test_model_validate_runs_the_command_checks(project: Path) -> None:
    """A spec built without parse_spec (e.g. in code) is checked the same way."""
    from sweeps import SweepSpec

    data = parse_spec(command_spec(), "t").model_dump(mode="json")
    broken = copy.deepcopy(data)
    del broken["command"]["seed_key"]
    with pytest.raises(ValueError, match="the training seed must reach your program"):
        SweepSpec.model_validate(broken)


def test_the_schema_describes_the_command_section() -> None:
    schema = spec_json_schema()
    command = schema["$defs"]["CommandSpec"]
    assert command["additionalProperties"] is False
    for name, prop in command["properties"].items():
        assert prop.get("description"), name
    assert command["properties"]["grace_s"]["exclusiveMinimum"] == 0.0
    assert CommandSpec.model_fields["grace_s"].default == 10.0


def test_reading_a_command_spec_imports_nothing_heavy(
    project: Path, python_child: PythonChild
) -> None:
    """`sweep validate` of a command spec stays a read-only command: no torch, MLflow,
    Optuna, and none of studies.command (the spec checks live in sweeps)."""
    import json

    (project / "sweep.yaml").write_text(yaml.safe_dump(command_spec()))
    code = (
        "import json, sys\n"
        "from sweeps import load_spec\n"
        "load_spec('sweep.yaml')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'mlflow', 'optuna', 'sqlalchemy', 'studies'))))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = python_child.run(
        "-c", code, cwd=project, env={**os.environ, "PYTHONPATH": str(root)}, check=True
    )
    assert json.loads(done.stdout) == []


def test_fuzzed_command_sections_give_a_spec_or_a_spec_error(project: Path) -> None:
    """Whatever the command section holds, reading it ends in a spec or a SpecError with
    key paths (no other exception, nothing created)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    words = st.sampled_from(
        [
            "python",
            "train.py",
            "{config}",
            "{args}",
            "{json}",
            "{trial_dir}",
            "{x}",
            "{{",
            "}",
            "--a={args}",
            "",
            " ",
            "a\0b",
            "~nouser/x",
            "p" * 300,
            "./train.py",
            "/bin/sh",
        ]
    ) | st.text(max_size=8)
    paths = st.sampled_from(["train.yaml", "", "a\0b", "~nouser/x", "p" * 300, "/", "."])
    keys = st.sampled_from(["model.loss.lambda_sg", "--lr", "-x", "a..b", "model.layers.x", ""])
    section = st.fixed_dictionaries(
        {},
        optional={
            "argv": st.lists(words, max_size=5) | words,
            "workdir": paths | st.none(),
            "base_config": paths | st.none(),
            "keys": st.dictionaries(st.sampled_from(["lambda_sg", "lr", "zz", ""]), keys),
            "seed_key": keys | st.none() | st.integers(),
            "metrics": st.sampled_from(["file", "mlflow", "stdout", "x"]),
            "pattern": st.sampled_from([r"(?P<value>\S+)", "(", "(?P<step>1)", ""]) | st.none(),
            "grace_s": st.floats(allow_nan=True) | st.integers() | st.text(max_size=3),
            "timeout_s": st.floats() | st.none(),
            "steps": st.integers(-2, 5) | st.none(),
        },
    )

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(section=section | words | st.integers() | st.lists(words, max_size=3))
    def check(section: Any) -> None:
        data = command_spec()
        data["command"] = section
        before = sorted(p.name for p in project.iterdir())
        try:
            parse_spec(data, "fuzz")
        except SpecError as exc:
            assert exc.problems and all(p.path for p in exc.problems)
        assert sorted(p.name for p in project.iterdir()) == before

    check()
