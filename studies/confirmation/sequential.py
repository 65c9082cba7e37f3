"""The sequential confirmation: a race of paired replicates with a stated error rate.

Over 400 lines: one procedure whose looks, claims, futility rule and resumable state
must agree with the error-rate argument written below; the proof reads as one text.

Design (fixed in advance, `SequentialDesign`): every contender (the candidates and the
baseline) runs seeds ``0 .. n0 - 1``; then each round adds one seed, shared by every
contender still in the race (paired: the same training seed and scenes), up to ``n_max``
seeds. After every round from ``n0`` on, a look:

1. Claims. For each ordered pair (i, j) the claim "i is better than j" rests on the paired
   differences over their shared seeds: it is made when the lower confidence bound of i's
   advantage, ``mean - c_n * sd / sqrt(n)``, is above 0, with ``c_n`` the one-sided
   group-sequential boundary (studies.confirmation.boundary) of level
   ``alpha * w_ij / T``. The weights ``w_ij`` are 1 for a pair led by a candidate and
   ``baseline_weight`` for one led by the baseline (whose claims, "the winner is worse
   than the baseline" and half of "equivalent to the baseline", matter less); ``T`` is
   the largest weight that can still be at risk given the claims established so far
   (Holm's step-down with Shaffer's logical constraints, studies.confirmation.shaffer). An
   established claim stays.
2. The winner: among the candidates still in the race that no candidate is established
   better than, the best mean VALIDATION score over the seeds so far (the baseline is never
   the winner). Test scores are never looked at: they are carried along and reported.
3. Against each other contender the winner is ``better`` (claim established), ``worse``
   (the other's claim established), ``equivalent`` (the lower bounds of both advantages at
   the current level lie above ``-delta``: the difference lies inside the indifference zone)
   or ``unresolved``. A candidate stays in the race while no candidate is established
   better than it and its comparison with the winner is open; the baseline stays while its
   comparison with any candidate still in the race is open, so that it is resolved against
   whichever of them wins. A comparison is open while unresolved and not futile: futile
   when even an advantage ``futility_z`` standard errors more favourable than observed,
   either way, could not be claimed better, worse or equivalent by ``n_max`` seeds (the sd
   as observed). The race ends when no contender but the winner is left, or after
   ``n_max`` seeds. ``unresolved`` comes with its reason: the maximum, futile, beaten (by
   another candidate), left (resolved against an earlier winner) or running. A contender
   that left never comes back: its pairs keep the seeds it ran.

A diverged replicate counts as the worst of its seed (studies.confirmation.replicates);
a contender's divergence count is that of its non-finite validation scores.

Error rate. If each pair's differences are independent normal (any means and sds), the
probability that the race makes any false claim (better or worse when not, equivalent
when the true difference is ``delta`` or more), whichever winner it picks and whenever it
stops, is at most ``alpha``. Why: a false claim about (i, j) needs i's advantage to be
overestimated beyond the boundary of level ``alpha * w_ij / T`` at some look; at the first
false claim every earlier claim is true, so the true order of the means is one of those
``T`` maximises over and the weight truly at risk, ``W0``, is at most ``T``; the boundaries
of the at-risk pairs at levels ``alpha * w_ij / W0`` are crossed with probability at most
``sum(alpha * w_ij / W0) = alpha`` (the boundary holds at every look, so neither the
data-chosen winner nor the data-chosen stop matters; giving a pair up as futile makes no
claim). The boundaries come from a seeded simulation of the t statistic's joint law, with a
conservative margin (studies.confirmation.boundary). Diverged replicates break normality:
the rate with them is checked by simulation (tests/studies/confirmation).

Intervals. The reported interval of a difference (winner - other, metric units, on
validation and on test) is simultaneous: both sides use the single-step level
``alpha * w / T0`` (``T0`` the whole weight), so all intervals of all pairs at all looks
hold together with probability at least ``1 - alpha``, the winner's too. A claim made by a
later step-down step can stand while that interval still touches 0.

Resumable: `race` is a pure function of the scores seen so far. It replays the looks, so
a sweep rebuilds the race from its stored replicates; scores that a contender has beyond
the round at which it left (a replicate that ran before the decision was known) are ignored,
as are scores of an active contender beyond the seeds the others have.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from studies.confirmation.boundary import boundary
from studies.confirmation.replicates import Direction, Scores, fill_diverged, finite_mean
from studies.confirmation.shaffer import at_risk_bound

__all__ = [
    "Claim",
    "Comparison",
    "ContenderRecord",
    "Difference",
    "Outcome",
    "RaceState",
    "Reason",
    "SequentialDesign",
    "race",
]

Outcome = Literal["better", "worse", "equivalent", "unresolved"]
# Why a comparison is unresolved: the race is still running; it reached n_max; the pair
# was given up as futile; the other contender was beaten by another candidate; or it left
# the race when it was resolved against an earlier winner.
Reason = Literal["running", "maximum", "futile", "beaten", "left"]
Pair = tuple[int, int]


@dataclass(frozen=True)
class SequentialDesign:
    """What the race is fixed by before it starts.

    ``n0``: seeds every contender runs before the first look (at least 3: the first look
    needs a variance with 2 degrees of freedom). ``n_max``: the most seeds a contender
    runs. ``delta``: the indifference zone, in the metric's units (a difference within it
    does not matter). ``alpha``: the probability of any false claim. ``rho``: the shape of
    the boundary (0 Pocock; larger spends less at early looks). ``baseline_weight``: the
    share of ``alpha`` a baseline-led claim gets against a candidate-led one.
    ``futility_z``: a pair is given up (unresolved) when even an advantage this many
    standard errors more favourable than observed, either way, could not be resolved by
    ``n_max`` seeds (None: never; giving up makes no claim, so the error rate stands).
    """

    n0: int = 4
    n_max: int = 16
    delta: float = 0.005
    alpha: float = 0.05
    direction: Direction = "minimize"
    rho: float = 1.0
    baseline_weight: float = 0.5
    futility_z: float | None = 1.0

    def __post_init__(self) -> None:
        if not 3 <= self.n0 <= self.n_max:
            raise ValueError(f"need 3 <= n0 <= n_max, got n0={self.n0}, n_max={self.n_max}")
        if self.n_max > 1000:
            raise ValueError(f"n_max must be at most 1000, got {self.n_max}")
        if not (math.isfinite(self.delta) and self.delta > 0):
            raise ValueError(f"delta must be > 0, got {self.delta}")
        if not 0.0 < self.alpha < 0.5:
            raise ValueError(f"alpha must lie in (0, 0.5), got {self.alpha}")
        if self.direction not in ("minimize", "maximize"):
            raise ValueError(f"direction must be minimize or maximize, got {self.direction}")
        if not (math.isfinite(self.rho) and self.rho >= 0):
            raise ValueError(f"rho must be >= 0, got {self.rho}")
        if not 0.0 < self.baseline_weight <= 1.0:
            raise ValueError(f"baseline_weight must lie in (0, 1], got {self.baseline_weight}")
        if self.futility_z is not None and not (
            math.isfinite(self.futility_z) and self.futility_z >= 0
        ):
            raise ValueError(f"futility_z must be >= 0 or None, got {self.futility_z}")


@dataclass(frozen=True)
class Difference:
    """``winner - other`` over ``n`` paired seeds, in the metric's units, with its
    simultaneous interval ``[low, high]`` (NaN when fewer than 2 pairs)."""

    n: int
    mean: float
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Comparison:
    """The winner against one other contender.

    ``outcome``: better / worse / equivalent / unresolved (see the module);
    ``validation`` decided it, ``test`` reports it. ``claim_level`` and ``claim_look``: the
    one-sided level and the look (seeds) of the better or worse claim, or of the look that
    found the pair equivalent; None while unresolved. ``reason``: why it is unresolved.
    """

    other: str
    outcome: Outcome
    validation: Difference
    test: Difference
    claim_level: float | None
    claim_look: int | None
    reason: Reason | None = None  # why it is unresolved; None when resolved


@dataclass(frozen=True)
class ContenderRecord:
    """One contender: the seeds the decision used, its finite means and divergences."""

    key: str
    is_baseline: bool
    seeds: int  # seeds the looks used, and while a round fills, those run for it
    diverged: int
    validation_mean: float  # of the finite validation scores
    test_mean: float  # of the finite test scores
    in_race: bool  # still running seeds (False once the race is done)
    left_at: int | None  # seeds when it left the race (None: still in, or to the end)
    beaten_by: str | None  # a candidate established better than it (candidates only)

    @property
    def divergence_rate(self) -> float:
        return self.diverged / self.seeds if self.seeds else math.nan


@dataclass(frozen=True)
class Claim:
    """An established claim: ``better`` is better than ``worse``, made at ``look`` seeds
    with one-sided level ``level``."""

    better: str
    worse: str
    look: int
    level: float


@dataclass(frozen=True)
class RaceState:
    """The race so far.

    ``looks``: seeds at the last look (0 before the first). ``winner``/``runner_up``: None
    before the first look; the runner-up is the candidate closest to the winner (the
    smallest mean paired advantage of the winner). ``comparisons``: the winner against every
    other contender, as of the last look. ``done``: decided (``stop`` says why:
    ``resolved`` or ``maximum``). ``to_run``: per contender, the seed indices it must still
    run before the next look (empty when done).
    """

    design: SequentialDesign
    looks: int
    winner: str | None
    runner_up: str | None
    baseline: str | None
    comparisons: Mapping[str, Comparison]
    contenders: Mapping[str, ContenderRecord]
    claims: tuple[Claim, ...]
    done: bool
    stop: Literal["resolved", "maximum"] | None
    to_run: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    comparisons_made: int = 0  # ordered pairs in the family: K (K - 1)

    @property
    def needs(self) -> tuple[str, ...]:
        """The contenders that must run a seed before the next look."""
        return tuple(key for key, seeds in self.to_run.items() if seeds)

    @property
    def runs(self) -> int:
        """Replicate runs counted, all contenders together (when done: those the decision
        used)."""
        return sum(c.seeds for c in self.contenders.values())


class _Race:
    """The replay's working state (indices: candidates first, then the baseline)."""

    def __init__(
        self,
        design: SequentialDesign,
        scores: Scores,
        candidates: Sequence[str],
        baseline: str | None,
    ) -> None:
        keys = [*candidates, *([baseline] if baseline is not None else [])]
        if not candidates:
            raise ValueError("a race needs at least one candidate")
        if len(set(keys)) != len(keys):
            raise ValueError(f"contenders must be distinct, got {keys}")
        self.design = design
        self.keys = keys
        self.k = len(candidates)
        self.size = len(keys)
        self.has_baseline = baseline is not None
        raw = [list(scores.get(key, ())) for key in keys]
        self.raw_val = [[float(v) for v, _ in seeds] for seeds in raw]
        self.raw_test = [[float(t) for _, t in seeds] for seeds in raw]
        n_max = design.n_max
        # Filled loss-oriented scores (lower is better), NaN where not run.
        self.val = np.full((self.size, n_max), np.nan)
        self.test = np.full((self.size, n_max), np.nan)
        self.sign = 1.0 if design.direction == "minimize" else -1.0
        self.used = [0] * self.size
        self.active = [True] * self.size
        self.left_at: list[int | None] = [None] * self.size
        base_w = design.baseline_weight
        self.weights = tuple(
            tuple(0.0 if i == j else (1.0 if i < self.k else base_w) for j in range(self.size))
            for i in range(self.size)
        )
        self.total_weight = at_risk_bound(self.weights, ())
        self.established: dict[Pair, tuple[int, float]] = {}
        self.status: dict[int, tuple[Outcome, float | None, int | None]] = {}
        self.winner: int | None = None
        self.looks = 0
        self.equivalent_at: dict[Pair, tuple[int, float]] = {}
        self.stop: Literal["resolved", "maximum"] = "resolved"
        self.futile_with: dict[int, int] = {}  # contender -> the winner it was futile against
        self._stats: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._risk: dict[frozenset[Pair], float] = {}

    # -- data -------------------------------------------------------------------------

    def add_seed(self, s: int, members: list[int]) -> None:
        margin = self.design.delta
        for raw, out in ((self.raw_val, self.val), (self.raw_test, self.test)):
            values = [raw[j][s] for j in members]
            filled = fill_diverged(values, margin, self.design.direction)
            for j, v in zip(members, filled, strict=True):
                out[j, s] = self.sign * v
        for j in members:
            self.used[j] = s + 1
        self._stats.clear()

    def pair(self, i: int, j: int, split: str = "val") -> tuple[int, float, float]:
        """Shared seeds, mean and sd of i's advantage over j (``y_j - y_i``)."""
        stats = self._stats.get(split)
        if stats is None:
            stats = self._stats[split] = self._pair_stats(self.val if split == "val" else self.test)
        m, mean, sd = stats
        return int(m[i, j]), float(mean[i, j]), float(sd[i, j])

    def _pair_stats(self, data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every pair's shared seeds, mean advantage and sd, from running sums."""
        used = np.array(self.used)
        m = np.minimum(used[:, None], used[None, :])
        n = int(used.max())
        y = np.nan_to_num(data[:, :n])
        # Centre each seed on its mean over contenders: the differences do not change and
        # the sums of squares stay small (no cancellation).
        y = y - y.mean(axis=0, keepdims=True)
        first = np.cumsum(y, axis=1)
        cross = np.cumsum(y[:, None, :] * y[None, :, :], axis=2)
        idx = np.maximum(m - 1, 0)
        rows, cols = np.indices(m.shape)
        total = first[cols, idx] - first[rows, idx]
        squares = cross[cols, cols, idx] - 2.0 * cross[rows, cols, idx] + cross[rows, rows, idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(m > 0, total / np.maximum(m, 1), np.nan)
            var = (squares - m * mean * mean) / (m - 1)
            sd = np.where(m >= 2, np.sqrt(np.maximum(var, 0.0)), np.nan)
        return m, mean, sd

    # -- a look -----------------------------------------------------------------------

    def margin(self, level: float, m: int, sd: float) -> float:
        d = self.design
        return boundary(d.n0, d.n_max, level, d.rho).margin(m, sd)

    def level(self, i: int, j: int, weight_at_risk: float) -> float:
        return self.design.alpha * self.weights[i][j] / weight_at_risk

    def at_risk(self) -> float:
        key = frozenset(self.established)
        if key not in self._risk:
            self._risk[key] = at_risk_bound(self.weights, key)
        return self._risk[key]

    def lower_bound(self, i: int, j: int, weight_at_risk: float) -> float:
        """Lower confidence bound of i's advantage over j (loss units) at the step-down
        level."""
        m, mean, sd = self.pair(i, j)
        return mean - self.margin(self.level(i, j, weight_at_risk), m, sd)

    def step_down(self, look: int) -> None:
        pairs = [(i, j) for i in range(self.size) for j in range(self.size) if i != j]
        while True:
            risk = self.at_risk()
            if risk <= 0:
                return
            new = [
                (i, j)
                for i, j in pairs
                if (i, j) not in self.established
                and (j, i) not in self.established
                and self.lower_bound(i, j, risk) > 0
            ]
            if not new:
                return
            for i, j in new:
                self.established[(i, j)] = (look, self.level(i, j, risk))

    def beaten_by(self, j: int) -> int | None:
        if j >= self.k:
            return None
        return next(
            (i for i in range(self.k) if (i, j) in self.established),
            None,
        )

    def choose_winner(self, n: int) -> int:
        alive = [c for c in range(self.k) if self.beaten_by(c) is None]
        running = [c for c in alive if self.active[c]] or alive or list(range(self.k))

        def key(c: int) -> tuple[float, int]:
            m = self.used[c] if not self.active[c] else n
            return (float(self.val[c, :m].mean()), c)

        return min(running, key=key)

    def compare(self, w: int, o: int, look: int) -> tuple[Outcome, float | None, int | None]:
        """Where the pair stands: i (here ``w``) against ``o``."""
        if (w, o) in self.established:
            at, level = self.established[(w, o)]
            return "better", level, at
        if (o, w) in self.established:
            at, level = self.established[(o, w)]
            return "worse", level, at
        risk = self.at_risk()
        delta = self.design.delta
        if self.lower_bound(w, o, risk) > -delta and self.lower_bound(o, w, risk) > -delta:
            if (w, o) not in self.equivalent_at:
                self.equivalent_at[(w, o)] = (look, min(self.level(w, o, risk), 1.0))
            at, level = self.equivalent_at[(w, o)]
            return "equivalent", level, at
        return "unresolved", None, None

    def futile(self, i: int, j: int) -> bool:
        """Whether the pair could not be resolved by ``n_max`` seeds even if i's advantage
        were ``futility_z`` standard errors more favourable than observed, either way
        (the critical values of the last look, the sd as observed)."""
        d = self.design
        if d.futility_z is None:
            return False
        m, mean, sd = self.pair(i, j)
        if m >= d.n_max or not math.isfinite(sd):
            return False
        risk = self.at_risk()
        reach = d.futility_z * sd / math.sqrt(m)
        for_i = self.margin(self.level(i, j, risk), d.n_max, sd)
        for_j = self.margin(self.level(j, i, risk), d.n_max, sd)
        if mean + reach > for_i or -mean + reach > for_j:
            return False  # i or j could still be claimed better
        low, high = for_i - d.delta, d.delta - for_j  # where equivalence could be claimed
        return not (low < high and mean - reach < high and mean + reach > low)

    def open_pair(self, i: int, j: int, look: int) -> bool:
        return self.compare(i, j, look)[0] == "unresolved" and not self.futile(i, j)

    def look(self, n: int) -> bool:
        """The look after ``n`` seeds; True when the race is over.

        A candidate stays in the race while no candidate is established better than it and
        its comparison with the winner is open (unresolved, not futile); the baseline stays
        while its comparison with any candidate still in the race is open, so that it is
        resolved against whichever of them wins.
        """
        self.looks = n
        self.step_down(n)
        w = self.choose_winner(n)
        self.winner = w
        self.status = {o: self.compare(w, o, n) for o in range(self.size) if o != w}
        stay = [
            c
            for c in range(self.k)
            if c != w and self.active[c] and self.beaten_by(c) is None and self.open_pair(w, c, n)
        ]
        if self.has_baseline:
            b = self.size - 1
            racing = [w, *stay]
            if self.active[b] and any(self.open_pair(c, b, n) for c in racing):
                stay.append(b)
        for o in range(self.size):
            if o != w and self.active[o] and o not in stay:
                self.active[o] = False
                self.left_at[o] = n
                if self.status[o][0] == "unresolved" and self.beaten_by(o) is None:
                    self.futile_with[o] = w
        if not stay or not self.active[w]:
            self.stop = "resolved"
            return True
        if n >= self.design.n_max:
            self.stop = "maximum"
            return True
        return False

    def reason(self, o: int, done: bool) -> Reason | None:
        if self.status[o][0] != "unresolved":
            return None
        if self.beaten_by(o) is not None:
            return "beaten"
        if self.active[o] or self.left_at[o] is None:
            return "maximum" if done else "running"
        return "futile" if self.futile_with.get(o) == self.winner else "left"

    # -- the answer -------------------------------------------------------------------

    def difference(self, w: int, o: int, split: str) -> Difference:
        m, mean, sd = self.pair(w, o, split)  # w's advantage, loss units
        if m < 2 or not math.isfinite(sd):
            return Difference(m, -self.sign * mean, math.nan, math.nan)
        lo = mean - self.margin(self.level(w, o, self.total_weight), m, sd)
        hi = mean + self.margin(self.level(o, w, self.total_weight), m, sd)
        # winner - other in metric units = -sign * advantage
        ends = sorted((-self.sign * lo, -self.sign * hi))
        return Difference(m, -self.sign * mean, ends[0], ends[1])

    def state(
        self,
        done: bool,
        stop: Literal["resolved", "maximum"] | None,
        to_run: dict[str, tuple[int, ...]],
        counted: list[int] | None = None,
    ) -> RaceState:
        """The state; ``counted``: seeds per contender for the records (default: the seeds
        the looks used; while a round fills, also those of the round)."""
        w = self.winner
        comparisons: dict[str, Comparison] = {}
        runner_up = None
        if w is not None:
            for o, (outcome, level, at) in self.status.items():
                comparisons[self.keys[o]] = Comparison(
                    other=self.keys[o],
                    outcome=outcome,
                    validation=self.difference(w, o, "val"),
                    test=self.difference(w, o, "test"),
                    claim_level=level,
                    claim_look=at,
                    reason=self.reason(o, done),
                )
            others = [c for c in range(self.k) if c != w]
            if others:
                runner_up = self.keys[min(others, key=lambda c: (self.pair(w, c)[1], c))]
        records = {}
        for j, key in enumerate(self.keys):
            seeds = self.used[j] if counted is None else counted[j]
            val_mean, diverged = finite_mean(self.raw_val[j][:seeds])
            test_mean, _ = finite_mean(self.raw_test[j][:seeds])
            beaten = self.beaten_by(j)
            records[key] = ContenderRecord(
                key=key,
                is_baseline=j >= self.k,
                seeds=seeds,
                diverged=diverged,
                validation_mean=val_mean,
                test_mean=test_mean,
                in_race=self.active[j] and not done,
                left_at=self.left_at[j],
                beaten_by=None if beaten is None else self.keys[beaten],
            )
        claims = tuple(
            Claim(self.keys[i], self.keys[j], at, level)
            for (i, j), (at, level) in sorted(self.established.items(), key=lambda x: x[1][0])
        )
        return RaceState(
            design=self.design,
            looks=self.looks,
            winner=None if w is None else self.keys[w],
            runner_up=runner_up,
            baseline=self.keys[-1] if self.has_baseline else None,
            comparisons=comparisons,
            contenders=records,
            claims=claims,
            done=done,
            stop=stop,
            to_run=to_run,
            comparisons_made=self.size * (self.size - 1),
        )


def race(
    design: SequentialDesign,
    scores: Scores,
    candidates: Sequence[str],
    baseline: str | None = None,
) -> RaceState:
    """The race of ``candidates`` (and ``baseline``, never the winner) on the per-seed
    ``scores`` seen so far (contender -> [(validation, test) per seed index], NaN =
    diverged): the decision so far and the seeds to run next. Pure and resumable (see the
    module)."""
    r = _Race(design, scores, candidates, baseline)
    available = [len(v) for v in r.raw_val]
    for n in range(1, design.n_max + 1):
        members = [j for j in range(r.size) if r.active[j]]
        if any(available[j] < n for j in members):
            target = max(n, design.n0)
            to_run = {
                r.keys[j]: tuple(range(available[j], target))
                for j in members
                if available[j] < target
            }
            counted = [
                min(available[j], target) if r.active[j] else r.used[j] for j in range(r.size)
            ]
            return r.state(False, None, to_run, counted)
        r.add_seed(n - 1, members)
        if n >= design.n0 and r.look(n):
            return r.state(True, r.stop, {})
    raise AssertionError("unreachable: the look at n_max ends the race")
