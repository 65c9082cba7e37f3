"""studies.report.packnet: the packnet export merges into packnet-sfm's own yacs config tree.

``upstream_defaults()`` rebuilds the part of TRI-ML/packnet-sfm's configs/default_config.py
(commit 09ee0dc) that holds every key the export writes, with upstream's names, default
values and types (yacs refuses a value whose type differs from the default's), plus a few
neighbours; the fork's keys come from executing ``PACKNET_FORK_DECLARATIONS`` on it, as a
user pastes them into that file. The file is loaded with ``merge_from_file`` as
packnet-sfm's scripts/train.py does.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml
from click.testing import CliRunner
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from yacs.config import CfgNode

import cli
from studies.report.export import export_best
from studies.report.packnet import (
    PACKNET_FORK_DECLARATIONS,
    UPSTREAM_LOSS_KEYS,
    fork_loss_defaults,
    packnet_config,
)
from studies.store import as_record
from trainer.config import LossConfig, TrainConfig

optuna.logging.set_verbosity(optuna.logging.WARNING)


def upstream_defaults() -> CfgNode:
    """packnet-sfm's default config, trimmed to the sections the export writes into."""
    cfg = CfgNode()
    cfg.name = ""
    cfg.debug = False
    cfg.arch = CfgNode()
    cfg.arch.seed = 42
    cfg.arch.min_epochs = 1
    cfg.arch.max_epochs = 50
    cfg.arch.validate_first = False
    cfg.model = CfgNode()
    cfg.model.name = ""
    cfg.model.checkpoint_path = ""
    cfg.model.optimizer = CfgNode()
    cfg.model.optimizer.name = "Adam"
    cfg.model.optimizer.depth = CfgNode()
    cfg.model.optimizer.depth.lr = 0.0002
    cfg.model.optimizer.depth.weight_decay = 0.0
    cfg.model.optimizer.pose = CfgNode()
    cfg.model.optimizer.pose.lr = 0.0002
    cfg.model.optimizer.pose.weight_decay = 0.0
    cfg.model.params = CfgNode()
    cfg.model.params.crop = ""
    cfg.model.params.min_depth = 0.0
    cfg.model.params.max_depth = 80.0
    cfg.model.params.scale_output = "resize"
    cfg.model.loss = CfgNode()
    cfg.model.loss.num_scales = 4
    cfg.model.loss.progressive_scaling = 0.0
    cfg.model.loss.flip_lr_prob = 0.5
    cfg.model.loss.rotation_mode = "euler"
    cfg.model.loss.upsample_depth_maps = True
    cfg.model.loss.ssim_loss_weight = 0.85
    cfg.model.loss.occ_reg_weight = 0.1
    cfg.model.loss.smooth_loss_weight = 0.001
    cfg.model.loss.C1 = 1e-4
    cfg.model.loss.C2 = 9e-4
    cfg.model.loss.photometric_reduce_op = "min"
    cfg.model.loss.disp_norm = True
    cfg.model.loss.clip_loss = 0.0
    cfg.model.loss.padding_mode = "zeros"
    cfg.model.loss.automask_loss = True
    cfg.model.loss.velocity_loss_weight = 0.1
    cfg.model.loss.supervised_method = "sparse-l1"
    cfg.model.loss.supervised_num_scales = 4
    cfg.model.loss.supervised_loss_weight = 0.9
    cfg.datasets = CfgNode()
    cfg.datasets.train = CfgNode()
    cfg.datasets.train.batch_size = 8
    cfg.datasets.train.num_workers = 16
    cfg.datasets.train.dataset = []
    cfg.datasets.train.path = []
    return cfg


def fork_defaults() -> CfgNode:
    """Upstream's tree with the fork's declarations pasted in."""
    cfg = upstream_defaults()
    exec(PACKNET_FORK_DECLARATIONS, {"cfg": cfg})
    return cfg


