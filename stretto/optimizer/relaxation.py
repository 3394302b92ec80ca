"""The differentiable plan: soft cascades over the sample, batched over many candidate plans (jobs).

Per tuple a cascade starts UNSURE. Each cheap operator takes part with probability
sigmoid(pick / tau_pick) and splits the still-unsure mass by softmax([s - upper, lower - s, 0] / tau)
into keep / discard / unsure; the gold operator decides whatever is left (and the forced fractions).
At tau -> 0 this is exactly the hard cascade (`hard=True` evaluates that limit directly).
An extract is a cascade that never discards (its lower threshold is -inf): a cheap extractor's value is
final above its upper threshold, and V = the probability that the tuple's value equals the gold one.
End to end, a tuple is in the result with probability K = prod_f keep_f, belongs there iff every gold
label is 1 (L), and its output row is right iff every value is (C = prod_e V_e). Counting (tuple, values)
rows: TP = sum K L C, FP = sum K (1 - L C) (kept but not a true row), FN = sum L (1 - K C) (a true row
missing or wrong). Without extracts C = 1 and these are the filter counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from stretto.optimizer.guarantees import blended_recall, lower_bound
from stretto.optimizer.physical_plan import gold_share, value_right
from stretto.optimizer.problem import PlanProblem

DTYPE = torch.float32


@dataclass(frozen=True)
class SampleTensors:
    """The problem as padded tensors: F filters x M candidate slots x N tuples; scores standardised per operator."""

    scores: torch.Tensor  # (F, M, N) standardised
    valid: torch.Tensor  # (F, M) 1 for a real candidate, 0 for padding
    costs: torch.Tensor  # (F, M) seconds per tuple
    gold_costs: torch.Tensor  # (F,)
    labels: torch.Tensor  # (F, N) 0/1 (1 for extracts): the tuple passes the filter
    gold_says: torch.Tensor  # (F, N) 0/1: what the gold operator says (the labels, unless they come from elsewhere)
    correct: torch.Tensor  # (F, M, N) 1 where a candidate's value is right (equals gold's; 1 for filters)
    gold_right: torch.Tensor  # (F, N) 1 where the gold operator's value is right (1 unless against the truth)
    is_extract: torch.Tensor  # (F,) bool
    mean: np.ndarray  # (F, M) to map thresholds back to raw scores
    std: np.ndarray  # (F, M)
    order: list[int]  # filter order used for the short-circuit cost (most selective first)

    @classmethod
    def of(cls, problem: PlanProblem, like: SampleTensors | None = None) -> SampleTensors:
        """`like`: reuse another part's standardisation and filter order, so the same parameters mean the same plan."""
        n_filters, n = len(problem.operators), problem.n_tuples
        slots = max(1, max(len(f.candidates) for f in problem.operators))
        scores = np.zeros((n_filters, slots, n))
        valid, costs = np.zeros((n_filters, slots)), np.zeros((n_filters, slots))
        correct = np.ones((n_filters, slots, n))
        mean, std = np.zeros((n_filters, slots)), np.ones((n_filters, slots))
        for i, f in enumerate(problem.operators):
            m = len(f.candidates)
            if m:
                mean[i, :m] = f.scores.mean(axis=1)
                std[i, :m] = f.scores.std(axis=1).clip(min=1e-6)
                scores[i, :m] = (f.scores - mean[i, :m, None]) / std[i, :m, None]
                valid[i, :m], costs[i, :m] = 1.0, f.costs
                if f.is_extract:
                    correct[i, :m] = f.correct
        order = sorted(range(n_filters), key=lambda i: problem.operators[i].pass_rate)
        if like is not None:
            mean, std, order = like.mean, like.std, like.order
            scores = np.zeros_like(scores)
            for i, f in enumerate(problem.operators):
                m = len(f.candidates)
                scores[i, :m] = (f.scores - mean[i, :m, None]) / std[i, :m, None]
        return cls(
            scores=torch.tensor(scores, dtype=DTYPE),
            valid=torch.tensor(valid, dtype=DTYPE),
            costs=torch.tensor(costs, dtype=DTYPE),
            gold_costs=torch.tensor([f.gold_cost for f in problem.operators], dtype=DTYPE),
            labels=torch.tensor(np.array([f.labels for f in problem.operators]), dtype=DTYPE),
            gold_says=torch.tensor(np.array([f.gold_decisions for f in problem.operators]), dtype=DTYPE),
            correct=torch.tensor(correct, dtype=DTYPE),
            gold_right=torch.tensor(np.array([f.gold_right for f in problem.operators]), dtype=DTYPE),
            is_extract=torch.tensor([f.is_extract for f in problem.operators], dtype=torch.bool),
            mean=mean,
            std=std,
            order=order,
        )


@dataclass
class Params:
    """Free parameters of J candidate plans: picks, thresholds (lower, lower + softplus(gap)), forcing logits."""

    pick: torch.Tensor  # (J, F, M)
    lower: torch.Tensor  # (J, F, M)
    gap: torch.Tensor  # (J, F, M)
    force_accept: torch.Tensor  # (J, F) logits
    force_discard: torch.Tensor  # (J, F) logits

    def tensors(self) -> list[torch.Tensor]:
        return [self.pick, self.lower, self.gap, self.force_accept, self.force_discard]

    @property
    def upper(self) -> torch.Tensor:
        return self.lower + torch.nn.functional.softplus(self.gap)

    @classmethod
    def random(cls, jobs: int, filters: int, slots: int, generator: torch.Generator) -> Params:
        def randn(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, generator=generator, dtype=DTYPE)

        return cls(
            pick=randn(jobs, filters, slots) * 2.0,
            lower=randn(jobs, filters, slots) * 0.5 - 0.5,
            gap=randn(jobs, filters, slots) * 0.5,
            force_accept=torch.full((jobs, filters), -4.0, dtype=DTYPE) + randn(jobs, filters),
            force_discard=torch.full((jobs, filters), -4.0, dtype=DTYPE) + randn(jobs, filters),
        )


