"""What the optimizer sees: numbers from the profiled sample, never a model or a backend.

Per logical filter: every cheap candidate operator's scores on the sample tuples and its measured
seconds per tuple, and the gold operator's decisions (the labels) and its seconds per tuple. With labels
from another source (a labelled column: the truth), `labels` are those and `gold_says` the gold operator's
decisions: the gold operator is then one more fallible operator whose errors count like any other's.
Per logical extract the same shape: scores are each cheap extractor's answer log-probability, and
`correct` says whether its value equals the gold extractor's; an extract keeps every tuple (labels 1).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from stretto.errors import OptimizerError
from stretto.plan.answers import same_answer
from stretto.plan.targets import Targets
from stretto.plan.template import ExtractTemplate, Template
from stretto.profiling.profile import Profile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OperatorSample:
    """One logical filter or extract on the sample: candidates ordered cheapest first."""

    template: str
    candidates: tuple[str, ...]
    scores: np.ndarray  # (candidates, tuples) log-odds
    costs: np.ndarray  # (candidates,) mean seconds per tuple
    gold: str
    gold_cost: float
    labels: np.ndarray  # (tuples,) bool: whether the tuple passes the filter (by default the gold operator's say)
    correct: np.ndarray | None = None  # extracts only: (candidates, tuples) bool, the value is right (gold's)
    # Candidates fitted on the labels of the sample's tuning tuples (learned operators): only a path certified
    # on the other tuples may use them, never the label-free path that certifies on every label.
    fitted: frozenset[str] = frozenset()
    # (tuples,) bool: the gold operator's decisions where the labels come from elsewhere (the truth); None when
    # the labels are the gold operator's own decisions
    gold_says: np.ndarray | None = None
    # extracts whose values are checked against the truth: (tuples,) bool, the gold operator's value is right;
    # None when gold's values are the reference (right by definition)
    gold_correct: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.scores.shape != (len(self.candidates), len(self.labels)):
            raise OptimizerError(
                f"filter '{self.template}': scores of shape {self.scores.shape} do not match "
                f"{len(self.candidates)} candidates x {len(self.labels)} sample tuples"
            )
        if self.correct is not None and self.correct.shape != self.scores.shape:
            raise OptimizerError(f"extract '{self.template}': correct has shape {self.correct.shape}, not scores'")

    @property
    def is_extract(self) -> bool:
        return self.correct is not None

    @property
    def pass_rate(self) -> float:
        return float(self.labels.mean())

    @property
    def gold_right(self) -> np.ndarray:
        """(tuples,) whether the gold operator's value is right (always, unless checked against the truth)."""
        return np.ones(len(self.labels), bool) if self.gold_correct is None else self.gold_correct

    @property
    def gold_decisions(self) -> np.ndarray:
        """What the gold operator says on each tuple (what a cascade's last step keeps)."""
        return self.labels if self.gold_says is None else self.gold_says