# A winner that differs from every default, so that each value must arrive.
CONFIG = TrainConfig.model_validate(
    {
        "loss": {
            "method": "scale-adaptive",
            "lambda_sg": 0.7,
            "epsilon": 1e-6,
            "num_scales": 2,
            "use_absolute": False,
            "use_inv_depth": True,
        },
        "data": {"min_depth": 0.5, "max_depth": 40.0},
        "epochs": 12,
        "batch_size": 6,
        "lr": 3e-4,
        "weight_decay": 0.0,
    }
)


def merged(text: str, tmp_path: Path, cfg: CfgNode | None = None) -> CfgNode:
    path = tmp_path / "best.yaml"
    path.write_text(text)
    cfg = fork_defaults() if cfg is None else cfg
    cfg.merge_from_file(str(path))
    return cfg


def test_upstream_loss_keys_match_the_fixture() -> None:
    assert set(upstream_defaults().model.loss) == UPSTREAM_LOSS_KEYS


def test_declarations_add_only_new_keys_with_loss_config_defaults() -> None:
    lines = [ln for ln in PACKNET_FORK_DECLARATIONS.splitlines() if ln.startswith("cfg.")]
    assert lines[0].startswith("cfg.model.loss.lambda_sg = 0.5 ")
    added = set(fork_defaults().model.loss) - set(upstream_defaults().model.loss)
    assert added == set(fork_loss_defaults()) == {k.split(" ")[0][15:] for k in lines}
    assert {"lambda_sg", "epsilon", "use_absolute", "use_inv_depth"} <= added
    assert "num_scales" not in added  # upstream's key, shared with the photometric loss
    cfg, default = fork_defaults().model.loss, LossConfig()
    for key in added:
        assert cfg[key] == getattr(default, key)
        assert type(cfg[key]) is type(getattr(default, key))  # yacs compares types


def test_export_merges_and_values_arrive(tmp_path: Path) -> None:
    text = yaml.safe_dump(
        packnet_config(CONFIG, "demo-trial-3", with_training=True), sort_keys=False
    )
    cfg = merged(text, tmp_path)
    assert cfg.name == "demo-trial-3"
    assert cfg.model.name == "SemiSupModel"
    assert cfg.model.optimizer.name == "AdamW"
    assert cfg.model.optimizer.depth.lr == 3e-4
    assert cfg.model.optimizer.depth.weight_decay == 0.0
    assert cfg.model.optimizer.pose.lr == 0.0002  # untouched
    loss = cfg.model.loss
    assert loss.supervised_method == "salsweep-scale-adaptive"
    assert loss.supervised_num_scales == 1
    assert loss.supervised_loss_weight == 1.0
    assert (loss.lambda_sg, loss.epsilon, loss.num_scales) == (0.7, 1e-6, 2)
    assert (loss.use_absolute, loss.use_inv_depth) == (False, True)
    assert (loss.min_depth, loss.max_depth) == (0.5, 40.0)  # the loss's own range
    assert loss.ssim_loss_weight == 0.85  # untouched
    assert cfg.datasets.train.batch_size == 6
    assert cfg.arch.max_epochs == 12
    assert cfg.model.params.max_depth == 80.0  # evaluation settings are not the loss's


def test_by_default_the_users_training_settings_stay(tmp_path: Path) -> None:
    """Without with_training the file holds the loss: a merge keeps the user's optimiser,
    epochs and batch size (upstream's defaults here)."""
    cfg = merged(yaml.safe_dump(packnet_config(CONFIG), sort_keys=False), tmp_path)
    assert cfg.name == ""  # no run name written: the user's stays
    assert (cfg.model.optimizer.name, cfg.model.optimizer.depth.lr) == ("Adam", 0.0002)
    assert cfg.datasets.train.batch_size == 8
    assert cfg.arch.max_epochs == 50
    assert cfg.model.loss.lambda_sg == 0.7 and cfg.model.loss.max_depth == 40.0


def test_ssi_winner_writes_only_its_own_parameters(tmp_path: Path) -> None:
    config = CONFIG.model_copy(update={"loss": LossConfig(method="sparse-ssi", num_scales=3)})
    written = packnet_config(config, "x")["model"]["loss"]
    assert written == {
        "supervised_method": "salsweep-sparse-ssi",
        "supervised_num_scales": 1,
        "supervised_loss_weight": 1.0,
        "num_scales": 3,
    }
    # Upstream's tree alone accepts it: no fork key is written.
    cfg = merged(yaml.safe_dump(packnet_config(config, "x")), tmp_path, upstream_defaults())
    assert cfg.model.loss.num_scales == 3


