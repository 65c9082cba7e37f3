"""The launcher's set-up against packnet-sfm's real sources: its ``parse_train_file`` and
yacs defaults, its ``SupervisedLoss`` and ``get_loss_func``, the metric names of its
``create_dict`` and ``prepare_dataset_prefix``. (The model, the trainer and the data are
tests/studies/command/packnet/test_training.py's.)"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from loss import get_loss
from loss.packnet import PacknetLoss
from studies.command.packnet import (
    PacknetConfigError,
    PacknetSetupError,
    ReporterLogger,
    declare_loss_keys,
    locate_packnet,
    main,
    metric_names,
    parse_config,
    prepare,
)
from studies.command.packnet.config import (
    LOSS_PARAMETERS,
    METRICS_KEYS,
    METRICS_MODES,
    SUPERVISED_MODELS,
)
from studies.report.packnet import PACKNET_FORK_DECLARATIONS, packnet_config
from tests.process_helpers import PythonChild
from tests.studies.command.packnet.conftest import Packnet
from trainer import TrainConfig

ROOT = Path(__file__).resolve().parents[4]
TEMPLATE = ROOT / "sweeps" / "packnet-sfm" / "semisup_kitti.yaml"
VALIDATION = {
    "dataset": ["KITTI"],
    "path": ["/data/datasets/KITTI_raw"],
    "split": ["data_splits/eigen_val_files.txt", "data_splits/eigen_test_files.txt"],
    "depth_type": ["velodyne"],
}
LOSS = {
    "method": "sparse-scale-adaptive",
    "lambda_sg": 0.3,
    "num_scales": 3,
    "use_inv_depth": True,
    "max_depth": 50.0,
}


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def exported(tmp_path: Path, loss: dict[str, Any] = LOSS, **extra: Any) -> Path:
    """salsweep's packnet export of a config, merged into a run config as its header says
    (depth network and validation data set added), as YAML."""
    data = packnet_config(TrainConfig.model_validate({"loss": loss}), "trial-3", with_training=True)
    data["model"]["depth_net"] = {"name": "PackNet01", "version": "1A"}
    data.setdefault("datasets", {})["validation"] = VALIDATION
    for key, value in extra.items():
        data[key] = value
    return write(tmp_path / "trial.yaml", data)


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse depth [2,1,32,48] predicted, and LiDAR-like ground truth (0 = none)."""
    g = torch.Generator().manual_seed(3)
    pred = 1.0 / (1.0 + 49.0 * torch.rand(2, 1, 32, 48, generator=g))
    gt = 1.0 / (2.0 + 40.0 * torch.rand(2, 1, 32, 48, generator=g))
    gt = torch.where(torch.rand(2, 1, 32, 48, generator=g) < 0.4, gt, 0.0)
    return pred, gt


def test_an_export_parses_with_packnet_sfm_and_registers_its_loss(
    packnet: Packnet, tmp_path: Path
) -> None:
    """packnet-sfm's own parse_train_file reads salsweep's export (the loss's keys
    declared for the parse), and the loss registered is the export's, with its parameters,
    inside packnet-sfm's real SupervisedLoss as SemiSupModel builds it."""
    config, checkpoint = parse_config(exported(tmp_path))
    assert checkpoint is None
    section = config.model.loss
    assert (section.lambda_sg, section.num_scales, section.use_inv_depth) == (0.3, 3, True)
    assert config.name == "trial-3" and config.model.optimizer.name == "AdamW"
    # the defaults' factory is packnet-sfm's again once the parse is done
    assert "lambda_sg" not in packnet.default_config.get_cfg_defaults().model.loss

    registration = prepare(config, packnet.supervised_loss)
    want = TrainConfig.model_validate({"loss": LOSS}).loss.loss_params()
    assert registration.name == "salsweep-sparse-scale-adaptive"
    assert registration.method == "sparse-scale-adaptive"
    assert dict(registration.params) == want

    # SemiSupModel(**cfg.model.loss) hands every other key to SupervisedLoss(**kwargs).
    kwargs = {k: v for k, v in section.items() if k != "supervised_loss_weight"}
    criterion = packnet.supervised_loss.SupervisedLoss(**kwargs)
    assert isinstance(criterion.loss_func, PacknetLoss)
    pred, gt = batch()
    out = criterion([pred], gt)
    expected = get_loss(registration.method, **want)(pred, gt, gt > 0).total
    assert float(out["loss"]) == pytest.approx(float(expected), rel=1e-6)
    # packnet-sfm's own losses still resolve
    assert isinstance(packnet.supervised_loss.get_loss_func("sparse-l1"), torch.nn.L1Loss)


