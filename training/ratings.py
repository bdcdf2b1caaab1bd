"""Bradley-Terry ratings of models from head-to-head human votes, with bootstrap confidence intervals.

Pure: numpy and scipy, no Django. The web side feeds it ``feedback.interface.head_to_head_votes``.

The model (Bradley and Terry 1952): model ``i`` has a log-strength ``beta_i`` and beats ``j`` with
probability ``sigmoid(beta_i - beta_j)``. A vote scores the first model 1 (win), 0 (loss) or 0.5
(tie: half a win for each side, as Chatbot Arena counts ties), and the fit maximises
``sum(s * log sigmoid(d) + (1 - s) * log sigmoid(-d))`` over votes, ``d = beta_a - beta_b``, minus
an L2 penalty ``l2 / 2 * sum(beta ** 2)``, with scipy's L-BFGS-B and the analytic gradient.

Decisions, stated once:

- Scale: Elo-like, as Chatbot Arena reports (Chiang et al. 2024, "Chatbot Arena", sec. 5; their
  ``compute_mle_elo``): ``rating = 1000 + 400 * log10(strength) = 1000 + (400 / ln 10) * beta``.
  A 400-point gap means 10:1 odds of winning; 100 points, about 64%.
- Anchor: the mean rating of the models fitted is 1000 (``anchor=None``), or the named model is
  exactly 1000 (its interval is then [1000, 1000]: the others' intervals are relative to it).
- Regularisation: ``l2 = 0.25`` by default, i.e. a Gaussian prior N(0, 2^2) on each
  log-strength (a standard deviation of about 350 rating points; the fit is the posterior mode).
  It keeps every rating finite when the plain maximum-likelihood estimate does not exist (a model
  that never loses or never wins, or one with a single vote) and fixes the otherwise free offset
  (the optimum has ``sum(beta) == 0``). Its cost on well-measured models is small: 42 wins in 50
  votes is a 288-point gap by maximum likelihood and 283 here; 21 wins in 21 votes against the
  field puts a model about 600 points above it (30:1 odds) where a "tiny" l2 of 0.01 claims
  1,060 (450:1) on the strength of 21 votes. So a model that never loses is rated finitely, and
  its rating says "better than everything it met", with a size set by the prior and its vote
  count, not a measurement. A model whose comparisons are all against one other is rated through
  that one only, with a correspondingly wider interval.
- Disconnected groups of models (no vote chain between them) cannot be compared: each group is
  centred on 1000 by the prior, and ``Leaderboard.connected`` is False.
- Intervals: percentile bootstrap (Efron and Tibshirani 1993, ch. 13), 2.5th and 97.5th percentiles
  of ``rounds`` refits on votes resampled with replacement. Resampling N votes with replacement is
  drawn as one multinomial count per distinct (pair, outcome), which is the same distribution and
  makes each refit cost O(pairs), not O(votes). A model drawn no votes in a round gets the
  prior's value there (the mean), so a model with a handful of votes gets an interval that
  reaches back to the field (percentile intervals cannot otherwise show the doubt in a short
  unbroken record: every resample of it agrees).
- Weights: a vote may carry a ``weight`` (0-1; an AI judge's vote under ``votes: "both"``, see
  ``feedback.vote_origins``): it adds ``weight`` to its pair's votes and ``weight * score`` to
  the first model's score in the fit and the win rates; counts (votes, wins, losses, ties,
  ``pair_votes``) stay counts of votes, and the bootstrap resamples votes, each keeping its weight.
- Rank: ``1 + the number of models whose ci_low is above this model's ci_high``, so models whose
  intervals overlap share a rank (LMSYS's "rank (UB)").
- Order and names: models are sorted by name and votes tallied before fitting, so ratings, counts
  and win rates do not depend on the order of the votes or on the names (up to the optimiser's
  tolerance, far below 0.01 points). The bootstrap draw for a given seed is assigned to the
  tallies in an order set by rating and vote count, not name, so intervals and ranks are the same
  under any vote order and any renaming (unless two models tie on both rating and vote count;
  then the names order them and the intervals move by bootstrap noise only).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import numpy as np
from scipy import optimize, sparse, special
from scipy.sparse.csgraph import connected_components
from threadpoolctl import threadpool_limits

BASE_RATING = 1000.0
POINTS_PER_FACTOR_10 = 400.0
SCALE = POINTS_PER_FACTOR_10 / math.log(10.0)  # rating points per unit of natural-log strength (~173.7)
DEFAULT_L2 = 0.25  # N(0, 2^2) prior on log-strength; see the module docstring
CI_PERCENTILES = (2.5, 97.5)
CHOICE_SCORE = {"a": 1.0, "b": 0.0, "tie": 0.5}  # the first model's (A's) score
BOTH_BAD_MODES = ("tie", "exclude")
BothBad = Literal["tie", "exclude"]


class HeadToHeadVote(Protocol):
    """What ``leaderboard`` reads from a vote (``feedback.interface.HeadToHead`` has these)."""

    @property
    def model_a(self) -> str: ...

    @property
    def model_b(self) -> str: ...

    @property
    def choice(self) -> str: ...


@dataclass(frozen=True)
class ModelRating:
    """One model's line on the leaderboard: rating and its 95% interval (rating points), rank, counts.

    ``ties`` includes both-bad votes when they count as ties; ``votes == wins + losses + ties``.
    """

    model: str
    rating: float
    ci_low: float
    ci_high: float
    rank: int
    votes: int
    wins: int
    losses: int
    ties: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "rating": self.rating, "ci_low": self.ci_low, "ci_high": self.ci_high,
            "rank": self.rank, "votes": self.votes, "wins": self.wins, "losses": self.losses, "ties": self.ties,
        }


@dataclass(frozen=True)
class Leaderboard:
    """Ratings by rank plus the pairwise tables.

    ``rows``: by rank, then rating (highest first), then name. ``win_rate[a][b]``: a's share of the
    score in its votes against b (ties half), in [0, 1], ``win_rate[a][b] + win_rate[b][a] == 1``;
    ``pair_votes[a][b] == pair_votes[b][a]``: how many votes between them. Both hold only pairs with
    at least one vote. ``votes``: votes counted; ``both_bad_excluded``: both-bad votes left out
    (``both_bad="exclude"``). ``connected``: every model is linked to every other through a chain
    of head-to-head votes (otherwise ratings across groups are not comparable).
    ``non_blind_excluded``: votes left out because their voter could see model names;
    ``identity_leak_excluded``: (blind) votes left out because their comparison is flagged as
    revealing which model wrote a response (both set by ``training.selectors.leaderboard_compute``).
    ``scope``: the eval set (and category) the votes were limited to; ``length_controlled``: the
    length-controlled ratings beside these (``training.evaluation.style_control``), when computed.
    """

    rows: tuple[ModelRating, ...]
    win_rate: dict[str, dict[str, float]]
    pair_votes: dict[str, dict[str, int]]
    votes: int
    both_bad: str
    both_bad_excluded: int
    rounds: int
    seed: int
    anchor: str | None
    connected: bool
    non_blind_excluded: int = 0
    identity_leak_excluded: int = 0
    votes_from: str = "human"  # whose votes (feedback.vote_origins): human, ai or both
    ai_weight: float = 1.0  # with votes_from "both": an AI vote's weight
    scope: dict[str, Any] | None = None  # {"eval_set_id", "eval_set", "category"} when the votes were filtered
    length_controlled: dict[str, Any] | None = None  # training.evaluation.style_control's result

    @property
    def models(self) -> list[str]:
        """Model names in leaderboard order."""
        return [row.model for row in self.rows]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"models": [row dicts], "win_rate", "pair_votes", "votes", ...}``."""
        return {
            "models": [row.as_dict() for row in self.rows],
            "win_rate": self.win_rate,
            "pair_votes": self.pair_votes,
            "votes": self.votes,
            "both_bad": self.both_bad,
            "both_bad_excluded": self.both_bad_excluded,
            "rounds": self.rounds,
            "seed": self.seed,
            "anchor": self.anchor,
            "connected": self.connected,
            "non_blind_excluded": self.non_blind_excluded,
            "identity_leak_excluded": self.identity_leak_excluded,
            "votes_from": self.votes_from,
            "ai_weight": self.ai_weight,
            "scope": self.scope,
            "length_controlled": self.length_controlled,
            "scale": {"base": BASE_RATING, "points_per_factor_10": POINTS_PER_FACTOR_10, "ci": list(CI_PERCENTILES)},
        }


