"""Verdict sentences on fixed inputs."""

from __future__ import annotations

import math

from studies.confirmation.fixed import FixedComparison, FixedContender, FixedVerdict
from studies.confirmation.sequential import (
    Claim,
    Comparison,
    ContenderRecord,
    Difference,
    RaceState,
    SequentialDesign,
    race,
)
from studies.confirmation.words import (
    AlignmentCheck,
    alignment_sentence,
    fixed_sentences,
    race_sentences,
)

DESIGN = SequentialDesign()
METRIC = "val/abs_rel_align"
LABELS = {"trial-3": "trial 3", "trial-5": "trial 5", "baseline": "baseline (ssi)"}
PROCEDURE = (
    "Sequential paired t race on val/abs_rel_align (lower is better): validation scores "
    "chose the winner and made every claim; the test split only reports. Fixed in advance: "
    "4 initial seeds, at most 16, indifference zone ±0.005, overall alpha 0.05 for any false "
    "claim (Holm's step-down with Shaffer's logical constraints over the 6 one-sided "
    "comparisons of 3 contenders, baseline-led claims at weight 0.5; a one-sided "
    "group-sequential t boundary, shape rho 1, for the look after every seed; a comparison "
    "is given up when even an advantage 1 standard error more favourable could not be "
    "resolved)."
)


def _record(
    key: str, seeds: int, diverged: int, val: float, test: float, **kw: object
) -> ContenderRecord:
    fields: dict[str, object] = {
        "is_baseline": key == "baseline",
        "in_race": False,
        "left_at": None,
        "beaten_by": None,
    }
    fields.update(kw)
    return ContenderRecord(
        key, seeds=seeds, diverged=diverged, validation_mean=val, test_mean=test, **fields
    )  # type: ignore[arg-type]


def _finished() -> RaceState:
    return RaceState(
        design=DESIGN,
        looks=7,
        winner="trial-3",
        runner_up="trial-5",
        baseline="baseline",
        comparisons={
            "trial-5": Comparison(
                other="trial-5",
                outcome="better",
                validation=Difference(7, -0.0123, -0.0201, -0.0045),
                test=Difference(7, -0.0101, -0.0222, 0.0020),
                claim_level=0.0125,
                claim_look=7,
            ),
            "baseline": Comparison(
                other="baseline",
                outcome="better",
                validation=Difference(5, -0.0213, -0.0301, -0.0125),
                test=Difference(5, -0.0198, -0.0290, -0.0106),
                claim_level=0.01,
                claim_look=5,
            ),
        },
        contenders={
            "trial-3": _record("trial-3", 7, 0, 0.1512, 0.1498),
            "trial-5": _record("trial-5", 7, 1, 0.1641, 0.1602, left_at=7, beaten_by="trial-3"),
            "baseline": _record("baseline", 5, 0, 0.1725, 0.1700, left_at=5),
        },
        claims=(
            Claim("trial-3", "baseline", 5, 0.01),
            Claim("trial-3", "trial-5", 7, 0.0125),
        ),
        done=True,
        stop="resolved",
        comparisons_made=6,
    )


def test_a_finished_race() -> None:
    assert race_sentences(_finished(), METRIC, LABELS) == [
        PROCEDURE,
        "The race is over after 7 seeds (every other contender resolved).",
        "Winner: trial 3, val/abs_rel_align 0.1512 on validation (test 0.1498) over 7 seeds.",
        "Against the runner-up, trial 5: better, claimed after 7 seeds at one-sided level "
        "0.0125 (alpha 0.05 x weight 1 / 4 at risk); winner - trial 5 on validation -0.0123 "
        "[-0.0201, -0.0045] (simultaneous 95% interval over 7 paired seeds); on test, "
        "reported only: -0.0101 [-0.0222, +0.0020].",
        "Against the baseline, baseline (ssi): better, claimed after 5 seeds at one-sided "
        "level 0.01 (alpha 0.05 x weight 1 / 5 at risk); winner - baseline (ssi) on "
        "validation -0.0213 [-0.0301, -0.0125] (simultaneous 95% interval over 5 paired "
        "seeds); on test, reported only: -0.0198 [-0.0290, -0.0106].",
        "Diverged replicates (each counted as the worst score of its seed plus 0.005): "
        "trial 3 0 of 7 (0%), trial 5 1 of 7 (14%), baseline (ssi) 0 of 5 (0%).",
    ]