@dataclass(frozen=True)
class PlanProblem:
    """A conjunction of semantic operators (filters and extracts) to tune jointly for end-to-end targets."""

    operators: tuple[OperatorSample, ...]
    targets: Targets
    sample_fraction: float
    # A lower bound on the share of true result rows that reach the plan at all (a semantic join's blocking
    # step, bounded on its own at the same confidence): end-to-end recall is this times the plan's recall.
    upstream_recall: float = 1.0

    def __post_init__(self) -> None:
        if not self.operators:
            raise OptimizerError("a plan needs at least one filter")
        sizes = {len(f.labels) for f in self.operators}
        if len(sizes) != 1:
            raise OptimizerError(f"operators were profiled on different samples (sizes {sorted(sizes)})")
        if sizes == {0}:
            raise OptimizerError("the profiling sample is empty: raise the sample fraction or use a larger table")
        if not 0.0 < self.sample_fraction <= 1.0:
            raise OptimizerError(f"sample fraction {self.sample_fraction} is outside (0, 1]")
        if not 0.0 <= self.upstream_recall <= 1.0:
            raise OptimizerError(f"upstream recall {self.upstream_recall} is outside [0, 1]")

    @property
    def n_tuples(self) -> int:
        return len(self.operators[0].labels)

    @property
    def against_truth(self) -> bool:
        """The labels are not the gold operator's: gold alone is one more plan to certify, not the reference."""
        return any(f.gold_says is not None or f.gold_correct is not None for f in self.operators)

    @property
    def labels(self) -> np.ndarray:
        """(tuples,) whether a tuple belongs in the result: every filter's gold operator says yes (extracts keep
        every tuple; whether its values are right is `correct`, per extract and candidate)."""
        return np.logical_and.reduce([f.labels for f in self.operators])

    def subset(self, tuples: np.ndarray) -> PlanProblem:
        """The same problem on some of the sample's tuples (the sample fraction of the table is unchanged)."""
        operators = tuple(
            replace(
                f,
                scores=f.scores[:, tuples],
                labels=f.labels[tuples],
                gold_says=None if f.gold_says is None else f.gold_says[tuples],
                correct=None if f.correct is None else f.correct[:, tuples],
                gold_correct=None if f.gold_correct is None else f.gold_correct[tuples],
            )
            for f in self.operators
        )
        return replace(self, operators=operators)

    def split_sizes(self, certify_fraction: float) -> tuple[int, int]:
        """(tune, certify) sizes of `split`; one of them is 0 when the sample is too small to split."""
        if not 0.0 <= certify_fraction < 1.0:
            raise OptimizerError(f"certify fraction {certify_fraction} is outside [0, 1)")
        size = round(certify_fraction * self.n_tuples)
        return self.n_tuples - size, size

    def split_tuples(
        self, certify_fraction: float, seed: int | np.random.SeedSequence | np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """(tune, certify) sorted tuple positions of `split`; both all tuples when the sample is too small."""
        tune_size, size = self.split_sizes(certify_fraction)
        everything = np.arange(self.n_tuples)
        if size == 0 or tune_size == 0:
            return everything, everything
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        order = rng.permutation(self.n_tuples)
        return np.sort(order[size:]), np.sort(order[:size])

    def split(
        self, certify_fraction: float, seed: int | np.random.SeedSequence | np.random.Generator
    ) -> tuple[PlanProblem, PlanProblem]:
        """(tune, certify): disjoint random parts of the sample; thresholds fit on one, bounds come from the other.

        Bounds computed on the tuples the thresholds were fit to are optimistic (the cheapest plan that just
        clears the bound on those tuples is, more often than alpha allows, below it on the rest of the table).
        A sample too small to split is returned as both parts, and a warning says that its bounds are optimistic.
        `seed`: the split's own random stream (a spawned SeedSequence), or an int.
        """
        tune_size, size = self.split_sizes(certify_fraction)
        if (size == 0 or tune_size == 0) and certify_fraction > 0:
            log.warning(
                "a %d-tuple sample is too small to hold out %.0f%% of it for certification: the bounds are "
                "computed on the tuples the plan was tuned on and are optimistic (raise the sample size)",
                self.n_tuples,
                100 * certify_fraction,
            )
        if size == 0 or tune_size == 0:
            return self, self
        tune, certify = self.split_tuples(certify_fraction, seed)
        return self.subset(tune), self.subset(certify)


def operator_sample(
    profile: Profile,
    template: Template,
    keys: Sequence[str],
    candidates: Sequence[str],
    gold: str,
    fitted: Sequence[str] = (),
    truth: np.ndarray | None = None,
) -> OperatorSample:
    """Pull one filter's (or extract's) numbers out of a profile; the gold operator must be there and not among
    the cheap ones. `fitted`: the candidates fitted on the sample's tuning labels (see OperatorSample). `truth`:
    the labels from another source, the gold operator's answers then one more say: a filter's (bool per key) or
    an extract's true values (per key; None where the truth is that there is no value)."""
    if not gold:
        raise OptimizerError(f"filter '{template.text}': the candidate set names no gold operator")
    cheap = [c for c in dict.fromkeys(candidates) if c != gold]
    # Gold labels may be left unasked where an earlier filter's gold label is no: the tuple is out of the answer
    # whatever this operator says (so the conjunction's labels stay exact), and an unasked label counts as "yes",
    # so a plan that could keep the tuple is charged a false positive: the precision counts can only get worse.
    gold_answers = profile.lookup(keys, template, gold, partial=True)
    answers = [profile.lookup(keys, template, c) for c in cheap]
    costs = np.array([a["seconds"].mean() for a in answers], dtype=np.float64)
    order = np.argsort(costs, kind="stable")
    gold_scores = gold_answers["score"].to_numpy(np.float64)
    correct, labels = None, np.isnan(gold_scores) | (gold_scores > 0.0)
    gold_says = gold_correct = None
    if isinstance(template, ExtractTemplate):
        values = [v if isinstance(v, str) else None for v in gold_answers["value"]]  # unasked: NaN
        # the reference values: gold's own, or the true ones (then gold's values are judged against them too)
        reference = values if truth is None else list(truth)
        if truth is not None:
            gold_correct = np.array([same_answer(v, t) for v, t in zip(values, reference, strict=True)], dtype=bool)
        correct = np.array([[same_answer(v, t) for v, t in zip(answers[i]["value"], reference, strict=True)]
                            for i in order], dtype=bool).reshape(len(cheap), len(keys))  # fmt: skip
        labels = np.ones(len(keys), dtype=bool)
    elif truth is not None:
        gold_says, labels = labels, np.asarray(truth, dtype=bool)
    return OperatorSample(
        template=template.text,
        candidates=tuple(cheap[i] for i in order),
        scores=np.array([answers[i]["score"].to_numpy(np.float64) for i in order]).reshape(len(cheap), len(keys)),
        costs=costs[order],
        gold=gold,
        gold_cost=float(gold_answers["seconds"].mean()) if gold_answers["seconds"].notna().any() else 0.0,
        labels=labels,
        correct=correct,
        fitted=frozenset(fitted) & frozenset(cheap),
        gold_says=gold_says,
        gold_correct=gold_correct,
    )