@dataclass(frozen=True)
class _Tally:
    """Votes grouped by distinct (first, second, score), first < second (indices into sorted ``names``)."""

    names: tuple[str, ...]
    first: np.ndarray  # int64, one per distinct outcome
    second: np.ndarray  # int64
    score: np.ndarray  # float64, the first model's score
    count: np.ndarray  # int64, votes with this outcome
    pair: np.ndarray  # int64, index of (first, second) in pair_first/pair_second
    pair_first: np.ndarray  # int64, one per distinct pair
    pair_second: np.ndarray  # int64
    weight: np.ndarray | None = None  # float64, each outcome's vote weight (None: all 1)

    @property
    def size(self) -> int:
        return len(self.names)

    def pair_totals(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Votes and the first model's score summed per pair, for outcome counts of shape (K,) or (R, K)."""
        indicator = sparse.csr_matrix(
            (np.ones(len(self.pair)), (self.pair, np.arange(len(self.pair)))), shape=(len(self.pair_first), len(self.pair))
        )
        counts = np.atleast_2d(counts).astype(np.float64)
        if self.weight is not None:
            counts = counts * self.weight
        n = (indicator @ counts.T).T
        w = (indicator @ (counts * self.score).T).T
        return n, w


def _tally(outcomes: Sequence[tuple[str, str, float]]) -> _Tally:
    names = sorted({o[0] for o in outcomes} | {o[1] for o in outcomes})
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"model names must be non-empty strings, not {name!r}")
    index = {name: k for k, name in enumerate(names)}
    a = np.fromiter((index[o[0]] for o in outcomes), dtype=np.int64, count=len(outcomes))
    b = np.fromiter((index[o[1]] for o in outcomes), dtype=np.int64, count=len(outcomes))
    s = np.fromiter((o[2] for o in outcomes), dtype=np.float64, count=len(outcomes))
    v = np.fromiter((o[3] if len(o) > 3 else 1.0 for o in outcomes), dtype=np.float64, count=len(outcomes))
    if not np.all(np.isfinite(v)) or np.any((v < 0) | (v > 1)):
        raise ValueError("each weight must be a number from 0 to 1")
    if np.any(a == b):
        raise ValueError(f"a model cannot be compared with itself ({names[int(a[np.argmax(a == b)])]!r})")
    if not np.all(np.isfinite(s)) or np.any((s < 0) | (s > 1)):
        raise ValueError("each score must be a number from 0 to 1 (1 win, 0.5 tie, 0 loss)")
    swap = a > b
    first, second, score = np.where(swap, b, a), np.where(swap, a, b), np.where(swap, 1.0 - s, s)
    weighted = bool(np.any(v != 1.0))
    columns = [first, second, score] + ([v] if weighted else [])
    rows, count = np.unique(np.column_stack(columns), axis=0, return_counts=True)
    first, second = rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64)
    pairs, pair = np.unique(first * len(names) + second, return_inverse=True)
    return _Tally(
        names=tuple(names), first=first, second=second, score=rows[:, 2], count=count.astype(np.int64),
        pair=pair.reshape(-1), pair_first=pairs // max(len(names), 1), pair_second=pairs % max(len(names), 1),
        weight=rows[:, 3] if weighted else None,
    )