def test_unresolved_equivalent_and_worse() -> None:
    base = _finished()
    state = RaceState(
        **{
            **base.__dict__,
            "looks": 16,
            "stop": "maximum",
            "comparisons": {
                "trial-5": Comparison(
                    "trial-5",
                    "unresolved",
                    Difference(16, -0.0031, -0.0102, 0.0040),
                    Difference(16, -0.0020, -0.0100, 0.0060),
                    None,
                    None,
                    "maximum",
                ),
                "baseline": Comparison(
                    "baseline",
                    "worse",
                    Difference(6, 0.0150, 0.0050, 0.0250),
                    Difference(6, 0.0120, 0.0010, 0.0230),
                    0.005,
                    6,
                ),
            },
            "contenders": {
                **base.contenders,
                "trial-5": _record("trial-5", 16, 0, 0.1543, 0.1520),
            },
        }
    )
    lines = race_sentences(state, METRIC)
    assert lines[1] == "The race is over after 16 seeds (the maximum)."
    assert lines[3] == (
        "Against the runner-up, trial-5: unresolved at the maximum of 16 seeds; winner - "
        "trial-5 on validation -0.0031 [-0.0102, +0.0040] (simultaneous 95% interval over 16 "
        "paired seeds); on test, reported only: -0.0020 [-0.0100, +0.0060]."
    )
    assert lines[4].startswith(
        "Against the baseline, baseline: WORSE, claimed after 6 seeds at one-sided level "
        "0.005 (alpha 0.05 x weight 0.5 / 5 at risk)"
    )
    equivalent = RaceState(
        **{
            **state.__dict__,
            "comparisons": {
                **state.comparisons,
                "trial-5": Comparison(
                    "trial-5",
                    "equivalent",
                    Difference(9, -0.0004, -0.0031, 0.0023),
                    Difference(9, -0.0010, -0.0040, 0.0020),
                    0.01,
                    9,
                ),
            },
        }
    )
    assert race_sentences(equivalent, METRIC)[3].startswith(
        "Against the runner-up, trial-5: equivalent within the zone ±0.005 (after 9 seeds); "
        "winner - trial-5 on validation -0.0004 [-0.0031, +0.0023]"
    )


def test_a_race_before_and_during() -> None:
    lines = race_sentences(race(DESIGN, {"a": [(0.1, 0.1)] * 2}, ["a", "b"]), METRIC)
    assert lines[1] == "The race has not had its first look: 0 seeds of the 4 initial seeds done."
    assert lines[-1] == (
        "Diverged replicates (each counted as the worst score of its seed plus 0.005): "
        "a 0 of 2 (0%), b no seed."
    )
    running = [(0.10 + 0.01 * s, 0.1) for s in range(4)]
    close = [(0.101 + 0.01 * s + (0.004 if s % 2 else -0.004), 0.1) for s in range(4)]
    state = race(DESIGN, {"a": running, "b": close}, ["a", "b"])
    assert not state.done
    lines = race_sentences(state, METRIC)
    assert lines[1] == "The race is running: last look after 4 seeds; next seeds for a, b."
    assert "unresolved so far" in lines[3]


