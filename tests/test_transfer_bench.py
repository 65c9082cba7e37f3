"""benchmarks/transfer_bench.py without training: the design, the fidelities, the objective's
reduction, the CSV's resume key and the summary of a complete CSV."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import transfer_bench as tb

SPEC = Path(__file__).resolve().parents[1] / "sweeps" / "default.yaml"


def test_the_design() -> None:
    full = tb.design_configs("full")
    assert len(full) == 13 and full[0].family == "ssi"
    grid = {(c.lambda_sg, c.num_scales, c.use_inv_depth) for c in full[1:]}
    assert len(grid) == 12  # lambda_sg x num_scales x mode
    reduced = tb.design_configs("cpu-reduced")
    assert [c.name for c in reduced] == list(tb.REDUCED)
    assert {c.name for c in reduced} <= {c.name for c in full}
    sa = full[1]
    assert sa.loss_update(sparse=True)["method"] == "sparse-scale-adaptive"
    assert full[0].loss_update(sparse=True) == {"method": "sparse-ssi"}
    assert full[0].loss_update(sparse=False) == {"method": "ssi"}


def test_the_fidelities() -> None:
    proxy = tb.fidelity_base(SPEC, "full", "proxy", "cpu")
    high = tb.fidelity_base(SPEC, "full", "high", "cpu")
    assert (proxy.data.height, proxy.data.width, proxy.data.sparse) == (64, 192, False)
    assert (proxy.model.base_channels, proxy.epochs * proxy.steps_per_epoch) == (8, 600)
    assert (high.data.height, high.data.width, high.data.sparse) == (192, 640, True)
    assert high.model.base_channels > proxy.model.base_channels
    assert high.epochs * high.steps_per_epoch >= 10 * proxy.epochs * proxy.steps_per_epoch
    assert not high.previews and high.data.seed == proxy.data.seed
    assert high.loss.max_depth == high.data.max_depth
    reduced = tb.fidelity_base(SPEC, "cpu-reduced", "high", "cpu")
    assert reduced.data.sparse and reduced.data.height > proxy.data.height
    assert tb.signature(proxy) == tb.signature(
        tb.fidelity_base(SPEC, "cpu-reduced", "proxy", "cuda")
    )
    assert tb.signature(reduced) != tb.signature(high) != tb.signature(proxy)


def test_reduce_as_the_objective() -> None:
    history = [{"m": 0.3}, {"m": 0.2}, {"m": math.nan}, {"m": 0.25}]
    assert tb._reduce(history, "m", "minimize", "best") == 0.2
    assert tb._reduce(history, "m", "maximize", "best") == 0.3
    assert tb._reduce(history, "m", "minimize", "last") == 0.25
    assert math.isnan(tb._reduce([{"m": math.nan}], "m", "minimize", "best"))


def test_a_complete_csv_is_summarised_and_a_missing_run_is_not(tmp_path: Path) -> None:
    configs = tb.design_configs("cpu-reduced")
    seeds = [100, 101, 102]
    sigs = {"proxy": "p", "high": "h"}
    out = tmp_path / "runs.csv"
    rng = np.random.default_rng(0)
    for f in tb.FIDELITIES:
        for s in seeds:
            for i, c in enumerate(configs):
                value = 0.1 + 0.01 * i + rng.normal(0, 0.001)
                diverged = f == "high" and i == 0 and s == 100
                row = {
                    "design": "cpu-reduced",
                    "fidelity": f,
                    "signature": sigs[f],
                    "config": c.name,
                    "seed": s,
                    "status": "diverged" if diverged else "ok",
                    "cpu_s": 1.0,
                }
                for m in tb.METRICS:
                    row[m] = math.nan if diverged else value
                tb.append_row(out, row)
    rows = tb.read_rows(out)
    assert len(rows) == 2 * len(configs) * len(seeds)

    def summarise(rows: list[dict[str, str]]) -> dict[str, Any] | None:
        return tb.summarise(rows, "cpu-reduced", sigs, sigs, configs, seeds, "minimize", 200)

    summary = summarise(rows)
    assert summary is not None
    assert summary["runs"] == 30 and summary["diverged"] == 1
    assert "CPU-REDUCED" in summary["label"]
    res = summary["metrics"]["val/abs_rel_align"]
    # The same ranking at both fidelities (means 0.10, 0.11, ... 0.14), except that the
    # diverged run counts as the worst score (0.14): the first configuration's high mean
    # is about (0.14 + 0.10 + 0.10) / 3, second after 0.11; one pair of 10 discordant.
    assert res["regret"]["proxy_pick"] == configs[0].name
    assert res["regret"]["high_best"] == configs[1].name
    assert res["regret"]["estimate"] == pytest.approx(0.34 / 3 - 0.11, abs=0.002)
    assert res["kendall_tau"]["transfer"]["estimate"] == pytest.approx(0.8)
    assert "regret of the proxy's pick" in tb.markdown(summary)
    assert summarise(rows[:-1]) is None
