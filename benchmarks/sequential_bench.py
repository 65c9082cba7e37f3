"""Sequential confirmation: error rate, power and replicate runs, by simulation.

Simulated confirmations (studies.confirmation.simulation: a shared part per seed, a
training-seed sd per configuration drawn from 0.003-0.012, scene-by-configuration noise;
the numbers of docs/BENCHMARKS.md) raced with studies.confirmation.race under a design
(defaults: the documented ones), printed as Markdown tables for docs/BENCHMARKS.md:

- the null (all contenders equal; 2, 3 and 5 candidates and the baseline): the rate of
  false claims (any claim, and "the winner is better") with its standard error, and the
  replicate runs;
- a true 0.02 lead of one candidate over the other and the baseline: the race's power and
  mean replicate runs against the fixed design (paired t with Holm on validation) by
  number of seeds, for three noise levels; the fixed seeds of power 0.8 and of the race's
  power;
- the old verdict (pick the best mean, 95% intervals on the same scores, 4 seeds) and the
  pick-on-validation, test-on-test variant under the null: their "better than the
  baseline" rate against its nominal 2.5%;
- the coverage of the reported interval of winner - baseline.

    .venv/bin/python benchmarks/sequential_bench.py [--races 4000] [--n0 4 --n-max 16 ...]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence

from studies.confirmation import (
    RaceState,
    SequentialDesign,
    fixed_comparison,
    race,
    simulated_scores,
)

BASE = "baseline"


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / n)


def _means(k: int, lead: float = 0.0) -> dict[str, float]:
    means = {f"c{i}": 0.17 for i in range(k)}
    means["c0"] = 0.17 - lead
    means[BASE] = 0.17
    return means


def _races(
    design: SequentialDesign,
    means: dict[str, float],
    repeats: int,
    seed: int,
    sd_range: tuple[float, float],
) -> list[RaceState]:
    candidates = [key for key in means if key != BASE]
    samples = simulated_scores(means, repeats, design.n_max, seed, sd_range=sd_range)
    return [race(design, scores, candidates, BASE) for scores in samples]


def _won(winner: str | None, outcomes: Sequence[str]) -> bool:
    return winner == "c0" and all(o == "better" for o in outcomes)


def null_table(design: SequentialDesign, repeats: int, seed: int) -> None:
    print(
        "| candidates + baseline | races | false claims (any) ± SE | winner claimed better "
        "± SE | mean runs (max) |"
    )
    print("|---|---|---|---|---|")
    for k in (2, 3, 5):
        n = repeats if k < 5 else repeats // 2
        states = _races(design, _means(k), n, seed + k, (0.003, 0.012))
        anyc = sum(bool(s.claims) for s in states) / n
        win = sum(any(c.outcome == "better" for c in s.comparisons.values()) for s in states) / n
        runs = sum(s.runs for s in states) / n
        print(
            f"| {k} + 1 | {n} | {anyc:.4f} ± {_se(anyc, n):.4f} | {win:.4f} ± {_se(win, n):.4f} "
            f"| {runs:.1f} ({(k + 1) * design.n_max}) |"
        )


def lead_table(design: SequentialDesign, repeats: int, seed: int) -> None:
    scenarios = {
        "sd 0.003-0.012 (each configuration its own)": (0.003, 0.012),
        "sd 0.008": (0.008, 0.008),
        "sd 0.012": (0.012, 0.012),
    }
    means = _means(2, lead=0.02)
    print(
        "| training-seed sd | race power | race mean runs | fixed seeds for the race's power "
        "| race saves | fixed seeds for power 0.8 | fixed power by seeds |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, sd_range in scenarios.items():
        states = _races(design, means, repeats, seed, sd_range)
        power = sum(_won(s.winner, [c.outcome for c in s.comparisons.values()]) for s in states)
        power /= repeats
        runs = sum(s.runs for s in states) / repeats
        fixed = {}
        for n in range(4, 17):
            samples = simulated_scores(means, repeats, n, seed + 100 + n, sd_range=sd_range)
            verdicts = [
                fixed_comparison(s, ["c0", "c1"], BASE, alpha=design.alpha) for s in samples
            ]
            fixed[n] = (
                sum(_won(v.winner, [c.outcome for c in v.comparisons.values()]) for v in verdicts)
                / repeats
            )
            if fixed[n] >= max(power, 0.8):
                break

        def seeds_for(target: float, fixed: dict[int, float] = fixed) -> int | None:
            return min((n for n, p in fixed.items() if p >= target), default=None)

        def shown(n: int | None) -> str:
            return "> 16" if n is None else f"{n} ({3 * n} runs)"

        same = seeds_for(power)
        saving = "" if same is None else f"{1 - runs / (3 * same):+.0%}"
        curve = ", ".join(f"{n}: {p:.3f}" for n, p in fixed.items())
        print(
            f"| {name} | {power:.3f} ± {_se(power, repeats):.3f} | {runs:.1f} | {shown(same)} "
            f"| {saving} | {shown(seeds_for(0.8))} | {curve} |"
        )


def near_table(design: SequentialDesign, repeats: int, seed: int) -> None:
    """The common case of docs/BENCHMARKS.md: the best two configurations within 0.003,
    the baseline 0.02 behind."""
    means = {"c0": 0.150, "c1": 0.153, BASE: 0.170}
    states = _races(design, means, repeats, seed + 700, (0.003, 0.012))
    runs = sum(s.runs for s in states) / repeats
    base = sum(s.comparisons[BASE].outcome == "better" for s in states) / repeats
    right = sum(s.winner == "c0" for s in states) / repeats
    runner: dict[str, int] = {}
    for s in states:
        c = s.comparisons[s.runner_up or ""]
        key = c.outcome if c.reason is None else f"unresolved ({c.reason})"
        runner[key] = runner.get(key, 0) + 1
    shown = ", ".join(f"{k} {v / repeats:.3f}" for k, v in sorted(runner.items()))
    print(
        "| design | mean runs | winner better than the baseline | winner is c0 | against the "
        "runner-up |"
    )
    print("|---|---|---|---|---|")
    print(f"| race | {runs:.1f} | {base:.3f} | {right:.3f} | {shown} |")
    for n in (4, 8):
        samples = simulated_scores(means, repeats, n, seed + 800 + n)
        verdicts = [fixed_comparison(s, ["c0", "c1"], BASE, alpha=design.alpha) for s in samples]
        base_f = sum(v.comparisons[BASE].outcome == "better" for v in verdicts) / repeats
        right_f = sum(v.winner == "c0" for v in verdicts) / repeats
        runner_f: dict[str, int] = {}
        for v in verdicts:
            o = v.comparisons[v.runner_up or ""].outcome
            runner_f[o] = runner_f.get(o, 0) + 1
        shown = ", ".join(f"{k} {c / repeats:.3f}" for k, c in sorted(runner_f.items()))
        print(f"| fixed, {n} seeds, Holm | {3 * n} | {base_f:.3f} | {right_f:.3f} | {shown} |")


def old_table(repeats: int, seed: int) -> None:
    print(
        "| candidates + baseline | old verdict (best test mean, 95% CI on test) | picked on "
        "validation, 95% CI on test | nominal |"
    )
    print("|---|---|---|---|")
    for k in (2, 3, 5):
        samples = simulated_scores(_means(k), repeats, 4, seed + 300 + k)
        candidates = [f"c{i}" for i in range(k)]
        rates = []
        for choose_on in ("test", "validation"):
            verdicts = [
                fixed_comparison(
                    s, candidates, BASE, adjust="none", choose_on=choose_on, claim_on="test"
                )
                for s in samples
            ]
            rates.append(sum(v.comparisons[BASE].outcome == "better" for v in verdicts) / repeats)
        print(
            f"| {k} + 1 | {rates[0]:.4f} ± {_se(rates[0], repeats):.4f} | {rates[1]:.4f} ± "
            f"{_se(rates[1], repeats):.4f} | 0.025 |"
        )


def coverage_table(design: SequentialDesign, repeats: int, seed: int) -> None:
    print(
        "| means (c0, c1, baseline) | races | validation interval covers | test interval "
        "covers | mean runs |"
    )
    print("|---|---|---|---|---|")
    for means in (
        {"c0": 0.150, "c1": 0.155, BASE: 0.170},
        {"c0": 0.170, "c1": 0.170, BASE: 0.170},
        {"c0": 0.150, "c1": 0.170, BASE: 0.160},
    ):
        states = _races(design, means, repeats, seed + 500, (0.003, 0.012))
        val = test = 0
        for s in states:
            assert s.winner is not None
            truth = means[s.winner] - means[BASE]
            val += s.comparisons[BASE].validation.contains(truth)
            test += s.comparisons[BASE].test.contains(truth)
        runs = sum(s.runs for s in states) / repeats
        shown = ", ".join(f"{v:.3f}" for v in means.values())
        print(f"| {shown} | {repeats} | {val / repeats:.4f} | {test / repeats:.4f} | {runs:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--races", type=int, default=4000, help="simulated races per row")
    parser.add_argument("--seed", type=int, default=19)
    defaults = SequentialDesign()
    parser.add_argument("--n0", type=int, default=defaults.n0)
    parser.add_argument("--n-max", type=int, default=defaults.n_max)
    parser.add_argument("--delta", type=float, default=defaults.delta)
    parser.add_argument("--alpha", type=float, default=defaults.alpha)
    parser.add_argument("--rho", type=float, default=defaults.rho)
    parser.add_argument("--baseline-weight", type=float, default=defaults.baseline_weight)
    parser.add_argument(
        "--futility-z",
        type=lambda v: None if v == "none" else float(v),
        default=defaults.futility_z,
        help="standard errors of the futility rule, or none",
    )
    parser.add_argument(
        "--tables", default="null,lead,near,old,coverage", help="which tables, comma-separated"
    )
    args = parser.parse_args()
    tables = set(args.tables.split(","))
    design = SequentialDesign(
        n0=args.n0,
        n_max=args.n_max,
        delta=args.delta,
        alpha=args.alpha,
        rho=args.rho,
        baseline_weight=args.baseline_weight,
        futility_z=args.futility_z,
    )
    print(f"design: {design}\n")
    for key, title, run in (
        ("null", "Null: every contender equal", lambda: null_table(design, args.races, args.seed)),
        (
            "lead",
            "A true 0.02 lead (c0 over c1 and the baseline)",
            lambda: lead_table(design, args.races // 2, args.seed),
        ),
        (
            "near",
            "The common case: runner-up 0.003 behind, baseline 0.02 behind",
            lambda: near_table(design, args.races // 2, args.seed),
        ),
        ("old", "Old verdict under the null, 4 seeds", lambda: old_table(args.races, args.seed)),
        (
            "coverage",
            "Coverage of winner - baseline (nominal: at least 1 - alpha)",
            lambda: coverage_table(design, args.races // 2, args.seed),
        ),
    ):
        if key not in tables:
            continue
        start = time.perf_counter()
        print(f"### {title}\n")
        run()
        print(f"\n({time.perf_counter() - start:.0f} s)\n")


if __name__ == "__main__":
    main()