@dataclass(frozen=True)
class Outcome:
    """Per job: soft (or hard) counts on the sample and the expected seconds per input tuple."""

    tp: torch.Tensor  # (J,)
    fp: torch.Tensor
    fn: torch.Tensor
    cost: torch.Tensor  # (J,) seconds per tuple, short-circuiting filters in `order`
    keep: torch.Tensor  # (J, F, N) per-filter keep probability (1 for extracts)

    def bounds(self, problem: PlanProblem, kind: str = "beta", blend: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower bounds on the whole result's precision and recall (sample tuples are answered by gold).

        blend: the paper's recall r_total = f + (1 - f) r_rest with f the sample's share of rows; without it the
        bound is on the rows the plan answers, itself a lower bound for the whole result (Learn-then-Test's)."""
        alpha = problem.targets.alpha
        precision = lower_bound(self.tp, self.fp, alpha, kind)
        recall = lower_bound(self.tp, self.fn, problem.targets.recall_confidence, kind)
        if blend:
            recall = blended_recall(1.0, recall, problem.sample_fraction)
        return precision, recall * problem.upstream_recall


def soft_decision(s: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, tau: float):
    """(keep, discard) = the first two entries of softmax([s - upper, lower - s, 0] / tau), written out (faster)."""
    a, b = (s - upper) / tau, (lower - s) / tau
    top = torch.maximum(torch.maximum(a, b), torch.zeros_like(a))
    ea, eb, e0 = torch.exp(a - top), torch.exp(b - top), torch.exp(-top)
    total = ea + eb + e0
    return ea / total, eb / total


NEVER = -1e4  # an extract's lower threshold: no score is below it, so it never discards


def cascade(
    t: SampleTensors, params: Params, tau_pick: float, tau: float, hard: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep probability, expected seconds and value-correct probability per (job, filter, tuple) of every
    cascade (keep is 1 and seconds count alike for extracts; value-correct is 1 for filters)."""
    jobs, filters, slots = params.pick.shape
    n = t.scores.shape[-1]
    unsure = torch.ones((jobs, filters, n), dtype=DTYPE)
    accepted, discarded = torch.zeros_like(unsure), torch.zeros_like(unsure)
    seconds, right = torch.zeros_like(unsure), torch.zeros_like(unsure)
    upper = params.upper
    lower = torch.where(t.is_extract[None, :, None], torch.tensor(NEVER, dtype=DTYPE), params.lower)
    for m in range(slots):
        s = t.scores[None, :, m, :]  # (1, F, N)
        lo, up = lower[:, :, m, None], upper[:, :, m, None]
        if hard:
            part = (params.pick[:, :, m] > 0).to(DTYPE)[..., None]
            keep, discard = (s > up).to(DTYPE), (s < lo).to(DTYPE)
        else:
            part = torch.sigmoid(params.pick[:, :, m] / tau_pick)[..., None]
            keep, discard = soft_decision(s, lo, up, tau)
        reached = unsure * (part * t.valid[None, :, m, None])  # mass this operator answers
        seconds = seconds + reached * t.costs[None, :, m, None]
        accepted = accepted + reached * keep
        right = right + reached * keep * t.correct[None, :, m, :]
        discarded = discarded + reached * discard
        unsure = unsure - reached * (keep + discard)
    keep, to_gold, _ = gold_share(
        accepted,
        discarded,
        unsure,
        t.gold_says[None],
        torch.sigmoid(params.force_accept)[..., None],
        torch.sigmoid(params.force_discard)[..., None],
    )
    # a fresh sigmoid node, as before: sharing the one above would round the gradient differently
    value_ok = value_right(right, to_gold, torch.sigmoid(params.force_accept)[..., None], t.gold_right[None])
    value_ok = torch.where(t.is_extract[None, :, None], value_ok, torch.ones_like(value_ok))
    return keep, seconds + to_gold * t.gold_costs[None, :, None], value_ok


def evaluate(t: SampleTensors, params: Params, tau_pick: float = 0.0, tau: float = 0.0, hard: bool = False) -> Outcome:
    keep, seconds, value_ok = cascade(t, params, tau_pick, tau, hard)
    in_result = keep.prod(dim=1)  # (J, N)
    belongs = t.labels.prod(dim=0)[None]  # (1, N)
    right = value_ok.prod(dim=1)  # (J, N)
    reach = torch.ones_like(in_result)
    cost = torch.zeros_like(in_result)
    for f in t.order:  # later filters only see the tuples earlier ones kept
        cost = cost + reach * seconds[:, f]
        reach = reach * keep[:, f]
    return Outcome(
        tp=(in_result * belongs * right).sum(-1),
        fp=(in_result * (1.0 - belongs * right)).sum(-1),
        fn=(belongs * (1.0 - in_result * right)).sum(-1),
        cost=cost.mean(-1),
        keep=keep,
    )


def gold_only_cost(t: SampleTensors) -> float:
    """Seconds per tuple of answering every filter with the gold operator alone (short-circuited)."""
    reach, cost = torch.ones(t.labels.shape[-1], dtype=DTYPE), 0.0
    for f in t.order:
        cost += float((reach * t.gold_costs[f]).mean())
        reach = reach * t.gold_says[f]
    return cost
