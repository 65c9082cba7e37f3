"""Read-only commands import neither torch nor MLflow (nor Optuna, SQLAlchemy or pydantic
where they have no use for them); packages load their names on use.

Each check runs in a fresh interpreter, so that what this test process has imported
already cannot hide an import.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import optuna
import pytest

from studies.home import default_storage_url
from studies.run.search_space import suggest_config
from studies.store.catalog import quiet_optuna_logs
from studies.store.storage import open_storage
from sweeps import SPEC_DIR, load_spec
from tests.process_helpers import PythonChild

ROOT = Path(__file__).resolve().parents[1]
# torch and MLflow take seconds to import; matplotlib and alembic (Optuna's schema
# migrations) a few tenths. No read-only command imports them.
HEAVY = ("torch", "mlflow", "matplotlib", "alembic")
# Optuna with SQLAlchemy (0.6 s), pydantic with the config models (0.1-0.2 s): reading an
# SQLite storage needs neither Optuna nor SQLAlchemy (studies.store.tables reads its tables with
# sqlite3), and only an export (which validates the config it writes) needs pydantic.
OPTUNA = ("optuna", "sqlalchemy")
PYDANTIC = ("pydantic",)

# Runs each command in-process with click's CliRunner and records, per command, its exit
# code, its output and the heavy modules loaded so far.
RUN_COMMANDS = """
import json, sys
from click.testing import CliRunner
from cli import cli
heavy = {heavy!r}
report = []
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(cli, args)
    loaded = sorted(m for m in heavy if m in sys.modules)
    report.append({{"args": args, "code": result.exit_code, "output": result.output,
                   "heavy": loaded}})
print(json.dumps(report))
"""


def _in_fresh_process(python_child: PythonChild, code: str, *args: str) -> str:
    done = python_child.run("-c", code, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _write_study(url: str) -> None:
    """Study ``s`` of the default spec with two finished trials (as a sweep stores them)."""
    quiet_optuna_logs()
    spec = load_spec(SPEC_DIR / "default.yaml")
    study = optuna.create_study(
        study_name="s",
        storage=open_storage(url),
        direction="minimize",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.set_user_attr("spec", spec.model_dump(mode="json"))
    study.set_user_attr("objective_metric", spec.objective.metric)
    for value in (0.3, 0.2):
        trial = study.ask()
        config = suggest_config(trial, spec)
        trial.set_user_attr("config", config.model_dump(mode="json"))
        trial.set_user_attr("mlflow_run_id", f"run-{trial.number}")
        study.tell(trial, value)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # ask/tell without optimize
def test_read_only_commands_import_neither_torch_nor_mlflow(
    tmp_path: Path, python_child: PythonChild
) -> None:
    home = tmp_path / "home"
    _write_study(default_storage_url(home))
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("search:\n  loss.lambda_sgg: {low: 1, high: 0}\n", encoding="utf-8")
    h = ["--home", str(home)]
    # (arguments, exit code, modules it must not import beyond HEAVY), in the order run:
    # a module imported by one command stays loaded for the next.
    commands = [
        (["--help"], 0, OPTUNA + PYDANTIC),
        (["studies", "--help"], 0, OPTUNA + PYDANTIC),
        (["server", "status", *h], 1, OPTUNA + PYDANTIC),
        (["studies", "list", *h], 0, OPTUNA + PYDANTIC),
        (["studies", "show", "s", *h], 0, OPTUNA + PYDANTIC),
        (["studies", "show", "nope", *h], 1, OPTUNA + PYDANTIC),
        (["studies", "show", "s:confirm", *h], 1, OPTUNA + PYDANTIC),  # s has no companion
        (["studies", "export", "s", "-o", str(tmp_path / "best.yaml"), *h], 0, OPTUNA),
        (
            ["studies", "export", "s", "--format", "packnet", "-o", str(tmp_path / "p.yaml"), *h],
            0,
            OPTUNA,
        ),
        (["sweep", "validate", str(SPEC_DIR / "default.yaml")], 0, OPTUNA),
        (["sweep", "validate", str(invalid)], 1, OPTUNA),
        (["sweep", "schema"], 0, OPTUNA),
    ]
    code = RUN_COMMANDS.format(heavy=HEAVY + OPTUNA + PYDANTIC)
    report = json.loads(
        _in_fresh_process(python_child, code, json.dumps([args for args, _, _ in commands]))
    )

    for (args, expected, absent), ran in zip(commands, report, strict=True):
        assert ran["code"] == expected, (args, ran["output"])
        loaded = [m for m in ran["heavy"] if m in HEAVY + absent]
        assert loaded == [], (args, loaded)
    by_args = {" ".join(r["args"][:3]): r["output"] for r in report}
    # The commands did their work: real output, and errors as one clear message.
    assert "run-1" in by_args["studies show s"]
    assert "# trial: 1" in (tmp_path / "best.yaml").read_text(encoding="utf-8")
    assert "supervised_method" in (tmp_path / "p.yaml").read_text(encoding="utf-8")
    invalid_out = by_args[f"sweep validate {invalid}"]
    assert "search.loss.lambda_sgg" in invalid_out and "unexpected" not in invalid_out
    assert "no study named 'nope' in this storage (studies: s)" in by_args["studies show nope"]
    assert "no MLflow server is running" in by_args["server status --home"]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # ask/tell without optimize
def test_reading_postgresql_imports_neither_torch_nor_mlflow_nor_optuna(
    tmp_path: Path, postgres_url: str, python_child: PythonChild
) -> None:
    """Another database is read with SQLAlchemy's core engine, without Optuna."""
    _write_study(postgres_url)
    s = ["--storage", postgres_url, "--home", str(tmp_path / "home")]
    commands = [
        ["studies", "list", *s],
        ["studies", "show", "s", *s],
        ["studies", "export", "s", "-o", str(tmp_path / "best.yaml"), *s],
    ]
    code = RUN_COMMANDS.format(heavy=(*HEAVY, "optuna"))
    report = json.loads(_in_fresh_process(python_child, code, json.dumps(commands)))
    for args, ran in zip(commands, report, strict=True):
        assert ran["code"] == 0, (args, ran["output"])
        assert ran["heavy"] == [], (args, ran["heavy"])
    assert "run-1" in report[1]["output"]
    assert "# trial: 1" in (tmp_path / "best.yaml").read_text(encoding="utf-8")


