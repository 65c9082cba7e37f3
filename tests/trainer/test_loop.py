"""fit(): reproducibility, callbacks, stopping, the loss call (unchanged by the loss's depth
range), epoch selection, checkpoints, test evaluation, learning."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from loss import LossOutput, get_loss
from trainer import (
    EpochSelection,
    NonFiniteLoss,
    TrainConfig,
    batch_loss,
    fit,
    resolve_device,
)
from trainer.data import build_datasets
from trainer.loop import _setup
from trainer.metrics import DepthMetricAccumulator, metric_keys
from trainer.model import DepthNet

TINY_DATA = {"height": 32, "width": 64, "num_train": 8, "num_val": 4, "num_test": 4}
TINY = {
    "data": TINY_DATA,
    "model": {"base_channels": 4, "num_stages": 2},
    "loss": {"num_scales": 2},
    "epochs": 2,
    "steps_per_epoch": 2,
    "batch_size": 2,
    "device": "cpu",
}


def tiny(**updates: object) -> TrainConfig:
    data = {**TINY, **updates}
    return TrainConfig.model_validate(data)


TIMINGS = ("epoch_time_s", "samples_per_s", "peak_memory_mb")

State = dict[str, torch.Tensor]


class Snapshots:
    """The run's network at the end of every epoch, found through a real forward hook
    (no mock) and copied in ``on_epoch_end``."""

    def __init__(self) -> None:
        self.model: torch.nn.Module | None = None
        self.states: dict[int, State] = {}

    def _hook(self, module: torch.nn.Module, _inputs: object, _output: object) -> None:
        if isinstance(module, DepthNet):
            self.model = module

    def on_epoch_end(self, epoch: int, _metrics: dict[str, float]) -> None:
        assert self.model is not None
        self.states[epoch] = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    @contextmanager
    def recording(self) -> Iterator[Snapshots]:
        handle = torch.nn.modules.module.register_module_forward_hook(self._hook)
        try:
            yield self
        finally:
            handle.remove()


def same_weights(a: State, b: State) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def evaluate_on_test(config: TrainConfig, state: State) -> dict[str, float]:
    """Depth metrics of ``state`` on the test split, computed here without fit's code."""
    model = DepthNet(config.model, config.data.min_depth, config.data.max_depth)
    model.load_state_dict(state)
    model.eval()
    acc = DepthMetricAccumulator(config.data.min_depth, config.data.max_depth)
    test = build_datasets(config.data).test
    with torch.no_grad():
        for rgb, depth in DataLoader(test, batch_size=config.batch_size):
            acc.update(1.0 / model(rgb), depth)
    return acc.compute()


def test_same_config_same_metrics() -> None:
    first = fit(tiny())
    second = fit(tiny())
    assert len(first.history) == 2
    for a, b in zip(first.history, second.history, strict=True):
        for key in a:
            if key in TIMINGS:
                continue
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), key


def test_other_seed_other_metrics() -> None:
    a = fit(tiny(seed=0)).final["train/total_loss"]
    b = fit(tiny(seed=1)).final["train/total_loss"]
    assert a != pytest.approx(b, rel=1e-4)


def test_epoch_metrics_and_callback() -> None:
    seen: list[tuple[int, dict[str, float]]] = []
    result = fit(tiny(), lambda epoch, metrics: seen.append((epoch, metrics)))
    assert [epoch for epoch, _ in seen] == [1, 2]
    metrics = seen[-1][1]
    for key in (
        "train/total_loss",
        "train/loss_sa",
        "train/loss_sg",
        "train/gradient/scale_1",
        "train/gradient/scale_2",
        "val/abs_rel",
        "val/abs_rel_med",
        "val/abs_rel_align",
        "val/a1_align",
        "val/abs_rel_align_depth",
        "val/a1_align_depth",
        "val/rmse",
        "val/a1",
        "val/total_loss",
        "lr",
        "epoch_time_s",
        "samples_per_s",
        "peak_memory_mb",
    ):
        assert key in metrics, key
        assert math.isfinite(metrics[key]), key
    assert {k for k in metrics if k.startswith("val/")} == {
        *(f"val/{k}" for k in metric_keys()),
        "val/total_loss",
    }
    assert metrics["val/num_images"] == 4.0
    assert 0.0 <= metrics["val/a1"] <= 1.0
    # The least-squares alignment fits inverse depth better than no alignment at all.
    assert metrics["val/abs_rel_align"] < metrics["val/abs_rel"]
    # ... and so does the one in depth; both are reported every epoch, and not equal.
    assert metrics["val/abs_rel_align_depth"] < metrics["val/abs_rel"]
    assert metrics["val/abs_rel_align_depth"] != metrics["val/abs_rel_align"]
    assert all("val/rmse_align_depth" in h for h in result.history)
    assert metrics["samples_per_s"] > 0
    # total = loss_sa + lambda_sg * loss_sg holds for each step, so for the epoch means too.
    expected = metrics["train/loss_sa"] + 0.5 * metrics["train/loss_sg"]
    assert metrics["train/total_loss"] == pytest.approx(expected, rel=1e-5)
    assert result.history[-1] == metrics
    # cosine schedule: the rate falls over the run.
    assert seen[1][1]["lr"] < seen[0][1]["lr"] <= 1e-3