def _fit(tally: _Tally, n: np.ndarray, w: np.ndarray, *, l2: float, start: np.ndarray | None = None) -> np.ndarray:
    """Penalised maximum-likelihood log-strengths, shape (models,), for per-pair votes ``n`` and scores ``w``.

    The objective is divided by the vote count so the optimiser's tolerances mean the same at
    any data size; the penalty is on the unscaled log-likelihood (a fixed prior).
    """
    i, j, m = tally.pair_first, tally.pair_second, tally.size
    scale = 1.0 / max(float(n.sum()), 1.0)
    lost = n - w

    def objective(beta: np.ndarray) -> tuple[float, np.ndarray]:
        d = beta[i] - beta[j]
        value = -(w @ special.log_expit(d) + lost @ special.log_expit(-d)) + 0.5 * l2 * (beta @ beta)
        slope = n * special.expit(d) - w  # d(-loglik)/dd
        grad = np.bincount(i, slope, m) - np.bincount(j, slope, m) + l2 * beta
        return value * scale, grad * scale

    x0 = np.zeros(m) if start is None else start
    result = optimize.minimize(
        objective, x0, jac=True, method="L-BFGS-B", options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10}
    )
    beta = np.asarray(result.x, dtype=np.float64)
    if not np.all(np.isfinite(beta)):  # pragma: no cover - the penalty makes the problem strictly convex
        raise RuntimeError(f"Bradley-Terry fit failed: {result.message}")
    return beta