PACKAGE_IMPORTS = """
import sys
{imports}
print(",".join(sorted(m for m in {modules!r} if m in sys.modules)))
"""


@pytest.mark.parametrize(
    ("imports", "absent"),
    [
        # The error base: nothing at all, not even pydantic.
        ("import trainer.errors", ("pydantic", "yaml", "torch")),
        ("import loss, trainer, sweeps, studies", ("pydantic", "torch", "optuna", "mlflow")),
        ("from sweeps import load_spec, SPEC_DIR", ("torch", "optuna", "mlflow")),
        ("from trainer import TrainConfig, load_train_config", ("torch", "optuna", "mlflow")),
        ("from loss import LOSS_METHODS, method_params", ("torch",)),
        ("from studies import load_study, trial_rows, load_confirmation", ("torch", "mlflow")),
        ("from studies import export_best, study_summaries", ("torch", "mlflow")),
        # What the read-only commands load to read a study: no Optuna, no pydantic.
        (
            "from studies import read_study, study_summaries, trial_rows, load_confirmation, "
            "export_best, resolve_storage, default_storage_url",
            ("torch", "mlflow", "optuna", "sqlalchemy", "pydantic"),
        ),
    ],
)
def test_packages_load_heavy_parts_on_use(
    imports: str, absent: tuple[str, ...], python_child: PythonChild
) -> None:
    code = PACKAGE_IMPORTS.format(imports=imports, modules=absent)
    assert _in_fresh_process(python_child, code).strip() == ""


@pytest.mark.parametrize("package", ["loss", "trainer", "sweeps", "studies"])
def test_every_public_name_resolves(package: str) -> None:
    """The lazy tables of the packages are complete: every name of ``__all__`` loads."""
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        assert name in dir(module)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'nope'"):
        module.nope  # noqa: B018


def test_a_lazy_name_is_the_defining_module_s_object() -> None:
    import studies
    import studies.store.catalog
    import trainer
    import trainer.io

    assert studies.load_study is studies.store.catalog.load_study
    assert trainer.ConfigError is trainer.io.ConfigError


def _face_names(path: Path) -> tuple[set[str], set[str]]:
    """(names imported under TYPE_CHECKING, names in the lazy_face mapping) of a face."""
    import ast

    tree = ast.parse(path.read_text())
    typed: set[str] = set()
    mapped: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for item in node.body:
                if isinstance(item, ast.ImportFrom):
                    typed |= {a.asname or a.name for a in item.names}
        call = node.value if isinstance(node, ast.Assign) else None
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "lazy_face":
            mapping = ast.literal_eval(call.args[1])
            mapped |= {name for names in mapping.values() for name in names}
    return typed, mapped


def test_every_face_types_the_names_it_serves() -> None:
    """Each lazy package face (loss.lazy) lists a name twice, for the type checker and
    for the loader: the two lists agree, and every name loads."""
    import importlib

    root = Path(__file__).resolve().parents[1]
    faces = [p for p in sorted(root.glob("*/**/__init__.py")) if "lazy_face" in p.read_text()]
    assert {p.parent.relative_to(root).as_posix() for p in faces} >= {
        "studies",
        "studies/store",
        "studies/tracking",
        "studies/confirmation",
        "studies/report",
        "studies/run",
        "studies/workers",
        "sweeps",
    }
    for path in faces:
        typed, mapped = _face_names(path)
        assert typed == mapped, (path, typed ^ mapped)
        package = importlib.import_module(".".join(path.parent.relative_to(root).parts))
        assert set(package.__all__) >= mapped
        for name in mapped:
            assert getattr(package, name) is not None


def test_no_module_over_400_lines_without_a_reason() -> None:
    """The house rule: a module of the packages runs to 400 lines at most, unless its
    docstring says why ("Over 400 lines: ...")."""
    root = Path(__file__).resolve().parents[1]
    long = []
    for package in ("loss", "trainer", "studies", "sweeps"):
        for path in sorted((root / package).rglob("*.py")):
            text = path.read_text()
            if text.count("\n") > 400 and "Over 400 lines:" not in text[:2000]:
                long.append(f"{path.relative_to(root)} ({text.count(chr(10))} lines)")
    assert long == []