def test_fixed_design() -> None:
    verdict = FixedVerdict(
        winner="trial-3",
        runner_up="trial-5",
        baseline="baseline",
        seeds=4,
        alpha=0.05,
        adjust="holm",
        choose_on="validation",
        claim_on="validation",
        comparisons={
            "trial-5": FixedComparison(
                "trial-5",
                4,
                -0.0088,
                -0.0398,
                0.0223,
                -1.18,
                0.3221,
                0.3221,
                "indistinguishable",
                -0.0063,
                -0.0417,
                0.0291,
            ),
            "baseline": FixedComparison(
                "baseline",
                4,
                -0.0267,
                -0.0373,
                -0.0162,
                -10.56,
                0.0018,
                0.0036,
                "better",
                -0.0278,
                -0.0424,
                -0.0132,
            ),
        },
        contenders={
            "trial-3": FixedContender("trial-3", 4, 0, 0.1507, 0.1334),
            "trial-5": FixedContender("trial-5", 4, 1, 0.1600, 0.1400),
            "baseline": FixedContender("baseline", 4, 0, 0.1774, 0.1612),
        },
    )
    assert fixed_sentences(verdict, METRIC, labels=LABELS) == [
        "Fixed design on val/abs_rel_align (lower is better): 3 contenders x 4 seeds; the "
        "winner chosen on validation; two-sided paired t-tests on validation with Holm's "
        "adjustment over 2 comparisons, alpha 0.05; test reports.",
        "Winner: trial 3, val/abs_rel_align 0.1507 on validation (test 0.1334) over 4 seeds.",
        "Against the runner-up, trial 5: not distinguishable; winner - trial 5 on validation "
        "-0.0088 [-0.0398, +0.0223] (97.5% interval), t = -1.18, p = 0.322, Holm-adjusted "
        "0.322, 4 paired seeds; on test, reported only: -0.0063 [-0.0417, +0.0291].",
        "Against the baseline, baseline (ssi): better; winner - baseline (ssi) on validation "
        "-0.0267 [-0.0373, -0.0162] (97.5% interval), t = -10.56, p = 0.0018, Holm-adjusted "
        "0.0036, 4 paired seeds; on test, reported only: -0.0278 [-0.0424, -0.0132].",
        "Diverged replicates (each counted as the worst score of its seed plus 0.005): "
        "trial 3 0 of 4 (0%), trial 5 1 of 4 (25%), baseline (ssi) 0 of 4 (0%).",
    ]
    old = FixedVerdict(
        **{**verdict.__dict__, "adjust": "none", "choose_on": "test", "claim_on": "test"}
    )
    lines = fixed_sentences(old, METRIC)
    assert (
        "the winner chosen on test; two-sided paired t-tests on test with no adjustment" in lines[0]
    )
    assert "validation reports" in lines[0]
    assert "Holm-adjusted" not in lines[2] and math.isfinite(old.alpha)


def test_unresolved_reasons() -> None:
    base = _finished()

    def sentence(reason: str, **record: object) -> str:
        comparison = Comparison(
            "trial-5",
            "unresolved",
            Difference(6, -0.0031, -0.0202, 0.0140),
            Difference(6, -0.0020, -0.0200, 0.0160),
            None,
            None,
            reason,  # type: ignore[arg-type]
        )
        state = RaceState(
            **{
                **base.__dict__,
                "comparisons": {**base.comparisons, "trial-5": comparison},
                "contenders": {
                    **base.contenders,
                    "trial-5": _record("trial-5", 6, 0, 0.1543, 0.1520, **record),
                },
            }
        )
        line = race_sentences(state, METRIC)[3]
        tail = (
            "; winner - trial-5 on validation -0.0031 [-0.0202, +0.0140] (simultaneous 95% "
            "interval over 6 paired seeds); on test, reported only: -0.0020 [-0.0200, +0.0160]."
        )
        assert line.endswith(tail)
        return line.removesuffix(tail)

    who = "Against the runner-up, trial-5: "
    assert sentence("futile", left_at=6) == who + (
        "unresolved, given up after 6 seeds: not even an advantage 1 standard error more "
        "favourable than observed could be resolved by 16 seeds"
    )
    assert sentence("left", left_at=6) == who + (
        "unresolved; it left the race after 6 seeds, resolved against the winner of that look"
    )
    assert sentence("beaten", left_at=6, beaten_by="trial-7") == who + (
        "unresolved; it left the race after 6 seeds, when trial-7 was established better than it"
    )
    assert sentence("running") == who + "unresolved so far"


def test_alignment_sentence_names_the_other_alignment() -> None:
    """With a depth-aligned objective the other alignment is the inverse-depth one."""
    check = AlignmentCheck(
        metric="val/abs_rel_align",
        best="baseline (ssi)",
        best_mean=0.21,
        winner="trial 3",
        winner_mean=math.nan,
        agree=False,
    )
    assert alignment_sentence(check) == (
        "Under the inverse-depth alignment (val/abs_rel_align; reported only, each "
        "contender's mean over its own seeds) the best validation mean is baseline (ssi) "
        "(0.2100; the winner trial 3: n/a): the alignments disagree on the winner."
    )