def _one_blas_thread() -> threadpool_limits:
    """L-BFGS-B's few-dozen-element BLAS calls run ~10x slower when OpenBLAS spreads them over
    threads on a busy machine (measured: 7 s against 0.3 s for the 200-round bench); one thread."""
    return threadpool_limits(limits=1, user_api="blas")


def _ratings(beta: np.ndarray, *, anchor_index: int | None) -> np.ndarray:
    """Log-strengths to rating points: 1000 at the mean, or at the anchor."""
    centre = beta.mean() if anchor_index is None else beta[anchor_index]
    return BASE_RATING + SCALE * (beta - centre)


def _check_l2(l2: float) -> None:
    if not (isinstance(l2, (int, float)) and math.isfinite(l2) and l2 > 0):
        raise ValueError("l2 must be a positive number")


def bradley_terry(
    outcomes: Sequence[tuple[str, str, float]], *, anchor: str | None = None, l2: float = DEFAULT_L2
) -> dict[str, float]:
    """Bradley-Terry ratings, ``{model: rating}`` in Elo-like points (see the module docstring).

    Args:
        outcomes: ``(model_a, model_b, score_a)`` per vote; ``score_a`` is 1 (a won), 0 (b won),
            0.5 (tie), or any value between (a fractional win).
        anchor: the model rated exactly 1000; ``None``: the mean rating is 1000.
        l2: the L2 penalty on log-strengths (a N(0, 1/l2) prior); keeps ratings finite.
    Returns: one rating per model that appears in ``outcomes`` (empty for no outcomes).
    Raises:
        ValueError: a model against itself, a score outside [0, 1], an empty name, an anchor not
            in the outcomes, or a non-positive ``l2``.
    """
    _check_l2(l2)
    if not outcomes:
        if anchor is not None:
            raise ValueError(f"anchor {anchor!r} has no votes")
        return {}
    tally = _tally(outcomes)
    anchor_index = _anchor_index(tally, anchor)
    n, w = tally.pair_totals(tally.count)
    with _one_blas_thread():
        beta = _fit(tally, n[0], w[0], l2=l2)
    return dict(zip(tally.names, _ratings(beta, anchor_index=anchor_index).tolist()))


def _anchor_index(tally: _Tally, anchor: str | None) -> int | None:
    if anchor is None:
        return None
    if anchor not in tally.names:
        raise ValueError(f"anchor {anchor!r} has no votes")
    return tally.names.index(anchor)