def test_unknown_keys_still_fail(tmp_path: Path) -> None:
    doc = packnet_config(CONFIG, "x")
    doc["model"]["loss"]["lambda_sgg"] = 0.5
    with pytest.raises(KeyError, match=r"Non-existent config key: model\.loss\.lambda_sgg'"):
        merged(yaml.safe_dump(doc), tmp_path)
    # The seed's layout, which upstream rejects.
    seed = {"model": {"params": {"supervised_method": "scale-adaptive"}}}
    with pytest.raises(KeyError, match=r"key: model\.params\.supervised_method'"):
        merged(yaml.safe_dump(seed), tmp_path)


def test_without_the_declarations_upstream_rejects_the_fork_keys(tmp_path: Path) -> None:
    text = yaml.safe_dump(packnet_config(CONFIG, "x"), sort_keys=False)
    with pytest.raises(KeyError, match=r"Non-existent config key: model\.loss\.lambda_sg'"):
        merged(text, tmp_path, upstream_defaults())


def test_exported_study_file_merges(tmp_path: Path) -> None:
    """The whole `export_best` text (comment header included) through yacs."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db", study_name="demo")
    study.set_user_attr("objective_metric", "val/abs_rel")
    study.add_trial(
        create_trial(
            state=TrialState.COMPLETE,
            value=0.125,
            params={"loss.lambda_sg": 0.7},
            distributions={"loss.lambda_sg": FloatDistribution(0.05, 2.0)},
            user_attrs={"config": CONFIG.model_dump(mode="json"), "mlflow_run_id": "r"},
        )
    )
    users = fork_defaults()
    users.name = "my-kitti-run"  # the user's run name: the merge keeps it
    cfg = merged(export_best(as_record(study), "packnet"), tmp_path, users)
    assert cfg.name == "my-kitti-run"
    assert cfg.model.loss.lambda_sg == 0.7
    assert cfg.model.loss.num_scales == 2  # annotated in the file: read the same
    assert cfg.model.loss.supervised_num_scales == 1
    assert cfg.model.loss.min_depth == 0.5
    assert cfg.arch.max_epochs == 50  # the proxy's 12 epochs are not the user's
    with_training = export_best(as_record(study), "packnet", with_training=True)
    assert merged(with_training, tmp_path).arch.max_epochs == 12
    assert merged(with_training, tmp_path, users).name == "my-kitti-run"
    # The command line's flag.
    out = tmp_path / "cli.yaml"
    storage = ["--storage", f"sqlite:///{tmp_path}/s.db"]
    args = ["studies", "export", "demo", "--format", "packnet", "-o", str(out), *storage]
    result = CliRunner().invoke(cli.cli, [*args, "--with-training"])
    assert result.exit_code == 0, result.output
    assert out.read_text() == with_training.replace("best.yaml", str(out))


def test_cli_prints_the_declarations() -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli.cli, ["studies", "export", "any", "--format", "packnet", "--print-defaults"]
    )
    assert result.exit_code == 0, result.output
    assert result.output == PACKNET_FORK_DECLARATIONS
    # The printed lines are valid Python that declares the keys.
    cfg = upstream_defaults()
    exec(result.output, {"cfg": cfg})
    assert cfg.model.loss.lambda_sg == 0.5

    wrong = runner.invoke(cli.cli, ["studies", "export", "any", "--print-defaults"])
    assert wrong.exit_code == 2
    assert "--print-defaults needs --format packnet" in wrong.output
    missing = runner.invoke(cli.cli, ["studies", "export", "any"])
    assert missing.exit_code == 2
    assert "--output" in missing.output
    training = runner.invoke(cli.cli, ["studies", "export", "any", "--with-training"])
    assert training.exit_code == 2
    assert "--with-training needs --format packnet" in training.output