def test_callback_exception_stops_run() -> None:
    class Stop(Exception):
        pass

    calls: list[int] = []

    def stop_after_first(epoch: int, _metrics: dict[str, float]) -> None:
        calls.append(epoch)
        raise Stop

    with pytest.raises(Stop):
        fit(tiny(epochs=3), stop_after_first)
    assert calls == [1]


def test_non_finite_loss_names_step() -> None:
    """Inject a NaN into the network's 3rd forward pass (a real forward hook, no mock)."""
    calls = {"n": 0}

    def poison(module: torch.nn.Module, _inputs: object, output: torch.Tensor) -> object:
        if type(module).__name__ != "DepthNet":
            return None
        calls["n"] += 1
        return output * math.nan if calls["n"] == 3 else None

    # torch types the hook as returning None, but a forward hook may return a new output.
    handle = torch.nn.modules.module.register_module_forward_hook(poison)  # type: ignore[arg-type]
    try:
        with pytest.raises(NonFiniteLoss, match="epoch 1, step 3") as info:
            fit(tiny(steps_per_epoch=5))
    finally:
        handle.remove()
    assert (info.value.epoch, info.value.step) == (1, 3)
    assert math.isnan(info.value.value)


def test_previews_and_checkpoint(tmp_path: Path) -> None:
    result = fit(tiny(output_dir=tmp_path / "run"))
    assert [p.name for p in result.previews] == ["epoch_001.png", "epoch_002.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in result.previews)
    assert result.checkpoint == tmp_path / "run" / "best.pt"
    state = torch.load(result.checkpoint, weights_only=True)
    assert any(k.endswith("weight") for k in state)
    # Default selection: the lowest val/abs_rel_align.
    values = [h["val/abs_rel_align"] for h in result.history]
    assert result.best_epoch == values.index(min(values)) + 1
    assert result.best["val/abs_rel_align"] == min(values)
    assert result.test == {}


def test_cuda_requested_without_cuda() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


@pytest.mark.parametrize("method", ["scale-adaptive", "sparse-scale-adaptive"])
def test_it_learns(method: str) -> None:
    """Validation abs_rel_align after a few seconds of training is clearly below the
    untrained one."""
    base = {
        "data": {"height": 48, "width": 96, "num_train": 1000, "num_val": 32},
        "model": {"base_channels": 8, "num_stages": 3},
        "loss": {"method": method, "num_scales": 3},
        "batch_size": 4,
        "lr": 2e-3,
        "device": "cpu",
    }
    untrained = fit(
        TrainConfig.model_validate({**base, "epochs": 1, "steps_per_epoch": 1, "lr": 1e-9})
    )
    trained = fit(TrainConfig.model_validate({**base, "epochs": 5, "steps_per_epoch": 40}))
    # Aligned: the loss is scale-invariant up to its small absolute term (which works on
    # depth / max_depth), so the relative depth is what a few seconds of training learn.
    before = untrained.final["val/abs_rel_align"]
    after = min(h["val/abs_rel_align"] for h in trained.history)
    assert after < 0.8 * before, (before, after)


# --- loss inputs ---------------------------------------------------------------------------

# The range under which the loss works on its raw inputs (factor 1), i.e. the loss as it was
# before it had a depth range: depth mode divides by max_depth, inverse mode multiplies by
# min_depth.
RAW_RANGE = {
    False: {"min_depth": 0.5, "max_depth": 1.0},
    True: {"min_depth": 1.0, "max_depth": 2.0},
}


def old_loss_call(config: TrainConfig, pred_inv: torch.Tensor, depth: torch.Tensor) -> LossOutput:
    """The trainer's loss call before the loss had a depth range (round 2's
    ``loss_input_scale``): inputs times ``c`` (depth mode: data.max_depth; inverse-depth
    mode and SSI: data.min_depth) into the loss on its raw inputs, mask ``depth > 0``."""
    loss = config.loss
    inverse = loss.use_inv_depth or loss.method in ("ssi", "sparse-ssi")
    c = config.data.min_depth if inverse else config.data.max_depth
    params = {k: v for k, v in loss.loss_params().items() if k not in ("min_depth", "max_depth")}
    if loss.method not in ("ssi", "sparse-ssi"):
        params.update(RAW_RANGE[loss.use_inv_depth])
    fn = get_loss(loss.method, **params)
    gt_inv = torch.where(depth > 0, 1.0 / depth.clamp(min=1e-6), 0.0)
    return fn(pred_inv * c, gt_inv * c, depth > 0)


@pytest.mark.parametrize(
    "updates",
    [
        {"device": "cpu"},  # the default config
        {"device": "cpu", "loss": {"use_inv_depth": True}, "data": {"min_depth": 0.5}},
        {"device": "cpu", "loss": {"method": "scale-adaptive"}, "data": {"max_depth": 40.0}},
        {"device": "cpu", "loss": {"method": "ssi"}},
        {"device": "cpu", "loss": {"method": "sparse-ssi"}, "data": {"min_depth": 0.5}},
    ],
)
def test_trainer_loss_is_the_old_scaled_call(updates: dict[str, object]) -> None:
    """The loss's depth range replaced the trainer's input scaling without changing a
    number: value, every metric and gradient of the trainer's loss on a real first batch
    (untrained network) equal the old call's (relative 1e-6; the scale-adaptive methods
    multiply by the same factor, so they agree bit for bit)."""
    config = TrainConfig.model_validate(updates)
    run = _setup(config)
    rgb, depth = next(iter(run.train_loader))
    holes = torch.rand(depth.shape, generator=torch.Generator().manual_seed(0)) < 0.3
    depth = torch.where(holes, 0.0, depth)  # pixels without ground truth: the mask matters
    with torch.no_grad():
        pred_inv = run.model(rgb)
    p_new = pred_inv.clone().requires_grad_()
    new = run.loss(p_new, depth)
    (g_new,) = torch.autograd.grad(new.total, p_new)
    p_old = pred_inv.clone().requires_grad_()
    old = old_loss_call(config, p_old, depth)
    (g_old,) = torch.autograd.grad(old.total, p_old)

    assert list(new.metrics) == list(old.metrics)
    for name, value in old.metrics.items():
        assert float(new.metrics[name]) == pytest.approx(float(value), rel=1e-6), name
    assert float(new.total.detach()) == pytest.approx(float(old.total.detach()), rel=1e-6)
    err = torch.linalg.vector_norm(g_new - g_old) / torch.linalg.vector_norm(g_old)
    assert float(err) <= 1e-6
    if not config.loss.method.endswith("ssi"):
        assert torch.equal(new.total, old.total) and torch.equal(g_new, g_old)


def test_trainer_loss_gradient_reaches_the_network_unchanged() -> None:
    """The same through the network: the weights' gradients at the default config."""
    config = TrainConfig(device="cpu")
    run = _setup(config)
    rgb, depth = next(iter(run.train_loader))
    grads = []
    for call in (run.loss, lambda p, d: old_loss_call(config, p, d)):
        run.model.zero_grad()
        call(run.model(rgb), depth).total.backward()
        grads.append([p.grad.clone() for p in run.model.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for new, old in zip(*grads, strict=True):
        assert torch.equal(new, old)


@pytest.mark.parametrize("use_inv_depth", [False, True])
def test_depth_range_balances_the_terms_at_initialisation(use_inv_depth: bool) -> None:
    """At initialisation the absolute term no longer rules the loss in either mode, and
    the relative and gradient terms are the same as on raw inputs (issue 7.3a)."""
    config = tiny(
        data={**TINY_DATA, "min_depth": 0.5},
        loss={"num_scales": 2, "use_inv_depth": use_inv_depth},
    )
    torch.manual_seed(0)
    model = DepthNet(config.model, config.data.min_depth, config.data.max_depth)
    train = build_datasets(config.data).train
    rgb, depth = (torch.stack(t) for t in zip(*(train[i] for i in range(4)), strict=True))
    with torch.no_grad():
        pred_inv = model(rgb)
    assert (config.loss.min_depth, config.loss.max_depth) == (0.5, 80.0)  # the data's
    loss_fn = get_loss(config.loss.method, **config.loss.loss_params())
    raw_params = {**config.loss.loss_params(), **RAW_RANGE[use_inv_depth]}
    raw_fn = get_loss(config.loss.method, **raw_params)
    scaled = batch_loss(loss_fn, pred_inv, depth).metrics
    raw = batch_loss(raw_fn, pred_inv, depth).metrics

    ratio_raw = float(raw["scale_adaptive/absolute"] / raw["scale_adaptive/relative"])
    ratio = float(scaled["scale_adaptive/absolute"] / scaled["scale_adaptive/relative"])
    if not use_inv_depth:
        assert ratio_raw > 5.0  # metres: the absolute term rules (issue 7.3a)
    assert ratio < 0.5
    assert ratio == pytest.approx(ratio_raw / 80.0 if not use_inv_depth else ratio_raw * 0.5)
    for name in ("scale_adaptive/relative", "gradient/scale_1", "gradient/scale_2"):
        assert float(scaled[name]) == pytest.approx(float(raw[name]), rel=1e-5), name


# --- epoch selection, checkpoint, test evaluation -----------------------------------------


def test_checkpoint_holds_the_selected_epochs_weights(tmp_path: Path) -> None:
    """Maximising the learning rate (it falls with the cosine schedule) selects epoch 1:
    best.pt holds exactly the weights the network had at the end of epoch 1."""
    snapshots = Snapshots()
    with snapshots.recording():
        result = fit(
            tiny(epochs=3, output_dir=tmp_path, previews=False),
            snapshots.on_epoch_end,
            select=EpochSelection("lr", "maximize"),
        )
    assert result.best_epoch == 1
    assert result.selection == EpochSelection("lr", "maximize")
    assert result.checkpoint == tmp_path / "best.pt"
    kept = torch.load(result.checkpoint, weights_only=True)
    assert same_weights(kept, snapshots.states[1])
    assert not same_weights(kept, snapshots.states[3])


def test_default_selection_keeps_the_lowest_aligned_abs_rel(tmp_path: Path) -> None:
    snapshots = Snapshots()
    with snapshots.recording():
        result = fit(tiny(epochs=3, output_dir=tmp_path, previews=False), snapshots.on_epoch_end)
    values = [h["val/abs_rel_align"] for h in result.history]
    assert result.best_epoch == values.index(min(values)) + 1
    assert result.checkpoint is not None
    kept = torch.load(result.checkpoint, weights_only=True)
    assert same_weights(kept, snapshots.states[result.best_epoch])


def test_reduce_last_keeps_the_last_epoch(tmp_path: Path) -> None:
    snapshots = Snapshots()
    with snapshots.recording():
        result = fit(
            tiny(epochs=3, output_dir=tmp_path, previews=False),
            snapshots.on_epoch_end,
            select=EpochSelection("lr", "maximize", "last"),
        )
    assert result.best_epoch == 3
    assert result.checkpoint is not None
    assert same_weights(torch.load(result.checkpoint, weights_only=True), snapshots.states[3])


def test_unknown_selection_metric_stops_after_the_first_epoch() -> None:
    calls: list[int] = []
    with pytest.raises(ValueError, match="'val/abs_rel_aligned' is not among"):
        fit(
            tiny(),
            lambda epoch, _m: calls.append(epoch),
            select=EpochSelection("val/abs_rel_aligned"),
        )
    assert calls == []


def test_test_split_is_evaluated_on_the_selected_weights(tmp_path: Path) -> None:
    """With evaluate_test the selected epoch's weights (epoch 1 here, not the last) are
    scored on the test split: the numbers equal an evaluation of best.pt done here."""
    config = tiny(epochs=2, output_dir=tmp_path, previews=False)
    select = EpochSelection("lr", "maximize")
    result = fit(config, select=select, evaluate_test=True)
    assert set(result.test) == {*(f"test/{k}" for k in metric_keys()), "test/total_loss"}
    assert result.test["test/num_images"] == 4.0
    assert math.isfinite(result.test["test/total_loss"])
    assert result.checkpoint is not None
    mine = evaluate_on_test(config, torch.load(result.checkpoint, weights_only=True))
    for key, value in mine.items():
        assert result.test[f"test/{key}"] == pytest.approx(value, rel=1e-9, abs=1e-12), key

    # The test split never steers the run: the same history without it, and no test keys.
    plain = fit(config, select=select)
    assert plain.test == {}
    for a, b in zip(result.history, plain.history, strict=True):
        assert {k: v for k, v in a.items() if k not in TIMINGS} == {
            k: v for k, v in b.items() if k not in TIMINGS
        }


def test_test_evaluation_without_output_dir_uses_the_kept_copy() -> None:
    snapshots = Snapshots()
    config = tiny(epochs=2)
    with snapshots.recording():
        result = fit(
            config,
            snapshots.on_epoch_end,
            select=EpochSelection("lr", "maximize"),
            evaluate_test=True,
        )
    assert result.checkpoint is None
    mine = evaluate_on_test(config, snapshots.states[1])
    last = evaluate_on_test(config, snapshots.states[2])
    assert result.test["test/abs_rel_align"] == pytest.approx(mine["abs_rel_align"], rel=1e-9)
    assert result.test["test/abs_rel_align"] != pytest.approx(last["abs_rel_align"], rel=1e-9)