def vote_outcomes(votes: Sequence[HeadToHeadVote], *, both_bad: BothBad = "tie") -> tuple[list[tuple[str, str, float]], int]:
    """Votes as ``(model_a, model_b, score_a)`` and how many both-bad votes were left out.

    ``a`` -> 1, ``b`` -> 0, ``tie`` -> 0.5; ``both_bad`` -> 0.5 when ``both_bad="tie"`` (neither
    is preferred: it says as little about which is better as a tie does), dropped when ``"exclude"``.

    Raises:
        ValueError: an unknown choice or ``both_bad`` mode.
    """
    if both_bad not in BOTH_BAD_MODES:
        raise ValueError(f"both_bad must be one of {', '.join(BOTH_BAD_MODES)}, not {both_bad!r}")
    outcomes, excluded = [], 0
    for vote in votes:
        if vote.choice == "both_bad":
            if both_bad == "exclude":
                excluded += 1
                continue
            score = 0.5
        elif vote.choice in CHOICE_SCORE:
            score = CHOICE_SCORE[vote.choice]
        else:
            raise ValueError(f"unknown choice {vote.choice!r}")
        weight = getattr(vote, "weight", 1.0)
        outcomes.append((vote.model_a, vote.model_b, score) + (() if weight == 1.0 else (weight,)))
    return outcomes, excluded


def leaderboard(
    votes: Sequence[HeadToHeadVote],
    *,
    both_bad: BothBad = "tie",
    rounds: int = 200,
    seed: int = 0,
    anchor: str | None = None,
    l2: float = DEFAULT_L2,
) -> Leaderboard:
    """Bradley-Terry leaderboard of the models in ``votes``, with bootstrap 95% intervals and ranks.

    Args:
        votes: objects with ``model_a``, ``model_b`` (different names) and ``choice``
            (``"a"``, ``"b"``, ``"tie"``, ``"both_bad"``), e.g. ``feedback.interface.HeadToHead``.
        both_bad: ``"tie"`` counts a both-bad vote as a tie (half a win each); ``"exclude"``
            leaves it out (it is then in no count).
        rounds: bootstrap refits (0: no resampling, each interval is the rating itself).
        seed: seeds the resampling; the result is a pure function of (votes as a multiset, options).
        anchor, l2: as in ``bradley_terry``.
    Returns: a ``Leaderboard``; models with no counted votes are absent (no votes: no rows).
    Raises:
        ValueError: an unknown choice or mode, a model against itself, a negative ``rounds``, an
            anchor without votes, a non-positive ``l2``.
    """
    _check_l2(l2)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ValueError("rounds must be a non-negative integer")
    outcomes, excluded = vote_outcomes(votes, both_bad=both_bad)
    options = {"both_bad": both_bad, "both_bad_excluded": excluded, "rounds": rounds, "seed": seed, "anchor": anchor}
    if not outcomes:
        if anchor is not None:
            raise ValueError(f"anchor {anchor!r} has no votes")
        return Leaderboard(rows=(), win_rate={}, pair_votes={}, votes=0, connected=True, **options)
    tally = _tally(outcomes)
    anchor_index = _anchor_index(tally, anchor)
    n, w = tally.pair_totals(tally.count)
    n, w = n[0], w[0]
    with _one_blas_thread():
        beta = _fit(tally, n, w, l2=l2)
        rating = _ratings(beta, anchor_index=anchor_index)
        low, high = _bootstrap(tally, beta, rounds=rounds, seed=seed, l2=l2, anchor_index=anchor_index, fallback=rating)
    rank = 1 + (low[None, :] > high[:, None]).sum(axis=1)
    counts = _model_counts(tally)
    rows = sorted(
        (
            ModelRating(model=name, rating=float(rating[k]), ci_low=float(low[k]), ci_high=float(high[k]),
                        rank=int(rank[k]), **counts[k])
            for k, name in enumerate(tally.names)
        ),
        key=lambda row: (row.rank, -row.rating, row.model),
    )
    counted = n if tally.weight is None else replace(tally, weight=None).pair_totals(tally.count)[0][0]
    win_rate, pair_votes = _pair_tables(tally, n, w, counted)
    components, _ = connected_components(
        sparse.coo_matrix((np.ones(len(n)), (tally.pair_first, tally.pair_second)), shape=(tally.size, tally.size)),
        directed=False,
    )
    return Leaderboard(
        rows=tuple(rows), win_rate=win_rate, pair_votes=pair_votes, votes=int(tally.count.sum()),
        connected=components == 1, **options,
    )