def test_the_loss_packnet_sfm_calls_is_the_registered_one(
    packnet: Packnet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SupervisedLoss looks get_loss_func up in its module when it is built: the function
    the launcher put there is called, with the config's name, and its loss is used."""
    config, _ = parse_config(exported(tmp_path))
    prepare(config, packnet.supervised_loss)
    registered = packnet.supervised_loss.get_loss_func
    calls: list[str] = []

    def spy(name: str) -> Any:
        calls.append(name)
        return registered(name)

    monkeypatch.setattr(packnet.supervised_loss, "get_loss_func", spy)
    criterion = packnet.supervised_loss.SupervisedLoss(**dict(config.model.loss))
    assert calls == ["salsweep-sparse-scale-adaptive"]
    pred, gt = batch()
    p = pred.clone().requires_grad_()
    criterion([p], gt)["loss"].sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_a_fork_that_declares_the_keys_parses_too(packnet: Packnet, tmp_path: Path) -> None:
    """With the fork's declarations (the export's --print-defaults lines) in the defaults,
    nothing is declared again and yacs checks the types against the fork's."""
    original = packnet.default_config.get_cfg_defaults

    def fork_defaults() -> Any:
        cfg = original()
        exec(PACKNET_FORK_DECLARATIONS, {"cfg": cfg})
        return cfg

    packnet.default_config.get_cfg_defaults = fork_defaults
    config, _ = parse_config(exported(tmp_path))
    assert config.model.loss.lambda_sg == 0.3
    data = yaml.safe_load((tmp_path / "trial.yaml").read_text())
    data["model"]["loss"]["lambda_sg"] = 1  # an int where the fork declared a float
    with pytest.raises(PacknetConfigError, match=r"Type mismatch.*model\.loss\.lambda_sg"):
        parse_config(write(tmp_path / "int.yaml", data))


def test_keys_that_are_no_loss_parameter_are_still_refused(
    packnet: Packnet, tmp_path: Path
) -> None:
    data = yaml.safe_load(exported(tmp_path).read_text())
    data["model"]["loss"]["lamda_sg"] = 0.4  # misspelt: yacs refuses it, never dropped
    with pytest.raises(PacknetConfigError, match=r"Non-existent config key: model\.loss\.lamda_sg"):
        parse_config(write(tmp_path / "typo.yaml", data))
    data["model"]["loss"].pop("lamda_sg")
    data["model"]["loss"]["lambda_sg"] = [0.4]
    with pytest.raises(PacknetConfigError, match=r"model\.loss\.lambda_sg: expected a number"):
        parse_config(write(tmp_path / "list.yaml", data))


def test_declare_loss_keys_adds_only_missing_loss_parameters() -> None:
    node: dict[str, Any] = {"num_scales": 4}
    section = {"num_scales": 2, "lambda_sg": 0.3, "alpha": 0.5, "ssim_loss_weight": 0.1}
    assert declare_loss_keys(node, section) == ["lambda_sg", "alpha"]
    assert node == {"num_scales": 4, "lambda_sg": 0.3, "alpha": 0.5}
    assert set(LOSS_PARAMETERS) >= {"lambda_sg", "use_inv_depth", "min_depth", "alpha"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"supervised_method": "sparse-scale-adaptive"},
            "write 'salsweep-sparse-scale-adaptive' .*flattens",
        ),
        ({"supervised_method": "sparse-l1"}, "unknown supervised_method 'sparse-l1'"),
        ({"name": "SelfSupModel"}, "model.name: 'SelfSupModel' builds no supervised loss"),
        ({"validation": []}, "datasets.validation.path: empty"),
        ({"lambda_sg": -1.0}, "model.loss: .*lambda_sg"),
    ],
)
def test_configs_the_launcher_cannot_run_are_refused_with_the_key(
    packnet: Packnet, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    data = yaml.safe_load(exported(tmp_path).read_text())
    for key, value in change.items():
        if key == "name":
            data["model"]["name"] = value
        elif key == "validation":
            data["datasets"]["validation"] = {"path": value}
        else:
            data["model"]["loss"][key] = value
    config, _ = parse_config(write(tmp_path / "bad.yaml", data))
    with pytest.raises(PacknetConfigError, match=message):
        prepare(config, packnet.supervised_loss)


def test_metric_names_are_those_packnet_sfm_logs(packnet: Packnet, tmp_path: Path) -> None:
    """The names of create_dict (what validation_epoch_end logs), for two validation
    sets, by packnet-sfm's own prepare_dataset_prefix."""
    config, _ = parse_config(exported(tmp_path))
    metrics_data = [
        {f"depth{mode}": torch.arange(7.0) + i for i, mode in enumerate(METRICS_MODES)}
    ] * 2
    logged = packnet.reduce.create_dict(
        metrics_data, METRICS_KEYS, METRICS_MODES, config.datasets.validation
    )
    names = metric_names(config)
    assert names == list(logged)
    assert names[3] == "KITTI_raw-eigen_val_files-velodyne-abs_rel_pp_gt"
    assert "KITTI_raw-eigen_test_files-velodyne-a1_gt" in names
    assert len(names) == 2 * 7 * 4


def _assigned_tuple(tree: ast.AST, attribute: str) -> tuple[str, ...]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            target = node.targets[0]
            if isinstance(target, ast.Attribute) and target.attr == attribute:
                return tuple(ast.literal_eval(node.value))
    raise AssertionError(f"no self.{attribute} = ... in model_wrapper.py")


def test_the_launchers_constants_are_packnet_sfms(packnet: Packnet) -> None:
    """ModelWrapper's metric keys and modes (read from its source: it does not import
    here), the models that build a SupervisedLoss, and every logger attribute packnet-sfm
    uses (ModelWrapper, prep_logger_and_checkpoint), which ReporterLogger has."""
    wrapper = ast.parse(packnet.source("packnet_sfm/models/model_wrapper.py"))
    assert _assigned_tuple(wrapper, "metrics_keys") == METRICS_KEYS
    assert _assigned_tuple(wrapper, "metrics_modes") == METRICS_MODES
    builders = sorted(
        path.stem
        for path in (packnet.root / "packnet_sfm" / "models").glob("*.py")
        if "SupervisedLoss(" in path.read_text(encoding="utf-8")
    )
    assert builders == sorted(SUPERVISED_MODELS)
    used: set[str] = set()
    for relative in ("packnet_sfm/models/model_wrapper.py", "packnet_sfm/utils/config.py"):
        used |= set(re.findall(r"\blogger\.(\w+)", packnet.source(relative)))
    assert used == {"log_depth", "log_metrics", "log_config", "run_name", "run_url"}
    assert all(hasattr(ReporterLogger, name) for name in used)


def test_locate_packnet(packnet: Packnet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert locate_packnet(packnet.root, env={}) == packnet.root
    assert locate_packnet(None, env={"SALSWEEP_PACKNET_SFM": str(packnet.root)}) == packnet.root
    assert locate_packnet(None, env={}) == packnet.root  # importable: found from packnet_sfm
    with pytest.raises(PacknetSetupError, match=r"no packnet_sfm/__init__\.py or configs/"):
        locate_packnet(tmp_path, env={})
    # another `configs` package first on sys.path shadows packnet-sfm's
    shadow = tmp_path / "shadow"
    (shadow / "configs").mkdir(parents=True)
    (shadow / "configs" / "default_config.py").write_text("")
    monkeypatch.syspath_prepend(str(shadow))
    monkeypatch.delitem(sys.modules, "configs.default_config")
    monkeypatch.delitem(sys.modules, "configs")
    with pytest.raises(PacknetSetupError, match="not from the packnet-sfm checkout"):
        locate_packnet(packnet.root, env={})


def test_the_dry_run_prints_the_loss_and_the_names(
    packnet: Packnet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command line up to the model (which needs torchvision): parse, register,
    the objective checked; one line on standard error and exit 1 for a user's error."""
    config = exported(tmp_path)
    objective = "KITTI_raw-eigen_val_files-velodyne-abs_rel_pp_gt"
    args = [str(config), "--packnet-sfm", str(packnet.root), "--objective", objective]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "loss: salsweep-sparse-scale-adaptive lambda_sg=0.3 epsilon=1e-08 num_scales=3 "
        "use_absolute=True use_inv_depth=True gradient_normalization='per-scale' "
        "gradient_window='zero-filled' min_depth=1.0 max_depth=50.0"
    )
    assert f"  {objective}" in out and len(out) == 2 + 2 * 28

    assert main([*args[:-1], "KITTI_raw-eigen_val_files-velodyne-abs_rel_pp_gtt"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"did you mean {objective}?" in err
    assert main([str(tmp_path / "none.yaml"), "--packnet-sfm", str(packnet.root)]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main([str(config), "--packnet-sfm", str(tmp_path)]) == 1
    assert "is no packnet-sfm checkout" in capsys.readouterr().err


LIGHT = """
import sys
from studies.command.packnet import main
rc = main(sys.argv[1:])
print(sorted(m for m in {heavy!r} if m in sys.modules))
raise SystemExit(rc)
"""


@pytest.mark.slow
def test_the_launcher_runs_without_salsweeps_sweep_dependencies(
    packnet: Packnet, python_child: PythonChild
) -> None:
    """In packnet-sfm's environment the launcher needs torch, PyYAML and salsweep's
    sources, not pydantic, Optuna or MLflow (nor matplotlib up to the model)."""
    heavy = ("pydantic", "optuna", "mlflow", "sqlalchemy", "matplotlib", "trainer.config")
    args = [str(TEMPLATE), "--packnet-sfm", str(packnet.root), "--dry-run"]
    done = python_child.run("-c", LIGHT.format(heavy=heavy), *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
