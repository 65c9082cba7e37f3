"""Verdict sentences: a confirmation's decision in words that name the test, the seeds, the
adjustment for several comparisons, the interval or p-value, which split chose and which
reports, and how many replicates diverged."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from studies.confirmation.fixed import FixedComparison, FixedVerdict
from studies.confirmation.sequential import Comparison, Difference, RaceState

__all__ = [
    "AlignmentCheck",
    "BaselineTuning",
    "alignment_sentence",
    "baseline_sentence",
    "fixed_sentences",
    "race_sentences",
]


def _num(value: float) -> str:
    return f"{value:+.4f}" if math.isfinite(value) else "n/a"


def _score(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "n/a"


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return "< 0.0001" if value < 1e-4 else f"{value:.2g}" if value < 0.01 else f"{value:.3f}"


def _level(value: float) -> str:
    return f"{value:.3g}"


def _percent(alpha: float) -> str:
    return f"{100.0 * (1.0 - alpha):g}%"


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _interval(d: Difference) -> str:
    if not (math.isfinite(d.low) and math.isfinite(d.high)):
        return f"{_num(d.mean)} (no interval: {d.n} pair{'s' if d.n != 1 else ''})"
    return f"{_num(d.mean)} [{_num(d.low)}, {_num(d.high)}]"


def _divergence(counts: list[tuple[str, int, int]], margin: float) -> str:
    parts = [
        f"{label} {diverged} of {seeds} ({100.0 * diverged / seeds:.0f}%)"
        if seeds
        else f"{label} no seed"
        for label, diverged, seeds in counts
    ]
    return (
        f"Diverged replicates (each counted as the worst score of its seed plus "
        f"{margin:g}): {', '.join(parts)}."
    )


def race_sentences(
    state: RaceState, metric: str, labels: Mapping[str, str] | None = None
) -> list[str]:
    """The sequential race's verdict, one sentence per line: the procedure, where the race
    stands, the winner, the winner against the runner-up, the baseline and every other
    contender, and the divergence rates. ``labels`` names the contenders (default: their
    keys)."""
    d = state.design
    name = dict(labels or {})

    def label(key: str) -> str:
        return name.get(key, key)

    sense = "lower" if d.direction == "minimize" else "higher"
    size = len(state.contenders)
    lines = [
        f"Sequential paired t race on {metric} ({sense} is better): validation scores chose "
        f"the winner and made every claim; the test split only reports. Fixed in advance: "
        f"{d.n0} initial seeds, at most {d.n_max}, indifference zone ±{d.delta:g}, overall "
        f"alpha {d.alpha:g} for any false claim (Holm's step-down with Shaffer's logical "
        f"constraints over the {state.comparisons_made} one-sided comparisons of {size} "
        f"contenders, baseline-led claims at weight {d.baseline_weight:g}; a one-sided "
        f"group-sequential t boundary, shape rho {d.rho:g}, for the look after every seed"
        + (
            f"; a comparison is given up when even an advantage {d.futility_z:g} standard "
            f"error{'s' if d.futility_z != 1 else ''} more favourable could not be resolved"
            if d.futility_z is not None
            else ""
        )
        + ")."
    ]
    if state.winner is None:
        first = min((c.seeds for c in state.contenders.values()), default=0)
        lines.append(
            f"The race has not had its first look: {_seeds(first)} of the {d.n0} initial "
            f"seeds done."
        )
    elif state.done:
        why = "every other contender resolved" if state.stop == "resolved" else "the maximum"
        lines.append(f"The race is over after {_seeds(state.looks)} ({why}).")
    else:
        running = ", ".join(label(k) for k in state.needs)
        lines.append(
            f"The race is running: last look after {_seeds(state.looks)}; next seeds for {running}."
        )
    if state.winner is not None:
        w = state.contenders[state.winner]
        lines.append(
            f"Winner: {label(w.key)}, {metric} {_score(w.validation_mean)} on validation "
            f"(test {_score(w.test_mean)}) over {_seeds(w.seeds)}."
        )
        order = [
            k for k in (state.runner_up, state.baseline) if k is not None and k in state.comparisons
        ]
        order += [k for k in state.comparisons if k not in order]
        for key in order:
            lines.append(_race_comparison(state, state.comparisons[key], label))
    counts = [(label(c.key), c.diverged, c.seeds) for c in state.contenders.values()]
    lines.append(_divergence(counts, d.delta))
    return lines


def _race_comparison(state: RaceState, c: Comparison, label: Callable[[str], str]) -> str:
    d = state.design
    record = state.contenders[c.other]
    role = (
        "the baseline"
        if c.other == state.baseline
        else "the runner-up"
        if c.other == state.runner_up
        else "candidate"
    )
    who = f"Against {role}, {label(c.other)}"
    interval = (
        f"winner - {label(c.other)} on validation {_interval(c.validation)} "
        f"(simultaneous {_percent(d.alpha)} interval over {c.validation.n} paired seeds)"
    )
    test = f"on test, reported only: {_interval(c.test)}"
    if c.outcome in ("better", "worse"):
        assert c.claim_level is not None
        verb = "better" if c.outcome == "better" else "WORSE"
        # level = alpha * weight / weight at risk (the step-down's step)
        led_by_baseline = c.outcome == "worse" and c.other == state.baseline
        weight = d.baseline_weight if led_by_baseline else 1.0
        at_risk = d.alpha * weight / c.claim_level
        head = (
            f"{who}: {verb}, claimed after {_seeds(c.claim_look or 0)} at one-sided level "
            f"{_level(c.claim_level)} (alpha {d.alpha:g} x weight {weight:g} / "
            f"{at_risk:.3g} at risk)"
        )
    elif c.outcome == "equivalent":
        head = f"{who}: equivalent within the zone ±{d.delta:g} (after {_seeds(c.claim_look or 0)})"
    elif c.reason == "beaten" and record.beaten_by is not None:
        head = (
            f"{who}: unresolved; it left the race after {_seeds(record.left_at or 0)}, "
            f"when {label(record.beaten_by)} was established better than it"
        )
    elif c.reason == "futile":
        head = (
            f"{who}: unresolved, given up after {_seeds(record.left_at or 0)}: not even an "
            f"advantage {d.futility_z:g} standard error{'s' if d.futility_z != 1 else ''} "
            f"more favourable than observed could be resolved by {d.n_max} seeds"
        )
    elif c.reason == "left":
        head = (
            f"{who}: unresolved; it left the race after {_seeds(record.left_at or 0)}, "
            f"resolved against the winner of that look"
        )
    elif c.reason == "maximum":
        head = f"{who}: unresolved at the maximum of {d.n_max} seeds"
    else:
        head = f"{who}: unresolved so far"
    return f"{head}; {interval}; {test}."


def fixed_sentences(
    verdict: FixedVerdict,
    metric: str,
    direction: str = "minimize",
    margin: float = 0.005,
    labels: Mapping[str, str] | None = None,
) -> list[str]:
    """The fixed design's verdict, one sentence per line: the test and adjustment, the
    winner, each comparison with its p-value and interval, and the divergence rates."""
    name = dict(labels or {})

    def label(key: str) -> str:
        return name.get(key, key)

    m = len(verdict.comparisons)
    adjustment = (
        f"Holm's adjustment over {m} comparison{'s' if m != 1 else ''}"
        if verdict.adjust == "holm"
        else "no adjustment for several comparisons"
    )
    sense = "lower" if direction == "minimize" else "higher"
    report = "test" if verdict.claim_on == "validation" else "validation"
    lines = [
        f"Fixed design on {metric} ({sense} is better): {len(verdict.contenders)} contenders "
        f"x {_seeds(verdict.seeds)}; the winner chosen on {verdict.choose_on}; two-sided "
        f"paired t-tests on {verdict.claim_on} with {adjustment}, alpha {verdict.alpha:g}; "
        f"{report} reports."
    ]
    if verdict.winner is None:
        lines.append("No seed is shared by every contender: nothing to compare.")
    else:
        w = verdict.contenders[verdict.winner]
        lines.append(
            f"Winner: {label(w.key)}, {metric} {_score(w.validation_mean)} on validation "
            f"(test {_score(w.test_mean)}) over {_seeds(w.seeds)}."
        )
        for c in verdict.comparisons.values():
            lines.append(_fixed_comparison(verdict, c, label(c.other), m, report))
    counts = [(label(c.key), c.diverged, c.seeds) for c in verdict.contenders.values()]
    lines.append(_divergence(counts, margin))
    return lines


def _fixed_comparison(
    verdict: FixedVerdict, c: FixedComparison, other: str, m: int, report: str
) -> str:
    role = "the baseline" if c.other == verdict.baseline else "the runner-up"
    words = {
        "better": "better",
        "worse": "WORSE",
        "indistinguishable": "not distinguishable",
        "unknown": "cannot tell (fewer than 2 seeds)",
    }[c.outcome]
    p = f"p = {_p(c.p)}"
    if verdict.adjust == "holm":
        p += f", Holm-adjusted {_p(c.p_adjusted)}"
    level = _percent(verdict.alpha / m)
    if math.isfinite(c.low):
        interval = f"{_num(c.mean)} [{_num(c.low)}, {_num(c.high)}]"
        report_interval = f"{_num(c.report_mean)} [{_num(c.report_low)}, {_num(c.report_high)}]"
    else:
        interval, report_interval = _num(c.mean), _num(c.report_mean)
    return (
        f"Against {role}, {other}: {words}; winner - {other} on {verdict.claim_on} "
        f"{interval} ({level} interval), t = {c.t:.2f}, {p}, {c.n} paired seeds; on "
        f"{report}, reported only: {report_interval}."
    )


@dataclass(frozen=True)
class AlignmentCheck:
    """The race's winner against the best contender under the other least-squares alignment
    of the objective (reported only: the race decides on the objective)."""

    metric: str  # e.g. val/abs_rel_align_depth
    best: str  # label of the best validation mean of `metric`
    best_mean: float
    winner: str  # label of the race's winner
    winner_mean: float  # the winner's mean of `metric` (NaN: none stored)
    agree: bool


def _alignment_name(metric: str) -> str:
    return "depth" if metric.endswith("_align_depth") else "inverse-depth"


def alignment_sentence(check: AlignmentCheck) -> str:
    """One sentence: which contender has the best validation mean under the other
    alignment, and whether the two alignments agree on the winner."""
    head = (
        f"Under the {_alignment_name(check.metric)} alignment ({check.metric}; reported only, "
        f"each contender's mean over its own seeds) the best validation mean is"
    )
    if check.agree:
        return (
            f"{head} the winner's, {check.best} ({_score(check.best_mean)}): the alignments "
            f"agree on the winner."
        )
    return (
        f"{head} {check.best} ({_score(check.best_mean)}; the winner {check.winner}: "
        f"{_score(check.winner_mean)}): the alignments disagree on the winner."
    )


@dataclass(frozen=True)
class BaselineTuning:
    """How the race's baseline was set up, against how its candidates were found: the
    baseline runs the spec's base settings with the SSI loss swapped in; nothing of it is
    searched (issue 19, item 7)."""

    label: str  # e.g. baseline (ssi)
    settings: tuple[tuple[str, str], ...]  # (key, shown value) of the base settings it ran
    search_trials: int  # finished search trials the candidates were picked from
    searched: tuple[str, ...]  # the search's dimensions


def baseline_sentence(b: BaselineTuning) -> str:
    """One sentence: the baseline was not tuned, what it ran with, and what the candidates
    had that it did not."""
    ran = ", ".join(f"{key} {value}" for key, value in b.settings)
    settings = f" ({ran})" if ran else ""
    searched = ", ".join(b.searched) if b.searched else "no searched key"
    trials = f"{b.search_trials} search trial{'s' if b.search_trials != 1 else ''}"
    return (
        f"The baseline was not tuned: {b.label} ran the spec's base settings{settings}, "
        f"chosen for the loss the sweep tunes and not searched for it, with the SSI loss's "
        f"gradient weight alpha at MiDaS' default 0.5 (no key sets it), while the "
        f"candidates are the best of {trials} over {searched}; a claim against it is a "
        f"claim against an untuned baseline."
    )