def _bootstrap(
    tally: _Tally, beta: np.ndarray, *, rounds: int, seed: int, l2: float, anchor_index: int | None, fallback: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """2.5th and 97.5th percentiles of ratings over ``rounds`` resampled refits, shape (models,) each.

    A model that draws no votes in a round keeps the prior's value there (the mean, before
    anchoring): the penalised fit is defined for it, and a model with a handful of votes should
    have an interval that says so.
    """
    if rounds == 0:
        return fallback.copy(), fallback.copy()
    total = int(tally.count.sum())
    order = _name_free_order(tally, beta)
    draws = np.empty((rounds, len(tally.count)), dtype=np.int64)
    draws[:, order] = np.random.default_rng(seed).multinomial(total, tally.count[order] / total, size=rounds)
    n, w = tally.pair_totals(draws)
    samples = np.empty((rounds, tally.size))
    for r in range(rounds):
        samples[r] = _ratings(_fit(tally, n[r], w[r], l2=l2, start=beta), anchor_index=anchor_index)
    low, high = np.percentile(samples, CI_PERCENTILES, axis=0)
    return low, high


def _name_free_order(tally: _Tally, beta: np.ndarray) -> np.ndarray:
    """An order of the distinct outcomes that does not depend on the models' names, so that a
    seed gives the same bootstrap draw after renaming: models by rating (to 1e-6 points), then
    vote count, and only then name (models equal on both are told apart by name)."""
    votes = np.bincount(tally.first, tally.count, tally.size) + np.bincount(tally.second, tally.count, tally.size)
    rating = np.round(SCALE * (beta - beta.mean()), 6)
    position = np.empty(tally.size, dtype=np.int64)
    position[np.lexsort((np.arange(tally.size), -votes, -rating))] = np.arange(tally.size)
    p, q = position[tally.first], position[tally.second]
    score = np.where(p < q, tally.score, 1.0 - tally.score)  # the score of the model placed first
    return np.lexsort((score, np.maximum(p, q), np.minimum(p, q)))


def _model_counts(tally: _Tally) -> list[dict[str, int]]:
    """Per model: votes, wins, losses, ties (score 1, 0, anything else from its own side)."""
    m, c, s = tally.size, tally.count.astype(np.float64), tally.score
    first_wins, first_losses = np.where(s == 1.0, c, 0.0), np.where(s == 0.0, c, 0.0)
    drawn = c - first_wins - first_losses

    def per_model(for_first: np.ndarray, for_second: np.ndarray) -> np.ndarray:
        return np.bincount(tally.first, for_first, m) + np.bincount(tally.second, for_second, m)

    wins, losses, ties = per_model(first_wins, first_losses), per_model(first_losses, first_wins), per_model(drawn, drawn)
    return [
        {"votes": int(wins[k] + losses[k] + ties[k]), "wins": int(wins[k]), "losses": int(losses[k]), "ties": int(ties[k])}
        for k in range(m)
    ]


def _pair_tables(
    tally: _Tally, n: np.ndarray, w: np.ndarray, counted: np.ndarray
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    """Win rates from the (weighted) per-pair votes ``n`` and scores ``w``; vote counts from ``counted``
    (unweighted). A pair whose votes all weigh 0 has win rate 0.5 each way."""
    names = tally.names
    win_rate: dict[str, dict[str, float]] = {name: {} for name in names}
    pair_votes: dict[str, dict[str, int]] = {name: {} for name in names}
    for i, j, votes, score, count in zip(tally.pair_first.tolist(), tally.pair_second.tolist(), n.tolist(), w.tolist(),
                                         counted.tolist()):
        a, b = names[i], names[j]
        win_rate[a][b], win_rate[b][a] = (score / votes, (votes - score) / votes) if votes else (0.5, 0.5)
        pair_votes[a][b] = pair_votes[b][a] = int(round(count))
    return win_rate, pair_votes
